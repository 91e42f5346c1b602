"""The experiments: id -> (config presets, data, model, loop, metric, published number).

The CLI, `deepnets list`, `deepnets bench` and the README table all read `EXPERIMENTS`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from deepnets import DeepnetsError
from deepnets.config import TrainConfig
from deepnets.data import mnist
from deepnets.data.augment import (
    elastic_distort,
    random_cutout,
    random_flip,
    random_time_shift,
    random_translate,
)
from deepnets.data.cifar10 import CLASSES as CIFAR10_CLASSES

Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Published:
    value: float  # in the experiment's metric (accuracy as a fraction for classifiers)
    text: str  # how the paper states it
    source: str  # who published it


@dataclass(frozen=True)
class Layerwise:
    """What the layer-wise loop (deepnets.train.pretrain) needs to know about one kind of layer."""

    make_layer: Callable[[Any, int, int, torch.Generator], nn.Module]  # (config, n_in, n_out, g)
    train_step: Callable[..., Any]  # (layer, x (B, n_in), config, momentum, generator): update
    weights: Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor]]  # encoder (out, in), (out,)
    measure: Callable[[nn.Module, torch.Tensor, Any], dict[str, float]]  # logged after each epoch


@dataclass(frozen=True)
class Experiment:
    id: str  # the name users type
    title: str  # one line for `deepnets list`
    presets: dict[str, Any]  # config dataclasses: tiny (tests), small (the default), paper
    load_data: Callable[[TrainConfig], Splits]  # train / val / test tensors
    build_model: Callable[[TrainConfig], nn.Module]  # a fresh model for the config
    published: Published  # the number the paper reports
    metric: str = "accuracy"  # the test-set figure reported
    higher_is_better: bool = True  # direction of the metric
    augment: Callable[[torch.Tensor, TrainConfig, torch.Generator], torch.Tensor] | None = None
    loop: Literal["supervised", "count", "language_model", "ctc", "pretrain"] = "supervised"
    default_preset: str = "small"  # the preset `deepnets run ID` uses
    notes: tuple[str, ...] = field(default_factory=tuple)  # caveats shown in RESULTS.md
    published_by_preset: dict[str, Published] = field(default_factory=dict)  # other sizes' numbers
    class_names: tuple[str, ...] = ()  # classifiers: label k's name (empty: the indices)
    read_image: Callable[[str, Any], torch.Tensor] | None = None  # (file, config) -> (1, C, H, W)
    layerwise: Layerwise | None = None  # the pre-trained layers (loop "pretrain")

    def published_for(self, preset: str | None = None) -> Published:
        """The number a preset is compared with; a results row's preset may end in +overrides."""
        name = (preset or self.default_preset).split("+", 1)[0]
        return self.published_by_preset.get(name, self.published)

    @property
    def config_cls(self) -> type[TrainConfig]:
        return type(self.presets[self.default_preset])

    def preset(self, name: str | None) -> TrainConfig:
        name = name or self.default_preset
        if name not in self.presets:
            raise DeepnetsError(
                f"{self.id} has no preset {name!r}; presets: {', '.join(self.presets)}"
            )
        return self.presets[name]


# --- mlp-mnist -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPMnistConfig(TrainConfig):
    hidden: tuple[int, ...] = (800, 800)  # hidden layer sizes
    activation: Literal["relu", "tanh", "logistic"] = "relu"  # hidden (and squared-error) units
    loss: Literal["cross_entropy", "squared_error"] = "cross_entropy"  # output loss
    dropout: float = 0.5  # dropout on hidden units
    input_dropout: float = 0.2  # dropout on input pixels
    max_shift: int = 2  # random translation of training images, in pixels (0: off)


def _read_mnist_image(path: str, config: TrainConfig) -> torch.Tensor:
    return mnist.read_image(path)


def _mnist(config: TrainConfig) -> Splits:
    from deepnets.data.mnist import load_mnist

    return _subset(load_mnist(config.val_size), config)


def _subset(splits: Splits, config: TrainConfig) -> Splits:
    if config.train_subset > 0:
        x, y = splits["train"]
        splits = {**splits, "train": (x[: config.train_subset], y[: config.train_subset])}
    return splits


def _shift(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    return random_translate(x, config.max_shift, generator)  # type: ignore[attr-defined]


def _mlp(config: MLPMnistConfig, in_features: int = 784) -> nn.Module:
    from deepnets.models.mlp import MLP

    sizes = (in_features, *config.hidden, 10)
    return MLP(sizes, config.activation, config.loss, config.dropout, config.input_dropout)


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
    },
    load_data=_mnist,
    build_model=_mlp,
    augment=_shift,
    class_names=mnist.CLASS_NAMES,
    read_image=_read_mnist_image,
    published=Published(1 - 0.016, "1.6% test error, 800 hidden units", "Simard et al. 2003"),
    notes=(
        "`small` is 784-800-800-10 with ReLU, dropout (0.2 input, 0.5 hidden) and random "
        "translations of up to 2 pixels; the published 1.6% is one hidden layer of 800 units "
        "without distortions (the `paper` preset).",
    ),
)


# --- lenet5-mnist and the demo ConvNet on the scikit-learn digits -----------------------------


