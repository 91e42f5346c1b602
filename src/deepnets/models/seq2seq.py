"""Encoder-decoder translation: the "thought vector" LSTM of Sutskever, Vinyals & Le (2014, ref 72;
also Cho et al. 2014, ref 17) and additive attention (Bahdanau, Cho & Bengio 2015, ref 76).

The encoder reads the source into states h_1..h_S; the decoder is a language model over the
target conditioned either on the encoder's final state alone (`attention=False`: that state is
the only link) or, at every step, also on a context vector c_t = sum_j a_tj h_j.

`Decoder` attends over a generic `memory` (B, S, M) with a mask, so any encoder (an image
ConvNet's grid of feature vectors, say) can drive it; `beam_search` needs only its `step`.

Deviations from the papers: 2 layers rather than Sutskever's 4 and 256-512 units rather than
1000 (a CPU budget); SentencePiece subwords rather than a 160k/30k word vocabulary. The attention
query is the decoder's current top-layer state s_t rather than the previous one s_{t-1}
(Luong, Pham & Manning 2015's placement), so the decoder LSTM runs over the whole target in one
fused call during training; the scores stay additive as in Bahdanau et al., and the output is
computed from [s_t; c_t] through a tanh layer (Luong's "attentional hidden state").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepnets.models.recurrence import run_rnn

State = tuple[torch.Tensor, torch.Tensor]  # LSTM (h, c), each (layers, B, H)


class AdditiveAttention(nn.Module):
    """Bahdanau et al.'s alignment model: e_tj = v^T tanh(W s_t + U h_j), a_t = softmax_j(e_t)
    over the unmasked positions, c_t = sum_j a_tj h_j."""

    def __init__(self, query_size: int, memory_size: int, attn_size: int):
        super().__init__()
        self.query = nn.Linear(query_size, attn_size, bias=False)  # W
        self.key = nn.Linear(memory_size, attn_size)  # U (and a bias)
        self.v = nn.Linear(attn_size, 1, bias=False)  # v

    def forward(
        self, queries: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, keys=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, T, Q), memory (B, S, M), mask (B, S) true where real -> context (B, T, M),
        weights (B, T, S). `keys` = self.key(memory) when already computed."""
        keys = self.key(memory) if keys is None else keys  # (B, S, A)
        hidden = torch.tanh(self.query(queries).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
        scores = self.v(hidden).squeeze(-1)  # e_tj: (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # a_tj, sums to 1 over j
        return weights @ memory, weights  # c_t = sum_j a_tj h_j: (B, T, M)


class Encoder(nn.Module):
    """Embedding, dropout, a (bi)directional multi-layer LSTM over the real (unpadded) tokens."""

    def __init__(self, vocab, emb, hidden, layers, bidirectional, dropout):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.rnn = nn.LSTM(
            emb, hidden, layers, batch_first=True, bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )  # fmt: skip
        self.drop = nn.Dropout(dropout)
        self.out_size = hidden * (2 if bidirectional else 1)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        """src (B, S) padded with 0, lengths (B,) -> states (B, S, D*H), final (h, c) each
        (layers * D, B, H) (layer-major, directions inner, as nn.LSTM returns them)."""
        x = self.drop(self.embed(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = run_rnn(self.rnn, packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        return states, final


class Decoder(nn.Module):
    """An LSTM language model over the target, conditioned through its initial state and,
    when `memory_size` > 0, through additive attention over a memory (B, S, M):
        s_t = LSTM(s_{t-1}, E y_{t-1})
        c_t = sum_j a_tj m_j,  a_t = attention(s_t, m)
        o_t = tanh(W_c [s_t; c_t])           (o_t = s_t without memory)
        p(y_t | y_<t, x) = softmax(E W_p o_t + b)
    The output weights are the target embeddings E (tied, Press & Wolf 2017) after a
    projection W_p of o_t to the embedding size: half the output layer's cost on a CPU.

    With `context_size` > 0 instead of attention, the memory holds one fixed vector c per
    sentence (B, 1, C) that enters every step, as in Cho et al. (2014):
        s_t = LSTM(s_{t-1}, [E y_{t-1}; c]),  o_t = tanh(W_c [s_t; c])
    so the decoder never has to carry the source in its state alone; c is still the only link
    to the source.

    With `feed_context` (attention only) the placement is Bahdanau et al.'s and Xu et al.'s: the
    query is the previous state, and the context, scaled by Xu et al.'s gate, is the LSTM's input
    too, so what was looked at enters the state that chooses the next words:
        a_t = attention(s_{t-1}, m),  beta_t = sigmoid(w_b . s_{t-1} + b_b)
        z_t = beta_t sum_j a_tj m_j,  s_t = LSTM(s_{t-1}, [E y_{t-1}; z_t])
        o_t = tanh(W_c [s_t; z_t])
    The LSTM then runs one step at a time, in training too."""

    def __init__(
        self,
        vocab,
        emb,
        hidden,
        layers,
        dropout,
        memory_size=0,
        attn_size=256,
        context_size=0,
        feed_context=False,
    ):
        super().__init__()
        if memory_size > 0 and context_size > 0:
            raise ValueError("a decoder attends over a memory or reads a fixed context, not both")
        if feed_context and memory_size <= 0:
            raise ValueError("feed_context needs a memory to attend over")
        self.context_size = context_size
        self.feed_context = feed_context
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.rnn = nn.LSTM(
            emb + context_size + (memory_size if feed_context else 0),
            hidden,
            layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.attention = None
        if memory_size > 0:
            self.attention = AdditiveAttention(hidden, memory_size, attn_size)
        if feed_context:
            self.gate = nn.Linear(hidden, 1)  # beta_t (w_b, b_b)
        if memory_size > 0 or context_size > 0:
            self.combine = nn.Linear(hidden + memory_size + context_size, hidden)  # W_c
        self.proj = nn.Linear(hidden, emb)  # o_t to word-vector space
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, tokens, state, memory=None, mask=None, keys=None):
        """tokens (B, T) (the previous target words), state (h, c) -> logits (B, T, V), the new
        state, attention weights (B, T, S) or None."""
        x = self.drop(self.embed(tokens))  # (B, T, E)
        context = None
        if self.context_size:
            context = memory[:, :1].expand(-1, tokens.shape[1], -1)  # c at every step: (B, T, C)
            x = torch.cat([x, context], dim=-1)
        weights = None
        if self.feed_context:
            s, state, context, weights = self._attend_then_step(x, state, memory, mask, keys)
        else:
            s, state = run_rnn(self.rnn, x, state)  # (B, T, H)
            if self.attention is not None:
                context, weights = self.attention(s, memory, mask, keys)  # (B, T, M), (B, T, S)
        if context is not None:
            s = torch.tanh(self.combine(torch.cat([s, context], dim=-1)))  # o_t: (B, T, H)
        logits = self.proj(self.drop(s)) @ self.embed.weight.T + self.bias  # W_o = E W_p
        return logits, state, weights

    def _attend_then_step(self, x, state, memory, mask, keys):
        """feed_context's recurrence over x (B, T, E): the states s (B, T, H), the last state,
        the gated contexts z (B, T, M) and the attention weights (B, T, S)."""
        states, contexts, weights = [], [], []
        for t in range(x.shape[1]):
            previous = state[0][-1][:, None]  # s_{t-1}, top layer: (B, 1, H)
            context, w = self.attention(previous, memory, mask, keys)  # (B, 1, M), (B, 1, S)
            context = torch.sigmoid(self.gate(previous)) * context  # z_t
            s, state = run_rnn(self.rnn, torch.cat([x[:, t : t + 1], context], dim=-1), state)
            states.append(s)
            contexts.append(context)
            weights.append(w)
        return torch.cat(states, 1), state, torch.cat(contexts, 1), torch.cat(weights, 1)

    def step(self, tokens, state, memory=None, mask=None, keys=None):
        """One step: tokens (N,) -> log-probabilities (N, V), new state, weights (N, S) or None."""
        logits, state, weights = self.forward(tokens[:, None], state, memory, mask, keys)
        return (
            torch.log_softmax(logits[:, 0], dim=-1),
            state,
            None if weights is None else weights[:, 0],
        )


class Seq2Seq(nn.Module):
    """Encoder + decoder. Without attention the encoder's final (h, c) of every layer starts the
    decoder (Sutskever et al.; the encoder is unidirectional and as deep and wide as the
    decoder); with attention the encoder is bidirectional and s_0 = tanh(W_s [h_fwd; h_bwd])
    per layer (Bahdanau et al. start from the backward state alone). `feed_thought` (without
    attention) also gives the decoder the encoder's final top-layer state at every step (Cho et
    al. 2014)."""

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        emb: int = 256,
        hidden: int = 256,
        layers: int = 2,
        attention: bool = True,
        attn_size: int = 256,
        dropout: float = 0.2,
        reverse_source: bool = False,
        feed_thought: bool = False,
    ):
        super().__init__()
        if attention and feed_thought:
            raise ValueError("feed_thought is for the model without attention")
        self.reverse_source, self.layers = reverse_source, layers
        enc_hidden = hidden // 2 if attention else hidden  # bidirectional: H/2 each way
        self.encoder = Encoder(src_vocab, emb, enc_hidden, layers, attention, dropout)
        memory = self.encoder.out_size if attention else 0
        context = hidden if feed_thought else 0
        self.decoder = Decoder(
            tgt_vocab, emb, hidden, layers, dropout, memory, attn_size, context_size=context
        )
        if attention:
            self.bridge_h = nn.Linear(2 * enc_hidden, hidden)  # W_s
            self.bridge_c = nn.Linear(2 * enc_hidden, hidden)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor):
        """src (B, S), lengths (B,) -> (memory (B, S, M) or None, mask (B, S), keys or None,
        initial decoder state). The source is reversed within its length if asked."""
        if self.reverse_source:
            src = reverse_padded(src, lengths)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]
        states, (h, c) = self.encoder(src, lengths)
        if self.decoder.context_size:  # the final top-layer state, at every step too
            return h[-1].unsqueeze(1), mask[:, :1], None, (h, c)
        if self.decoder.attention is None:
            return None, mask, None, (h, c)  # the final state is the only link
        b = src.shape[0]
        h = h.view(self.layers, 2, b, -1).transpose(1, 2).reshape(self.layers, b, -1)  # (L,B,2H)
        c = c.view(self.layers, 2, b, -1).transpose(1, 2).reshape(self.layers, b, -1)
        init = (
            torch.tanh(self.bridge_h(h)).contiguous(),
            torch.tanh(self.bridge_c(c)).contiguous(),
        )
        return states, mask, self.decoder.attention.key(states), init

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing: logits (B, T, V) of each next target token, and the attention
        weights (B, T, S) or None."""
        memory, mask, keys, state = self.encode(src, lengths)
        logits, _, weights = self.decoder(tgt_in, state, memory, mask, keys)
        return logits, weights

    def thought(self, src, lengths) -> torch.Tensor:
        """The fixed-size sentence representation (B, H): the top layer of the initial decoder
        state (the encoder's final state, bridged when there is attention)."""
        return self.encode(src, lengths)[3][0][-1]


def reverse_padded(src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first lengths[b] tokens reversed, the padding left in place."""
    positions = torch.arange(src.shape[1], device=src.device)[None, :]  # (1, S)
    index = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
    return src.gather(1, index)


def select_state(state: State, index: torch.Tensor) -> State:
    return state[0][:, index], state[1][:, index]


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    lengths: torch.Tensor,
    bos: int,
    eos: int,
    beam: int = 5,
    max_len: int = 100,
    alpha: float = 1.0,
    banned: tuple[int, ...] = (),
) -> tuple[list[list[int]], list[torch.Tensor | None]]:
    """The best translation of each source under log p(y|x) / |y|^alpha (|y| counts the end
    token; alpha 0: no length normalisation), searching `beam` hypotheses per sentence for at
    most `max_len` tokens. A hypothesis that ends (emits `eos`) leaves the beam for the finished
    list; hypotheses still open at `max_len` count as finished. The search of a sentence stops
    once it holds `beam` finished ones and none still open can beat the best of them: an open
    score s can at most reach s / max_len^alpha (log-probabilities only fall), so a confident
    model's low slots that end early cannot cut off a better hypothesis still growing. Beam 1
    is greedy decoding. Returns the tokens (without
    the end token) and each one's attention weights (T, S) (None without attention)."""
    model.eval()
    memory, mask, keys, state = model.encode(src, lengths)
    b, k = src.shape[0], beam
    rows = torch.arange(b, device=src.device).repeat_interleave(k)  # (B*K,): each beam's source
    state = select_state(state, rows)
    if memory is not None:
        memory, mask = memory[rows], mask[rows]
        keys = None if keys is None else keys[rows]
    scores = torch.full((b, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # one open hypothesis per sentence to begin with
    tokens = torch.full((b * k,), bos, dtype=torch.long, device=src.device)
    history: list[torch.Tensor] = []  # per step: tokens (B*K,)
    parents: list[torch.Tensor] = []  # per step: which hypothesis each came from (B*K,)
    attn: list[torch.Tensor] = []
    finished: list[list[tuple[float, int, int]]] = [[] for _ in range(b)]  # (score, step, slot)
    done = [False] * b
    for t in range(max_len):
        log_probs, state, weights = model.decoder.step(tokens, state, memory, mask, keys)
        for banned_id in banned:
            log_probs[:, banned_id] = float("-inf")
        vocab = log_probs.shape[-1]
        total = (scores.view(-1, 1) + log_probs).view(b, k * vocab)  # (B, K*V)
        top, index = total.topk(min(k, k * vocab), dim=-1)  # (B, K)
        if top.shape[1] < k:  # a vocabulary smaller than the beam
            pad = torch.full((b, k - top.shape[1]), float("-inf"), device=src.device)
            top, index = (
                torch.cat([top, pad], 1),
                torch.cat([index, torch.zeros_like(pad).long()], 1),
            )
        parent = (index // vocab + torch.arange(b, device=src.device)[:, None] * k).view(-1)
        tokens = (index % vocab).view(-1)
        state = select_state(state, parent)
        history.append(tokens)
        parents.append(parent)
        if weights is not None:
            attn.append(weights[parent])
        scores = top.clone()
        last = t == max_len - 1
        top_list, token_list = top.tolist(), tokens.tolist()
        for i in range(b):
            if done[i]:
                scores[i] = float("-inf")
                continue
            best_open = float("-inf")
            for j in range(k):
                s = top_list[i][j]
                if s == float("-inf"):
                    continue
                if token_list[i * k + j] == eos or last:
                    finished[i].append((s / (t + 1) ** alpha, t, i * k + j))
                    scores[i, j] = float("-inf")
                else:
                    best_open = max(best_open, s)
            if len(finished[i]) >= k:
                if max(finished[i])[0] >= best_open / max_len**alpha:
                    done[i] = True
                    scores[i] = float("-inf")
        if all(done) or bool(torch.isinf(scores).all()):
            break
    out, maps = [], []
    for i in range(b):
        _, t, slot = max(finished[i])
        seq, weights_of = [], []
        for step in range(t, -1, -1):  # follow the parents back to the start
            seq.append(int(history[step][slot]))
            if attn:
                weights_of.append(attn[step][slot])
            slot = int(parents[step][slot])
        seq.reverse()
        if seq and seq[-1] == eos:
            seq = seq[:-1]
        out.append(seq)
        if attn:
            weights_of.reverse()
            maps.append(torch.stack(weights_of)[:, : int(lengths[i])].cpu())  # (T, S)
        else:
            maps.append(None)
    return out, maps


def sequence_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0):
    """Mean cross-entropy per real target token (padding 0 ignored), with label smoothing."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),  # (B*T, V)
        target.reshape(-1),
        ignore_index=0,
        label_smoothing=smoothing,
    )
