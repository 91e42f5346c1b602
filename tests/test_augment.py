import dataclasses

import pytest
import torch
import torch.nn.functional as F
from conftest import needs_mnist

from deepnets.data.augment import (
    elastic_distort,
    gaussian_kernel,
    random_affine,
    random_translate,
    smooth,
)
from deepnets.experiments.mnist import LENET5_MNIST, distort
from deepnets.train import train_and_evaluate

BACKGROUND = -0.4242  # what MNIST's black is after standardisation


def digits_like(b: int = 16, seed: int = 0) -> torch.Tensor:
    """(B, 1, 28, 28): a bright ring of random radius on the standardised black background."""
    gen = torch.Generator().manual_seed(seed)
    r = torch.arange(28.0)
    dist = ((r[:, None] - 13.5) ** 2 + (r[None, :] - 13.5) ** 2).sqrt()  # (28, 28)
    radius = 5 + 3 * torch.rand(b, 1, 1, generator=gen)  # (B, 1, 1)
    ring = (1.5 - (dist - radius).abs()).clamp(0, 1)  # (B, 28, 28), 0-1 ink
    return (BACKGROUND + 2.8 * ring)[:, None]


def ink(x: torch.Tensor) -> torch.Tensor:
    return (x - BACKGROUND).sum((1, 2, 3))  # (B,) total brightness above the background


def test_no_displacement_and_no_affine_map_is_the_identity():
    x = digits_like()
    out = elastic_distort(x, 0.0, 4.0, torch.Generator().manual_seed(0))
    assert (out - x).abs().max() < 1e-5
    colour = torch.randn(3, 3, 20, 24)  # any channels, a non-square image
    out = elastic_distort(colour, 0.0, 2.0, torch.Generator().manual_seed(0))
    assert (out - colour).abs().max() < 1e-5


def test_shape_dtype_and_seeding():
    x = digits_like(8)
    args = (34.0, 4.0)
    kwargs = dict(rotate=10.0, scale=0.1, shear=0.15)
    a = elastic_distort(x, *args, torch.Generator().manual_seed(1), **kwargs)
    b = elastic_distort(x, *args, torch.Generator().manual_seed(1), **kwargs)
    c = elastic_distort(x, *args, torch.Generator().manual_seed(2), **kwargs)
    assert a.shape == x.shape and a.dtype == x.dtype == torch.float32
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 0.5
    assert (a - x).abs().max() > 0.5  # it does move the ink
    assert a.min() >= x.min() - 1e-6 and a.max() <= x.max() + 1e-6  # bilinear: no overshoot


def test_displacement_grows_with_alpha():
    # on a horizontal ramp (pixel value = column) a move of d columns changes a pixel by d
    ramp = torch.arange(28.0).expand(64, 1, 28, 28).contiguous()
    moved = []
    for alpha in (2.0, 8.0, 32.0):
        out = elastic_distort(ramp, alpha, 4.0, torch.Generator().manual_seed(0))
        moved.append(float((out - ramp)[..., 6:-6, 6:-6].abs().mean()))  # interior, in pixels
    assert moved[0] < moved[1] < moved[2]
    assert moved[1] == pytest.approx(4 * moved[0], rel=0.05)  # linear in alpha
    assert 0.3 < moved[2] < 3.0  # Simard's alpha ~34, sigma 4: displacements of a pixel or so


def test_digit_mass_is_roughly_preserved():
    x = digits_like(64)
    gen = torch.Generator().manual_seed(0)
    out = elastic_distort(x, 34.0, 4.0, gen, rotate=10.0, scale=0.1, shear=0.15)
    ratio = ink(out) / ink(x)  # (B,)
    assert 0.9 < float(ratio.mean()) < 1.1
    assert 0.6 < float(ratio.min()) and float(ratio.max()) < 1.4


def test_separable_smoothing_matches_a_2d_gaussian_convolution():
    kernel = gaussian_kernel(2.0)
    assert len(kernel) == 13 and float(kernel.sum()) == pytest.approx(1.0)
    field = torch.randn(5, 17, 23)
    reference = F.conv2d(field[:, None], torch.outer(kernel, kernel)[None, None], padding=6)
    assert torch.allclose(smooth(field, 2.0), reference[:, 0], atol=1e-6)


def test_random_affine_maps():
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(random_affine(4, gen), torch.eye(2).expand(4, 2, 2))
    rotations = random_affine(100, gen, rotate=10.0)
    det = torch.linalg.det(rotations)
    assert torch.allclose(det, torch.ones(100), atol=1e-6)  # a pure rotation keeps areas
    angles = torch.rad2deg(torch.atan2(rotations[:, 1, 0], rotations[:, 0, 0]))
    assert angles.abs().max() <= 10.0 and angles.abs().max() > 8.0


def test_the_hook_leaves_undistorted_presets_alone():
    x = digits_like(8)
    config = LENET5_MNIST.preset("small")  # max_shift 1, no distortion
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(distort(x, config, gen_a), random_translate(x, 1, gen_b))
    distorted = LENET5_MNIST.preset("distorted")
    assert distorted.alpha > 0 and distorted.rotate > 0
    assert (distort(x, distorted, gen_a) - x).abs().max() > 0.5


@needs_mnist
def test_tiny_run_with_distortions_learns(tmp_path):
    config = dataclasses.replace(
        LENET5_MNIST.preset("tiny"),
        alpha=34.0,
        sigma=4.0,
        rotate=10.0,
        scale=0.1,
        shear=0.15,
        epochs=3,
    )
    summary = train_and_evaluate(
        LENET5_MNIST, config, tmp_path, preset="tiny", progress=False, log=lambda s: None
    )
    assert summary["value"] > 0.85
