"""The neural probabilistic language model of Bengio, Ducharme, Vincent & Jauvin (2003, "A neural
probabilistic language model", JMLR 3): the review's first example of words as learned vectors.

Each of the n-1 previous words is looked up in one shared table C of m-dimensional feature
vectors; their concatenation x feeds a tanh hidden layer and a softmax over the vocabulary:

    x = [C(w_{t-n+1}), ..., C(w_{t-1})]                  (n-1) * m features
    y = b + W x + U tanh(d + H x)                         V scores ("direct connections" W optional)
    p(w_t | w_{t-n+1}, ..., w_{t-1}) = softmax(y)_{w_t}

Deviations from the paper: dropout on the features and the hidden layer (the paper had weight
decay only), the exact adaptive softmax as an option (`deepnets.models.softmax`), and an extra
learned "before the text" vector that stands in for the words before the first one. The model
takes the same (B, T) stream batches as the recurrent language models, so one training loop
serves all: its "state" is the n-1 words that precede the batch, carried from one batch to the
next, so every token of the stream is predicted from its full window.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.models.softmax import Softmax, output_layer, output_log_probs, output_loss, output_of


class NPLM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        context: int = 5,
        embedding_size: int = 100,
        hidden_size: int = 500,
        direct: bool = False,
        dropout: float = 0.0,
        softmax: Softmax = "full",
        cutoffs: tuple[int, ...] = (2000,),
    ):
        super().__init__()
        if direct and softmax != "full":
            raise ValueError("direct connections need the full softmax")
        if context < 1:
            raise ValueError(f"context (n - 1 previous words) must be at least 1, got {context}")
        self.vocab_size, self.context, self.dropout = vocab_size, context, dropout
        self.start = vocab_size  # id of the "before the text" entry of C
        self.embedding = nn.Embedding(vocab_size + 1, embedding_size)  # C, (V + 1, m)
        features = context * embedding_size
        self.hidden = nn.Linear(features, hidden_size)  # H, d
        self.output = output_layer(hidden_size, vocab_size, softmax, cutoffs)  # U, b
        self.direct = nn.Linear(features, vocab_size, bias=False) if direct else None  # W
        nn.init.normal_(self.embedding.weight, std=1 / math.sqrt(embedding_size))

    def init_state(self, batch_size: int) -> torch.Tensor:
        """No words yet: n-1 "before the text" ids per row, (B, n-1)."""
        device = self.embedding.weight.device
        return torch.full((batch_size, self.context), self.start, dtype=torch.long, device=device)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # x (B, T) ids, state (B, n-1) the ids before x -> logits (B, T, V), new state (B, n-1)
        if state is None:
            state = self.init_state(x.shape[0])
        T = x.shape[1]
        stream = torch.cat([state, x], dim=1)  # (B, n-1+T)
        windows = stream.unfold(1, self.context, 1)[:, 1:]  # (B, T, n-1): the words up to x_t
        features = self.embedding(windows).flatten(2)  # x, (B, T, (n-1) m)
        features = F.dropout(features, self.dropout, self.training)
        h = torch.tanh(self.hidden(features))  # tanh(d + H x), (B, T, h)
        h = F.dropout(h, self.dropout, self.training)
        if self.direct is not None:  # b + W x + U tanh(d + H x), (B, T, V)
            return self.output(h) + self.direct(features), stream[:, T:]
        y = output_of(self.output, h)  # b + U tanh(d + H x), (B, T, V), or h (adaptive)
        return y, stream[:, T:]  # the last n-1 ids: the next batch's context

    def loss(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per token, in nats; exp() of it is the perplexity."""
        return output_loss(self.output, output, targets)

    def log_probs(self, output: torch.Tensor) -> torch.Tensor:
        return output_log_probs(self.output, output)

    def word_vectors(self) -> torch.Tensor:
        """C without the "before the text" row: (V, m)."""
        return self.embedding.weight[: self.vocab_size]
