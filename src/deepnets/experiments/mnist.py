"""The MNIST-family experiments: `mlp-mnist` (a multilayer net, Fig. 1), `lenet5-mnist` (LeNet-5)
and `convnet-digits` (the small ConvNet of the embedded demo, on scikit-learn's 8x8 digits), with
their configs, data glue, model builders and augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepnets.config import ClassifierConfig, ImageClassifierConfig, Range, TrainConfig, check
from deepnets.data import mnist
from deepnets.data.augment import elastic_distort, random_translate
from deepnets.data.batching import take_train_subset
from deepnets.experiments.base import ACCURACY, TRAIN_SCORES, Experiment, Published, Splits
from deepnets.train.classify import Classify

# --- mlp-mnist -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPMnistConfig(ClassifierConfig):
    hidden: tuple[int, ...] = check((800, 800), items=Range(ge=1))  # hidden layer sizes
    activation: Literal["relu", "tanh", "logistic"] = "relu"  # hidden (and squared-error) units
    loss: Literal["cross_entropy", "squared_error"] = "cross_entropy"  # output loss
    dropout: float = check(0.5, ge=0, lt=1)  # dropout on hidden units
    input_dropout: float = check(0.2, ge=0, lt=1)  # dropout on input pixels
    max_shift: int = check(
        2, ge=0, le=27
    )  # random translation of training images, in pixels (0: off)
    init: Literal["pytorch", "glorot"] = "pytorch"  # weight initialisation rule (models.mlp)


def _read_mnist_image(path: str, config: TrainConfig) -> torch.Tensor:
    return mnist.read_image(path)


def _read_digits_image(path: str, config: TrainConfig) -> torch.Tensor:
    from deepnets.data.digits import read_image

    return read_image(path, config.val_size)  # type: ignore[attr-defined]


def mnist_splits(config: TrainConfig) -> Splits:
    from deepnets.data.mnist import load_mnist

    return take_train_subset(load_mnist(config.val_size), config.train_subset)


def _shift(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    return random_translate(x, config.max_shift, generator)  # type: ignore[attr-defined]


def build_mlp(config: MLPMnistConfig, in_features: int = 784) -> nn.Module:
    from deepnets.models.mlp import MLP

    sizes = (in_features, *config.hidden, 10)
    return MLP(
        sizes, config.activation, config.loss, config.dropout, config.input_dropout, config.init
    )


# The claims' experiments (deepnets.claims) on MNIST: plain nets (no dropout, distortion or
# weight decay unless a preset says so) that also score their training split and record the
# steps to a fixed training loss and validation error.
_PLAIN = dict(
    dropout=0.0,
    max_shift=0,
    weight_decay=0.0,
    score_train=True,
)
# Claim 1: six hidden layers of 128 units of one type, Glorot's initialisation for all, SGD with
# momentum at a constant rate tuned per unit type: the best validation error after 2 epochs over
# 0.01, 0.03, 0.1, 0.3 and 1 (ReLU and tanh: 0.03; ReLU diverged from 0.3, tanh from 0.3). No
# rate moved the logistic net off chance in 2 epochs; it keeps 0.1, the middle of the range.
_DEEP = dict(
    _PLAIN,
    input_dropout=0.0,
    hidden=(128,) * 6,
    init="glorot",
    epochs=10,
    batch_size=128,
    schedule="constant",
    warmup=0.0,
    evals_per_epoch=4,
    log_every=10,
    target_loss=0.1,
    target_error=0.03,
)
DEEP_LR = {"relu": 0.03, "tanh": 0.03, "logistic": 0.1}
# Claim 2: one hidden layer of growing width on 10,000 training images; the last weights are
# tested (SGD's end point, not an early-stopped one).
WIDTHS = (5, 10, 25, 100, 250, 1000)
_WIDTH = dict(
    _PLAIN,
    input_dropout=0.0,
    train_subset=10_000,
    epochs=20,
    batch_size=100,
    lr=0.05,
    schedule="constant",
    warmup=0.0,
    select="last",
)
# Claims 3 and 5: 10,000 training images, 30 epochs, the last weights tested.
_10K = dict(_PLAIN, train_subset=10_000, epochs=30, select="last", target_error=0.03)


MLP_MNIST = Experiment(
    id="mlp-mnist",
    title="Multilayer net trained by backprop + SGD (Fig. 1)",
    presets={
        "tiny": MLPMnistConfig(
            hidden=(64,),
            epochs=2,
            batch_size=64,
            train_subset=2000,
            val_size=1000,
            dropout=0.0,
            input_dropout=0.0,
            max_shift=0,
            lr=0.05,
            log_every=10,
        ),
        "small": MLPMnistConfig(epochs=30, batch_size=128, lr=0.05, weight_decay=0.0),
        "paper": MLPMnistConfig(
            hidden=(800,),
            activation="logistic",
            dropout=0.0,
            input_dropout=0.0,
            max_shift=0,
            epochs=50,
            lr=0.5,
            momentum=0.0,
            nesterov=False,
            schedule="step",
            step_every=20,
            step_gamma=0.3,
            weight_decay=0.0,
            warmup=0.0,
            batch_size=32,
        ),
        **{
            f"deep-{unit}": MLPMnistConfig(**_DEEP, activation=unit, lr=lr)
            for unit, lr in DEEP_LR.items()
        },
        **{f"width-{n}": MLPMnistConfig(**_WIDTH, hidden=(n,)) for n in WIDTHS},
        "10k": MLPMnistConfig(**_10K, input_dropout=0.0),
        "10k-dropout": MLPMnistConfig(**{**_10K, "dropout": 0.5, "input_dropout": 0.2}),
        # as many weights as LeNet-5 (62,020 against 61,706)
        "10k-matched": MLPMnistConfig(**_10K, input_dropout=0.0, hidden=(78,)),
    },
    load_data=mnist_splits,
    build_model=build_mlp,
    task=Classify(_shift),
    headline=("small", "paper"),
    class_names=mnist.CLASS_NAMES,
    read_image=_read_mnist_image,
    published=Published(1 - 0.016, "1.6% test error, 800 hidden units", "Simard et al. 2003"),
    metrics=(ACCURACY, *TRAIN_SCORES),
    notes=(
        "`small` is 784-800-800-10 with ReLU, dropout (0.2 input, 0.5 hidden) and random "
        "translations of up to 2 pixels; the published 1.6% is one hidden layer of 800 units "
        "without distortions (the `paper` preset).",
        "`deep-*`, `width-*` and `10k*` are the experiments of the review's claims 1, 2, 3 and 5 "
        "(`deepnets claims`); the published number does not apply to them.",
    ),
)


# --- lenet5-mnist and the demo ConvNet on the scikit-learn digits -----------------------------


@dataclass(frozen=True)
class LeNet5Config(ImageClassifierConfig):
    variant: Literal["modern", "classic"] = "modern"  # ReLU + max-pool, or scaled tanh + subsample
    channels: tuple[int, int] = check((6, 16), items=Range(ge=1))  # feature maps of C1 and C3
    kernel_size: int = check(5, ge=1)  # convolution kernel side
    padding: tuple[int, int] = check((2, 0), items=Range(ge=0))  # zero padding of C1 and C3
    hidden: tuple[int, int] = check((120, 84), items=Range(ge=1))  # units of F5 and F6
    dropout: float = check(0.0, ge=0, lt=1)  # dropout before F6 and the output
    max_shift: int = check(
        0, ge=0, le=27
    )  # random translation of training images, in pixels (0: off)
    alpha: float = check(0.0, ge=0)  # elastic distortion: displacement scale in pixels (0: off)
    sigma: float = check(
        4.0, gt=0
    )  # elastic distortion: std of the Gaussian smoothing the field, pixels
    rotate: float = check(
        0.0, ge=0, le=180
    )  # random rotation of training images, up to this many degrees (0: off)
    scale: float = check(
        0.0, ge=0, lt=1
    )  # random x and y scale factors in [1 - scale, 1 + scale] (0: off)
    shear: float = check(0.0, ge=0)  # random horizontal shear x += s * y, s up to this (0: off)


def distort(x: torch.Tensor, config: LeNet5Config, generator: torch.Generator) -> torch.Tensor:
    """Random translation, then elastic distortion with a random affine map, where switched on."""
    x = random_translate(x, config.max_shift, generator)
    if config.alpha > 0 or config.rotate > 0 or config.scale > 0 or config.shear > 0:
        x = elastic_distort(
            x, config.alpha, config.sigma, generator, config.rotate, config.scale, config.shear
        )
    return x


def build_lenet5(config: LeNet5Config, image_size: int = 28) -> nn.Module:
    from deepnets.models.lenet5 import LeNet5

    return LeNet5(
        config.variant,
        1,
        image_size,
        config.channels,
        config.kernel_size,
        config.padding,
        config.hidden,
        10,
        config.dropout,
    )


LENET5_MNIST = Experiment(
    id="lenet5-mnist",
    title="LeNet-5 convolutional net (ConvNets, refs 41-42)",
    presets={
        "tiny": LeNet5Config(
            epochs=2,
            batch_size=64,
            train_subset=2000,
            val_size=1000,
            lr=0.05,
            log_every=10,
        ),
        "small": LeNet5Config(epochs=8, batch_size=128, lr=0.05, warmup=0.1, max_shift=1),
        # The speed benchmark's preset: shortest schedule that reaches 99.0% on every seed, on
        # all 60,000 training images like the reference it is timed against (no validation
        # split). Without shifts, 4 epochs gave 98.94% on seed 0; with 1-pixel shifts 3 do.
        "fast": LeNet5Config(
            epochs=3, batch_size=128, lr=0.05, warmup=0.1, max_shift=1, val_size=0
        ),
        "paper": LeNet5Config(variant="classic", epochs=20, batch_size=32, lr=0.02),
        # Simard et al. 2003's elastic distortions (alpha 34, sigma 4) on top of small random
        # rotations, scalings and shears, on a widened LeNet-5 without dropout (the distortions
        # regularise enough), trained on all 60,000 images (as Simard et al.) for 24 epochs.
        # With dropout 0.5 it averaged 0.61% error over 3 seeds, at 24 and at 40 epochs.
        "distorted": LeNet5Config(
            channels=(32, 64),
            hidden=(256, 128),
            alpha=34.0,
            sigma=4.0,
            rotate=10.0,
            scale=0.1,
            shear=0.15,
            epochs=24,
            batch_size=128,
            lr=0.05,
            warmup=0.1,
            val_size=0,
            select="last",
        ),
        "10k": LeNet5Config(**_10K),
        "10k-dropout": LeNet5Config(**{**_10K, "dropout": 0.5}),
    },
    load_data=mnist_splits,
    build_model=build_lenet5,
    task=Classify(distort),
    headline=("small", "distorted"),
    class_names=mnist.CLASS_NAMES,
    read_image=_read_mnist_image,
    published=Published(1 - 0.0095, "0.95% test error", "LeCun et al. 1998"),
    metrics=(ACCURACY, *TRAIN_SCORES),
    notes=(
        "`10k` and `10k-dropout` are the experiments of the review's claims 3 and 5 (`deepnets "
        "claims`): 10,000 training images, no distortion, the last weights tested.",
        "`small` trains the ReLU/max-pool variant for 8 epochs with random translations of up to "
        "1 pixel, a mild distortion: the paper's 0.95% is without distortions, 0.8% with them.",
        "`fast` (3 epochs on all 60,000 training images, random shifts of up to 1 pixel) is the "
        "preset timed in benchmarks/lenet5_vs_reference.py; the row `fast+epochs=4,max_shift=0` "
        "is the recipe before it.",
        "`distorted` trains for 24 epochs on all 60,000 images (the last weights are tested), "
        "each batch elastically distorted (Simard et al. 2003: alpha 34, sigma 4) after a random "
        "rotation "
        "(up to 10 degrees), scaling (up to 10%) and shear (up to 0.15). The net is LeNet-5's "
        "architecture widened: 32 and 64 feature maps, F5/F6 of 256/128 units, no dropout. "
        "Published with distortions: 0.8% for LeNet-5 (LeCun et al. 1998), 0.4% for Simard et "
        "al.'s best ConvNet.",
    ),
)


def _digits(config: TrainConfig) -> Splits:
    from deepnets.data.digits import load_digits

    return take_train_subset(load_digits(config.val_size), config.train_subset)


_DIGITS_NET = dict(channels=(16, 32), kernel_size=3, padding=(1, 1), hidden=(64, 32))

CONVNET_DIGITS = Experiment(
    id="convnet-digits",
    title="Small ConvNet on scikit-learn's 8x8 digits (the embedded demo)",
    presets={
        "tiny": LeNet5Config(**_DIGITS_NET, epochs=2, batch_size=32, lr=0.05, val_size=180),
        "small": LeNet5Config(
            **_DIGITS_NET,
            select="last",  # 180 validation digits are too few to pick an epoch reliably
            epochs=30,
            batch_size=32,
            lr=0.05,
            val_size=180,
            max_shift=1,
        ),
    },
    load_data=_digits,
    build_model=lambda config: build_lenet5(config, image_size=8),
    task=Classify(_shift),
    class_names=mnist.CLASS_NAMES,  # the same ten digits
    read_image=_read_digits_image,
    published=Published(
        0.97, "97% test accuracy (this project's demo target)", "deepnets", target=True
    ),
    notes=("No paper number: the demo's own target.",),
)