@dataclass(frozen=True)
class LeNet5Config(TrainConfig):
    variant: Literal["modern", "classic"] = "modern"  # ReLU + max-pool, or scaled tanh + subsample
    channels: tuple[int, int] = (6, 16)  # feature maps of C1 and C3
    kernel_size: int = 5  # convolution kernel side
    padding: tuple[int, int] = (2, 0)  # zero padding of C1 and C3
    hidden: tuple[int, int] = (120, 84)  # units of F5 and F6
    dropout: float = 0.0  # dropout before F6 and the output
    max_shift: int = 0  # random translation of training images, in pixels (0: off)
    alpha: float = 0.0  # elastic distortion: displacement scale in pixels (0: off)
    sigma: float = 4.0  # elastic distortion: std of the Gaussian smoothing the field, pixels
    rotate: float = 0.0  # random rotation of training images, up to this many degrees (0: off)
    scale: float = 0.0  # random x and y scale factors in [1 - scale, 1 + scale] (0: off)
    shear: float = 0.0  # random horizontal shear x += s * y, s up to this (0: off)


def _distort(x: torch.Tensor, config: LeNet5Config, generator: torch.Generator) -> torch.Tensor:
    """Random translation, then elastic distortion with a random affine map, where switched on."""
    x = random_translate(x, config.max_shift, generator)
    if config.alpha > 0 or config.rotate > 0 or config.scale > 0 or config.shear > 0:
        x = elastic_distort(
            x, config.alpha, config.sigma, generator, config.rotate, config.scale, config.shear
        )
    return x


def _lenet5(config: LeNet5Config, image_size: int = 28) -> nn.Module:
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
        # The speed benchmark's preset: shortest schedule that reaches 99.0%, on all 60,000
        # training images like the reference it is timed against (no validation split).
        "fast": LeNet5Config(epochs=4, batch_size=128, lr=0.05, warmup=0.1, val_size=0),
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
    },
    load_data=_mnist,
    build_model=_lenet5,
    augment=_distort,
    class_names=mnist.CLASS_NAMES,
    read_image=_read_mnist_image,
    published=Published(1 - 0.0095, "0.95% test error", "LeCun et al. 1998"),
    notes=(
        "`small` trains the ReLU/max-pool variant for 8 epochs with random translations of up to "
        "1 pixel, a mild distortion: the paper's 0.95% is without distortions, 0.8% with them.",
        "`fast` (4 epochs on all 60,000 training images) is the preset timed in "
        "benchmarks/lenet5_vs_reference.py.",
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

    return _subset(load_digits(config.val_size), config)


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
    build_model=lambda config: _lenet5(config, image_size=8),
    augment=_shift,
    class_names=mnist.CLASS_NAMES,  # the same ten digits
    published=Published(0.97, "97% test accuracy (this project's demo target)", "deepnets"),
    notes=("No paper number: the demo's own target.",),
)


# --- convnet-cifar10 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CifarConvNetConfig(TrainConfig):
    data_source: Literal["auto", "canonical", "jpeg"] = "auto"  # see deepnets.data.cifar10
    style: Literal["airbench", "resnet9"] = "airbench"  # what follows each block's pooling
    widths: tuple[int, int, int, int] = (32, 64, 256, 256)  # stem and the three blocks' maps
    dropout: float = 0.0  # before the output layer
    max_shift: int = 2  # random crops: reflect-pad by this many pixels, crop 32x32 (0: off)
    flip: bool = True  # random left-right mirror images
    cutout: int = 0  # zero a random square of this side in every training image (0: off)
    flip_tta: bool = True  # test-time augmentation: average scores of the image and its mirror


def _cifar10(config: CifarConvNetConfig) -> Splits:
    from deepnets.data.cifar10 import load_cifar10

    return _subset(load_cifar10(config.data_source, config.val_size), config)


def _read_cifar10_image(path: str, config: CifarConvNetConfig) -> torch.Tensor:
    from deepnets.data.cifar10 import read_image

    return read_image(path, config.data_source)


def _crop_flip_cutout(x: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    x = random_translate(x, config.max_shift, generator, padding="reflect")
    x = random_flip(x, generator) if config.flip else x
    return random_cutout(x, config.cutout, generator)


def _cifar_convnet(config: CifarConvNetConfig) -> nn.Module:
    from deepnets.models.convnet_cifar import CifarConvNet

    return CifarConvNet(
        config.widths, 10, config.dropout, flip_tta=config.flip_tta, style=config.style
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
    },
    load_data=_cifar10,
    build_model=_cifar_convnet,
    augment=_crop_flip_cutout,
    class_names=CIFAR10_CLASSES,
    read_image=_read_cifar10_image,
    published=Published(0.94, "94% test accuracy (airbench94, canonical CIFAR-10)", "Jordan 2024"),
    notes=(
        "The rows here are measured on the lossy JPEG copy of CIFAR-10 (`data_source=auto` takes "
        "it when the canonical file is absent): close to, not the same as, canonical CIFAR-10.",
        "The review's own numbers are ImageNet's; on CIFAR-10 the 2012 net (cuda-convnet) had "
        "18% error, 11% with its best settings. 94% is today's fast-training bar.",
    ),
)


# --- tdnn-fsdd: a time-delay network on spoken digits ------------------------------------------


