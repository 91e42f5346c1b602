"""What an experiment is: the `Experiment` record every family module fills in, the `Metric`s it
reports and the `Published` number it is compared with.

An experiment names its `task`: the object that trains and evaluates it (deepnets.train.task).
Consumers (the CLI, `bench`, `list`, the web page) call the task; none branches on which it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deepnets import DeepnetsError

__all__ = ["ACCURACY", "TRAIN_SCORES", "Experiment", "Metric", "Published", "Splits"]

Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Metric:
    """A figure an experiment reports: its name in the scores, direction and how it is shown."""

    name: str  # the key in the task's scores and in summary.json
    higher_is_better: bool  # direction (model selection, "best" in tables)
    unit: str = ""  # shown after the number ("perplexity", "BLEU")
    percent: bool = False  # shown as 100 * value with a % sign
    complement: bool = False  # shown as 1 - value (accuracy shown as error)
    digits: int = 2  # decimals shown

    def format(self, value: float) -> str:
        if math.isnan(value):
            return "n/a"
        shown = 1 - value if self.complement else value
        number = f"{100 * shown:.{self.digits}f}%" if self.percent else f"{shown:.{self.digits}f}"
        return f"{number} {self.unit}".strip()

    def format_spread(self, value: float) -> str:
        """A standard deviation in the units `format` shows."""
        return f"{(100 if self.percent else 1) * value:.{self.digits}f}"


ACCURACY = Metric("accuracy", True, "error", percent=True, complement=True)
LOSS = Metric("loss", False, "nats")
# What a classifier reports besides its test scores when its config sets `score_train` (and
# `target_loss` / `target_error`): the training split's loss and error with the tested weights,
# and the training steps and seconds until the logged training loss, and the validation error,
# first reached the target (NaN: never within the run).
TRAIN_SCORES = (
    Metric("train_loss", False, "nats", digits=4),
    Metric("train_accuracy", True, "train error", percent=True, complement=True),
    Metric("steps_to_loss", False, "steps", digits=0),
    Metric("seconds_to_loss", False, "s", digits=1),
    Metric("steps_to_error", False, "steps", digits=0),
    Metric("seconds_to_error", False, "s", digits=1),
)


@dataclass(frozen=True)
class Published:
    value: float  # in the experiment's primary metric (accuracy as a fraction for classifiers)
    text: str  # how the paper states it
    source: str  # who published it
    target: bool = False  # a number this project set itself: shown as a target, never published


@dataclass(frozen=True)
class Experiment:
    id: str  # the name users type
    title: str  # one line for `deepnets list`
    presets: dict[str, Any]  # config dataclasses: tiny (tests), small (the default), paper, ...
    load_data: Callable[[Any], Any]  # config -> the splits the task reads
    build_model: Callable[[Any], nn.Module]  # config -> a fresh model
    task: Any  # what trains and evaluates it (deepnets.train.task.Task)
    published: Published  # the number the paper reports
    metrics: tuple[Metric, ...] = (ACCURACY,)  # the primary figure first, then the others
    headline: tuple[str, ...] = ("small",)  # presets the README and `deepnets list` show
    default_preset: str = "small"  # the preset `deepnets run ID` uses
    notes: tuple[str, ...] = field(default_factory=tuple)  # caveats shown in RESULTS.md
    published_by_preset: dict[str, Published] = field(default_factory=dict)  # other sizes' numbers
    class_names: tuple[str, ...] = ()  # classifiers: label k's name (empty: the indices)
    read_image: Callable[[str, Any], torch.Tensor] | None = None  # (file, config) -> (1, C, H, W)

    def __post_init__(self) -> None:
        missing = [p for p in (self.default_preset, *self.headline) if p not in self.presets]
        if missing:
            raise ValueError(f"{self.id}: headline/default presets {missing} are not presets")

    @property
    def metric(self) -> Metric:
        """The primary metric: model selection and the headline number."""
        return self.metrics[0]

    def published_for(self, preset: str | None = None) -> Published:
        """The number a preset is compared with; a results row's preset may end in +overrides."""
        name = (preset or self.default_preset).split("+", 1)[0]
        return self.published_by_preset.get(name, self.published)

    def published_text(self, preset: str | None = None) -> str:
        """The number a preset is compared with, in the primary metric's format, with its
        source; labelled a target when this project set it."""
        number = self.published_for(preset)
        if math.isnan(number.value):  # a preset with no paper number of its own
            return f"none ({number.text})"
        shown = self.metric.format(number.value)
        return (
            f"{shown} (target, {number.source})" if number.target else f"{shown} ({number.source})"
        )

    @property
    def config_cls(self) -> type:
        return type(self.presets[self.default_preset])

    def preset(self, name: str | None) -> Any:
        name = name or self.default_preset
        if name not in self.presets:
            raise DeepnetsError(
                f"{self.id} has no preset {name!r}; presets: {', '.join(self.presets)}"
            )
        return self.presets[name]
