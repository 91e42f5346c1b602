"""The output layer of a language model: scores over the whole vocabulary from a hidden vector.

"full": a linear layer to V logits and a softmax over all of them. "adaptive": PyTorch's exact
adaptive softmax (Grave et al. 2017, "Efficient softmax approximation for GPUs"): the frequent
words (ids below the first cutoff; ids follow frequency) and one entry per tail cluster share a
head softmax; the rare words of a cluster are scored through a smaller projection, and only for
the tokens that fall in it. Both are normalised distributions over all V words, so perplexities
compare; the adaptive one costs a fraction of the full one's matrix products when V is large.

A layer's `output` is what the loss and log-probabilities take: logits (..., V) for the full
softmax, the hidden vector itself (..., H) for the adaptive one, which scores only what it needs.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Softmax = Literal["full", "adaptive"]


def output_layer(
    hidden_size: int, vocab_size: int, kind: Softmax = "full", cutoffs: tuple[int, ...] = (2000,)
) -> nn.Module:
    if kind == "full":
        return nn.Linear(hidden_size, vocab_size)
    if kind == "adaptive":
        if not all(a < b for a, b in zip((0, *cutoffs), (*cutoffs, vocab_size))):
            raise ValueError(f"cutoffs must rise strictly within (0, {vocab_size}), got {cutoffs}")
        return nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, list(cutoffs), div_value=4.0)
    raise ValueError(f"softmax must be 'full' or 'adaptive', got {kind!r}")


def is_adaptive(layer: nn.Module) -> bool:
    return isinstance(layer, nn.AdaptiveLogSoftmaxWithLoss)


def output_of(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return h if is_adaptive(layer) else layer(h)


def output_loss(layer: nn.Module, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per token, in nats: output (B, T, V or H), targets (B, T)."""
    if is_adaptive(layer):
        return layer(output.flatten(0, 1), targets.flatten()).loss
    return F.cross_entropy(output.flatten(0, 1), targets.flatten())  # (B*T, V), (B*T,)


def output_log_probs(layer: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """log p(next token) over the whole vocabulary: (..., V)."""
    if is_adaptive(layer):
        return layer.log_prob(output.flatten(0, -2)).view(*output.shape[:-1], -1)
    return F.log_softmax(output, dim=-1)
