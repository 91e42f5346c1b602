"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the form of Le, Jaitly
& Hinton 2015 and Arjovsky, Shah & Bengio 2016, generated in code from a torch.Generator: the
same generator state gives the same sequences.

A sequence has T steps of two inputs: a value drawn from U(0, 1) and a marker. Exactly two steps
are marked (marker 1, every other step 0): one drawn uniformly from the first half, steps
0 .. T//2 - 1, and one from the second half, steps T//2 .. T - 1. The target is the sum of the
two marked values, in [0, 2], read from the net's output after the last step, so the first
marked value must be held from its step to the end: between about T / 2 and T steps (3T / 4 on
average). Predicting the constant 1 scores the variance of a sum of two U(0, 1) values,
2/12 = 0.167 mean squared error: the "not solved" baseline.

Input (B, T, 2): channel 0 the values, channel 1 the markers; target (B, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CONSTANT_MSE = 1.0 / 6.0  # E[(a + b - 1)^2] for a, b ~ U(0, 1): always predicting 1


@dataclass(frozen=True)
class AddingBatch:
    """Adding sequences of one length and their targets."""

    inputs: torch.Tensor  # (B, T, 2): value, marker
    targets: torch.Tensor  # (B, 1): the sum of the two marked values


def adding_batch(batch: int, length: int, generator: torch.Generator) -> AddingBatch:
    """`batch` adding sequences of `length` >= 2 steps."""
    if length < 2:
        raise ValueError(f"an adding sequence needs at least 2 steps, got {length}")
    half = length // 2
    values = torch.rand(batch, length, generator=generator)  # (B, T), U(0, 1)
    first = torch.randint(0, half, (batch,), generator=generator)  # (B,) in the first half
    second = torch.randint(half, length, (batch,), generator=generator)  # (B,) in the second
    markers = torch.zeros(batch, length)  # (B, T)
    rows = torch.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]  # (B,)
    inputs = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    return AddingBatch(inputs, target.unsqueeze(1))


def fixed_adding_set(n: int, length: int, seed: int, batch: int = 1000) -> list[AddingBatch]:
    """A fixed evaluation set: `n` adding sequences of `length`, in batches of `batch`."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [min(batch, n - i) for i in range(0, n, batch)]
    return [adding_batch(size, length, generator) for size in sizes]
