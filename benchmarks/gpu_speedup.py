"""The review's claim 9 (GPUs train nets 10 to 20 times faster): the same training step of three
systems on this machine's CPU and, where one exists, on its GPU, as a ratio per system.

A step is what the gradient engine does once per batch: the task draws its next real batch, the
forward pass and loss (`task.loss`), the backward pass and the optimizer update
(`engine.gradient_step`), each system at its `small` preset's batch size and settings (float32;
on the GPU also with the bfloat16 autocast the GPU rows use, reported apart). Medians over the
repeats after warm-up steps, the device synchronised around each step; the ratio is the CPU
median over the GPU median, measured in the same run.

    DEEPNETS_DATA=... python benchmarks/gpu_speedup.py [--repeats 20] [--json FILE]

Without a GPU only the CPU side is measured and the JSON says so (`speedup` null); `deepnets
claims` then reports claim 9 as not measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from deepnets.experiments import get_experiment
from deepnets.train import distributed, engine

SYSTEMS = (("lenet5-mnist", "small"), ("lstm-ptb", "small"), ("attention-multi30k", "small"))
OUT = Path(__file__).parent / "results" / "gpu_speedup.json"


def step_times(
    experiment_id: str, preset: str, device: str, repeats: int, amp: bool
) -> list[float]:
    """Seconds of each of `repeats` training steps (after 3 warm-up steps) on `device`."""
    experiment = get_experiment(experiment_id)
    config = dataclasses.replace(experiment.preset(preset), device=device, amp=amp)
    ctx = distributed.setup(device)
    torch.manual_seed(0)
    task = experiment.task
    data = task.load(experiment, config, ctx.device)
    model = task.build(experiment, config, data).to(ctx.device)
    model.train()
    optimizer = engine.make_optimizer(model, config)
    generator = engine.seed_epoch(0, 0, 0)
    step = engine.Step(model, model, ctx.device, generator, config)
    batches = task.batches(data, config, generator, ctx)
    carry, times = None, []

    def sync():
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(3 + repeats):
        sync()
        started = time.perf_counter()
        batch = next(batches)
        with engine.autocast(config, ctx.device):
            loss, carry = task.loss(step, batch, carry)
        engine.gradient_step(model, optimizer, loss, config)
        sync()
        if i >= 3:
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=str(OUT))
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    systems = {}
    for experiment_id, preset in SYSTEMS:
        cpu = statistics.median(step_times(experiment_id, preset, "cpu", args.repeats, False))
        entry = {"preset": preset, "cpu_ms": 1000 * cpu, "gpu_ms": None, "speedup": None}
        if gpu:
            fp32 = statistics.median(step_times(experiment_id, preset, "cuda", args.repeats, False))
            bf16 = statistics.median(step_times(experiment_id, preset, "cuda", args.repeats, True))
            entry |= {"gpu_ms": 1000 * fp32, "gpu_bf16_ms": 1000 * bf16, "speedup": cpu / fp32,
                      "speedup_bf16": cpu / bf16}  # fmt: skip
        systems[f"{experiment_id} {preset}"] = entry
        print(
            experiment_id,
            preset,
            {k: round(v, 2) if isinstance(v, float) else v for k, v in entry.items()},
        )
    record = {
        "systems": systems,
        "cpu": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "gpu": torch.cuda.get_device_name() if gpu else None,
        "torch": torch.__version__,
        "repeats": args.repeats,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
