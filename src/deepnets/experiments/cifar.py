"""The CIFAR-10 experiment: `convnet-cifar10` (a deep ConvNet with ReLU, batch norm, crops and
flips), its config, data glue, augmentation and model builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepnets.config import ImageClassifierConfig, Range, check
from deepnets.data.augment import random_cutout, random_flip, random_translate
from deepnets.data.batching import take_train_subset
from deepnets.data.cifar10 import CLASSES as CIFAR10_CLASSES
from deepnets.experiments.base import ACCURACY, TRAIN_SCORES, Experiment, Published, Splits
from deepnets.train.classify import Classify

# --- convnet-cifar10 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CifarConvNetConfig(ImageClassifierConfig):
    data_source: Literal["auto", "canonical", "jpeg"] = "auto"  # see deepnets.data.cifar10
    style: Literal["airbench", "resnet9", "lenet5", "mlp"] = (
        "airbench"  # what follows each block's pooling; or LeNet-5, or a fully connected net
    )
    mlp_hidden: tuple[int, ...] = check(
        (20,), items=Range(ge=1)
    )  # style mlp: hidden layer sizes (ReLU)
    widths: tuple[int, int, int, int] = check(
        (32, 64, 256, 256), items=Range(ge=1)
    )  # stem and the three blocks' maps
    dropout: float = check(0.0, ge=0, lt=1)  # before the output layer
    max_shift: int = check(
        2, ge=0, le=31
    )  # random crops: reflect-pad by this many pixels, crop 32x32 (0: off)
    flip: bool = True  # random left-right mirror images
    cutout: int = check(
        0, ge=0, le=32
    )  # zero a random square of this side in every training image (0: off)
    flip_tta: bool = True  # test-time augmentation: average scores of the image and its mirror


def _cifar10(config: CifarConvNetConfig) -> Splits:
    from deepnets.data.cifar10 import load_cifar10

    return take_train_subset(load_cifar10(config.data_source, config.val_size), config.train_subset)


def _read_cifar10_image(path: str, config: CifarConvNetConfig) -> torch.Tensor:
    from deepnets.data.cifar10 import read_image

    return read_image(path, config.data_source)


def _crop_flip_cutout(x: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    x = random_translate(x, config.max_shift, generator, padding="reflect")
    x = random_flip(x, generator) if config.flip else x
    return random_cutout(x, config.cutout, generator)


def _cifar_convnet(config: CifarConvNetConfig) -> nn.Module:
    from deepnets.models.convnet_cifar import CifarConvNet

    if config.style == "lenet5":  # LeCun et al. 1998's layers on 32x32 colour: 62,006 weights
        from deepnets.models.lenet5 import LeNet5

        return LeNet5("modern", 3, 32, (6, 16), 5, (0, 0), (120, 84), 10, config.dropout)
    if config.style == "mlp":
        from deepnets.models.mlp import MLP

        return MLP((3 * 32 * 32, *config.mlp_hidden, 10), dropout=config.dropout)

    return CifarConvNet(
        config.widths, 10, config.dropout, flip_tta=config.flip_tta, style=config.style
    )


_CLAIM3 = dict(
    max_shift=0,
    flip=False,
    flip_tta=False,
    epochs=20,
    batch_size=128,
    lr=0.05,
    weight_decay=0.0,
    select="last",
    score_train=True,
    target_error=0.6,
)

CONVNET_CIFAR10 = Experiment(
    id="convnet-cifar10",
    title="Deep ConvNet: ReLU, batch norm, crops and flips (the ImageNet story, ref 1)",
    presets={
        "tiny": CifarConvNetConfig(
            widths=(8, 16, 32, 32),
            epochs=2,
            batch_size=64,
            train_subset=1000,
            val_size=500,
            lr=0.1,
            label_smoothing=0.2,
            log_every=5,
        ),
        # Page's ResNet-9 recipe: every training image (no validation split, as in the
        # fast-training literature), batch 512, Nesterov SGD at lr 0.4 on a one-cycle schedule,
        # weight decay 5e-4, label smoothing 0.2, crops from 4-pixel padding; with 8x8 cutout and
        # 48 epochs instead of Page's 24. On the JPEG copy 24 epochs reached 91.5% (91.7% with
        # cutout); this preset 92.3% (3 seeds).
        "small": CifarConvNetConfig(
            style="resnet9",
            widths=(64, 128, 256, 512),
            max_shift=4,
            cutout=8,
            epochs=48,
            batch_size=512,
            lr=0.4,
            warmup=0.2,
            weight_decay=5e-4,
            label_smoothing=0.2,
            val_size=0,
            select="last",
        ),
        # A lighter airbench-like net (about half the multiply-adds): 89.9% after 16 epochs on the
        # JPEG copy (GPU run).
        "airbench": CifarConvNetConfig(
            epochs=16,
            batch_size=512,
            lr=0.4,
            warmup=0.25,
            weight_decay=5e-4,
            label_smoothing=0.2,
            val_size=0,
            select="last",
        ),
        # Claim 3 (`deepnets claims`): LeNet-5 against a fully connected net with as many
        # weights (62,006 against 61,670), no augmentation, the last weights tested.
        "lenet5": CifarConvNetConfig(style="lenet5", **_CLAIM3),
        "mlp-matched": CifarConvNetConfig(style="mlp", mlp_hidden=(20,), **_CLAIM3),
    },
    load_data=_cifar10,
    build_model=_cifar_convnet,
    task=Classify(_crop_flip_cutout),
    class_names=CIFAR10_CLASSES,
    read_image=_read_cifar10_image,
    published=Published(0.94, "94% test accuracy (airbench94, canonical CIFAR-10)", "Jordan 2024"),
    metrics=(ACCURACY, *TRAIN_SCORES),
    notes=(
        "`lenet5` and `mlp-matched` are claim 3's experiment (`deepnets claims`): LeNet-5 and a "
        "fully connected net of as many weights, without augmentation; the published number "
        "does not apply to them.",
        "The rows here are measured on the lossy JPEG copy of CIFAR-10 (`data_source=auto` takes "
        "it when the canonical file is absent): close to, not the same as, canonical CIFAR-10.",
        "The review's own numbers are ImageNet's; on CIFAR-10 the 2012 net (cuda-convnet) had "
        "18% error, 11% with its best settings. 94% is today's fast-training bar.",
    ),
)
