"""Typed experiment configs: the fields every run shares, and type-checked `key=value` overrides.

Each experiment subclasses `TrainConfig` with its own model fields; its presets are instances.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from deepnets import DeepnetsError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes over the training split
    batch_size: int = 128  # global minibatch size (split across ranks under torchrun)
    optimizer: Literal["sgd", "adam"] = "sgd"  # SGD with (Nesterov) momentum, or Adam
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9  # SGD momentum (Adam: beta1)
    nesterov: bool = True  # Nesterov momentum for SGD
    weight_decay: float = 5e-4  # L2 penalty, applied to weights only (not biases)
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "onecycle"  # lr over steps
    warmup: float = 0.2  # fraction of steps to warm up (onecycle) or 0 for none
    step_every: int = 10  # epochs between decays (step schedule)
    step_gamma: float = 0.1  # decay factor (step schedule)
    decay_start: int = 0  # epochs before the first decay (step schedule; 0: step_every)
    clip_grad_norm: float = 0.0  # clip the global gradient norm to this (0: off)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    val_size: int = 5000  # examples held out of the training split for model selection
    select: Literal["best_val", "last"] = "best_val"  # test the best-on-validation or last weights
    train_subset: int = 0  # use only the first N training examples (0: all)
    eval_batch_size: int = 1000  # minibatch size for evaluation
    log_every: int = 50  # steps between metrics.jsonl lines
    seed: int = 0  # seeds weights, data order, dropout and augmentation
    device: str = "auto"  # auto, cpu or cuda
    amp: bool = False  # mixed precision (bfloat16 autocast)
    compile: bool = False  # torch.compile the model
    channels_last: bool = False  # channels-last memory format for image models


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _convert(text: str, kind: Any) -> Any:
    """Turn the text of an override into a value of the field's type, or raise ValueError."""
    origin = typing.get_origin(kind)
    if kind is bool:
        return _parse_bool(text)
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is str:
        return text
    if origin is Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {text!r}")
        return text
    if origin is tuple:
        args = typing.get_args(kind)
        item = args[0]
        separated = text.replace("x", ",") if item is int else text  # "800x800" for sizes
        parts = [p for p in separated.split(",") if p.strip()]
        values = tuple(_convert(p.strip(), item) for p in parts)
        if len(args) == 2 and args[1] is Ellipsis:
            return values
        if len(values) != len(args):
            raise ValueError(f"expected {len(args)} comma-separated values, got {text!r}")
        return values
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(kind):
            if option is type(None):
                if text.lower() in ("none", "null"):
                    return None
                continue
            try:
                return _convert(text, option)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError("; ".join(errors))
    raise ValueError(f"fields of type {kind} cannot be set from the command line")


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Return `config` with each `key=value` applied, type-checked against the dataclass fields."""
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise DeepnetsError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DeepnetsError(
                f"unknown config key {key!r} for {type(config).__name__}{hint} "
                f"(keys: {', '.join(names)})"
            )
        try:
            changes[key] = _convert(text, hints[key])
        except ValueError as err:
            raise DeepnetsError(f"bad value for {key}: {err}") from None
    return dataclasses.replace(config, **changes)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type[TrainConfig], values: dict[str, Any]) -> TrainConfig:
    """Rebuild a config saved as JSON (lists back to tuples for tuple fields)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            continue
        if typing.get_origin(hints[key]) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
