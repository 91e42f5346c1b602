"""A training step of the recurrent attention model on 60x60 cluttered digits (the `cluttered`
preset's sizes: 8 glimpses of 3 scales of 12x12, batch 64), with the glimpse sensor's coarse
maps built two ways, side by side in one process:

- reference: one stride-1 `avg_pool2d` per scale over the padded image (its cost grows with the
  window, 2^k x 2^k);
- ours (`deepnets.models.ram.retina`): each scale from the one below by three adds of shifted
  views.

Both give the same maps (checked here to float rounding). Steps alternate in bursts and the
ratio is the median over the bursts. Writes `benchmarks/results/ram_retina.json`:

    python benchmarks/ram_retina.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepnets.models import ram
from deepnets.models.ram import RAM, hybrid_loss

OUT = Path(__file__).parent / "results" / "ram_retina.json"


def pooled_retina(x: torch.Tensor, size: int, scales: int):
    """The reference: the padded image and a stride-1 average pool of it per scale."""
    pad = size * 2 ** (scales - 1) // 2 + 1
    padded = F.pad(x, (pad, pad, pad, pad))
    return pad, [F.avg_pool2d(padded, 2**k, stride=1) if k else padded for k in range(scales)]


def main(bursts: int = 7, steps: int = 10, batch: int = 64) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = torch.rand(batch, 1, 60, 60), torch.randint(10, (batch,))
    ours, reference = ram.retina, pooled_retina
    for a, b in zip(ours(x, 12, 3)[1], reference(x, 12, 3)[1]):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)
    model = RAM(glimpses=8, glimpse_size=12, scales=3, std=0.25)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)

    def burst(retina) -> float:
        ram.retina = retina
        start = time.perf_counter()
        for _ in range(steps):
            loss, _ = hybrid_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / steps

    try:
        burst(ours), burst(reference)  # warm-up
        times = {"ours": [], "reference": []}
        for _ in range(bursts):
            times["ours"].append(burst(ours))
            times["reference"].append(burst(reference))
    finally:
        ram.retina = ours
    ratios = [r / o for o, r in zip(times["ours"], times["reference"])]
    result = {
        "what": "RAM training step, cluttered preset sizes, batch 64, one thread",
        "speedup_median": statistics.median(ratios),
        "speedup_per_burst": ratios,
        "ms_per_step_median": {k: 1000 * statistics.median(v) for k, v in times.items()},
        "torch": torch.__version__,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
