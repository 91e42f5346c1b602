"""Training-data generators on tensors (no torchvision): random translations and flips."""

from __future__ import annotations

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
