"""The Neural Turing Machine (Graves, Wayne & Danihelka 2014, "Neural Turing Machines",
arXiv:1410.5401; ref 88 of the review), and the LSTM baseline it is compared with.

An LSTM controller reads the input and the previous read vectors; from its state, heads emit
addressing parameters that choose where in an N x M memory to read and write. Addressing is
differentiable, so the whole machine trains by backpropagation through time.

Deviations from the paper: the paper leaves initialisation open. Here the memory starts at a
small constant (1e-6, as Collier & Beel 2018 found trains best), every head's weighting on row 0
(with identical rows and a uniform start, content and location addressing could never focus on
one row), and the read vectors at learned values; the output is computed from the controller
state and the reads of the same step. Adam replaces RMSProp (the engine's optimisers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.models.recurrence import run_rnn

EPS = 1e-8  # in norms and normalisers, so zero vectors and zero weightings give no NaN


def content_weighting(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """w^c_i = softmax_i(beta K[k, M_i]), K the cosine similarity.
    memory (B, N, M), key (B, H, M), beta (B, H) -> (B, H, N)."""
    dot = torch.einsum("bhm,bnm->bhn", key, memory)  # (B, H, N)
    norms = key.norm(dim=-1, keepdim=True) * memory.norm(dim=-1).unsqueeze(1)  # (B, H, N)
    cosine = dot / (norms + EPS)  # K[u, v] = u.v / (|u||v|)   (eq. 6)
    return torch.softmax(beta.unsqueeze(-1) * cosine, dim=-1)  # (eq. 5)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """w^g = g w^c + (1 - g) w_{t-1}   (eq. 7).  (B, H, N), (B, H, N), (B, H) -> (B, H, N)."""
    g = g.unsqueeze(-1)
    return g * w_content + (1 - g) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Circular convolution w~_i = sum_j w_j s_{i-j}   (eq. 8), shifts -K..K.
    w (B, H, N), s (B, H, 2K+1) with s[..., k] the weight of shift k - K -> (B, H, N)."""
    k = s.shape[-1] // 2
    out = torch.zeros_like(w)
    for j in range(s.shape[-1]):  # shift by j - k: w moves j - k places forward
        out = out + s[..., j : j + 1] * torch.roll(w, shifts=j - k, dims=-1)
    return out


