"""The recurrent attention model (RAM): Mnih, Heess, Graves & Kavukcuoglu, "Recurrent Models of
Visual Attention", NIPS 2014 (the review's ref. 99), and the small ConvNet it is compared with.

The model never sees the whole image. At each of T steps a glimpse sensor extracts a few
retina-like patches around a location, a recurrent core folds what it saw into its state, and a
location network picks where to look next. The class is read off the last state. Where to look
is a discrete, non-differentiable choice, so the location network is a stochastic policy
trained with REINFORCE (Williams 1992), the reward being 1 when the final class is right.

Deviations from the paper: by default (`reinforce_core=False`) the location and baseline networks
read the core state through a stop-gradient (the REINFORCE term trains only the location network;
the core and glimpse networks learn from the cross-entropy alone), a common stabilisation of the
hybrid loss; with `reinforce_core=True` the REINFORCE and baseline gradients also reach the core and
glimpse networks, as in the paper; locations are squashed by tanh, sampled with a fixed standard
deviation and clipped to the image; the first glimpse is at the centre; at test time the model
follows the policy's mean (one deterministic path) instead of sampling.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def retina(x: torch.Tensor, size: int, scales: int) -> tuple[int, list[torch.Tensor]]:
    """What the glimpse sensor reads from, made once per image: the zero padding, and per scale k
    the padded image averaged over every 2^k x 2^k window (stride 1; scale 0 is the image)."""
    pad = size * 2 ** (scales - 1) // 2 + 1
    maps = [F.pad(x, (pad, pad, pad, pad))]  # (B, C, H + 2 pad, W + 2 pad)
    for k in range(1, scales):
        # a 2^k window is four 2^(k-1) windows, d apart: three adds instead of a stride-1
        # avg_pool2d, whose cost grows with the window (and was most of a step's time)
        d, last = 2 ** (k - 1), maps[-1]
        maps.append(
            (last[..., :-d, :-d] + last[..., :-d, d:] + last[..., d:, :-d] + last[..., d:, d:]) / 4
        )
    return pad, maps


def glimpse(
    x: torch.Tensor,
    loc: torch.Tensor,
    size: int,
    scales: int,
    views: tuple[int, list[torch.Tensor]] | None = None,
) -> torch.Tensor:
    """The glimpse sensor rho(x, l): `scales` square patches centred at `loc`, of sides size,
    2 size, 4 size, ..., each averaged down to size x size; zeros beyond the image.

    x (B, C, H, W); loc (B, 2) as (row, column) in [-1, 1], -1 the top or left edge and +1 the
    bottom or right edge, so pixel coordinate c = (l + 1) / 2 * H; a patch of side s covers the
    s pixels from floor(c - s / 2 + 1/2). `views` is `retina(x, size, scales)` when the caller
    has it. Returns (B, scales, C, size, size)."""
    b, c, h, w = x.shape
    pad, maps = views if views is not None else retina(x, size, scales)
    unit = (loc.detach().clamp(-1, 1) + 1) / 2  # (B, 2) in [0, 1]
    centre = torch.stack([unit[:, 0] * h, unit[:, 1] * w], 1)  # (B, 2) in pixels
    patches = []
    for k, view in enumerate(maps):
        side, cell = size * 2**k, 2**k
        start = torch.floor(centre - side / 2 + 0.5).long() + pad  # (B, 2) in the padded image
        offsets = torch.arange(size, device=x.device) * cell  # the cells' top-left corners
        rows, cols = start[:, 0:1] + offsets, start[:, 1:2] + offsets  # (B, size) each
        flat = rows[:, :, None] * view.shape[-1] + cols[:, None, :]  # (B, size, size)
        index = flat.reshape(b, 1, size * size).expand(b, c, size * size)
        patch = view.flatten(2).gather(2, index)  # (B, C, size^2): each cell's mean
        patches.append(patch.reshape(b, c, size, size))
    return torch.stack(patches, 1)  # (B, scales, C, size, size)


class Trajectory(NamedTuple):
    logits: torch.Tensor  # (B, classes) from the last state
    log_probs: torch.Tensor  # (B, T - 1) log pi(l_t | h_t) of each chosen location
    baselines: torch.Tensor  # (B, T - 1) b_t, the predicted reward
    locations: torch.Tensor  # (B, T, 2) where each glimpse looked, (row, column) in [-1, 1]


class RAM(nn.Module):
    """Glimpse network, core, location network, baseline and classifier:

        h_g = ReLU(W_g rho(x, l_{t-1}))   h_l = ReLU(W_l l_{t-1})
        g_t = ReLU(W_hg h_g + W_hl h_l)                                  (glimpse network)
        h_t = ReLU(W_hh h_{t-1} + W_gh g_t)   or   LSTM(g_t, h_{t-1})      (core)
        l_t ~ N(tanh(W_loc h_t), sigma^2 I)                             (location policy)
        b_t = W_b h_t                                                   (baseline)
        p(y | x) = softmax(W_a h_T)                                     (classifier)

    The first glimpse is at the centre (l_0 = 0); T glimpses choose T - 1 locations."""

    def __init__(
        self,
        glimpses: int = 6,
        glimpse_size: int = 8,
        scales: int = 1,
        channels: int = 1,
        glimpse_hidden: int = 128,
        location_hidden: int = 128,
        glimpse_features: int = 256,
        hidden: int = 256,
        core: str = "rnn",
        std: float = 0.1,
        classes: int = 10,
        reinforce_core: bool = False,
    ):
        super().__init__()
        if glimpses < 1 or glimpse_size < 1 or scales < 1 or std <= 0:
            raise ValueError("glimpses, glimpse_size and scales must be >= 1 and std > 0")
        if core not in ("rnn", "lstm"):
            raise ValueError(f"core must be rnn or lstm, not {core!r}")
        self.glimpses, self.size, self.scales, self.std = glimpses, glimpse_size, scales, std
        self.reinforce_core = reinforce_core
        self.what = nn.Linear(scales * channels * glimpse_size**2, glimpse_hidden)  # W_g
        self.where = nn.Linear(2, location_hidden)  # W_l
        self.what_out = nn.Linear(glimpse_hidden, glimpse_features)  # W_hg
        self.where_out = nn.Linear(location_hidden, glimpse_features)  # W_hl
        self.core_kind, self.hidden = core, hidden
        if core == "lstm":
            self.core = nn.LSTMCell(glimpse_features, hidden)
        else:
            self.core = nn.Linear(glimpse_features, hidden)  # W_gh
            self.recur = nn.Linear(hidden, hidden)  # W_hh
        self.locate = nn.Linear(hidden, 2)  # W_loc
        self.baseline = nn.Linear(hidden, 1)  # W_b
        self.classify = nn.Linear(hidden, classes)  # W_a

    def glimpse_features(self, x: torch.Tensor, loc: torch.Tensor, views=None) -> torch.Tensor:
        """g_t for images x (B, C, H, W) at locations loc (B, 2): (B, glimpse_features)."""
        seen = glimpse(x, loc, self.size, self.scales, views).flatten(1)  # (B, scales C size^2)
        h_g = F.relu(self.what(seen))  # h_g = ReLU(W_g rho)
        h_l = F.relu(self.where(loc))  # h_l = ReLU(W_l l)
        return F.relu(self.what_out(h_g) + self.where_out(h_l))  # g = ReLU(W_hg h_g + W_hl h_l)

    def forward(
        self, x: torch.Tensor, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> Trajectory:
        """Run the T glimpses over images x (B, C, H, W). Locations are sampled from the policy
        when `sample` (default: in training mode), its noise from `generator` (default: the
        global RNG), else its mean is followed."""
        sample = self.training if sample is None else sample
        b = x.shape[0]
        loc = x.new_zeros(b, 2)  # l_0: the centre
        h = x.new_zeros(b, self.hidden)
        cell = x.new_zeros(b, self.hidden)
        locations, log_probs, baselines = [loc], [], []
        views = retina(x, self.size, self.scales)  # padded and averaged once, read T times
        for t in range(self.glimpses):
            g = self.glimpse_features(x, loc, views)
            if self.core_kind == "lstm":
                h, cell = self.core(g, (h, cell))
            else:
                h = F.relu(self.recur(h) + self.core(g))  # h_t = ReLU(W_hh h_{t-1} + W_gh g_t)
            if t == self.glimpses - 1:
                break
            policy_in = h if self.reinforce_core else h.detach()
            mean = torch.tanh(self.locate(policy_in))  # the policy's mean, (B, 2)
            if sample:
                noise = torch.randn(
                    mean.shape, generator=generator, dtype=mean.dtype, device=mean.device
                )
                loc = mean + self.std * noise
            else:
                loc = mean
            loc = loc.detach().clamp(-1, 1)  # l_t ~ N(mean, std^2), inside the image
            log_probs.append(gaussian_log_prob(loc, mean, self.std))  # log pi(l_t | h_t)
            baselines.append(self.baseline(policy_in)[:, 0])  # b_t = W_b h_t
            locations.append(loc)
        empty = x.new_zeros(b, 0)
        return Trajectory(
            self.classify(h),  # p(y | x) = softmax(W_a h_T)
            torch.stack(log_probs, 1) if log_probs else empty,
            torch.stack(baselines, 1) if baselines else empty,
            torch.stack(locations, 1),
        )


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x; mean, std^2 I) summed over the last dimension: (B,)."""
    z = (x - mean) / std
    return (-0.5 * z**2 - torch.log(torch.tensor(std * (2 * torch.pi) ** 0.5))).sum(-1)