@dataclass(frozen=True)
class TDNNConfig(TrainConfig):
    n_mels: int = 40  # log-mel bands per 10 ms frame
    frames: int = 100  # every utterance centred, padded or cropped to this many frames (1 s)
    normalise: Literal["global", "utterance"] = "global"  # per-band mean/std: train set or own
    channels: tuple[int, ...] = (64, 128, 128)  # feature maps of each time-delay layer
    kernel_sizes: tuple[int, ...] = (5, 3, 3)  # frames each layer sees (its time delays)
    dropout: float = 0.2  # before the output layer
    max_shift: int = 10  # random time shift of training utterances, in frames (0: off)
    val_size: int = 300  # training recordings held out for selection (300: repetitions 5-9)
    eval_batch_size: int = 500


def _fsdd_digits(config: TDNNConfig) -> Splits:
    from deepnets.data.fsdd import load_fsdd_digits

    splits = load_fsdd_digits(config.val_size, config.n_mels, config.frames, config.normalise)
    return _subset(splits, config)


def _tdnn(config: TDNNConfig) -> nn.Module:
    from deepnets.models.tdnn import TDNN

    return TDNN(config.n_mels, config.channels, config.kernel_sizes, 10, config.dropout)


def _time_shift(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    return random_time_shift(x, config.max_shift, generator)  # type: ignore[attr-defined]


TDNN_FSDD = Experiment(
    id="tdnn-fsdd",
    title="Time-delay network (1-D ConvNet) on spoken digits (refs 47-48)",
    presets={
        "tiny": TDNNConfig(
            channels=(16, 32),
            kernel_sizes=(5, 3),
            epochs=3,
            batch_size=32,
            train_subset=600,
            lr=0.05,
            log_every=5,
        ),
        "small": TDNNConfig(epochs=30, batch_size=32, lr=0.05, warmup=0.1),
    },
    load_data=_fsdd_digits,
    build_model=_tdnn,
    augment=_time_shift,
    published=Published(0.95, "~95% test accuracy (typical)", "FSDD baselines"),
    notes=(
        "The official FSDD split: repetitions 0-4 of each speaker and digit (300 recordings) "
        "are the test set; validation is repetitions 5-9 of the training speakers.",
        "`small`: 40 log-mel bands per 10 ms, globally normalised, centred in 1 s (100 frames); "
        "three time-delay layers (64, 128, 128 maps, kernels 5, 3, 3, batch norm, ReLU, max-pool "
        "by 2), mean and max over time, dropout 0.2; random shifts of up to 10 frames; 30 epochs "
        "of SGD with Nesterov momentum, batch 32, one-cycle lr peaking at 0.05.",
    ),
)


# --- ctc-digits: a deep bidirectional LSTM trained with CTC on spoken digit strings -----------


@dataclass(frozen=True)
class CTCConfig(TrainConfig):
    n_mels: int = 40  # log-mel bands per 10 ms frame
    strings: tuple[int, int, int] = (4000, 300, 500)  # train / val / test digit strings
    digits: tuple[int, int] = (3, 7)  # fewest and most digits in a string
    gap_ms: tuple[float, float] = (50.0, 300.0)  # random silence between digits, in ms
    gain_db: float = 6.0  # each digit scaled by a random gain of up to +-gain_db
    data_seed: int = 0  # which strings are drawn (the same for every training seed)
    conv_channels: int = 128  # maps of the convolutional front end
    subsample: int = 3  # stride-2 convolutions before the LSTM (3: 80 ms per output frame)
    hidden_size: int = 128  # LSTM units per direction and layer
    n_layers: int = 2  # bidirectional LSTM layers
    dropout: float = 0.2  # between LSTM layers and before the output
    beam_width: int = 8  # prefix beam search on the test strings (0 or 1: greedy only)
    val_size: int = 300  # training recordings held out to make the validation strings
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "cosine"
    warmup: float = 0.05
    clip_grad_norm: float = 1.0
    batch_size: int = 32
    eval_batch_size: int = 100
    log_every: int = 25


def _digit_strings(config: CTCConfig) -> dict:
    from deepnets.data.fsdd import DigitStrings, load_digit_strings

    splits = load_digit_strings(
        config.strings,
        config.data_seed,
        config.val_size,
        config.n_mels,
        config.digits,
        config.gap_ms,
        config.gain_db,
    )
    if config.train_subset > 0:
        train = splits["train"]
        n = config.train_subset
        splits = {**splits, "train": DigitStrings(train.features[:n], train.digits[:n])}
    return splits


def _ctc(config: CTCConfig) -> nn.Module:
    from deepnets.models.ctc import CTCRecognizer

    return CTCRecognizer(
        config.n_mels,
        config.conv_channels,
        config.subsample,
        config.hidden_size,
        config.n_layers,
        10,
        config.dropout,
    )


CTC_DIGITS = Experiment(
    id="ctc-digits",
    title="Deep bidirectional LSTM + CTC on spoken digit strings (ref 87)",
    presets={
        "tiny": CTCConfig(
            strings=(128, 20, 20),
            conv_channels=32,
            hidden_size=32,
            n_layers=1,
            epochs=6,
            batch_size=8,
            lr=1e-2,
            schedule="constant",
            warmup=0.0,
            beam_width=4,
            log_every=4,
        ),
        "small": CTCConfig(epochs=8),
    },
    load_data=_digit_strings,
    build_model=_ctc,
    published=Published(0.05, "(new) target: at most 5% digit error rate", "deepnets"),
    metric="digit_error_rate",
    higher_is_better=False,
    loop="ctc",
    notes=(
        "No paper number: the strings are made here from FSDD (3-7 digits of one speaker, random "
        "50-300 ms silences and +-6 dB gains); training strings use training recordings only, "
        "test strings the official test recordings. The figure is the prefix beam search's "
        "digit error rate (edit distance / reference digits) on 500 test strings.",
        "`small`: 40 log-mel bands, three stride-2 convolutions (128 maps; 80 ms per output "
        "frame), 2 bidirectional LSTM layers of 128 units, dropout 0.2; 4,000 training strings, "
        "8 epochs of Adam (lr 2e-3, cosine, clip 1.0), batch 32; test decoded by prefix beam "
        "search of width 8.",
    ),
)


# --- kn5-ptb: the N-gram baseline ------------------------------------------------------------


@dataclass(frozen=True)
class NGramConfig:
    order: int = 5  # N: the longest n-gram counted
    seed: int = 0  # unused (counting is deterministic); kept so every config has a seed
    device: str = "cpu"  # unused (counting runs on the CPU); kept for a uniform CLI


def _ptb_sentences(config: NGramConfig) -> dict:
    from deepnets.data.ptb import load_ptb

    return load_ptb()


def _kneser_ney(config: NGramConfig):
    from deepnets.models.kneser_ney import KneserNey

    return KneserNey(config.order)


KN5_PTB = Experiment(
    id="kn5-ptb",
    title="Interpolated modified Kneser-Ney 5-gram (the N-gram baseline)",
    presets={"tiny": NGramConfig(order=3), "small": NGramConfig(order=5)},
    load_data=_ptb_sentences,
    build_model=_kneser_ney,
    published=Published(141.2, "141.2 test perplexity", "Mikolov et al. 2011"),
    metric="perplexity",
    higher_is_better=False,
    loop="count",
    notes=("Fitted by counting in one pass (no epochs); the `small` preset is the paper's KN5.",),
)


# --- language models on a token stream: nplm-ptb, rnn-ptb, lstm-ptb, charlstm-shakespeare -------


@dataclass(frozen=True)
class StreamConfig(TrainConfig):
    """What every stream language model shares: (B, T) batches of a token stream."""

    bptt: int = 35  # T: steps of truncated backpropagation through time per batch
    batch_size: int = 20  # B: parallel rows of the stream
    eval_batch_size: int = 10  # rows of the validation and test streams
    weight_decay: float = 0.0
    log_every: int = 100
    evals_per_epoch: int = 1  # validation runs per epoch (each may keep the best weights)
    stop_at: float = 0.0  # stop once the validation metric is at most this (0: never)


@dataclass(frozen=True)
class RNNLMConfig(StreamConfig):
    cell: Literal["elman", "lstm"] = "lstm"  # recurrent unit
    n_layers: int = 2  # stacked recurrent layers
    hidden_size: int = 200  # units per layer
    embedding_size: int = 0  # input word vector size (0: hidden_size)
    dropout: float = 0.0  # on non-recurrent connections (Zaremba et al. 2014)
    tie_weights: bool = False  # output weights = input embeddings
    softmax: Literal["full", "adaptive"] = "full"  # output layer over the vocabulary
    cutoffs: tuple[int, ...] = (2000,)  # adaptive softmax: where the tail clusters start
    init_range: float = 0.1  # every weight uniform in [-r, r] (0: PyTorch's defaults)


@dataclass(frozen=True)
class NPLMConfig(StreamConfig):
    context: int = 5  # n - 1 previous words
    embedding_size: int = 100  # m: word feature vector size
    hidden_size: int = 500  # tanh hidden units
    direct: bool = False  # direct connections from the features to the output
    dropout: float = 0.0  # on the features and the hidden layer
    softmax: Literal["full", "adaptive"] = "full"  # output layer over the vocabulary
    cutoffs: tuple[int, ...] = (2000,)  # adaptive softmax: where the tail clusters start


def _ptb_stream(config: TrainConfig) -> dict:
    from deepnets.data.ptb import load_ptb_ids

    vocab, splits = load_ptb_ids()
    return {"vocab": vocab, **splits}


def _shakespeare_stream(config: TrainConfig) -> dict:
    from deepnets.data.tinyshakespeare import load_tinyshakespeare_ids

    vocab, splits = load_tinyshakespeare_ids()
    return {"vocab": vocab, **splits}


_TINY_STREAM = dict(epochs=1, train_subset=20_000, log_every=10)  # tests: seconds
PTB_VOCAB_SIZE = 10_000  # Mikolov's Penn Treebank
SHAKESPEARE_VOCAB_SIZE = 65  # distinct characters of Tiny Shakespeare


def _rnnlm(config: RNNLMConfig, vocab_size: int) -> nn.Module:
    from deepnets.models.rnn_lm import RNNLM

    return RNNLM(
        vocab_size,
        config.cell,
        config.n_layers,
        config.hidden_size,
        config.embedding_size or None,
        config.dropout,
        config.tie_weights,
        use_builtin=True,
        init_range=config.init_range or None,
        softmax=config.softmax,
        cutoffs=config.cutoffs,
    )


def _nplm(config: NPLMConfig) -> nn.Module:
    from deepnets.models.nplm import NPLM

    return NPLM(
        PTB_VOCAB_SIZE,
        config.context,
        config.embedding_size,
        config.hidden_size,
        config.direct,
        config.dropout,
        config.softmax,
        config.cutoffs,
    )


_PTB_NOTE = (
    "Perplexity on the test split of Mikolov's Penn Treebank (82,430 tokens with <eos>), the "
    "state carried through the stream in 10 rows."
)

NPLM_PTB = Experiment(
    id="nplm-ptb",
    title="Neural probabilistic language model (Bengio et al. 2003, ref 71)",
    presets={
        "tiny": NPLMConfig(
            **_TINY_STREAM,
            context=2,
            embedding_size=16,
            hidden_size=32,
            optimizer="adam",
            lr=1e-2,
            schedule="constant",
        ),
        "small": NPLMConfig(
            context=6,
            embedding_size=128,
            hidden_size=512,
            dropout=0.35,
            softmax="adaptive",
            epochs=10,
            batch_size=64,
            bptt=32,
            optimizer="adam",
            lr=2e-3,
            schedule="cosine",
            warmup=0.01,
            clip_grad_norm=1.0,
        ),
    },
    load_data=_ptb_stream,
    build_model=_nplm,
    published=Published(
        141.2,
        "below the KN5 baseline (the paper, on Brown: 252 against 312)",
        "target: KN5, Mikolov et al. 2011",
    ),
    metric="perplexity",
    higher_is_better=False,
    loop="language_model",
    notes=(
        _PTB_NOTE,
        "The paper reports Brown and AP News, not PTB; the published column holds the KN5 "
        "perplexity the neural model must beat on PTB.",
        "`small`: 6 previous words, 128-dimensional word vectors, 512 tanh units, dropout 0.35, "
        "the exact adaptive softmax, 10 epochs of Adam on a cosine schedule.",
    ),
)

RNN_PTB = Experiment(
    id="rnn-ptb",
    title="Elman recurrent net language model, truncated BPTT (Fig. 5)",
    presets={
        "tiny": RNNLMConfig(
            **_TINY_STREAM,
            cell="elman",
            n_layers=1,
            hidden_size=32,
            lr=1.0,
            clip_grad_norm=0.25,
        ),
        "small": RNNLMConfig(
            cell="elman",
            n_layers=1,
            hidden_size=512,
            dropout=0.4,
            softmax="adaptive",
            epochs=12,
            batch_size=32,
            bptt=35,
            optimizer="adam",
            lr=1e-3,
            schedule="cosine",
            warmup=0.01,
            clip_grad_norm=0.5,
        ),
    },
    load_data=_ptb_stream,
    build_model=lambda config: _rnnlm(config, PTB_VOCAB_SIZE),
    published=Published(124.7, "124.7 test perplexity (RNNLM)", "Mikolov et al. 2011"),
    metric="perplexity",
    higher_is_better=False,
    loop="language_model",
    notes=(
        _PTB_NOTE,
        "`small`: one Elman layer of 512 tanh units, dropout 0.4, the exact adaptive softmax, "
        "12 epochs of Adam at 1e-3 on a cosine schedule, BPTT 35, batch 32.",
    ),
)

# Zaremba et al. 2014: SGD without momentum, gradient norm clipped to 5, batch 20, BPTT 35 for
# medium (20 for small), weights uniform in [-0.1, 0.1] (medium: 0.05), lr 1 halved (small) or
# multiplied by 1/1.2 (medium) every epoch after the first 4 (medium: 6). Their loss is summed
# over the T steps of a batch and averaged over its rows; ours is the mean over all B*T tokens,
# so the same steps take lr T and a clipping norm of 5 / T.


def _zaremba(bptt: int) -> dict:
    return dict(
        optimizer="sgd",
        momentum=0.0,
        nesterov=False,
        lr=1.0 * bptt,
        schedule="step",
        step_every=1,
        warmup=0.0,
        clip_grad_norm=5.0 / bptt,
        batch_size=20,
        bptt=bptt,
    )


LSTM_PTB = Experiment(
    id="lstm-ptb",
    title="Multi-layer LSTM language model with dropout (Zaremba et al. 2014, ref 79)",
    presets={
        "tiny": RNNLMConfig(
            **_TINY_STREAM,
            hidden_size=32,
            lr=1.0,
            clip_grad_norm=0.25,
        ),
        # Zaremba's small size (2 x 200) with the method changed: input and output word
        # vectors tied (Press & Wolf 2017) in an exact adaptive softmax (the 2,000 most frequent
        # words in the head: 13% of the training tokens fall in the tail), dropout, BPTT 35 and
        # a cosine learning-rate decay.
        "small": RNNLMConfig(
            n_layers=2,
            hidden_size=200,
            dropout=0.25,
            tie_weights=True,
            softmax="adaptive",
            cutoffs=(2000,),
            epochs=6,
            batch_size=20,
            bptt=35,
            optimizer="sgd",
            momentum=0.0,
            nesterov=False,
            lr=20.0,
            schedule="cosine",
            warmup=0.0,
            clip_grad_norm=0.25,
        ),
        "paper-small": RNNLMConfig(
            **_zaremba(20), hidden_size=200, epochs=13, decay_start=4, step_gamma=0.5
        ),
        # The medium net (2 x 650, dropout 0.5) with small's method: tied vectors, SGD at lr 20
        # clipped to 0.25, a cosine decay over 20 epochs instead of the paper's 39.
        "medium-tied": RNNLMConfig(
            n_layers=2,
            hidden_size=650,
            dropout=0.5,
            tie_weights=True,
            init_range=0.05,
            epochs=20,
            batch_size=20,
            bptt=35,
            optimizer="sgd",
            momentum=0.0,
            nesterov=False,
            lr=20.0,
            schedule="cosine",
            warmup=0.0,
            clip_grad_norm=0.25,
        ),
        "medium": RNNLMConfig(
            **_zaremba(35),
            hidden_size=650,
            dropout=0.5,
            init_range=0.05,
            epochs=39,
            decay_start=6,
            step_gamma=1 / 1.2,
        ),
    },
    load_data=_ptb_stream,
    build_model=lambda config: _rnnlm(config, PTB_VOCAB_SIZE),
    published=Published(114.5, "114.5 test perplexity (small, 2x200)", "Zaremba et al. 2014"),
    published_by_preset={
        name: Published(82.7, "82.7 test perplexity (medium, 2x650)", "Zaremba et al. 2014")
        for name in ("medium", "medium-tied")
    },
    metric="perplexity",
    higher_is_better=False,
    loop="language_model",
    notes=(
        _PTB_NOTE,
        "`small` keeps the paper's small net (2 x 200 LSTM) and changes the method: tied input "
        "and output word vectors in an exact adaptive softmax (head: the 2,000 most frequent "
        "words), dropout 0.25, BPTT 35, 6 epochs of SGD at lr 20 decayed on a "
        "cosine. `paper-small` and `medium` are the paper's settings (13 epochs of lr 1 halved "
        "after the 4th; 2 x 650 with dropout 0.5 for 39 epochs), their lr and clipping scaled "
        "to a loss averaged over tokens.",
        "`medium-tied` is the medium net with small's method (tied vectors, SGD at lr 20 clipped "
        "to 0.25, cosine decay) over 20 epochs; its row is from a GPU.",
    ),
)

CHARLSTM_SHAKESPEARE = Experiment(
    id="charlstm-shakespeare",
    title="Character-level LSTM on Tiny Shakespeare (next-character prediction, ref 83)",
    presets={
        "tiny": RNNLMConfig(
            **_TINY_STREAM,
            hidden_size=32,
            lr=1e-2,
            optimizer="adam",
            schedule="constant",
            bptt=50,
        ),
        "small": RNNLMConfig(
            n_layers=2,
            hidden_size=512,
            embedding_size=64,
            dropout=0.2,
            epochs=5,
            batch_size=32,
            bptt=100,
            optimizer="adam",
            lr=2e-3,
            schedule="cosine",
            warmup=0.02,
            clip_grad_norm=1.0,
            select="last",
        ),
    },
    load_data=_shakespeare_stream,
    build_model=lambda config: _rnnlm(config, SHAKESPEARE_VOCAB_SIZE),
    published=Published(1.47, "~1.47 nats/char validation loss", "char-rnn (Karpathy 2015)"),
    metric="loss",
    higher_is_better=False,
    loop="language_model",
    notes=(
        "Tiny Shakespeare has no test split: the number is the validation loss (the last 10% of "
        "the text) in nats per character, of the last weights (no selection on it).",
    ),
)

# --- dbn-mnist and sdae-mnist: greedy layer-wise pre-training, then fine-tuning ---------------


@dataclass(frozen=True)
class PretrainConfig(TrainConfig):
    """A sigmoid MLP whose hidden layers are first pre-trained one at a time without labels."""

    PRETRAIN_FIELDS: ClassVar[tuple[str, ...]] = ("hidden", "val_size", "train_subset")

    hidden: tuple[int, ...] = (500, 500, 2000)  # hidden layer sizes, bottom up
    pretrain: bool = True  # pre-train the hidden layers first (false: the same net, random init)
    pretrain_epochs: int = 10  # passes over the unlabelled images, per layer
    pretrain_batch_size: int = 100  # minibatch of the layer-wise updates
    pretrain_lr: float = 0.1  # learning rate of the layer-wise updates
    pretrain_momentum: float = 0.9  # momentum after the first epochs (0.5 before them)
    pretrain_weight_decay: float = 2e-4  # L2 on the layer weights during pre-training
    pretrain_seed: int = 0  # seeds pre-training alone: runs differing only in `seed` share it
    labels: int = 0  # labelled images for fine-tuning, the same number per class (0: all)
    dropout: float = 0.0  # fine-tuning: dropout on the hidden units
    input_dropout: float = 0.0  # fine-tuning: dropout on the input pixels
    val_size: int = 0  # images held out for selection (0: pre-train on all 60,000)
    select: Literal["best_val", "last"] = "last"  # no validation split: the last weights
    # Fine-tuning: Adam on a cosine schedule, the same for pre-trained and random nets. (SGD with
    # momentum needs lr >= 0.1 to fine-tune the pre-trained net fast, and diverges at lr 0.1 from
    # random init: 2,000 sigmoid units of mean ~0.5 feed the output layer.)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = 1e-3
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "cosine"
    warmup: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 100


@dataclass(frozen=True)
class DBNConfig(PretrainConfig):
    PRETRAIN_FIELDS: ClassVar[tuple[str, ...]] = (
        *PretrainConfig.PRETRAIN_FIELDS,
        "cd_k",
        "persistent",
    )

    cd_k: int = 1  # Gibbs steps of contrastive divergence (CD-k)
    persistent: bool = False  # persistent CD (Tieleman 2008) instead of restarting at the data


@dataclass(frozen=True)
class SDAEConfig(PretrainConfig):
    PRETRAIN_FIELDS: ClassVar[tuple[str, ...]] = (*PretrainConfig.PRETRAIN_FIELDS, "noise", "tied")

    noise: float = 0.25  # masking noise: the fraction of each layer's inputs set to zero
    tied: bool = True  # decoder weights are the encoder's, transposed
    pretrain_lr: float = 0.01  # the denoising loss is summed over inputs: a smaller step


def balanced_subset(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Indices of `count` examples, count / 10 of each class, drawn at random by `seed`."""
    classes = int(labels.max()) + 1
    if count % classes:
        raise DeepnetsError(f"labels={count} must be a multiple of the {classes} classes")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    picked = []
    for c in range(classes):
        members = (labels == c).nonzero()[:, 0]
        if len(members) < count // classes:
            raise DeepnetsError(f"class {c} has {len(members)} examples, fewer than labels/10")
        picked.append(
            members[torch.randperm(len(members), generator=generator)[: count // classes]]
        )
    return torch.cat(picked).sort().values


def _mnist_pixels(config: PretrainConfig) -> Splits:
    """MNIST as intensities in [0, 1] (what RBMs and autoencoders model), the training images
    again as `unlabelled` for pre-training, and `train` cut to `labels` examples if asked."""
    from deepnets.data.mnist import MEAN, STD

    splits = {k: ((x * STD + MEAN).clamp_(0, 1), y) for k, (x, y) in _mnist(config).items()}
    x, y = splits["train"]
    splits["unlabelled"] = (x, y[:0])  # the images, no labels
    if config.labels > 0:
        idx = balanced_subset(y, config.labels, config.seed)
        splits["train"] = (x[idx], y[idx])
    return splits


def _sigmoid_mlp(config: PretrainConfig) -> nn.Module:
    from deepnets.models.mlp import MLP

    return MLP(
        (784, *config.hidden, 10), "logistic", "cross_entropy", config.dropout, config.input_dropout
    )


def _rbm_layer(config: DBNConfig, n_in: int, n_out: int, generator: torch.Generator):
    from deepnets.models.rbm import RBM

    return RBM(n_in, n_out, generator=generator)


def _rbm_step(layer, x, config: DBNConfig, momentum: float, generator) -> None:
    layer.train_step(
        x,
        config.pretrain_lr,
        config.cd_k,
        momentum,
        config.pretrain_weight_decay,
        generator,
        config.persistent,
    )


@torch.no_grad()
def _rbm_measure(layer, x, config) -> dict[str, float]:
    return {
        "recon_error": float(layer.reconstruction_error(x)),
        "free_energy": float(layer.free_energy(x).mean()),
    }


RBM_LAYERS = Layerwise(
    make_layer=_rbm_layer,
    train_step=_rbm_step,
    weights=lambda rbm: (rbm.W.T, rbm.c),  # p(h=1|v) = sigmoid(W^T v + c)
    measure=_rbm_measure,
)


def _dae_layer(config: SDAEConfig, n_in: int, n_out: int, generator: torch.Generator):
    from deepnets.models.sdae import DenoisingAutoencoder

    return DenoisingAutoencoder(n_in, n_out, config.tied, generator)


def _dae_step(layer, x, config: SDAEConfig, momentum: float, generator) -> None:
    layer.train_step(
        x, config.pretrain_lr, momentum, config.pretrain_weight_decay, generator, config.noise
    )


@torch.no_grad()
def _dae_measure(layer, x, config: SDAEConfig) -> dict[str, float]:
    r = torch.sigmoid(layer.decode_logits(layer.encode(x)))
    return {
        "denoising_loss": float(
            layer.loss(x, config.noise, torch.Generator(x.device).manual_seed(0))
        ),
        "recon_error": float(((x - r) ** 2).sum(1).mean()),
    }


DAE_LAYERS = Layerwise(
    make_layer=_dae_layer,
    train_step=_dae_step,
    weights=lambda dae: (dae.W, dae.b),  # h = sigmoid(W x + b)
    measure=_dae_measure,
)

_TINY_PRETRAIN = dict(
    hidden=(64, 32),
    pretrain_epochs=2,
    epochs=3,
    batch_size=50,
    pretrain_batch_size=50,
    train_subset=2000,
    val_size=500,
    select="best_val",
    log_every=10,
)
# Few labels: the fine-tuning of `small` on 100, 600 or 1,000 labelled images (10, 60, 100 per
# class, drawn by `seed`), 200 to 300 steps; pre-training is `small`'s, on all 60,000 images, so
# all three share its stack.
_FEW_LABELS = {
    "labels-100": dict(labels=100, batch_size=25, epochs=50),
    "labels-600": dict(labels=600, batch_size=100, epochs=40),
    "labels-1000": dict(labels=1000, batch_size=100, epochs=30),
}
# `small`'s pre-trained stack, fine-tuned with dropout (Srivastava et al. 2014: 20% of the pixels,
# half the hidden units) for 50 epochs: without it the fine-tuned net fits the training set to a
# loss of 1e-4 by epoch 13; with it, 20 epochs are too few (DBN: 1.34% after 20, 1.10% after 50).
_DROPOUT_FINETUNE = dict(input_dropout=0.2, dropout=0.5, epochs=50)
_NO_PAPER_NUMBER = Published(
    math.nan, "the few-label comparison is against the same net from random init", "-"
)

# Hinton's recipe for the RBMs (lr 0.1, momentum 0.5 then 0.9, L2 2e-4, batches of 100), 10
# epochs per layer instead of 50; fine-tuning: 15 epochs of Adam on a cosine schedule.
_DBN_SMALL = DBNConfig(pretrain_epochs=10, epochs=15)

DBN_MNIST = Experiment(
    id="dbn-mnist",
    title="Deep belief net: stacked RBMs (CD-1), then backprop (ref 32)",
    presets={
        "tiny": DBNConfig(**_TINY_PRETRAIN, lr=0.01),
        "small": _DBN_SMALL,
        "dropout": dataclasses.replace(_DBN_SMALL, **_DROPOUT_FINETUNE),
        **{name: dataclasses.replace(_DBN_SMALL, **f) for name, f in _FEW_LABELS.items()},
    },
    load_data=_mnist_pixels,
    build_model=_sigmoid_mlp,
    published=Published(
        1 - 0.0125, "1.25% test error (DBN 784-500-500-2000)", "Hinton et al. 2006"
    ),
    published_by_preset={name: _NO_PAPER_NUMBER for name in _FEW_LABELS},
    loop="pretrain",
    layerwise=RBM_LAYERS,
    notes=(
        "`small`: 784-500-500-2000 RBMs (binary hidden units, MNIST intensities as visible "
        "probabilities) trained bottom up with CD-1 for 10 epochs each (the paper: 50) on all "
        "60,000 training images, lr 0.1, momentum 0.5 then 0.9, L2 2e-4; then the sigmoid "
        "784-500-500-2000-10 net is fine-tuned with labels for 15 epochs of Adam (lr 1e-3, "
        "cosine decay); no validation split, the last weights are tested. Hinton et al.'s 1.25% "
        "came from generative up-down fine-tuning; Hinton & Salakhutdinov's 1.2% from "
        "backpropagation with conjugate gradients, as here with Adam.",
        "`dropout`: `small`'s stack fine-tuned for 50 epochs with dropout on 20% of the pixels "
        "and half the hidden units (Srivastava et al. 2014 report 0.92% for this net with "
        "dropout fine-tuning, over far longer training). Rows measured before it became the "
        "preset carry `+epochs=50`.",
        "`labels-N`: the same pre-trained stack, fine-tuned on N labelled images (N/10 per "
        "class, drawn by the seed); `+pretrain=false` rows are the same net and schedule from "
        "PyTorch's default random initialisation (benchmarks/few_labels.py).",
    ),
)

_SDAE_SMALL = SDAEConfig(pretrain_epochs=10, pretrain_lr=0.05, epochs=15)

SDAE_MNIST = Experiment(
    id="sdae-mnist",
    title="Stacked denoising autoencoders (masking noise), then backprop (refs 33, 93)",
    presets={
        "tiny": SDAEConfig(**_TINY_PRETRAIN, lr=0.01),
        "small": _SDAE_SMALL,
        # the autoencoders trained 30 epochs each: after 10, the dropout fine-tuning gave 1.31%
        "dropout": dataclasses.replace(_SDAE_SMALL, **_DROPOUT_FINETUNE, pretrain_epochs=30),
        **{name: dataclasses.replace(_SDAE_SMALL, **f) for name, f in _FEW_LABELS.items()},
    },
    load_data=_mnist_pixels,
    build_model=_sigmoid_mlp,
    published=Published(1 - 0.0128, "1.28% test error (SDAE-3)", "Vincent et al. 2010"),
    published_by_preset={name: _NO_PAPER_NUMBER for name in _FEW_LABELS},
    loop="pretrain",
    layerwise=DAE_LAYERS,
    notes=(
        "`small`: tied-weight denoising autoencoders with 25% masking noise and cross-entropy "
        "reconstruction, 784-500-500-2000 (the DBN's sizes; SDAE-3 had 1000 units per layer "
        "chosen on validation), 10 epochs per layer of SGD (lr 0.05, momentum 0.5 then 0.9, "
        "batches of 100), then fine-tuned like dbn-mnist (15 epochs of Adam, cosine decay); "
        "`labels-N` as for dbn-mnist.",
        "`dropout`: the autoencoders trained for 30 epochs each (not 10), then fine-tuned with "
        "dropout as dbn-mnist's `dropout`. Rows measured before it became the preset carry "
        "`+epochs=50,pretrain_epochs=30`.",
    ),
)


EXPERIMENTS: dict[str, Experiment] = {
    e.id: e
    for e in (
        MLP_MNIST,
        LENET5_MNIST,
        CONVNET_DIGITS,
        CONVNET_CIFAR10,
        TDNN_FSDD,
        CTC_DIGITS,
        KN5_PTB,
        NPLM_PTB,
        RNN_PTB,
        LSTM_PTB,
        CHARLSTM_SHAKESPEARE,
        DBN_MNIST,
        SDAE_MNIST,
    )
}


def get_experiment(name: str) -> Experiment:
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    close = difflib.get_close_matches(name, list(EXPERIMENTS), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DeepnetsError(
        f"unknown experiment {name!r}.{hint} Known: {', '.join(EXPERIMENTS)} (deepnets list)"
    )
