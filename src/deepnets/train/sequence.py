"""Sequence tasks generated in code (the NTM's copy and priority sort): batches drawn from the
epoch's generator, binary cross-entropy on the output phase, bit error per sequence.

The training stream has no fixed split: an epoch is `sequences_per_epoch // batch_size` batches,
each drawn from the engine's epoch generator (seeded from (seed, epoch)), so a resumed run sees
exactly the sequences an uninterrupted one does. Validation and test sets are fixed, seeded by
`data_seed`. The data are a dict: "val", "test" and, for the copy task, "len40", "len80", ...
(longer copies than any trained), each a list of `deepnets.data.algorithmic.Batch`.

Bit error per sequence: the output bits wrong after thresholding the sigmoid at 0.5, summed over
the sequence and averaged over sequences (the paper's "cost per sequence" is in bits too, but of
the cross-entropy). A model maps inputs (B, T, n_in) to logits (B, T, bits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.data.algorithmic import Batch, copy_batch, random_length, sort_batch
from deepnets.train.task import GradientTask

METRIC = "bit_error"


def output_logits(model: nn.Module, batch: Batch, device) -> torch.Tensor:
    """The logits of the output phase, (B, T_out, bits)."""
    logits = model(batch.inputs.to(device))  # (B, T, bits)
    return logits[:, -batch.targets.shape[1] :]


def draw_batch(config, generator: torch.Generator, size: int) -> Batch:
    """One training batch of the config's task; copy lengths drawn per batch."""
    if config.task == "copy":
        length = random_length(config.min_length, config.max_length, generator)
        return copy_batch(size, length, config.bits, generator)
    return sort_batch(size, config.items, config.keep, config.bits, generator)


@torch.no_grad()
def score(model: nn.Module, batches: list[Batch], device) -> dict[str, float]:
    """Bit error per sequence and mean cross-entropy per output bit (nats) over a fixed set."""
    model.eval()
    errors, nats, sequences, bits = 0.0, 0.0, 0, 0
    for batch in batches:
        logits = output_logits(model, batch, device)
        target = batch.targets.to(device)
        errors += float(((logits > 0).float() != target).sum())
        nats += float(F.binary_cross_entropy_with_logits(logits, target, reduction="sum"))
        sequences += target.shape[0]
        bits += target.numel()
    return {METRIC: errors / max(1, sequences), "loss": nats / max(1, bits)}


class SequenceTask(GradientTask):
    def split_names(self, data) -> list[str]:
        return list(data)

    def split_size(self, data, split: str) -> int:
        return sum(b.targets.shape[0] for b in data.get(split, []))

    def steps_per_epoch(self, data, config) -> int:
        return config.sequences_per_epoch // config.batch_size

    def batches(self, data, config, generator, ctx):
        per_rank = config.batch_size // ctx.world_size
        for _ in range(self.steps_per_epoch(data, config)):
            batch = draw_batch(config, generator, config.batch_size)  # the same on every rank
            lo = ctx.rank * per_rank
            yield Batch(batch.inputs[lo : lo + per_rank], batch.targets[lo : lo + per_rank])

    def loss(self, step, batch: Batch, carry):
        logits = output_logits(step.net, batch, step.device)
        target = batch.targets.to(step.device)
        return F.binary_cross_entropy_with_logits(logits, target), None

    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        scores = score(model, data[split], device)
        if final:  # the longer copies, scored beside the test split
            for name in data:
                if name.startswith("len"):
                    scores[f"{METRIC}_{name}"] = score(model, data[name], device)[METRIC]
        return scores
