"""The speech experiments on the Free Spoken Digit Dataset: `tdnn-fsdd` (a time-delay network on
single spoken digits) and `ctc-digits` (a deep bidirectional LSTM trained with CTC on spoken digit
strings), with their configs, data glue and model builders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepnets.config import ClassifierConfig, Range, TrainConfig, check
from deepnets.data.augment import random_time_shift
from deepnets.data.batching import take_train_subset
from deepnets.experiments.base import LOSS, Experiment, Metric, Published, Splits
from deepnets.train.classify import Classify
from deepnets.train.ctc import CTC

# --- tdnn-fsdd: a time-delay network on spoken digits ------------------------------------------


@dataclass(frozen=True)
class TDNNConfig(ClassifierConfig):
    RULES = (
        (
            ("channels", "kernel_sizes"),
            lambda channels, kernel_sizes: len(channels) == len(kernel_sizes),
            "one kernel size per layer: as many kernel_sizes as channels",
        ),
    )

    n_mels: int = check(40, ge=1)  # log-mel bands per 10 ms frame
    frames: int = check(
        100, ge=1
    )  # every utterance centred, padded or cropped to this many frames (1 s)
    normalise: Literal["global", "utterance"] = "global"  # per-band mean/std: train set or own
    channels: tuple[int, ...] = check(
        (64, 128, 128), items=Range(ge=1), min_len=1
    )  # feature maps of each time-delay layer
    kernel_sizes: tuple[int, ...] = check(
        (5, 3, 3), items=Range(ge=1), min_len=1
    )  # frames each layer sees (its time delays)
    dropout: float = check(0.2, ge=0, lt=1)  # before the output layer
    max_shift: int = check(10, ge=0)  # random time shift of training utterances, in frames (0: off)
    val_size: int = 300  # training recordings held out for selection (300: repetitions 5-9)
    eval_batch_size: int = 500


def _fsdd_digits(config: TDNNConfig) -> Splits:
    from deepnets.data.fsdd import load_fsdd_digits

    splits = load_fsdd_digits(config.val_size, config.n_mels, config.frames, config.normalise)
    return take_train_subset(splits, config.train_subset)


def build_tdnn(config: TDNNConfig) -> nn.Module:
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
    build_model=build_tdnn,
    task=Classify(_time_shift),
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
    RULES = (
        (("digits",), lambda d: d[0] <= d[1], "the fewest must not exceed the most"),
        (("gap_ms",), lambda g: g[0] <= g[1], "the shortest must not exceed the longest"),
    )

    n_mels: int = check(40, ge=1)  # log-mel bands per 10 ms frame
    strings: tuple[int, int, int] = check(
        (4000, 300, 500), items=Range(ge=1)
    )  # train / val / test digit strings
    digits: tuple[int, int] = check((3, 7), items=Range(ge=1))  # fewest and most digits in a string
    gap_ms: tuple[float, float] = check(
        (50.0, 300.0), items=Range(ge=0)
    )  # random silence between digits, in ms
    gain_db: float = check(6.0, ge=0)  # each digit scaled by a random gain of up to +-gain_db
    data_seed: int = check(0, ge=0)  # which strings are drawn (the same for every training seed)
    conv_channels: int = check(128, ge=1)  # maps of the convolutional front end
    subsample: int = check(
        3, ge=0
    )  # stride-2 convolutions before the LSTM (3: 80 ms per output frame)
    hidden_size: int = check(128, ge=1)  # LSTM units per direction and layer
    n_layers: int = check(2, ge=1)  # bidirectional LSTM layers
    dropout: float = check(0.2, ge=0, lt=1)  # between LSTM layers and before the output
    beam_width: int = check(8, ge=0)  # prefix beam search on the test strings (0 or 1: greedy only)
    val_size: int = check(300, ge=0)  # training recordings held out to make the validation strings
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
        kept = DigitStrings(train.features[:n], train.digits[:n], train.mean, train.std)
        splits = {**splits, "train": kept}
    return splits


def build_ctc(config: CTCConfig) -> nn.Module:
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
    build_model=build_ctc,
    published=Published(0.05, "at most 5% digit error rate (new)", "deepnets", target=True),
    task=CTC(),
    metrics=(
        Metric("digit_error_rate", False, "digit error rate", percent=True),
        Metric("greedy_digit_error_rate", False, "digit error rate (greedy)", percent=True),
        LOSS,
    ),
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
