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
    train, val, test = _split(len(labels), val_size)
    mean, std = float(images[train].mean()), float(images[train].std())

    def split(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy((images[idx] - mean) / std).unsqueeze(1)  # (N, 1, 8, 8)
        return x, torch.from_numpy(labels[idx])

    return {"train": split(train), "val": split(val), "test": split(test)}


def _split(n: int, val_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed split's (train, val, test) indices: 20% test and `val_size` validation images
    drawn by seed 0."""
    order = np.random.default_rng(0).permutation(n)
    n_test = n // 5
    test, rest = order[:n_test], order[n_test:]
    return rest[val_size:], rest[:val_size], test


def read_image(path, val_size: int = 180) -> torch.Tensor:
    """An image file (a path or a file object) as one input (1, 1, 8, 8) standardised like the
    data set, made as its digits were: the ink scaled to fill a 32x32 bitmap, thresholded, and
    each 4x4 block's count of inked pixels (0-16) taken, divided by 16."""
    from deepnets.data.mnist import fit_ink, read_ink

    bitmap = fit_ink(read_ink(path), 32, 32) > 0.3  # (32, 32)
    counts = bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.float32) / 16  # (8, 8)
    images = _sklearn_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8)
    train = _split(len(images), val_size)[0]
    mean, std = float(images[train].mean()), float(images[train].std())
    return torch.from_numpy((counts - mean) / std)[None, None]  # (1, 1, 8, 8)
