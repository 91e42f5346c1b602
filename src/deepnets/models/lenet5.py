"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition"): the convolutional network of the review's ConvNet section. Published: 0.95% test
error on MNIST (0.8% with distortions).

Deviations from the paper: the `modern` variant (default) uses ReLU units, max-pooling and a
linear softmax output trained with cross-entropy. The `classic` variant keeps the paper's scaled
tanh (1.7159 tanh(2x/3)) and trainable average-pooling subsampling (a coefficient and a bias per
map), but connects C3 to all S2 maps rather than the paper's hand-chosen table and replaces the
RBF output units by a linear layer with cross-entropy. Inputs are 28x28 MNIST digits padded to
32x32 by the first convolution's padding (the paper pads the images themselves).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Variant = Literal["modern", "classic"]


def scaled_tanh(z: torch.Tensor) -> torch.Tensor:
    return 1.7159 * torch.tanh(z * (2.0 / 3.0))  # LeCun et al. 1998, appendix A


class Subsample(nn.Module):
    """Classic S-layer: 2x2 average, times a trainable coefficient, plus a bias, per map."""

    def __init__(self, channels: int):
        super().__init__()
        self.coefficient = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 2) * 4  # sum of the 2x2 inputs, (B, C, H/2, W/2)
        return pooled * self.coefficient[:, None, None] + self.bias[:, None, None]


class LeNet5(nn.Module):
    """C1 conv -> S2 pool -> C3 conv -> S4 pool -> F5, F6 full -> output scores.

    Every unit computes y_j = f(sum_i w_ij y_i + b_j) over its receptive field; the kernel
    weights are shared across positions (a convolution), and pooling makes the maps coarser.
    """

    def __init__(
        self,
        variant: Variant = "modern",
        in_channels: int = 1,
        image_size: int = 28,
        channels: tuple[int, int] = (6, 16),
        kernel_size: int = 5,
        padding: tuple[int, int] = (2, 0),
        hidden: tuple[int, int] = (120, 84),
        n_classes: int = 10,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.variant = variant
        self.c1 = nn.Conv2d(in_channels, channels[0], kernel_size, padding=padding[0])
        self.c3 = nn.Conv2d(channels[0], channels[1], kernel_size, padding=padding[1])
        if variant == "classic":
            self.s2, self.s4 = Subsample(channels[0]), Subsample(channels[1])
        side = (image_size + 2 * padding[0] - kernel_size + 1) // 2
        side = (side + 2 * padding[1] - kernel_size + 1) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for this kernel and padding")
        self.f5 = nn.Linear(channels[1] * side * side, hidden[0])
        self.f6 = nn.Linear(hidden[0], hidden[1])
        self.out = nn.Linear(hidden[1], n_classes)
        self.dropout = dropout
        # the names of what `features` returns, in order
        self.feature_names = ["C1 conv", "S2 pool", "C3 conv", "S4 pool", "F5", "F6", "output"]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Modern: He initialisation for ReLU units. Classic: uniform +/- 2.4 / fan-in (paper)."""
        for layer in (self.c1, self.c3, self.f5, self.f6, self.out):
            if self.variant == "modern":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:
                fan_in = layer.weight[0].numel()
                nn.init.uniform_(layer.weight, -2.4 / fan_in, 2.4 / fan_in)
            nn.init.zeros_(layer.bias)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output for input x (B, C, H, W), bottom to top, class scores last."""
        act = F.relu if self.variant == "modern" else scaled_tanh
        pool = (lambda m: F.max_pool2d(m, 2)) if self.variant == "modern" else None
        c1 = act(self.c1(x))  # (B, 6, 28, 28)
        s2 = pool(c1) if pool else act(self.s2(c1))  # (B, 6, 14, 14)
        c3 = act(self.c3(s2))  # (B, 16, 10, 10)
        s4 = pool(c3) if pool else act(self.s4(c3))  # (B, 16, 5, 5)
        f5 = act(self.f5(s4.flatten(1)))  # (B, 16*5*5) -> (B, 120)
        f6 = act(self.f6(F.dropout(f5, self.dropout, self.training)))  # (B, 84)
        scores = self.out(F.dropout(f6, self.dropout, self.training))  # (B, n_classes)
        return [c1, s2, c3, s4, f5, f6, scores]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1]
