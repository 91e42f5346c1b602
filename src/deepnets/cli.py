"""The command line: parse, then call library functions. Errors the user can fix print one
message and exit with status 2, never a traceback."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

from deepnets import DeepnetsError


def _say(text: str) -> None:
    """Print on the main process only (torchrun starts one process per rank)."""
    from deepnets.train.distributed import is_main_process

    if is_main_process():
        print(text)


def _new_run(experiment_id: str, preset: str, seed: int, parent: str = "runs"):
    from deepnets.run import RunDir

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RunDir.claim(Path(parent) / experiment_id, f"{stamp}-{preset}-s{seed}")


def _resolve_config(args: argparse.Namespace):
    """The experiment, preset name and config a command asks for, every value checked (and
    the device found) before any data is read or any folder made."""
    from deepnets.config import apply_overrides, check_device_exists
    from deepnets.experiments import get_experiment

    experiment = get_experiment(args.experiment)
    preset = args.preset or experiment.default_preset
    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.device is not None:
        overrides.append(f"device={args.device}")
    config = apply_overrides(experiment.preset(preset), overrides)
    check_device_exists(config)
    return experiment, preset, config


def cmd_list(args: argparse.Namespace) -> int:
    from deepnets.results import list_lines

    for line in list_lines(show_all=args.all, width=shutil.get_terminal_size((120, 24)).columns):
        print(line)
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from deepnets.claims import CLAIMS, claims_table, findings, training_seconds
    from deepnets.results import latest_rows

    if args.run is not None:
        claim = next((c for c in CLAIMS if c.number == args.run), None)
        if claim is None:
            raise DeepnetsError(f"no claim {args.run}: the claims are 1-{len(CLAIMS)}")
        return _run_claim(claim, args.quiet)
    if args.markdown:
        print(claims_table())
        return 0
    rows = latest_rows()
    for claim, found in findings(rows=rows):
        print(f"{claim.number}. {claim.statement} ({claim.reference})")
        print(f"   experiment: {claim.experiment}")
        if found.numbers:
            print(f"   measured:   {found.numbers}")
        print(f"   verdict:    {found.verdict.upper()}: {found.reason}")
        print(f"   rows from:  {'; '.join(claim.commands)}")
        seconds = training_seconds(claim, rows)
        if seconds is not None:
            print(f"   training:   {seconds / 60:.1f} min over its rows")
    return 0


def _run_claim(claim, quiet: bool) -> int:
    """Regenerate the rows (or the benchmark file) a claim is judged from, then judge it."""
    from deepnets.claims import findings
    from deepnets.results import project_root

    if claim.benches:
        for bench in claim.benches:
            argv = bench.argv() + (["--quiet"] if quiet else [])
            _say("deepnets " + " ".join(argv))
            cmd_bench(build_parser().parse_args(argv))
    elif claim.script:
        script = project_root() / claim.script
        if not script.is_file():
            raise DeepnetsError(f"claim {claim.number} runs {claim.script}, not in {script.parent}")
        if subprocess.run([sys.executable, str(script)], check=False).returncode:
            raise DeepnetsError(f"{claim.script} failed")
    else:
        raise DeepnetsError(
            f"claim {claim.number} reads a table made from finished runs; regenerate it with: "
            + "; ".join(claim.commands)
        )
    found = dict(findings())[claim]
    print(f"claim {claim.number}: {found.verdict.upper()}: {found.reason}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from deepnets.config import apply_overrides
    from deepnets.run import RunDir

    if args.resume:
        run = RunDir.open(args.resume)
        experiment, config, meta = run.read_config()
        if args.device is not None:
            config = dataclasses.replace(config, device=args.device)
        if args.set or args.seed is not None:  # only lengthening passes the engine's check
            seed = [] if args.seed is None else [f"seed={args.seed}"]
            config = apply_overrides(config, [*(args.set or []), *seed])
        preset, resume = meta.get("preset", "custom"), True
    else:
        if args.experiment is None:
            raise DeepnetsError("run needs an experiment id (deepnets list) or --resume RUN_DIR")
        experiment, preset, config = _resolve_config(args)
        if args.run_dir:
            run = RunDir.create(args.run_dir)
        else:
            run = _new_run(experiment.id, preset, config.seed)
        _say(f"{experiment.id} [{preset}] -> {run.path}")
        resume = False
    summary = experiment.task.train(
        experiment, config, run, preset=preset, resume=resume, progress=not args.quiet
    )
    if summary is not None and args.json:
        print(json.dumps(summary))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from deepnets.train import evaluate_run

    if args.rescore:
        from deepnets.train.engine import rescore_run

        if args.split != "test" or args.set:
            raise DeepnetsError(
                "--rescore scores the test split as trained; leave out --split/--set"
            )
        summary = rescore_run(args.run_dir, args.device or "auto")
        before = summary["rescored"]["previous"]["metrics"][summary["metric"]]
        print(f"{summary['metric']} {before:.4f} -> {summary['value']:.4f}; wrote summary.json")
        return 0
    metrics = evaluate_run(args.run_dir, args.device or "auto", args.split, args.set or ())
    shown = (f"{k} {v}" if isinstance(v, int) else f"{k} {v:.4f}" for k, v in metrics.items())
    print(f"{args.split} " + "  ".join(shown))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from deepnets.experiments import get_experiment
    from deepnets.run import RunDir

    experiment = get_experiment("convnet-digits")
    config = experiment.preset(None)
    run = RunDir.create(args.run_dir) if args.run_dir else _new_run(experiment.id, "small", 0)
    print(f"demo: {experiment.title}\n      run folder {run.path}")
    summary = experiment.task.train(
        experiment, config, run, preset="small", progress=not args.quiet
    )
    if summary is not None:
        print(
            f"demo: test accuracy {100 * summary['value']:.2f}% on the held-out digits, "
            f"{summary['wall_seconds']:.1f}s of training"
        )
    return 0


IMAGE_FIGURES = ("fig2",)  # the figures that take --image FILE


def cmd_figure(args: argparse.Namespace) -> int:
    from deepnets.figures import FIGURES

    if args.name not in FIGURES:
        raise DeepnetsError(f"unknown figure {args.name!r}; figures: {', '.join(FIGURES)}")
    options = {}
    if args.image is not None:
        if args.name not in IMAGE_FIGURES:
            raise DeepnetsError(
                f"--image is an option of {', '.join(IMAGE_FIGURES)} only, not of {args.name}"
            )
        options["image"] = args.image
    out = FIGURES[args.name](run_dir=args.run_dir, out=args.out, **options)
    print(f"wrote {out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from deepnets.train.language_model import generate, load_trained

    if args.length < 1:
        raise DeepnetsError(f"--length must be at least 1, got {args.length}")
    _, _, corpus, model = load_trained(Path(args.run_dir), args.device or "auto")
    vocab = corpus["vocab"]
    prompt = torch.tensor(vocab.prompt_ids(args.prompt), dtype=torch.long)
    generator = torch.Generator().manual_seed(args.seed)
    drawn = generate(model, prompt, args.length, args.temperature, generator)
    print(vocab.render(prompt.tolist() + drawn.tolist()).lstrip("\n"))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from deepnets.serve.app import serve
        from deepnets.serve.catalog import RunCatalog
        from deepnets.serve.results_view import export_static
    except ImportError as err:
        raise DeepnetsError(
            f"serve needs the serve extra ({err.name} is missing): pip install 'deepnets[serve]'"
        ) from None
    if args.export:
        index = export_static(RunCatalog(args.runs), Path(args.export), figures=not args.no_figures)
        print(f"wrote {index}: open it in a browser, no server needed")
        return 0
    if not 0 < args.port < 65536:
        raise DeepnetsError(f"--port must be in 1-65535, got {args.port}")
    if not Path(args.runs).is_dir():
        print(f"note: {args.runs} does not exist yet; the page shows the results table only")
    serve(Path(args.runs), args.host, args.port)
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    from deepnets.train.memn2n import answer, format_answer, load_trained

    if (args.story is None) == (args.story_file is None):
        raise DeepnetsError("answer needs a story: --story TEXT or --story-file FILE")
    if args.story_file is not None:
        try:
            text = Path(args.story_file).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise DeepnetsError(f"cannot read {args.story_file}: {err}") from None
        story = text.splitlines()
    else:
        story = args.story.replace("\n", ".").split(".")
    config, data, model = load_trained(args.run_dir, args.device or "auto")
    result = answer(config, data["vocab"], model, story, args.question)
    print(json.dumps(result) if args.json else format_answer(result))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from deepnets.train.translate import draw_attention, load_trained, translate_sentence

    config, tokenizers, model = load_trained(args.run_dir, args.device or "auto")
    if args.attention is not None and not config.attention:
        raise DeepnetsError(f"{args.run_dir} has no attention (a seq2seq run): no --attention")
    result = translate_sentence(config, tokenizers, model, args.sentence, args.beam)
    if result["note"]:
        print(f"note: {result['note']}", file=sys.stderr)
    print(result["translation"])
    if args.attention is not None:
        print(f"wrote {draw_attention(result, args.attention)}", file=sys.stderr)
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from deepnets.train.caption import caption_image, draw_attention, load_trained

    experiment, config, vocab, model = load_trained(args.run_dir, args.device or "auto")
    if args.attention is not None and not config.attention:
        raise DeepnetsError(f"{args.run_dir} has no attention (attention=False): no --attention")
    result = caption_image(experiment, config, vocab, model, args.image, args.beam)
    print(result["caption"])
    if args.attention is not None:
        print(f"wrote {draw_attention(result, args.attention)}", file=sys.stderr)
    return 0


def _finished_runs(
    experiment, preset: str | None, run_dirs: list[str], overrides: list[str]
) -> tuple[str, list[dict]]:
    """The summaries of finished runs of one config (seeds apart), and the row's preset label:
    the preset (by default the one the runs recorded), plus `+key=value` for every field where
    the runs, scored as the eval-field `overrides` say, differ from it."""
    from deepnets.config import apply_eval_overrides
    from deepnets.run import RunDir

    summaries, configs, presets = [], [], set()
    for path in run_dirs:
        run = RunDir.open(path)
        ran, config, meta = run.read_config()
        if ran.id != experiment.id:
            raise DeepnetsError(f"{path} is a {ran.id} run, not {experiment.id}")
        presets.add(meta.get("preset", experiment.default_preset))
        summaries.append(run.read_summary())
        config = apply_eval_overrides(config, overrides)
        configs.append(dataclasses.replace(config, seed=0, device="auto"))
    if any(c != configs[0] for c in configs[1:]):
        raise DeepnetsError("the runs differ in more than their seed and device: not one row")
    seeds = [s["seed"] for s in summaries]
    if len(set(seeds)) != len(seeds):
        raise DeepnetsError(f"the runs repeat a seed ({seeds}): one row needs distinct seeds")
    preset = preset or min(presets)
    named = dataclasses.replace(experiment.preset(preset), seed=0, device="auto")
    changed = [
        f"{f.name}={getattr(configs[0], f.name)}"
        for f in dataclasses.fields(named)
        if getattr(configs[0], f.name) != getattr(named, f.name)
    ]
    return (f"{preset}+{','.join(changed)}" if changed else preset), summaries


def _scored_again(
    run_dirs: list[str], summaries: list[dict], overrides: list[str], device: str
) -> list[dict]:
    """The finished runs' summaries with their test scores replaced by a new evaluation of the
    same weights, decoded and scored as `overrides` say (eval fields only: `deepnets eval
    --set`); the run folders are not changed."""
    from deepnets.train import evaluate_run

    scored = []
    for path, summary in zip(run_dirs, summaries):
        metrics = evaluate_run(path, device, summary["split"], overrides)
        _say(f"{path}: {summary['metric']} {metrics[summary['metric']]:.4f} with {overrides}")
        scored.append(summary | {"value": metrics[summary["metric"]], "metrics": metrics})
    return scored


def cmd_bench(args: argparse.Namespace) -> int:
    from deepnets.results import append_row, bench_row, write_results_md

    if args.seeds < 1:
        raise DeepnetsError(f"--seeds must be at least 1, got {args.seeds}")
    experiment, preset, base = _resolve_config(args)
    if args.from_runs:
        label, summaries = _finished_runs(experiment, args.preset, args.from_runs, args.set or [])
        if args.set:
            summaries = _scored_again(args.from_runs, summaries, args.set, args.device or "auto")
        path = append_row(bench_row(experiment, label, summaries))
        write_results_md()
        print(f"appended a row of {len(summaries)} finished runs to {path}")
        return 0
    summaries = []
    for k in range(args.seeds):
        config = dataclasses.replace(base, seed=base.seed + k)
        run = _new_run(experiment.id, preset, config.seed, parent="runs/bench")
        _say(f"bench {experiment.id} [{preset}] seed {config.seed} -> {run.path}")
        summary = experiment.task.train(
            experiment, config, run, preset=preset, progress=not args.quiet
        )
        if summary is None:  # a non-zero rank under torchrun
            return 0
        summaries.append(summary)
    if args.set:
        preset = f"{preset}+{','.join(args.set)}"
    path = append_row(bench_row(experiment, preset, summaries))
    write_results_md()
    print(f"appended a row to {path} and regenerated RESULTS.md")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepnets", description=__doc__)
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download; fail with the list of files to put in place",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser(
        "list", help="every experiment: its headline result beside the paper's"
    )
    listing.add_argument("--all", action="store_true", help="every results row, not the headlines")
    claims = sub.add_parser("claims", help="the review's claims, each judged from measured rows")
    claims.add_argument("--markdown", action="store_true", help="the table as Markdown")
    claims.add_argument("--run", type=int, metavar="N", help="regenerate claim N's rows")
    claims.add_argument("--quiet", action="store_true", help="with --run: no progress bars")

    def training_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", help="tiny, small (default) or paper")
        p.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a config field (repeatable), type-checked",
        )
        p.add_argument("--seed", type=int)
        p.add_argument("--device", choices=["auto", "cpu", "cuda"])
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    run = sub.add_parser("run", help="train and evaluate one experiment")
    run.add_argument("experiment", nargs="?")
    training_options(run)
    run.add_argument("--run-dir", help="where to write (default runs/ID/DATE-PRESET-sSEED)")
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run; with --set epochs=N (and cosine_cycles=K): lengthen it",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON")

    ev = sub.add_parser("eval", help="re-evaluate a saved run")
    ev.add_argument("run_dir")
    ev.add_argument("--split", default="test")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"])
    ev.add_argument(
        "--rescore",
        action="store_true",
        help="score the test split with the current code and record it in summary.json",
    )
    ev.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="change how the model decodes and is scored, e.g. beam_size=5 (repeatable); "
        "the run folder is not changed",
    )

    demo = sub.add_parser("demo", help="the embedded default: a ConvNet on scikit-learn's digits")
    demo.add_argument("--run-dir")
    demo.add_argument("--quiet", action="store_true")

    fig = sub.add_parser("figure", help="redraw one of the review's figures")
    fig.add_argument("name")
    fig.add_argument("run_dir", nargs="?")
    fig.add_argument("--out", help="output file (default figures/NAME.png)")
    fig.add_argument(
        "--image",
        metavar="FILE",
        help="fig2: a PNG or JPEG to feed the net (default: test image 0)",
    )

    sample = sub.add_parser("sample", help="generate text from a trained language model")
    sample.add_argument("run_dir")
    sample.add_argument("--prompt", default="", help="text to start from")
    sample.add_argument("--temperature", type=float, default=1.0, help="below 1: safer choices")
    sample.add_argument("--length", type=int, default=200, help="tokens to generate")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", choices=["auto", "cpu", "cuda"])

    web = sub.add_parser("serve", help="a local web page: every result, and try every trained run")
    web.add_argument("--runs", default="runs", help="the runs folder to serve (default runs)")
    web.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--export", metavar="DIR", help="write the results part as static files")
    web.add_argument("--no-figures", action="store_true", help="with --export: skip figures")

    ans = sub.add_parser(
        "answer", help="a memory network answers a question about a story, with its attention"
    )
    ans.add_argument("run_dir")
    ans.add_argument("--story", help='sentences ending in "." ("Mary went to the kitchen. ...")')
    ans.add_argument("--story-file", metavar="FILE", help="one sentence a line")
    ans.add_argument("--question", required=True, help='ends in "?" ("Where is Mary?")')
    ans.add_argument("--json", action="store_true", help="print the answer and attention as JSON")
    ans.add_argument("--device", choices=["auto", "cpu", "cuda"])

    tr = sub.add_parser("translate", help="translate a sentence with a trained translation run")
    tr.add_argument("run_dir")
    tr.add_argument("sentence", help="the source sentence (German for a de-en run)")
    tr.add_argument("--beam", type=int, default=5, help="beam width (1: greedy; default 5)")
    tr.add_argument("--attention", metavar="FILE", help="draw the attention matrix to FILE")
    tr.add_argument("--device", choices=["auto", "cpu", "cuda"])

    cap = sub.add_parser("caption", help="caption an image with a trained captioning run")
    cap.add_argument("run_dir")
    cap.add_argument("image", help="a PNG, JPEG, GIF or BMP file")
    cap.add_argument("--beam", type=int, default=3, help="beam width (1: greedy; default 3)")
    cap.add_argument("--attention", metavar="FILE", help="draw one attention map per word")
    cap.add_argument("--device", choices=["auto", "cpu", "cuda"])

    bench = sub.add_parser("bench", help="run seeds, append a results row, regenerate RESULTS.md")
    bench.add_argument("experiment")
    training_options(bench)
    bench.add_argument("--seeds", type=int, default=3)
    bench.add_argument(
        "--from-runs",
        nargs="+",
        metavar="RUN_DIR",
        help="make the row from these finished runs of one config (seeds in parallel, or on "
        "other machines) instead of training; with --set (eval fields only, as for eval "
        "--set), their weights are scored again that way",
    )
    return parser


COMMANDS = {
    "list": cmd_list,
    "claims": cmd_claims,
    "run": cmd_run,
    "eval": cmd_eval,
    "demo": cmd_demo,
    "figure": cmd_figure,
    "sample": cmd_sample,
    "answer": cmd_answer,
    "translate": cmd_translate,
    "caption": cmd_caption,
    "bench": cmd_bench,
    "serve": cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from deepnets.data.store import set_offline

    if args.offline:
        set_offline(True)
    try:
        return COMMANDS[args.command](args)
    except DeepnetsError as err:
        print(f"deepnets: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a program that stopped reading (`| head`)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(
            "deepnets: interrupted; the last finished epoch's checkpoint is kept", file=sys.stderr
        )
        return 130
