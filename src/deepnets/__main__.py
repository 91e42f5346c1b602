from deepnets.cli import main

raise SystemExit(main())
