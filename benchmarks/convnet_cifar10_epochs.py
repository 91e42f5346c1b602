"""convnet-cifar10: test accuracy, training time and throughput for a range of epoch budgets.

Each budget is a whole run of the preset with `epochs` changed (the one-cycle schedule is
stretched to fit), so "time to 92%" is the training time of the shortest budget whose final test
accuracy reaches 92%, as in the fast-training literature. Every run appends a row to
results/convnet-cifar10.csv; the table is printed and written as JSON.

    python benchmarks/convnet_cifar10_epochs.py --epochs 4,8,12,16 --set amp=true \
        --set channels_last=true --device cuda --json out.json

Data load time is outside the timed part: the data set is decoded once, then every run trains
on the same tensors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from deepnets.config import apply_overrides
from deepnets.experiments import get_experiment
from deepnets.results import append_row, bench_row
from deepnets.run import RunDir

CIFAR10_TRAIN = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--epochs", default="4,8,12,16", help="comma-separated epoch budgets")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.92)
    parser.add_argument("--runs", default="runs/bench-epochs", help="parent of the run folders")
    parser.add_argument("--json", help="write the table here")
    parser.add_argument("--no-rows", action="store_true", help="do not append results rows")
    args = parser.parse_args()

    experiment = get_experiment("convnet-cifar10")
    base = apply_overrides(experiment.preset(args.preset), args.set)
    base = dataclasses.replace(base, device=args.device, seed=args.seed)
    started = time.perf_counter()
    experiment.load_data(base)  # decoded once, cached for the runs below
    print(f"data loaded in {time.perf_counter() - started:.1f}s", flush=True)

    images = base.train_subset or CIFAR10_TRAIN - base.val_size  # training images per epoch
    table = []
    for epochs in [int(e) for e in args.epochs.split(",")]:
        config = dataclasses.replace(base, epochs=epochs)
        run = RunDir.create(Path(args.runs) / f"{args.preset}-e{epochs}-s{args.seed}")
        summary = experiment.task.train(experiment, config, run, preset=args.preset, progress=False)
        seconds = summary["wall_seconds"]
        row = {
            "epochs": epochs,
            "test_accuracy": summary["value"],
            "train_seconds": seconds,
            "images_per_second": epochs * images / seconds,
            "device": summary["device"],
        }
        table.append(row)
        print(json.dumps(row), flush=True)
        if not args.no_rows:
            overrides = [f"epochs={epochs}", *args.set]
            append_row(bench_row(experiment, f"{args.preset}+{','.join(overrides)}", [summary]))

    reached = [r for r in table if r["test_accuracy"] >= args.target]
    best = min(reached, key=lambda r: r["train_seconds"]) if reached else None
    print(f"{'epochs':>6} {'test acc':>9} {'seconds':>9} {'images/s':>9}")
    for r in table:
        print(
            f"{r['epochs']:6d} {r['test_accuracy']:9.4f} {r['train_seconds']:9.1f} "
            f"{r['images_per_second']:9.0f}"
        )
    if best:
        print(f"time to {args.target:.0%}: {best['train_seconds']:.1f}s ({best['epochs']} epochs)")
    else:
        print(f"no budget reached {args.target:.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": table, "time_to_target": best}, indent=2))


if __name__ == "__main__":
    main()