def hybrid_loss(out: Trajectory, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy + REINFORCE + baseline regression (the paper's hybrid loss), and its parts.

    R = 1 if argmax p(y | x) is the label, else 0 (one reward, at the end). REINFORCE ascends
    sum_t log pi(l_t) (R - b_t): its loss is the negative, with R - b_t held constant; the
    baseline b_t regresses R by squared error."""
    ce = F.cross_entropy(out.logits, y)
    reward = (out.logits.detach().argmax(1) == y).float()  # R, (B,)
    advantage = reward[:, None] - out.baselines.detach()  # R - b_t, (B, T - 1)
    reinforce = -(out.log_probs * advantage).sum(1).mean()
    baseline = F.mse_loss(out.baselines, reward[:, None].expand_as(out.baselines))
    parts = {"ce": ce.detach(), "reinforce": reinforce.detach(), "reward": reward.mean()}
    return ce + reinforce + baseline, parts  # the parts as tensors: no device sync here


class ClutterConvNet(nn.Module):
    """The paper's ConvNet baseline: one layer of `maps` k x k filters with stride s and ReLU,
    a fully connected ReLU layer, and a softmax output (sec. 4.1: 8 10x10 filters, stride 5,
    256 hidden units)."""

    def __init__(
        self,
        image_size: int = 60,
        maps: int = 8,
        kernel: int = 10,
        stride: int = 5,
        hidden: int = 256,
        channels: int = 1,
        classes: int = 10,
    ):
        super().__init__()
        if kernel > image_size:
            raise ValueError(f"kernel {kernel} is larger than the image ({image_size})")
        side = (image_size - kernel) // stride + 1
        self.conv = nn.Conv2d(channels, maps, kernel, stride)
        self.fc = nn.Linear(maps * side * side, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x)).flatten(1)  # (B, maps * side * side)
        return self.out(F.relu(self.fc(h)))  # (B, classes)
