"""Training-data generators on tensors (no torchvision): random translations, mirror images,
cutout (DeVries & Taylor 2017), and elastic distortions with small random affine maps (Simard,
Steinkraus & Platt 2003)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F


def random_translate(
    x: torch.Tensor,
    max_shift: int,
    generator: torch.Generator,
    padding: Literal["background", "reflect"] = "background",
) -> torch.Tensor:
    """Shift each image of x (B, C, H, W) by up to max_shift pixels in each direction.

    Pads by max_shift, then crops an HxW window at a random offset per image. "background" pads
    with the batch minimum (zero after standardisation is not black; for digits the minimum is
    the background); "reflect" mirrors the border, the usual padded crop for natural images.
    """
    if max_shift <= 0:
        return x
    b, c, h, w = x.shape
    if padding == "reflect":
        padded = F.pad(x, (max_shift,) * 4, mode="reflect")  # (B, C, H+2s, W+2s)
    else:
        padded = F.pad(x, (max_shift,) * 4, value=float(x.min()))
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator).to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of x (B, C, H, W) left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)  # (B,)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a size x size square of every image of x (B, C, H, W), in all channels.

    Each square's centre is uniform over the image, so near a border only part of the square
    falls inside it (DeVries & Taylor 2017). On standardised images zero is the mean colour.
    """
    if size <= 0:
        return x
    b, _, h, w = x.shape
    rows_at = torch.randint(0, h, (b,), generator=generator)
    cols_at = torch.randint(0, w, (b,), generator=generator)
    centres = torch.stack([rows_at, cols_at]).to(x.device)  # (2, B)
    low = centres - size // 2  # (2, B): the square's first row and column, maybe outside
    rows = torch.arange(h, device=x.device)  # (H,)
    cols = torch.arange(w, device=x.device)  # (W,)
    inside_rows = (rows >= low[0, :, None]) & (rows < low[0, :, None] + size)  # (B, H)
    inside_cols = (cols >= low[1, :, None]) & (cols < low[1, :, None] + size)  # (B, W)
    square = inside_rows[:, :, None] & inside_cols[:, None, :]  # (B, H, W)
    return x.masked_fill(square[:, None], 0.0)


def random_time_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each sequence of frames x (B, T, F) by up to max_shift frames either way, filling
    with zeros (the normalised mean, which is also the padding of fixed-length utterances)."""
    if max_shift <= 0:
        return x
    b, t, _ = x.shape
    padded = F.pad(x, (0, 0, max_shift, max_shift))  # (B, T + 2s, F)
    offsets = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator).to(x.device)
    rows = offsets[:, None] + torch.arange(t, device=x.device)  # (B, T)
    return padded[torch.arange(b, device=x.device)[:, None], rows]  # (B, T, F)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of std `sigma`, truncated at 3 sigma: (2r+1,) with r=ceil(3s)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of field (N, H, W), separable: a 1-D convolution along rows, then columns.

    Each row (and then each column) of every map is one sequence of a batched conv1d, zero-padded
    at the borders (so the field weakens near the edges, where MNIST digits have no ink).
    """
    if sigma <= 0:
        return field
    kernel = gaussian_kernel(sigma).to(field)[None, None]  # (1, 1, K)
    pad = kernel.shape[-1] // 2
    n, h, w = field.shape
    rows = F.conv1d(field.reshape(n * h, 1, w), kernel, padding=pad)  # (N*H, 1, W)
    cols = rows.reshape(n, h, w).transpose(1, 2).reshape(n * w, 1, h)  # (N*W, 1, H)
    cols = F.conv1d(cols, kernel, padding=pad)  # (N*W, 1, H)
    return cols.reshape(n, w, h).transpose(1, 2)  # (N, H, W)


def random_affine(
    b: int,
    generator: torch.Generator,
    rotate: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> torch.Tensor:
    """(B, 2, 2) random linear maps on centred coordinates: rotation by up to `rotate` degrees,
    independent x and y scale factors in [1 - scale, 1 + scale], shear up to `shear` (x += s y)."""

    def uniform(amount: float) -> torch.Tensor:  # (B,) uniform in [-amount, amount]
        return (2 * torch.rand(b, generator=generator) - 1) * amount

    angle = torch.deg2rad(uniform(rotate))
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    sx, sy = 1 + uniform(scale), 1 + uniform(scale)
    zero, one = torch.zeros(b), torch.ones(b)
    scaling = torch.stack([torch.stack([sx, zero], -1), torch.stack([zero, sy], -1)], -2)
    shearing = torch.stack(
        [torch.stack([one, uniform(shear)], -1), torch.stack([zero, one], -1)], -2
    )
    return rotation @ shearing @ scaling  # (B, 2, 2)


def elastic_distort(
    x: torch.Tensor,
    alpha: float,
    sigma: float,
    generator: torch.Generator,
    rotate: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> torch.Tensor:
    """Elastic distortion of each image of x (B, C, H, W) (Simard, Steinkraus & Platt 2003).

    Per image, displacement fields dx, dy are drawn uniform in [-1, 1] at every pixel, smoothed
    by a Gaussian of std `sigma` pixels and scaled by `alpha` (in pixels), optionally on top of a
    small random affine map (rotation, scale, shear about the centre, in coordinates scaled to
    [-1, 1]: a true rotation for square images), as in later MNIST work (Ciresan et al. 2010).
    The output pixel at (i, j) is the input bilinearly sampled at the moved position

        (i, j) -> A (i - c, j - c) + c + alpha * (G_sigma * (dy, dx))(i, j)

    Outside the image the background (the batch minimum: zero after standardisation is not
    black) is sampled. With alpha = 0 and no affine part the output equals the input.
    """
    b, c, h, w = x.shape
    # all random draws on the CPU generator, then moved: the same seed gives the same images
    field = 2 * torch.rand(b * 2, h, w, generator=generator) - 1  # (2B, H, W) in [-1, 1]
    field = alpha * smooth(field, sigma)  # (2B, H, W) pixels
    linear = random_affine(b, generator, rotate, scale, shear)  # (B, 2, 2)
    # the grid and the resampling in float64: in float32 the identity map alone is off by ~1e-5
    dev, f64 = x.device, torch.float64
    field, linear = field.to(dev, f64), linear.to(dev, f64)
    ys = torch.linspace(-1, 1, h, device=dev, dtype=f64)
    xs = torch.linspace(-1, 1, w, device=dev, dtype=f64)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    grid = torch.einsum("bij,hwj->bhwi", linear, base)  # (B, H, W, 2) affine map of the grid
    displacement = field.reshape(b, 2, h, w).permute(0, 2, 3, 1)  # (B, H, W, 2) pixels, (dx, dy)
    pixel = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=dev, dtype=f64)
    grid = grid + displacement * pixel  # pixels -> [-1, 1] units (align_corners=True)
    background = x.min()
    shifted = (x - background).to(f64)  # (B, C, H, W), background 0: what "zeros" pads with
    moved = F.grid_sample(shifted, grid, "bilinear", "zeros", align_corners=True)
    return (moved + background).to(x.dtype)  # (B, C, H, W)
