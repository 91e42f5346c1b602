"""Sequence-to-one regression on data generated in code (the adding problem): a batch is
sequences and one real target each, the loss is the mean squared error of the net's output
after the last step, the scores are that error and the fraction of sequences it gets close.

As in `deepnets.train.sequence`, the training stream has no fixed split: an epoch is
`sequences_per_epoch // batch_size` batches, each drawn by `draw(config, generator, size)` from
the engine's epoch generator (seeded from (seed, epoch)), so a resumed run sees exactly the
sequences an uninterrupted one does. The fixed validation and test sets are the data's "val"
and "test", each a list of batches with `inputs` (B, T, n_in) and `targets` (B, 1). A model
maps inputs (B, T, n_in) to predictions (B, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.train.sequence import SequenceTask

METRIC = "mse"
CLOSE = "close"  # the fraction of sequences whose absolute error is below TOLERANCE
TOLERANCE = 0.04


@torch.no_grad()
def score(model: nn.Module, batches: list, device) -> dict[str, float]:
    """Mean squared error and the fraction of sequences within TOLERANCE over a fixed set."""
    model.eval()
    squared, close, n = 0.0, 0.0, 0
    for batch in batches:
        error = model(batch.inputs.to(device)) - batch.targets.to(device)  # (B, 1)
        squared += float((error**2).sum())
        close += float((error.abs() < TOLERANCE).sum())
        n += error.numel()
    return {METRIC: squared / max(1, n), CLOSE: close / max(1, n)}


class RegressSequenceTask(SequenceTask):
    """SequenceTask's splits and epoch length, with a squared-error loss on one real target."""

    def __init__(self, draw: Callable[[Any, torch.Generator, int], Any]) -> None:
        self.draw = draw  # (config, generator, size) -> one training batch

    def batches(self, data, config, generator, ctx):
        per_rank = config.batch_size // ctx.world_size
        for _ in range(self.steps_per_epoch(data, config)):
            batch = self.draw(config, generator, config.batch_size)  # the same on every rank
            lo = ctx.rank * per_rank
            yield type(batch)(batch.inputs[lo : lo + per_rank], batch.targets[lo : lo + per_rank])

    def loss(self, step, batch, carry):
        prediction = step.net(batch.inputs.to(step.device))  # (B, 1)
        return F.mse_loss(prediction, batch.targets.to(step.device)), None

    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        return score(model, data[split], device)
