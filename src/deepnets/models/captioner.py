"""Image captioning: a ConvNet encoder and an LSTM decoder, Fig. 3 of the review.

Show and Tell (Vinyals, Toshev, Bengio & Erhan 2015, ref 102): the image, encoded by a ConvNet,
is fed to the LSTM once, as its first input, and the LSTM then generates the caption word by
word. Show, Attend and Tell (Xu et al. 2015, ref 86): the ConvNet's last feature map is kept as
a grid of L = H' x W' annotation vectors a_i, and at every word the decoder attends over them
("soft" attention), so each word has a map of where the model looked.

The decoder is the translation family's `deepnets.models.seq2seq.Decoder` (its memory is the
grid) and `beam_search` runs unchanged: `Captioner.encode(images, lengths)` returns what
`Seq2Seq.encode` returns. `lengths` is only there for that signature; pass the grid size L.

Deviations from the papers: the encoder is a small ConvNet trained here (from scratch or first on
CIFAR-10, see deepnets.train.encoder_pretrain; the papers used ImageNet-trained GoogLeNet /
VGG); by default the attention query is the current decoder state s_t and the context reaches
only the output tanh(W_c [s_t; c_t]) (the shared Decoder's placement, see seq2seq.py);
`feed_context=True` is Xu et al.'s placement (the query is s_{t-1}, the context is gated by
their scalar beta and fed to the LSTM), still with the shared output tanh(W_c [s_t; z_t]) rather
than their deep output layer; Vinyals et al.'s image embedding is the feature map average-pooled
to 4x4 cells, flattened, through one linear layer (their GoogLeNet feature is a global pool of an
ImageNet net; a global mean of this small net's map would erase the layout that the digit
captions name).
"""

from __future__ import annotations

import torch
from torch import nn

from deepnets.models.seq2seq import Decoder

POOLED = 4  # without attention the feature map is average-pooled to POOLED x POOLED


