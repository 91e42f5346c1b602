"""A deep ConvNet for CIFAR-10 in the line the review describes for ImageNet (Krizhevsky, Sutskever
& Hinton 2012, ref 1): stacked 3x3 convolutions with ReLU, max-pooling, dropout, and generated
training examples (random crops and flips), trained by SGD with momentum.

The layout follows today's fast-training nets for CIFAR-10 (Jordan's airbench and Page's ResNet-9,
94% test accuracy in minutes of GPU time): a stem convolution, then three blocks that each widen
the maps and pool them by 2, then a global max-pool and one linear layer. In the `airbench` style
every block convolves once more after pooling; in the `resnet9` style blocks 1 and 3 add a
residual unit (two convolutions and a skip connection, He et al. 2016) and block 2 does not.

Deviations from the paper: batch normalisation after every convolution (Ioffe & Szegedy 2015,
which came after the 2012 net) instead of local response normalisation; no fully connected
hidden layers (global pooling instead), so dropout sits only before the output layer; optional
test-time augmentation averages the scores of each image and its mirror image.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Sequential):
    """3x3 convolution (no bias: the batch norm's shift replaces it), batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class Residual(nn.Module):
    """y = x + F(x), F two ConvBN layers of the same width (He et al. 2016)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(ConvBN(width, width), ConvBN(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CifarConvNet(nn.Module):
    """stem -> [conv, pool 2, conv] x 3 -> global max-pool -> dropout -> linear scores.

    Each conv computes y = ReLU(BN(W * x)) over a 3x3 window shared by every position; each block
    halves the map side (32 -> 16 -> 8 -> 4) and widens the maps.
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (32, 64, 256, 256),
        n_classes: int = 10,
        dropout: float = 0.0,
        score_scale: float = 0.125,
        flip_tta: bool = False,
        style: Literal["airbench", "resnet9"] = "airbench",
    ):
        super().__init__()
        stem, *blocks = widths
        self.stem = ConvBN(3, stem)
        layers, c_in, after = [], stem, []
        for k, width in enumerate(blocks):
            if style == "airbench":
                refine, name = ConvBN(width, width), "conv 2"
            elif k == 1:  # ResNet-9: block 2 has nothing after its pooling
                refine, name = nn.Identity(), "pool (no residual)"
            else:
                refine, name = Residual(width), "residual"
            layers.append(nn.ModuleDict({"widen": ConvBN(c_in, width), "refine": refine}))
            after.append(name)
            c_in = width
        self.blocks = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(c_in, n_classes, bias=False)
        self.score_scale = score_scale  # small initial scores: a calmer start for the softmax
        self.flip_tta = flip_tta  # in eval mode, average the scores of x and its mirror image
        self.feature_names = ["stem"]
        for k, name in enumerate(after, start=1):
            self.feature_names += [f"block {k} conv", f"block {k} pool", f"block {k} {name}"]
        self.feature_names += ["global max-pool", "class scores"]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output for x (B, 3, 32, 32), bottom to top, class scores last."""
        outputs = [self.stem(x)]  # (B, C0, 32, 32)
        for block in self.blocks:
            widened = block["widen"](outputs[-1])  # (B, Ck, S, S)
            pooled = F.max_pool2d(widened, 2)  # (B, Ck, S/2, S/2)
            outputs += [widened, pooled, block["refine"](pooled)]
        pooled = torch.amax(outputs[-1], dim=(2, 3))  # (B, C)
        scores = self.out(self.dropout(pooled)) * self.score_scale  # (B, n_classes)
        return [*outputs, pooled, scores]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.features(x)[-1]
        if self.flip_tta and not self.training:
            scores = 0.5 * (scores + self.features(x.flip(3))[-1])
        return scores