def sharpen(w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """w_i = w~_i^gamma / sum_j w~_j^gamma   (eq. 9); clamped so 0^gamma has a finite gradient.
    w (B, H, N), gamma (B, H) >= 1 -> (B, H, N)."""
    powered = w.clamp_min(EPS) ** gamma.unsqueeze(-1)
    return powered / (powered.sum(dim=-1, keepdim=True) + EPS)


def address(memory, w_prev, key, beta, g, s, gamma) -> torch.Tensor:
    """The whole addressing pipeline (Fig. 2 of the paper): content, interpolation, shift,
    sharpening."""
    return sharpen(shift(interpolate(content_weighting(memory, key, beta), w_prev, g), s), gamma)


class NTM(nn.Module):
    """Neural Turing Machine with an LSTM controller, R read heads and W write heads.

    At each step t, with x_t the input and r_{t-1} the previous reads:
        h_t, c_t = LSTM([x_t, r_{t-1}], (h_{t-1}, c_{t-1}))
        each head: k (key), beta = softplus, g = sigmoid, s = softmax over shifts,
                   gamma = 1 + softplus, from h_t; w_t = address(M_{t-1}, w_{t-1}, ...)
        write heads: e = sigmoid, a = tanh;
                   M_t = M_{t-1} (1 - w e^T) (erase, eq. 3), then + w a^T (add, eq. 4)
        read heads:  r_t = sum_i w_t(i) M_t(i)   (eq. 2)
        y_t = W_y [h_t, r_t] + b   (logits)
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: int = 100,
        memory_size: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
        write_heads: int = 1,
        shifts: int = 1,
    ) -> None:
        super().__init__()
        self.n, self.m, self.r, self.w = memory_size, memory_width, read_heads, write_heads
        self.n_shifts = 2 * shifts + 1
        self.controller = nn.LSTMCell(n_in + read_heads * memory_width, hidden)
        per_head = memory_width + 1 + 1 + self.n_shifts + 1  # k, beta, g, s, gamma
        self.heads = nn.Linear(hidden, (read_heads + write_heads) * per_head)
        self.erase_add = nn.Linear(hidden, write_heads * 2 * memory_width)
        self.output = nn.Linear(hidden + read_heads * memory_width, n_out)
        self.read0 = nn.Parameter(torch.randn(read_heads, memory_width) * 0.01)
        self.per_head = per_head

    def _head_params(self, h: torch.Tensor):
        """Addressing parameters of all heads, read heads first: key (B, H, M), beta, g, gamma
        (B, H) and s (B, H, 2K+1)."""
        b, m = h.shape[0], self.m
        p = self.heads(h).view(b, self.r + self.w, self.per_head)  # (B, H, P)
        key = p[..., :m]
        beta = F.softplus(p[..., m])  # beta >= 0
        g = torch.sigmoid(p[..., m + 1])  # g in (0, 1)
        s = torch.softmax(p[..., m + 2 : m + 2 + self.n_shifts], dim=-1)
        gamma = 1 + F.softplus(p[..., -1])  # gamma >= 1
        return key, beta, g, s, gamma

    def forward(self, x: torch.Tensor, trace: bool = False):
        """x (B, T, n_in) -> logits (B, T, n_out); with `trace`, also the read and write
        weightings of every step, (B, T, R, N) and (B, T, W, N)."""
        b, steps, _ = x.shape
        memory = x.new_full((b, self.n, self.m), 1e-6)  # (B, N, M)
        weights = x.new_zeros((b, self.r + self.w, self.n))  # (B, H, N)
        weights[:, :, 0] = 1.0  # every head starts focused on row 0 (breaks the rows' symmetry)
        reads = self.read0.unsqueeze(0).expand(b, -1, -1).reshape(b, -1)  # (B, R*M)
        state = None
        outputs, read_trace, write_trace = [], [], []
        for t in range(steps):
            h, c = self.controller(torch.cat([x[:, t], reads], dim=-1), state)
            state = (h, c)
            key, beta, g, s, gamma = self._head_params(h)
            weights = address(memory, weights, key, beta, g, s, gamma)  # (B, H, N)
            w_read, w_write = weights[:, : self.r], weights[:, self.r :]
            ea = self.erase_add(h).view(b, self.w, 2, self.m)
            erase, add = torch.sigmoid(ea[:, :, 0]), torch.tanh(ea[:, :, 1])  # (B, W, M)
            for i in range(self.w):
                wi = w_write[:, i].unsqueeze(-1)  # (B, N, 1)
                memory = memory * (1 - wi * erase[:, i].unsqueeze(1))  # erase (eq. 3)
                memory = memory + wi * add[:, i].unsqueeze(1)  # add (eq. 4)
            read = torch.einsum("brn,bnm->brm", w_read, memory)  # (eq. 2) (B, R, M)
            reads = read.reshape(b, -1)
            outputs.append(self.output(torch.cat([h, reads], dim=-1)))
            if trace:
                read_trace.append(w_read.detach())
                write_trace.append(w_write.detach())
        logits = torch.stack(outputs, dim=1)  # (B, T, n_out)
        if trace:
            return logits, torch.stack(read_trace, 1), torch.stack(write_trace, 1)
        return logits


class SequenceLSTM(nn.Module):
    """The baseline: a stacked LSTM mapping the same inputs to logits, y_t = W h^L_t + b."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, layers, batch_first=True)
        self.output = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, n_in) -> logits (B, T, n_out)."""
        return self.output(run_rnn(self.lstm, x)[0])
