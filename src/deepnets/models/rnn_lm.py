"""Recurrent language models (review Fig. 5): the simple recurrent net of Elman (1990), used as
a language model by Mikolov et al. (2010, "Recurrent neural network based language model"), and
the long short-term memory of Hochreiter & Schmidhuber (1997) in the multi-layer, dropout-
regularised form of Zaremba, Sutskever & Vinyals (2014, "Recurrent neural network
regularization"). Published Penn Treebank perplexities: 124.7 (RNNLM) and 114.5 / 82.7 / 78.4
(Zaremba's small / medium / large LSTM).

The recurrences are written by hand (`ElmanLayer`, `LSTMLayer`, each a loop over time steps of
its cell) so the equations can be read; `use_builtin=True` swaps in torch.nn.RNN / nn.LSTM, which
compute the same function much faster. The tests check one against the other.

Deviations from the papers: Mikolov's RNNLM has no embedding layer separate from the recurrent
weights (its input is the one-hot word, which is the same thing as an embedding added to W_xh),
was trained with a sigmoid hidden layer and a class-factored output; here the hidden units are
tanh and the softmax is over the full vocabulary. The hand-written layers carry one bias vector
per layer (b, or the four gate biases) where PyTorch's built-ins carry two (b_ih + b_hh), so the
built-in variant has n_layers * gates * hidden_size more parameters for the same function.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.models.recurrence import run_rnn
from deepnets.models.softmax import Softmax, output_layer, output_log_probs, output_loss, output_of

Cell = Literal["elman", "lstm"]
# Elman: h of shape (n_layers, B, H). LSTM: (h, c), each (n_layers, B, H). As nn.RNN / nn.LSTM.
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _uniform_(params: list[nn.Parameter], bound: float) -> None:
    for p in params:
        nn.init.uniform_(p, -bound, bound)


class ElmanCell(nn.Module):
    """One step of a simple recurrent net: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))  # W_xh
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # W_hh
        self.bias = nn.Parameter(torch.empty(hidden_size))  # b
        _uniform_(list(self.parameters()), 1 / math.sqrt(hidden_size))  # as nn.RNN

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        # x_t (B, I), h_prev (B, H) -> h_t (B, H)
        return torch.tanh(x_t @ self.weight_ih.T + h_prev @ self.weight_hh.T + self.bias)


