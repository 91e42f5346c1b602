"""End-to-end memory network (Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory
Networks", NIPS; arXiv:1503.08895), the question-answering model of the review's refs 89-90.

Deviations from the paper: none in the model. The training recipe (linear start, random noise,
restarts) lives in deepnets.train.memn2n; see there for its deviations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def position_encoding(words: torch.Tensor, dim: int, span: int | None = None) -> torch.Tensor:
    """The weights l_kj of position encoding (sec. 4.1) for padded word ids (..., L):
    l_kj = (1 - j/J) - (k/d)(1 - 2j/J), j = 1..J the word's position, k = 1..d the embedding
    dimension, J the number of words in that sentence (null words get weight 0).

    With `span` S, the authors' released code instead: J = S for every sentence (the longest
    sentence of the data) and the weights doubled, 2 l_kj (their 1 + 4(k - (d+1)/2)(j -
    (S+1)/2)/(dS) is this up to terms of order 1/d and 1/S)."""
    real = (words != 0).to(torch.float32)  # (..., L)
    big_j = real.sum(-1, keepdim=True).clamp(min=1).unsqueeze(-1)  # (..., 1, 1)
    if span is not None:
        big_j = torch.full_like(big_j, float(span))
    j = torch.arange(1, words.shape[-1] + 1, dtype=torch.float32, device=words.device)
    j = j.view(-1, 1)  # (L, 1)
    k = torch.arange(1, dim + 1, dtype=torch.float32, device=words.device).view(1, -1)  # (1, d)
    weights = (1 - j / big_j) - (k / dim) * (1 - 2 * j / big_j)  # (..., L, d)
    return weights * real.unsqueeze(-1) * (1 if span is None else 2)


class MemN2N(nn.Module):
    """K hops over a memory of sentences x_i, with adjacent weight tying (sec. 2.2).

    Embeddings A^1..A^{K+1} (V, d) and temporal matrices T^1..T^{K+1} (M, d); hop k reads with
    A^k (input memory) and C^k = A^{k+1} (output memory); the question uses B = A^1 and the answer
    layer W^T = C^K. For sentence i of the memory, at time index t(i) (0: the most recent):

        m_i = sum_j l_j * A^k x_ij + T^k(t(i))          input memory (PE + temporal encoding)
        c_i = sum_j l_j * C^k x_ij + T^{k+1}(t(i))      output memory
        p = softmax(u^T m)                              attention (linear start: p = u^T m)
        o = sum_i p_i c_i
        u^{k+1} = u^k + o^k,     u^1 = sum_j l_j * B q_j
        a_hat = softmax(W u^{K+1})                      the answer, over the whole vocabulary

    The null word (id 0) has a zero embedding that never moves: it has weight 0 in every sum of
    words, and its answer logit is -inf. With `empty_attention` the softmax also runs over the
    memory's unused slots (memory_size in all), each with score 0 and nothing to read, as in
    the authors' MATLAB code, where empty slots hold null words: a sink whose share tells how
    well the memories match. `linear` is a buffer
    (saved with the weights): True while the attention softmaxes are removed (linear start);
    `ls_end` the training step at which they came back (the lr schedule restarts there).
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        hops: int,
        memory_size: int,
        position: bool = True,
        temporal: bool = True,
        init_std: float = 0.1,
        empty_attention: bool = False,
        spans: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.dim, self.hops, self.memory_size = dim, hops, memory_size
        self.position, self.temporal = position, temporal
        self.empty_attention = empty_attention
        self.spans = spans  # (sentence, question) J of the authors' position encoding, or None
        self.embed = nn.ModuleList(
            nn.Embedding(vocab_size, dim, padding_idx=0) for _ in range(hops + 1)
        )  # A^1 .. A^{K+1}
        self.time = nn.Parameter(torch.randn(hops + 1, memory_size, dim) * init_std)
        for e in self.embed:
            nn.init.normal_(e.weight, std=init_std)  # N(0, 0.1), sec. 4.2
            with torch.no_grad():
                e.weight[0].zero_()
        self.register_buffer("linear", torch.tensor(False))  # linear start: softmaxes removed
        self.register_buffer("reinsert", torch.tensor(False))  # reinsert them at the next step
        self.register_buffer("ls_best", torch.tensor(math.inf, dtype=torch.float64))  # LS val loss
        self.register_buffer("ls_end", torch.tensor(0))  # the training step at which LS ended
        self._register_load_state_dict_pre_hook(_default_ls_end)

    def _sentences(self, words: torch.Tensor, hops: range, span: int | None = None) -> torch.Tensor:
        """sum_j l_j * A^k x_j for word ids (..., L), each k in `hops`: (len(hops), ..., d);
        `span`: the authors' position encoding with J = span (see `position_encoding`).

        l_kj = a_j + (k/d) b_j with a_j = 1 - j/J, b_j = 2j/J - 1, so the sum is two weighted
        bags of words (F.embedding_bag): (sum_j a_j A x_j)_k + (k/d) (sum_j b_j A x_j)_k, faster
        than weighting every word's vector (checked against `position_encoding` in tests).
        """
        table = torch.stack([self.embed[k].weight for k in hops])  # (H, V, d)
        real = (words != 0).to(table.dtype)  # (..., L)
        big_j = real.sum(-1, keepdim=True).clamp(min=1)  # (..., 1)
        if span is not None:
            big_j, real = torch.full_like(big_j, float(span)), real * 2  # J = span, doubled
        j = torch.arange(1, words.shape[-1] + 1, dtype=table.dtype, device=words.device)  # (L,)
        a = (1 - j / big_j) * real if self.position else real  # (..., L)
        h, v, d = table.shape
        flat = words.reshape(-1, words.shape[-1])  # (N, L)
        weights = [a.reshape(flat.shape)]
        if self.position:
            weights.append(((2 * j / big_j - 1) * real).reshape(flat.shape))
        wide = table.transpose(0, 1).reshape(v, h * d)  # (V, H*d): every hop's row of a word
        sums = [
            F.embedding_bag(flat, wide, mode="sum", per_sample_weights=w).view(-1, h, d)
            for w in weights
        ]  # (N, H, d) each: the weighted bags of words times A
        out = sums[0]  # bag_a A
        if self.position:
            k = torch.arange(1, d + 1, dtype=table.dtype, device=table.device) / d  # (d,): k/d
            out = out + k * sums[1]  # + (k/d) bag_b A
        return out.permute(1, 0, 2).reshape(h, *words.shape[:-1], d)  # (H, ..., d)

    def attend(
        self, stories: torch.Tensor, times: torch.Tensor, mask: torch.Tensor, queries: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Answer logits (B, V) and the attention of each hop (B, K, S).

        stories (B, R, L) word ids of the first R of S memory slots (the rest are empty
        memories: no words); times (B, S) their time index (0: most recent; < memory_size where
        mask); mask (B, S) which slots hold a memory; queries (B, Lq).
        """
        sentence_span, query_span = self.spans or (None, None)
        u = self._sentences(queries, range(1), query_span)[0]  # (B, d): u^1 = B q
        memories = self._sentences(stories, range(self.hops + 1), sentence_span)  # (K+1, B, R, d)
        empty = times.shape[1] - stories.shape[1]  # slots past the R rows: empty memories
        if empty > 0:  # their sums of words are zero: only the temporal term remains
            memories = F.pad(memories, (0, 0, 0, empty))  # (K+1, B, S, d)
        if self.temporal:
            times = times.clamp(0, self.memory_size - 1)
            memories = memories + self.time[:, times]  # + T^k(t(i)): (K+1, B, S, d)
        attention = []
        for k in range(self.hops):
            scores = torch.einsum("bsd,bd->bs", memories[k], u)  # u^T m_i
            if bool(self.linear):
                p = scores.masked_fill(~mask, 0.0)  # linear start: no softmax
            elif not self.empty_attention:
                p = torch.softmax(scores.masked_fill(~mask, -1e30), dim=-1)  # over real slots
                p = p * mask  # an empty memory: no attention at all
            else:  # the authors' code: the memory's unused slots score 0 and read nothing
                scores = scores.masked_fill(~mask, -math.inf)
                unused = (self.memory_size - mask.sum(-1)).clamp(min=0).to(scores.dtype)
                total = torch.logaddexp(torch.logsumexp(scores, dim=-1), unused.log())  # (B,)
                p = torch.exp(scores - total.unsqueeze(-1))  # exp(0) / total on each unused slot
            o = torch.einsum("bs,bsd->bd", p, memories[k + 1])  # o = sum_i p_i c_i
            u = u + o  # u^{k+1} = u^k + o^k
            attention.append(p)
        logits = u @ self.embed[self.hops].weight[1:].T  # W u^{K+1}, W^T = C^K: (B, V - 1)
        never = logits.new_full((len(logits), 1), float("-inf"))  # the null word is no answer
        logits = torch.cat([never, logits], dim=1)  # (B, V)
        return logits, torch.stack(attention, dim=1)

    def forward(self, stories, times, mask, queries) -> torch.Tensor:
        return self.attend(stories, times, mask, queries)[0]


def _default_ls_end(state_dict, prefix, *args) -> None:
    """Weights saved before `ls_end` existed load with LS ended at step 0 (the lr schedule as
    it was then)."""
    state_dict.setdefault(prefix + "ls_end", torch.tensor(0))
