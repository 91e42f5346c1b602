"""Time-delay neural network (Waibel, Hanazawa, Hinton, Shikano & Lang 1989, "Phoneme recognition
using time-delay neural networks"; the review's refs 47-48): the speech ConvNet. Each unit sees a
short window of frames, and the same weights are applied at every time step, so a unit detects
its pattern wherever it occurs in time; the last layer integrates the evidence over the whole
utterance. Here it classifies spoken digits (Free Spoken Digit Dataset).

Deviations from the paper: the units are ReLUs with batch normalisation, max-pooling over time
halves the frame rate between layers, and the integration over time is a mean and a max over
the remaining frames (the paper sums the squared outputs of its last layer), followed by a
linear softmax layer trained with cross-entropy and dropout. The input is 40 log-mel bands per
10 ms frame (the paper: 16 mel-scale spectral coefficients per 10 ms).
"""

from __future__ import annotations

import torch
from torch import nn


class TDNN(nn.Module):
    """Frames x (B, T, F) -> digit scores (B, n_classes).

    Layer l: h_l[t] = pool(ReLU(BN(sum_{k=0}^{K-1} W_{l,k} h_{l-1}[t + k - K//2] + b_l)))
    (a 1-D convolution over time with kernel K: the "time delays" 0..K-1 share W across t),
    then z = [mean_t h_L[t]; max_t h_L[t]], scores = V dropout(z) + c.
    """

    def __init__(
        self,
        n_features: int = 40,
        channels: tuple[int, ...] = (64, 128, 128),
        kernel_sizes: tuple[int, ...] = (5, 3, 3),
        n_classes: int = 10,
        dropout: float = 0.2,
        pool: int = 2,
    ):
        super().__init__()
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError(
                f"channels {channels} and kernel_sizes {kernel_sizes} need the same, nonzero length"
            )
        layers: list[nn.Module] = []
        width = n_features
        for i, (out, k) in enumerate(zip(channels, kernel_sizes)):
            layers += [
                nn.Conv1d(width, out, k, padding=k // 2, bias=False),  # W_l * h_{l-1} (BN: bias)
                nn.BatchNorm1d(out),
                nn.ReLU(),
            ]
            if pool > 1 and i < len(channels) - 1:
                layers.append(nn.MaxPool1d(pool))  # halve the frame rate
            width = out
        self.layers = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's maps, (B, C_L, T / pool^(L-1))."""
        return self.layers(x.transpose(1, 2))  # (B, T, F) -> (B, F, T) -> (B, C_L, T')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, C_L, T')
        z = torch.cat([h.mean(2), h.amax(2)], dim=1)  # integrate over time: (B, 2 C_L)
        return self.out(self.dropout(z))  # (B, n_classes)
