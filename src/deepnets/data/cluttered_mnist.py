"""Translated and cluttered MNIST (Mnih et al. 2014, sec. 4.1), made here from MNIST in memory.

Each example is an MNIST digit placed at a random position of a larger empty canvas (60x60 in
the paper), with `pieces` random 8x8 patches cut from other digits of the same split pasted at
random positions (the clutter). Pixels are on the 0-1 scale (background 0), not standardised:
zero is then both the background and what a glimpse sees beyond the border.

The clutter of a split comes only from digits of that split: the test images' clutter is cut
from test digits, the training images' from training digits. Everything is drawn from a
`torch.Generator`, so a seed fixes the data set; nothing is written to disk. Building a split is
a few vectorised index operations (10,000 60x60 images in well under a second).
"""

from __future__ import annotations

import torch

from deepnets import DeepnetsError
from deepnets.data import mnist

DIGIT = 28  # the side of an MNIST digit


def unit_scale(x: torch.Tensor) -> torch.Tensor:
    """MNIST as `load_mnist` gives it (standardised) back on the 0-1 scale."""
    return (x * mnist.STD + mnist.MEAN).clamp_(0, 1)


def paste(
    canvas: torch.Tensor, patches: torch.Tensor, top: torch.Tensor, left: torch.Tensor
) -> None:
    """Add patches (N, h, w) into canvas (N, H, W) at rows top (N,) and columns left (N,), in
    place; the sum is clipped to 1 (overlapping strokes stay ink, never brighter)."""
    n, h, w = patches.shape
    dev = canvas.device
    rows = top.to(dev)[:, None, None] + torch.arange(h, device=dev)[None, :, None]  # (N, h, 1)
    cols = left.to(dev)[:, None, None] + torch.arange(w, device=dev)[None, None, :]  # (N, 1, w)
    which = torch.arange(n, device=dev)[:, None, None]  # (N, 1, 1)
    canvas.index_put_((which, rows, cols), patches, accumulate=True)
    canvas.clamp_(max=1)


def clutter(
    digits: torch.Tensor,
    sources: torch.Tensor,
    size: int,
    pieces: int,
    generator: torch.Generator,
    patch: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place each digit (N, 1, 28, 28), 0-1 scale, at a random position of a size x size canvas
    and add `pieces` patch x patch pieces cut at random from random `sources` (M, 1, 28, 28).
    When `sources` is `digits` itself, a digit's pieces come from the other digits only.

    Returns the images (N, 1, size, size) and the digits' top-left corners (N, 2) as
    (row, column)."""
    if digits.ndim != 4 or digits.shape[1:] != (1, DIGIT, DIGIT):
        raise DeepnetsError(f"digits must be (N, 1, 28, 28), got {tuple(digits.shape)}")
    if size < DIGIT:
        raise DeepnetsError(f"the canvas ({size}) must be at least as large as a digit (28)")
    if not 1 <= patch <= DIGIT:
        raise DeepnetsError(f"clutter patches must be 1 to 28 pixels wide, got {patch}")
    if pieces > 0 and len(sources) == 0:
        raise DeepnetsError("clutter needs at least one source digit")
    n, dev = len(digits), digits.device
    canvas = torch.zeros(n, size, size, device=dev)
    for _ in range(pieces):
        if sources is digits and n > 1:  # any digit but the example's own
            pick = (torch.arange(n) + 1 + torch.randint(n - 1, (n,), generator=generator)) % n
        else:
            pick = torch.randint(len(sources), (n,), generator=generator)
        r, c = (torch.randint(DIGIT - patch + 1, (n,), generator=generator) for _ in range(2))
        rows = r[:, None, None] + torch.arange(patch)[None, :, None]  # (N, patch, 1)
        cols = c[:, None, None] + torch.arange(patch)[None, None, :]  # (N, 1, patch)
        which, rows, cols = (t.to(sources.device) for t in (pick[:, None, None], rows, cols))
        cut = sources[which, 0, rows, cols].to(dev)  # (N, patch, patch)
        top, left = (torch.randint(size - patch + 1, (n,), generator=generator) for _ in range(2))
        paste(canvas, cut, top, left)
    corner = torch.randint(size - DIGIT + 1, (n, 2), generator=generator)  # (N, 2): row, col
    paste(canvas, digits[:, 0], corner[:, 0], corner[:, 1])
    return canvas[:, None], corner  # (N, 1, size, size)


def clutter_batch(
    digits: torch.Tensor, size: int, pieces: int, generator: torch.Generator
) -> torch.Tensor:
    """A training batch of plain digits (B, 1, 28, 28) placed and cluttered anew, the clutter
    cut from the batch's other digits (training digits only); unchanged at size 28 without
    clutter."""
    if size == DIGIT and pieces == 0:
        return digits
    return clutter(digits, digits, size, pieces, generator)[0]


def load_cluttered(
    val_size: int, size: int = 60, pieces: int = 4, seed: int = 0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train", "val", "test"}: (images (N, 1, size, size) 0-1, labels (N,)). The training split
    keeps the plain 28x28 digits (0-1 scale; a task places and clutters them anew each epoch);
    validation and test are cluttered once from a generator seeded by `seed`, each with pieces
    of its own split's digits only. size 28 with no pieces is plain MNIST on the 0-1 scale."""
    splits = mnist.load_mnist(val_size)
    out = {name: (unit_scale(x), y) for name, (x, y) in splits.items()}
    if size == DIGIT and pieces == 0:
        return out
    for k, name in enumerate(("val", "test")):
        x, y = out[name]
        generator = torch.Generator().manual_seed(seed * 1_000_003 + 101 + k)
        out[name] = (clutter(x, x, size, pieces, generator)[0], y) if len(y) else (x, y)
    return out