class ConvEncoder(nn.Module):
    """Blocks of 3x3 convolution, batch norm and ReLU; a 2x2 max-pool after every block but the
    last, so `channels` of length k turn (B, C, H, W) into (B, channels[-1], H/2^(k-1), ...)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for k, width in enumerate(channels):
            layers += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
            layers.append(nn.ReLU(inplace=True))
            if k < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = width
        self.net = nn.Sequential(*layers)
        self.out_channels = prev

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)  # (B, C', H', W')


class Captioner(nn.Module):
    """With attention (Xu et al.):
        a = {a_1..a_L} = ConvNet(image)                      the grid, (B, L, D)
        h_0 = tanh(W_h mean_i a_i),  c_0 = tanh(W_c0 mean_i a_i)
        s_t = LSTM(s_{t-1}, E y_{t-1});  alpha_t = softmax_i(v^T tanh(W s_t + U a_i))
        z_t = sum_i alpha_ti a_i;  p(y_t | ...) = softmax(E W_p tanh(W_c [s_t; z_t]) + b)
    or, with feed_context (Xu et al.'s placement), alpha_t from s_{t-1}, z_t gated by
    beta_t = sigmoid(w_b . s_{t-1} + b_b) and s_t = LSTM(s_{t-1}, [E y_{t-1}; z_t]).
    Without attention (Vinyals et al.): x_{-1} = W_I pool(a), the feature map average-pooled
    to 4 x 4 and flattened (a global mean would erase where things are), is the LSTM's first input
    (from a zero state), the state after it starts the caption, and the image is never seen
    again. `attention_penalty` gives Xu et al.'s doubly stochastic regulariser."""

    def __init__(
        self,
        vocab: int,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        emb: int = 64,
        hidden: int = 128,
        attention: bool = True,
        attn_size: int = 64,
        dropout: float = 0.2,
        blind: bool = False,
        feed_context: bool = False,
    ):
        super().__init__()
        if blind and attention:
            raise ValueError("a blind decoder has nothing to attend to: use attention=False")
        self.blind = blind  # the decoder never sees the image: a caption language model
        self.encoder = ConvEncoder(in_channels, channels)
        d = self.encoder.out_channels
        self.decoder = Decoder(
            vocab, emb, hidden, 1, dropout, d if attention else 0, attn_size,
            feed_context=feed_context,
        )  # fmt: skip
        if attention:
            self.init_h = nn.Linear(d, hidden)  # W_h
            self.init_c = nn.Linear(d, hidden)  # W_c0
        else:
            self.pool = nn.AdaptiveAvgPool2d(POOLED)  # keeps a coarse layout of the image
            self.image_embed = nn.Linear(d * POOLED * POOLED, emb)  # W_I

    @property
    def attention(self) -> bool:
        return self.decoder.attention is not None

    def grid(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> annotation vectors (B, L, D), L = H' W' in row-major order."""
        features = self.encoder(images)  # (B, D, H', W')
        return features.flatten(2).transpose(1, 2)  # (B, H'W', D)

    def encode(self, images: torch.Tensor, lengths: torch.Tensor | None = None):
        """-> (memory (B, L, D) or None, mask (B, L) all true, keys (B, L, A) or None, initial
        decoder state (h, c) each (1, B, H)); what `beam_search` needs. A blind model starts
        every caption from the zero state, whatever the image."""
        if self.blind:
            b, hidden = images.shape[0], self.decoder.rnn.hidden_size
            zero = images.new_zeros(1, b, hidden)
            mask = torch.ones(b, 1, dtype=torch.bool, device=images.device)
            return None, mask, None, (zero, zero.clone())
        features = self.encoder(images)  # (B, D, H', W')
        memory = features.flatten(2).transpose(1, 2)  # (B, L, D)
        b, length, _ = memory.shape
        mask = torch.ones(b, length, dtype=torch.bool, device=images.device)
        if not self.attention:
            pooled = self.pool(features).flatten(1)  # (B, D * 4 * 4)
            x = self.image_embed(pooled)[:, None]  # x_{-1}: (B, 1, E)
            _, state = self.decoder.rnn(self.decoder.drop(x))  # the image, fed once
            return None, mask, None, state
        mean = memory.mean(1)  # (B, D)
        h0 = torch.tanh(self.init_h(mean))[None]  # (1, B, H)
        c0 = torch.tanh(self.init_c(mean))[None]
        keys = self.decoder.attention.key(memory)  # U a_i, computed once: (B, L, A)
        return memory, mask, keys, (h0.contiguous(), c0.contiguous())

    def forward(self, images: torch.Tensor, tgt_in: torch.Tensor, owner=None):
        """Teacher forcing: tgt_in (B, T) = start token then the caption -> logits (B, T, V)
        of each next word, attention weights (B, T, L) or None. With owner (P,), tgt_in holds P
        captions and caption p describes images[owner[p]]: each image is encoded once."""
        memory, mask, keys, state = self.encode(images)
        if owner is not None:
            memory, mask, keys = (None if t is None else t[owner] for t in (memory, mask, keys))
            state = tuple(s[:, owner] for s in state)
        logits, _, weights = self.decoder(tgt_in, state, memory, mask, keys)
        return logits, weights

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the grid for an input of height x width."""
        pools = sum(isinstance(m, nn.MaxPool2d) for m in self.encoder.net)
        for _ in range(pools):
            height, width = height // 2, width // 2
        return height, width


def attention_penalty(weights: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Xu et al.'s doubly stochastic regulariser sum_i (1 - sum_t alpha_ti)^2, summed over the
    real (non-padding) steps t, averaged over the batch. weights (B, T, L), target (B, T)."""
    real = (target != 0).float()[..., None]  # (B, T, 1)
    coverage = (weights * real).sum(1)  # sum_t alpha_ti: (B, L)
    return ((1 - coverage) ** 2).sum(1).mean()
