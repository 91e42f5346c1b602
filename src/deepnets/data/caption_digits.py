"""Captioned digit scenes: 2 to 4 MNIST digits on a dark canvas, each with a caption that names
the digits and where they sit, and each digit's ink box kept so that attention can be checked.

A scene's canvas (`size` x `size`, at least 64) is cut into a 2 x 2 grid of cells; the digits
take distinct cells, each 28x28 digit at a random offset inside its cell, so no two overlap.
The caption reads the top row, then the bottom row, each left to right:

    one row              "a 7"  or  "a 7 left of a 2"
    both rows            "<top row> above <bottom row>"    e.g. "a 7 left of a 2 above a 5"

so "left of" joins the digits of one row and "above" the two rows; the caption fixes which
digit is where up to the column of a lone digit in its row. Digits are read in that order,
which is also the order of `labels` and `boxes`.

Scenes are generated in memory, deterministically from (split, count, size, seed): training
scenes from the first 55,000 MNIST training digits, validation scenes from the last 5,000, and
test scenes only from the 10,000 MNIST test digits (`sources` records which digit each one is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.data.mnist import FILES, read_idx
from deepnets.data.store import fetch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
WORDS = ("<pad>", "<s>", "</s>", "<unk>", "a", "left", "of", "above", *map(str, range(10)))
DIGIT_IDS = tuple(range(8, 18))  # the token id of digit d is 8 + d
MAX_DIGITS = 4
MNIST_VAL = 5000  # the last training digits, kept for validation scenes
SPLIT_SEEDS = {"train": 11, "val": 23, "test": 37}


@dataclass
class Scenes:
    """One split: images (N, 1, H, W) uint8, captions (N, T) ids padded with 0 (no start or
    end token), labels (N, 4) the digits in caption order (-1: none), boxes (N, 4, 4) each
    digit's ink box (top, left, bottom, right), inclusive pixel rows and columns (-1: none),
    sources (N, 4) the MNIST index of each digit in its file (-1: none)."""

    images: torch.Tensor
    captions: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    sources: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)

    def caption(self, i: int) -> str:
        return decode(self.captions[i].tolist())


def encode(words: list[str]) -> list[int]:
    index = {w: k for k, w in enumerate(WORDS)}
    return [index.get(w, UNK) for w in words]


def decode(ids: list[int]) -> str:
    """Words of ids, stopping at the end token; padding and the start token are skipped."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(WORDS[i] if 0 <= i < len(WORDS) else "<unk>")
    return " ".join(out)


def caption_words(cells: list[int], digits: list[int]) -> list[str]:
    """The caption of digits in cells (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right),
    given in reading order (cells increasing)."""
    rows: list[list[str]] = [[], []]
    for cell, digit in zip(cells, digits):
        row = rows[cell // 2]
        if row:
            row += ["left", "of"]
        row += ["a", str(digit)]
    return rows[0] + ["above"] + rows[1] if rows[0] and rows[1] else rows[0] + rows[1]


def mnist_digits() -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """{"train", "val", "test"}: (images (N, 28, 28) uint8, labels (N,), index of the first
    in its MNIST file)."""
    paths = fetch("mnist", list(FILES.values()))
    train_x = read_idx(paths[FILES["train_images"].name])
    train_y = read_idx(paths[FILES["train_labels"].name])
    test_x = read_idx(paths[FILES["test_images"].name])
    test_y = read_idx(paths[FILES["test_labels"].name])
    if train_x.shape != (60000, 28, 28) or test_x.shape != (10000, 28, 28):
        raise DeepnetsError(f"MNIST images have shapes {train_x.shape}, {test_x.shape}")
    cut = 60000 - MNIST_VAL
    return {
        "train": (train_x[:cut], train_y[:cut], 0),
        "val": (train_x[cut:], train_y[cut:], cut),
        "test": (test_x, test_y, 0),
    }


def make_scenes(
    digits: np.ndarray, labels: np.ndarray, count: int, size: int, seed: int, offset: int = 0
) -> Scenes:
    """`count` scenes of `size` x `size` from the given MNIST digits (N, 28, 28) uint8 (their
    indices in the file start at `offset`), drawn by `seed`."""
    if size < 64:
        raise DeepnetsError(f"scenes must be at least 64x64, got {size}")
    rng = np.random.default_rng(seed)
    cell = size // 2
    images = np.zeros((count, size, size), dtype=np.uint8)
    captions = np.zeros((count, 4 * MAX_DIGITS), dtype=np.int64)
    out_labels = np.full((count, MAX_DIGITS), -1, dtype=np.int64)
    boxes = np.full((count, MAX_DIGITS, 4), -1, dtype=np.int64)
    sources = np.full((count, MAX_DIGITS), -1, dtype=np.int64)
    for n in range(count):
        k = int(rng.integers(2, MAX_DIGITS + 1))
        cells = sorted(rng.choice(4, size=k, replace=False).tolist())
        picks = rng.integers(0, len(digits), size=k)
        for j, (c, p) in enumerate(zip(cells, picks)):
            top = (c // 2) * cell + int(rng.integers(0, cell - 28 + 1))
            left = (c % 2) * cell + int(rng.integers(0, cell - 28 + 1))
            patch = digits[p]
            region = images[n, top : top + 28, left : left + 28]
            np.maximum(region, patch, out=region)
            rows, cols = np.nonzero(patch > 0)
            boxes[n, j] = (top + rows.min(), left + cols.min(), top + rows.max(), left + cols.max())
            out_labels[n, j] = labels[p]
            sources[n, j] = offset + p
        ids = encode(caption_words(cells, [int(labels[p]) for p in picks]))
        captions[n, : len(ids)] = ids
    return Scenes(
        torch.from_numpy(images).unsqueeze(1),  # (N, 1, H, W)
        torch.from_numpy(captions),
        torch.from_numpy(out_labels),
        torch.from_numpy(boxes),
        torch.from_numpy(sources),
    )


def load_caption_digits(
    train: int = 20000, val: int = 1000, test: int = 2000, size: int = 64, seed: int = 0
) -> dict[str, Scenes]:
    """{"train", "val", "test"}: Scenes of each split, test scenes from MNIST test digits only.
    The scenes depend on `seed` (the data seed, not the training seed)."""
    mnist = mnist_digits()
    counts = {"train": train, "val": val, "test": test}
    out = {}
    for split, (x, y, offset) in mnist.items():
        out[split] = make_scenes(
            x, y, counts[split], size, SPLIT_SEEDS[split] + 1000 * seed, offset
        )
    return out


MEAN, STD = 0.1307, 0.3081  # as MNIST's (a scene is mostly background, so close enough)


def standardise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 1, H, W) -> float, standardised with MNIST's pixel statistics."""
    return images.float().div(255).sub(MEAN).div(STD)
