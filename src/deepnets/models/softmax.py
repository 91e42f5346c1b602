"""The output layer of a language model: scores over the whole vocabulary from a hidden vector.

"full": a linear layer to V logits and a softmax over all of them. "adaptive": PyTorch's exact
adaptive softmax (Grave et al. 2017, "Efficient softmax approximation for GPUs"): the frequent
words (ids below the first cutoff; ids follow frequency) and one entry per tail cluster share a
head softmax; the rare words of a cluster are scored through a smaller projection, and only for
the tokens that fall in it. Both are normalised distributions over all V words, so perplexities
compare; the adaptive one costs a fraction of the full one's matrix products when V is large.

"adaptive" with `tied=True` is `TiedAdaptiveSoftmax`, the same factorisation with the word vectors
shared with the input embedding (Press & Wolf 2017): a word's output vector is its input vector,
in the head and in the tail alike; only the cluster entries of the head have vectors of their own.

A layer's `output` is what the loss and log-probabilities take: logits (..., V) for the full
softmax, the hidden vector itself (..., H) for the adaptive one, which scores only what it needs.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

Softmax = Literal["full", "adaptive"]


class AdaptiveOutput(NamedTuple):
    output: torch.Tensor  # log p(target) per token, (N,)
    loss: torch.Tensor  # their negated mean, ()


class TiedAdaptiveSoftmax(nn.Module):
    """An exact adaptive softmax whose word vectors are the input embeddings.

    Words are ids ordered by frequency; cutoffs c_1 < ... < c_k split them into the head
    [0, c_1) and tail clusters [c_i, c_{i+1}). With E the (V, H) word vectors, b a bias per word
    and u_i a vector per cluster:

        head scores      s = [E[:c_1] h + b[:c_1], u_1 . h + a_1, ..., u_k . h + a_k]
        head word w      log p(w) = log_softmax(s)_w
        word w in i      log p(w) = log_softmax(s)_{c_1 + i} + log_softmax(E[c_i:c_{i+1}] h + b)_w

    Training scores a cluster only for the tokens whose target falls in it. `weight` is E: the
    model replaces it by its embedding's parameter.
    """

    def __init__(self, hidden_size: int, vocab_size: int, cutoffs: tuple[int, ...]):
        super().__init__()
        self.cutoffs = (*cutoffs, vocab_size)  # where each cluster ends, the head first
        self.weight = nn.Parameter(torch.empty(vocab_size, hidden_size))  # E, tied by the model
        self.bias = nn.Parameter(torch.zeros(vocab_size))  # b
        self.cluster_weight = nn.Parameter(torch.empty(len(cutoffs), hidden_size))  # u_i
        self.cluster_bias = nn.Parameter(torch.zeros(len(cutoffs)))  # a_i
        nn.init.normal_(self.weight, std=hidden_size**-0.5)
        nn.init.normal_(self.cluster_weight, std=hidden_size**-0.5)

    def _head_log_probs(self, h: torch.Tensor) -> torch.Tensor:
        # h (N, H) -> (N, c_1 + k): the head words, then one entry per tail cluster
        c1 = self.cutoffs[0]
        weight = torch.cat([self.weight[:c1], self.cluster_weight])  # (c_1 + k, H)
        bias = torch.cat([self.bias[:c1], self.cluster_bias])
        return F.log_softmax(F.linear(h, weight, bias), dim=-1)

    def _cluster_log_probs(self, h: torch.Tensor, i: int) -> torch.Tensor:
        # h (N, H) -> (N, c_{i+1} - c_i): log p(w | cluster i) for the words of tail cluster i
        lo, hi = self.cutoffs[i], self.cutoffs[i + 1]
        return F.log_softmax(F.linear(h, self.weight[lo:hi], self.bias[lo:hi]), dim=-1)

    def forward(self, h: torch.Tensor, targets: torch.Tensor) -> AdaptiveOutput:
        # h (N, H), targets (N,)
        c1 = self.cutoffs[0]
        starts = torch.tensor(self.cutoffs[:-1], device=targets.device)  # c_1, ..., c_k
        cluster = torch.bucketize(targets, starts, right=True)  # 0: the head, i: tail cluster i
        entry = torch.where(cluster == 0, targets, c1 + cluster - 1)  # each target's head entry
        log_p = self._head_log_probs(h).gather(1, entry.unsqueeze(1))[:, 0]  # (N,)
        for i in range(1, len(self.cutoffs)):
            rows = (cluster == i).nonzero().squeeze(1)
            if len(rows):
                within = self._cluster_log_probs(h[rows], i - 1)  # (n_i, c_{i+1} - c_i)
                word = (targets[rows] - self.cutoffs[i - 1]).unsqueeze(1)
                log_p = log_p.index_add(0, rows, within.gather(1, word)[:, 0])
        return AdaptiveOutput(log_p, -log_p.mean())

    def log_prob(self, h: torch.Tensor) -> torch.Tensor:
        """log p(w) for every word: (N, H) -> (N, V)."""
        head = self._head_log_probs(h)
        c1 = self.cutoffs[0]
        parts = [head[:, :c1]]
        for i in range(len(self.cutoffs) - 1):
            parts.append(head[:, c1 + i : c1 + i + 1] + self._cluster_log_probs(h, i))
        return torch.cat(parts, dim=1)


def output_layer(
    hidden_size: int,
    vocab_size: int,
    kind: Softmax = "full",
    cutoffs: tuple[int, ...] = (2000,),
    tied: bool = False,
) -> nn.Module:
    """The output layer. `tied=True` gives a layer with a `weight` (V, H) for the model to
    replace by its input embedding."""
    if kind == "full":
        return nn.Linear(hidden_size, vocab_size)
    if kind == "adaptive":
        if not all(a < b for a, b in zip((0, *cutoffs), (*cutoffs, vocab_size))):
            raise ValueError(f"cutoffs must rise strictly within (0, {vocab_size}), got {cutoffs}")
        if tied:
            return TiedAdaptiveSoftmax(hidden_size, vocab_size, tuple(cutoffs))
        return nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, list(cutoffs), div_value=4.0)
    raise ValueError(f"softmax must be 'full' or 'adaptive', got {kind!r}")


def is_adaptive(layer: nn.Module) -> bool:
    return isinstance(layer, (nn.AdaptiveLogSoftmaxWithLoss, TiedAdaptiveSoftmax))


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
