"""Truncated back-propagation through time: a token stream cut into (B, T) batches.

The stream of N ids is laid out as B rows of N // B consecutive tokens (the last N mod B tokens
are dropped), so row b holds stream[b * L : (b + 1) * L] with L = N // B. Batch k holds columns
[k * T, (k + 1) * T) of that layout as input x and the same columns shifted by one as target y.
Row b of batch k + 1 therefore continues row b of batch k, which is what lets a training loop
carry each row's hidden state from one batch to the next (Mikolov et al. 2010; Zaremba,
Sutskever & Vinyals 2014). Every batch has T = bptt columns except possibly the last, which
holds what is left.

Also `take_train_subset`: the cut of a training split that every experiment's
`train_subset` setting makes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from deepnets import DeepnetsError


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Lay a flat stream (N,) out as (B, N // B): each row a contiguous slice, the tail dropped."""
    if ids.ndim != 1:
        raise DeepnetsError(f"a token stream must be one flat tensor, got shape {tuple(ids.shape)}")
    if batch_size < 1:
        raise DeepnetsError(f"batch_size must be at least 1, got {batch_size}")
    columns = ids.numel() // batch_size
    if columns < 2:
        raise DeepnetsError(
            f"a stream of {ids.numel()} tokens is shorter than one batch: batch_size "
            f"{batch_size} needs at least {2 * batch_size} tokens (an input and its next token)"
        )
    return ids[: batch_size * columns].view(batch_size, columns)  # (N,) -> (B, N // B)


def num_bptt_batches(n_tokens: int, batch_size: int, bptt: int) -> int:
    """How many (x, y) batches `bptt_batches` yields for a stream of n_tokens."""
    if bptt < 1 or batch_size < 1:
        raise DeepnetsError(f"bptt and batch_size must be at least 1, got {bptt}, {batch_size}")
    columns = n_tokens // batch_size
    if columns < 2:
        raise DeepnetsError(
            f"a stream of {n_tokens} tokens is shorter than one batch of {batch_size} rows"
        )
    inputs = columns - 1  # the last column is only ever a target
    return (inputs + bptt - 1) // bptt  # ceil(inputs / bptt)


def bptt_batches(
    ids: torch.Tensor, batch_size: int, bptt: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y), each (B, T), with y[:, t] the token after x[:, t] in the stream."""
    num_bptt_batches(ids.numel(), batch_size, bptt)  # validates the sizes
    data = batchify(ids, batch_size)  # (B, L)
    inputs = data.shape[1] - 1
    for start in range(0, inputs, bptt):
        length = min(bptt, inputs - start)  # T: bptt, or what is left for the last batch
        x = data[:, start : start + length]  # (B, T)
        y = data[:, start + 1 : start + 1 + length]  # (B, T): x shifted by one
        yield x, y


def take_train_subset(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], n: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The splits with `train` cut to its first n examples (n <= 0: all of them); the others kept.

    What every experiment's `train_subset` setting does to (inputs, labels) splits.
    """
    if n > 0:
        x, y = splits["train"]
        splits = {**splits, "train": (x[:n], y[:n])}
    return splits
