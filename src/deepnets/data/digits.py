"""The 8x8 handwritten digits that ship with scikit-learn (1,797 images): the embedded default.

No download: the data sit inside scikit-learn. A fixed split (seed 0) holds out 20% for test and
10% for validation.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits as _sklearn_digits


def load_digits(val_size: int = 180) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return {"train", "val", "test"}: (images (N, 1, 8, 8) float, standardised; labels (N,))."""
    bunch = _sklearn_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8), 0-1
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = len(labels) // 5
    test, rest = order[:n_test], order[n_test:]
    val, train = rest[:val_size], rest[val_size:]
    mean, std = images[train].mean(), images[train].std()

    def split(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy((images[idx] - mean) / std).unsqueeze(1)  # (N, 1, 8, 8)
        return x, torch.from_numpy(labels[idx])

    return {"train": split(train), "val": split(val), "test": split(test)}
