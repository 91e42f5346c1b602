"""Wall time for lenet5-mnist to reach 99.0% MNIST test accuracy, against a reference in the same
run on the same machine: the classic PyTorch MNIST example network (two 3x3 convolutions of 32 and
64 maps, max-pool, dropout 0.25 / 0.5, 128 hidden units, Adadelta lr 1.0 decayed by 0.7 per
epoch, batch 64), written here from that description.

Reference: trained epoch by epoch, test accuracy measured after each epoch (not timed), stopped
at the first epoch at or above the target; its time is the training time up to there.
Ours: the `fast` preset of lenet5-mnist through the gradient engine (`experiment.task.train`),
whose schedule has a fixed length; its time is the whole training, and its final test
accuracy must reach the target.

Also reported: this machine's measured float32 matrix-multiply throughput (median of repeats)
and the fraction of it that our training step reaches (FLOPs of one step counted by
torch.utils.flop_counter, times the steps, over the training time).

    python benchmarks/lenet5_vs_reference.py [--ours-repeats 3] [--ref-repeats 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepnets.data.mnist import load_mnist
from deepnets.experiments.mnist import LENET5_MNIST
from deepnets.run import RunDir

TARGET = 0.990


class ReferenceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))  # (B, 64, 24, 24)
        x = F.dropout(F.max_pool2d(x, 2), 0.25, self.training).flatten(1)  # (B, 9216)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc2(x)


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return sum(
            int((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum())
            for i in range(0, len(y), 1000)
        ) / len(y)


def reference_time_to_target(seed: int, max_epochs: int = 14) -> dict:
    splits = load_mnist(val_size=0)  # the example trains on all 60,000 images
    (x, y), (tx, ty) = splits["train"], splits["test"]
    torch.manual_seed(seed)
    model = ReferenceNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    elapsed, history = 0.0, []
    for epoch in range(1, max_epochs + 1):
        started = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(y)).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        elapsed += time.perf_counter() - started
        history.append(accuracy(model, tx, ty))
        print(f"  reference epoch {epoch}: test {history[-1]:.4f}, {elapsed:.1f}s", flush=True)
        if history[-1] >= TARGET:
            return {"seconds": elapsed, "epochs": epoch, "accuracy": history[-1]}
    return {"seconds": float("nan"), "epochs": max_epochs, "accuracy": history[-1]}


def ours(seed: int) -> dict:
    config = dataclasses.replace(LENET5_MNIST.preset("fast"), seed=seed, device="cpu")
    with tempfile.TemporaryDirectory() as run_dir:
        summary = LENET5_MNIST.task.train(
            LENET5_MNIST, config, RunDir(run_dir), "fast", progress=False, log=lambda s: None
        )
    print(
        f"  ours seed {seed}: test {summary['value']:.4f}, {summary['wall_seconds']:.1f}s",
        flush=True,
    )
    return {
        "seconds": summary["wall_seconds"],
        "epochs": summary["epochs"],
        "accuracy": summary["value"],
        "batch_size": config.batch_size,
    }


def matmul_gflops(n: int = 2048, repeats: int = 15) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * n**3 / statistics.median(times) / 1e9


def step_flops(batch_size: int) -> float:
    model = LENET5_MNIST.build_model(LENET5_MNIST.preset("fast"))
    x, y = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours-repeats", type=int, default=3)
    parser.add_argument("--ref-repeats", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/lenet5_vs_reference.json")
    args = parser.parse_args()
    peak_before = matmul_gflops()
    print(f"matmul peak: {peak_before:.0f} GFLOP/s (float32, 2048x2048, median)")
    ours_runs = [ours(seed) for seed in range(args.ours_repeats)]
    ref_runs = [reference_time_to_target(seed) for seed in range(args.ref_repeats)]
    peak = statistics.median([peak_before, matmul_gflops()])
    ours_s = statistics.median(r["seconds"] for r in ours_runs)
    ref_s = statistics.median(r["seconds"] for r in ref_runs)
    n_train = 60000 - LENET5_MNIST.preset("fast").val_size
    steps = ours_runs[0]["epochs"] * (n_train // ours_runs[0]["batch_size"])
    achieved = step_flops(ours_runs[0]["batch_size"]) * steps / ours_s / 1e9
    report = {
        "target_test_accuracy": TARGET,
        "matmul_gflops": round(peak, 1),
        "ours": ours_runs,
        "reference": ref_runs,
        "ours_median_seconds": round(ours_s, 2),
        "reference_median_seconds": round(ref_s, 2),
        "speedup": round(ref_s / ours_s, 2),
        "ours_all_reached_target": all(r["accuracy"] >= TARGET for r in ours_runs),
        "train_step_gflops": round(achieved, 1),
        "fraction_of_matmul_peak": round(achieved / peak, 3),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("ours", "reference")}, indent=2))


if __name__ == "__main__":
    main()
