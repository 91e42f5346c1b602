"""The Neural Turing Machine's algorithmic tasks (Graves et al. 2014, sec. 4.1 and 4.5), generated
in code from a torch.Generator: the same generator state gives the same sequences.

Copy: L random 8-bit vectors, then a delimiter on its own channel, then L blank steps during which
the net must output the L vectors again. Input (B, 2L + 1, bits + 1); target (B, L, bits), the
output phase being the last L steps.

Priority sort: `items` random binary vectors, each with a priority drawn uniformly from [-1, 1]
on its own channel, then a delimiter, then `keep` blank steps during which the net must output
the `keep` highest-priority vectors, highest first. Input (B, items + 1 + keep, bits + 2);
target (B, keep, bits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Batch:
    """Sequences of one length: the inputs, and the targets of the output phase (the last
    `targets.shape[1]` steps of the input)."""

    inputs: torch.Tensor  # (B, T, n_in)
    targets: torch.Tensor  # (B, T_out, bits)


def copy_batch(batch: int, length: int, bits: int, generator: torch.Generator) -> Batch:
    """`batch` copy sequences of `length` random `bits`-bit vectors."""
    seq = torch.randint(0, 2, (batch, length, bits), generator=generator).float()
    x = torch.zeros(batch, 2 * length + 1, bits + 1)  # (B, 2L+1, bits+1)
    x[:, :length, :bits] = seq
    x[:, length, bits] = 1.0  # the delimiter
    return Batch(x, seq)


def sort_batch(batch: int, items: int, keep: int, bits: int, generator: torch.Generator) -> Batch:
    """`batch` priority-sort sequences: `items` vectors with priorities, the `keep` highest out."""
    seq = torch.randint(0, 2, (batch, items, bits), generator=generator).float()
    priority = torch.rand(batch, items, generator=generator) * 2 - 1  # U[-1, 1]
    x = torch.zeros(batch, items + 1 + keep, bits + 2)  # (B, T, bits + 2)
    x[:, :items, :bits] = seq
    x[:, :items, bits] = priority
    x[:, items, bits + 1] = 1.0  # the delimiter
    order = priority.argsort(dim=1, descending=True)[:, :keep]  # (B, keep)
    target = seq.gather(1, order.unsqueeze(-1).expand(-1, -1, bits))  # (B, keep, bits)
    return Batch(x, target)


def random_length(low: int, high: int, generator: torch.Generator) -> int:
    """A length drawn uniformly from low..high inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def fixed_copy_set(lengths: list[int], per_length: int, bits: int, seed: int) -> list[Batch]:
    """A fixed evaluation set: `per_length` copy sequences of each length, one batch per length."""
    generator = torch.Generator().manual_seed(seed)
    return [copy_batch(per_length, n, bits, generator) for n in lengths]


def fixed_sort_set(
    n: int, items: int, keep: int, bits: int, seed: int, batch: int = 100
) -> list[Batch]:
    """A fixed evaluation set of `n` priority-sort sequences, in batches of `batch`."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [min(batch, n - i) for i in range(0, n, batch)]
    return [sort_batch(size, items, keep, bits, generator) for size in sizes]