class ElmanLayer(nn.Module):
    """The Elman cell unfolded in time (Fig. 5, right): the same weights at every step t."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = ElmanCell(input_size, hidden_size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x (B, T, I), h (B, H) -> outputs (B, T, H), h_T (B, H)
        outputs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)  # h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class LSTMCell(nn.Module):
    """One step of an LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.):

        i_t = sigmoid(W_xi x_t + W_hi h_{t-1} + b_i)    input gate
        f_t = sigmoid(W_xf x_t + W_hf h_{t-1} + b_f)    forget gate
        g_t = tanh(W_xg x_t + W_hg h_{t-1} + b_g)       candidate cell input
        o_t = sigmoid(W_xo x_t + W_ho h_{t-1} + b_o)    output gate
        c_t = f_t * c_{t-1} + i_t * g_t                 memory cell
        h_t = o_t * tanh(c_t)                           hidden state (the layer's output)

    The four gates' weights are stacked in PyTorch's order i, f, g, o: weight_ih is (4H, I).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))  # W_x[ifgo]
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))  # W_h[ifgo]
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))  # b_[ifgo]
        _uniform_(list(self.parameters()), 1 / math.sqrt(hidden_size))  # as nn.LSTM

    def forward(
        self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # x_t (B, I), state (h, c) each (B, H) -> (h_t, c_t) each (B, H)
        h_prev, c_prev = state
        z = x_t @ self.weight_ih.T + h_prev @ self.weight_hh.T + self.bias  # (B, 4H)
        z_i, z_f, z_g, z_o = z.chunk(4, dim=1)  # (B, 4H) -> 4 x (B, H)
        i = torch.sigmoid(z_i)  # i_t = sigmoid(W_xi x_t + W_hi h_{t-1} + b_i)
        f = torch.sigmoid(z_f)  # f_t = sigmoid(W_xf x_t + W_hf h_{t-1} + b_f)
        g = torch.tanh(z_g)  # g_t = tanh(W_xg x_t + W_hg h_{t-1} + b_g)
        o = torch.sigmoid(z_o)  # o_t = sigmoid(W_xo x_t + W_ho h_{t-1} + b_o)
        c = f * c_prev + i * g  # c_t = f_t * c_{t-1} + i_t * g_t
        h = o * torch.tanh(c)  # h_t = o_t * tanh(c_t)
        return h, c


class LSTMLayer(nn.Module):
    """The LSTM cell unfolded in time: the same weights at every step t."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        # x (B, T, I), state (h, c) each (B, H) -> outputs (B, T, H), (h_T, c_T)
        outputs = []
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)  # (h_t, c_t) from (x_t, h_{t-1}, c_{t-1})
            outputs.append(state[0])
        return torch.stack(outputs, dim=1), state


def detach_state(state: State) -> State:
    """Cut the graph between batches (truncated BPTT) while keeping the state's values."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()


class RNNLM(nn.Module):
    """A recurrent language model: p(w_{t+1} | w_1..w_t) = softmax(W_hy h_t^(L) + b_y).

        e_t = E[w_t]                                 embedding of the input token
        h_t^(1) = cell(e_t, h_{t-1}^(1))             first recurrent layer
        h_t^(l) = cell(h_t^(l-1), h_{t-1}^(l))       layers l = 2..L
        logits_t = W_hy h_t^(L) + b_y                (W_hy = E when the embeddings are tied)

    Dropout (Zaremba et al. 2014) is applied to the non-recurrent connections only: to e_t, to
    each layer's output before the next layer, and to h_t^(L) before the decoder; never to the
    h_{t-1} -> h_t connections. `forward` takes and returns the state so a training loop can carry
    it across batches of a stream (detaching it between batches with `detach_state`).

    `softmax="adaptive"` replaces the full output softmax by PyTorch's exact adaptive softmax
    (Grave et al. 2017): the most frequent words (below the first cutoff) share a head softmax
    with one entry per tail cluster, and the rare words of a cluster are scored through a smaller
    projection. It is still a normalised distribution over all V words, so perplexities compare.
    With `tie_weights` it is `TiedAdaptiveSoftmax`: every word's output vector is its embedding.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: Cell = "lstm",
        n_layers: int = 2,
        hidden_size: int = 200,
        embedding_size: int | None = None,
        dropout: float = 0.0,
        tie_weights: bool = False,
        use_builtin: bool = False,
        init_range: float | None = 0.1,
        softmax: Softmax = "full",
        cutoffs: tuple[int, ...] = (2000,),
    ):
        super().__init__()
        embedding_size = hidden_size if embedding_size is None else embedding_size
        if cell not in ("elman", "lstm"):
            raise ValueError(f"cell must be 'elman' or 'lstm', got {cell!r}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        if tie_weights and embedding_size != hidden_size:
            raise ValueError(
                f"tied embeddings need embedding_size == hidden_size, got {embedding_size} "
                f"and {hidden_size}"
            )
        self.vocab_size, self.cell_kind, self.n_layers = vocab_size, cell, n_layers
        self.hidden_size = hidden_size
        self.dropout, self.use_builtin = dropout, use_builtin
        self.embedding = nn.Embedding(vocab_size, embedding_size)  # E, (V, E)
        sizes = [embedding_size] + [hidden_size] * (n_layers - 1)  # each layer's input size
        if use_builtin:
            builtin = nn.LSTM if cell == "lstm" else nn.RNN
            extra = {} if cell == "lstm" else {"nonlinearity": "tanh"}
            between = dropout if n_layers > 1 else 0.0  # nn.RNN drops between layers only
            self.rnn = builtin(
                embedding_size, hidden_size, n_layers, batch_first=True, dropout=between, **extra
            )
        else:
            layer = LSTMLayer if cell == "lstm" else ElmanLayer
            self.layers = nn.ModuleList(layer(size, hidden_size) for size in sizes)
        layer = output_layer(hidden_size, vocab_size, softmax, cutoffs, tie_weights)  # W_hy, b_y
        if softmax == "full":
            self.decoder = layer
        else:
            self.adaptive = layer
        if init_range is not None:  # Zaremba et al.: every parameter uniform in [-r, r]
            _uniform_(list(self.parameters()), init_range)
        if tie_weights:
            self.vocab_output.weight = self.embedding.weight  # W_hy = E (Press & Wolf 2017)

    def init_state(self, batch_size: int) -> State:
        """The zero state for a batch: h (or h and c) of shape (n_layers, B, H)."""
        weight = self.embedding.weight
        zeros = weight.new_zeros(self.n_layers, batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.cell_kind == "lstm" else zeros

    def _recur(self, e: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        # e (B, T, E), state per layer stacked on dim 0 -> top outputs (B, T, H), new state
        if self.use_builtin:
            return run_rnn(self.rnn, e, state)  # float32 where CPU autocast has no RNN
        out, finals = e, []
        for k, layer in enumerate(self.layers):
            if k > 0:
                out = F.dropout(out, self.dropout, self.training)  # between layers only
            layer_state = (state[0][k], state[1][k]) if self.cell_kind == "lstm" else state[k]
            out, final = layer(out, layer_state)  # (B, T, H)
            finals.append(final)
        if self.cell_kind == "lstm":
            h, c = zip(*finals)
            return out, (torch.stack(h), torch.stack(c))  # n_layers x (B, H) -> (L, B, H)
        return out, torch.stack(finals)  # n_layers x (B, H) -> (L, B, H)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        # x (B, T) token ids -> logits (B, T, V), new state
        if state is None:
            state = self.init_state(x.shape[0])
        e = F.dropout(self.embedding(x), self.dropout, self.training)  # e_t = E[w_t], (B, T, E)
        out, state = self._recur(e, state)  # h_t^(L), (B, T, H)
        out = F.dropout(out, self.dropout, self.training)
        return self._output(out), state

    @property
    def vocab_output(self) -> nn.Module:
        """The output layer: `decoder` (full softmax) or `adaptive`."""
        return self.decoder if hasattr(self, "decoder") else self.adaptive

    def _output(self, h: torch.Tensor) -> torch.Tensor:
        """What `loss` and `log_probs` take (deepnets.models.softmax): the logits W_hy h + b_y
        (..., V) for the full softmax, h itself (..., H) for the adaptive one."""
        return output_of(self.vocab_output, h)

    def forward_with_states(
        self, x: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State, list[State]]:
        """Like `forward`, one time step at a time, also returning the state s_t after every step
        t (each as `forward` returns a state: h, or (h, c), of shape (n_layers, B, H)).

        Step t's logits are computed from s_t itself (its top layer's h), and step t + 1 reads s_t,
        so torch.autograd.grad(E_T, states) gives the whole dE_T/ds_t for every t <= T (for the
        LSTM pass the h, or the c, of every s_t): the per-step gradient norms of Fig. 5
        (vanishing or exploding). Works with the hand-written and the built-in layers alike.
        """
        if state is None:
            state = self.init_state(x.shape[0])
        e = F.dropout(self.embedding(x), self.dropout, self.training)  # (B, T, E)
        logits, states = [], []
        for t in range(x.shape[1]):
            _, state = self._recur(e[:, t : t + 1], state)  # s_t from (e_t, s_{t-1})
            h_top = (state[0] if isinstance(state, tuple) else state)[-1]  # (L, B, H) -> (B, H)
            h_top = F.dropout(h_top, self.dropout, self.training)
            logits.append(self._output(h_top))  # (B, V), or (B, H) for the adaptive softmax
            states.append(state)
        return torch.stack(logits, dim=1), state, states  # T x (B, V) -> (B, T, V)

    def loss(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per token, in nats; exp() of it is the perplexity."""
        return output_loss(self.vocab_output, output, targets)

    def log_probs(self, output: torch.Tensor) -> torch.Tensor:
        """log p(next token) over the whole vocabulary: (..., V)."""
        return output_log_probs(self.vocab_output, output)
