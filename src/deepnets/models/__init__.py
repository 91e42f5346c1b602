"""One file per system, each readable top to bottom."""
