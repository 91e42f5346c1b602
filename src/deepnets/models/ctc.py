"""A deep bidirectional LSTM trained with connectionist temporal classification (Graves,
Fernandez, Gomez & Schmidhuber 2006; Graves, Mohamed & Hinton 2013, "Speech recognition with
deep recurrent neural networks", the review's ref 87): from acoustic frames straight to a
transcription, with no frame-level alignment. Here the transcriptions are strings of spoken
digits (FSDD recordings joined together, `deepnets.data.fsdd.load_digit_strings`).

CTC adds a blank symbol to the labels; the net outputs, per frame, a distribution over
blank + labels, and p(labels | x) sums over every frame path that collapses to the labels
(merge repeats, then drop blanks). Decoding: greedy (best path) or a prefix beam search that
sums the probabilities of the paths of each prefix.

Deviations from the paper: a small convolutional front end halves the frame rate `subsample`
times (three times: 80 ms per output frame) before the LSTM, as in later systems (Deep Speech
2); there is no language model or transducer, and the inputs are 40 log-mel bands (the paper:
40 filterbank coefficients plus energy and their deltas).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepnets.models.recurrence import run_rnn

BLANK = 0  # label ids: 0 is the blank, digit d is d + 1


class CTCRecognizer(nn.Module):
    """Frames x (B, T, F) with lengths (B,) -> per-frame log-probabilities (B, T', 1 + labels).

    Front end, s times: h = ReLU(BN(conv_k3_stride2(h)))   (T' = ceil(T / 2^s))
    then L bidirectional LSTM layers: h_t = [LSTM_fwd(h)_t ; LSTM_bwd(h)_t]
    and y_t = log softmax(W h_t + b) over blank + labels.
    """

    def __init__(
        self,
        n_features: int = 40,
        conv_channels: int = 128,
        subsample: int = 3,
        hidden_size: int = 128,
        n_layers: int = 2,
        n_labels: int = 10,
        dropout: float = 0.2,
    ):
        super().__init__()
        front: list[nn.Module] = []
        width = n_features
        for _ in range(subsample):
            front += [
                nn.Conv1d(width, conv_channels, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm1d(conv_channels),
                nn.ReLU(),
            ]
            width = conv_channels
        self.front = nn.Sequential(*front)
        self.subsample = subsample
        self.lstm = nn.LSTM(
            width,
            hidden_size,
            n_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden_size, n_labels + 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in range(self.subsample):
            lengths = (lengths + 1) // 2  # conv k=3, stride 2, padding 1: ceil(T / 2)
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.front(x.transpose(1, 2)).transpose(1, 2)  # (B, T, F) -> (B, T', C)
        out_lengths = self.output_lengths(lengths)
        packed = pack_padded_sequence(h, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(run_rnn(self.lstm, packed)[0], batch_first=True)  # (B, T'', 2H)
        return self.out(self.dropout(h)).log_softmax(-1), out_lengths  # (B, T'', 1 + labels)


# --- decoding and scoring -------------------------------------------------------------------


def collapse(path: list[int], blank: int = BLANK) -> list[int]:
    """The CTC map B: merge repeated symbols, then drop blanks (a, a, -, a -> a, a)."""
    out, previous = [], None
    for symbol in path:
        if symbol != previous and symbol != blank:
            out.append(symbol)
        previous = symbol
    return out


def greedy_decode(log_probs: torch.Tensor, blank: int = BLANK) -> list[int]:
    """Best path: the most probable symbol of each frame (T, V), collapsed."""
    return collapse(log_probs.argmax(-1).tolist(), blank)


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _add(beams: dict, prefix: tuple[int, ...], p_b=-math.inf, p_nb=-math.inf) -> None:
    """Add path probabilities (log) to a prefix's blank-ending and symbol-ending totals."""
    slot = beams.setdefault(prefix, [-math.inf, -math.inf])
    slot[0], slot[1] = _logaddexp(slot[0], p_b), _logaddexp(slot[1], p_nb)


def prefix_beam_search(
    log_probs: torch.Tensor, beam: int = 8, blank: int = BLANK, prune: float = -12.0
) -> list[int]:
    """The most probable labelling found by CTC prefix beam search over log_probs (T, V).

    Each prefix keeps two log-probabilities over the frames so far: p_b (paths ending in a
    blank) and p_nb (ending in its last symbol). At frame t, for each kept prefix l:
      blank:            p_b(l)    += (p_b(l) + p_nb(l)) y_t(blank)
      repeat last c:    p_nb(l)   += p_nb(l) y_t(c)
      new symbol c:     p_nb(l+c) += (p_b(l) + p_nb(l)) y_t(c), or only p_b(l) y_t(c)
                                     when c repeats the last symbol of l (a blank must separate)
    and the `beam` prefixes of highest p_b + p_nb survive. Symbols with log y_t(c) < prune are
    skipped. Greedy decoding is the special case of following only the best path.
    """
    table = log_probs.detach().double().cpu().tolist()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for row in table:
        nxt: dict[tuple[int, ...], list[float]] = {}
        symbols = [c for c, lp in enumerate(row) if lp >= prune and c != blank]
        for prefix, (p_b, p_nb) in beams.items():
            total = _logaddexp(p_b, p_nb)
            _add(nxt, prefix, p_b=total + row[blank])
            if prefix:
                _add(nxt, prefix, p_nb=p_nb + row[prefix[-1]])
            for c in symbols:
                if prefix and c == prefix[-1]:
                    _add(nxt, prefix + (c,), p_nb=p_b + row[c])
                else:
                    _add(nxt, prefix + (c,), p_nb=total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = {prefix: (p[0], p[1]) for prefix, p in ranked[:beam]}
    best = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))[0]
    return list(best)


def edit_distance(hypothesis: list[int], reference: list[int]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions between them."""
    previous = list(range(len(reference) + 1))
    for i, h in enumerate(hypothesis, 1):
        current = [i]
        for j, r in enumerate(reference, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (h != r)))
        previous = current
    return previous[-1]
