"""Typed experiment configs: every value checked before a run starts, and type-checked overrides.

Every config is a frozen dataclass that subclasses `Config`; experiments subclass `TrainConfig`
with their own model fields, and their presets are instances. Each field declares what it allows
once, beside its default, and `Config.__post_init__` checks every field on construction, so a
preset at import, `dataclasses.replace`, a `key=value` override and a config loaded from a run
folder all pass the same checks:

    epochs: int = check(10, ge=1)  # passes over the training split
    momentum: float = check(0.9, ge=0, lt=1)  # SGD momentum (Adam: beta1)
    hidden: tuple[int, ...] = check((800, 800), items=Range(ge=1))  # hidden layer sizes

The annotation gives the type (bool, int, float, str, a Literal's choices, a tuple of them),
`check` the range: ge/gt/le/lt, `items` for the items of a tuple, `min_len`/`max_len` for the
length of a variable-length tuple. A subclass that only changes a default (`batch_size: int = 20`)
keeps its parent's range. Rules that relate fields are a class's `RULES`: (fields, predicate,
message), with the parents' rules applied too. A value that breaks a rule raises `ConfigError`:
`epochs=-1 is not allowed: must be at least 1`.

Loading is hand-written rather than dacite or cattrs: both fill a missing key from its default
(a saved run holds every field, so a missing one is an error here) and would duplicate the type
and Literal checks that `__post_init__` already makes, saving a dozen lines for a dependency.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from deepnets import DeepnetsError


class ConfigError(DeepnetsError, ValueError):
    """A config value that is not allowed: the message names the field, the value and the rule."""


@dataclass(frozen=True)
class Range:
    """Bounds on a number: ge (>=), gt (>), le (<=), lt (<); None leaves that side open."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, x: float) -> bool:
        return (
            (self.ge is None or x >= self.ge)
            and (self.gt is None or x > self.gt)
            and (self.le is None or x <= self.le)
            and (self.lt is None or x < self.lt)
        )

    def describe(self) -> str:
        low = ("[", self.ge) if self.ge is not None else ("(", self.gt)
        high = (self.le, "]") if self.le is not None else (self.lt, ")")
        if low[1] is not None and high[0] is not None:
            return f"in {low[0]}{low[1]:g}, {high[0]:g}{high[1]}"
        if self.ge is not None:
            return f"at least {self.ge:g}"
        if self.gt is not None:
            return f"greater than {self.gt:g}"
        if self.le is not None:
            return f"at most {self.le:g}"
        if self.lt is not None:
            return f"less than {self.lt:g}"
        return "any number"

    def is_open(self) -> bool:
        return self.ge is None and self.gt is None and self.le is None and self.lt is None


@dataclass(frozen=True)
class Spec:
    """What one field allows beyond its type (the metadata `check` puts on the field)."""

    range: Range = Range()
    items: Range | None = None  # tuple fields: every item
    min_len: int = 0  # variable-length tuple fields
    max_len: int | None = None


SPEC_KEY = "deepnets.check"


def check(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    items: Range | None = None,
    min_len: int = 0,
    max_len: int | None = None,
) -> Any:
    """A dataclass field with `default` and the values it allows (see the module docstring)."""
    spec = Spec(Range(ge=ge, gt=gt, le=le, lt=lt), items, min_len, max_len)
    return dataclasses.field(default=default, metadata={SPEC_KEY: spec})


# (fields, predicate on their values, what is allowed) for rules that relate fields
CrossRule = tuple[tuple[str, ...], Callable[..., bool], str]


def strictly_increasing(values: tuple) -> bool:
    """A cross-field predicate: each item greater than the one before."""
    return all(a < b for a, b in zip(values, values[1:]))


@dataclass(frozen=True)
class Field:
    """One field as the checker sees it: name, resolved type, declared spec (None: none)."""

    name: str
    kind: Any
    spec: Spec | None


@functools.cache
def fields_of(cls: type) -> tuple[Field, ...]:
    """The checked fields of a config class; a field's spec is the nearest class's declaration
    (a subclass that re-declares a field with a plain default keeps its parent's range)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = None
        for klass in cls.__mro__:
            declared = vars(klass).get("__dataclass_fields__", {}).get(f.name)
            if declared is not None and SPEC_KEY in declared.metadata:
                spec = declared.metadata[SPEC_KEY]
                break
        out.append(Field(f.name, hints[f.name], spec))
    return tuple(out)


@functools.cache
def rules_of(cls: type) -> tuple[CrossRule, ...]:
    """Every `RULES` entry of the class and its parents, parents first, each once."""
    out: list[CrossRule] = []
    for klass in reversed(cls.__mro__):
        for rule in vars(klass).get("RULES", ()):
            if rule not in out:
                out.append(rule)
    return tuple(out)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe_type(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(kind)))
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_plural(args[0])}"
        return f"a tuple of {len(args)} {_plural(args[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _describe_type(a) for a in kind.__args__)
    return _TYPE_NAMES.get(kind, str(kind))


def _plural(kind: Any) -> str:
    return {int: "integers", float: "numbers", bool: "booleans", str: "strings"}.get(
        kind, _describe_type(kind)
    )


class _Bad(Exception):
    """Internal: `_coerce` found a value that does not fit; the text says what is allowed."""


def _coerce(value: Any, kind: Any, spec: Spec | None) -> Any:
    """`value` as the field's type (ints for floats become floats, numpy scalars become Python
    numbers, lists are not tuples), checked against the spec; raises _Bad."""
    spec = spec or Spec()
    origin = typing.get_origin(kind)
    if kind is bool:
        if type(value) is not bool:
            raise _Bad("must be true or false")
        return value
    if kind is int or kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _Bad(f"must be {_TYPE_NAMES[kind]}")
        if kind is int:
            if not isinstance(value, numbers.Integral):
                raise _Bad("must be an integer")
            value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:
                raise _Bad("must be a finite number") from None
            if not math.isfinite(value):
                raise _Bad("must be a finite number")
        if not spec.range.holds(value):
            raise _Bad(f"must be {spec.range.describe()}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _Bad("must be a string")
        return value
    if origin is Literal:
        choices = typing.get_args(kind)
        if type(value) not in {type(c) for c in choices} or value not in choices:
            raise _Bad(f"must be {_describe_type(kind)}")
        return value
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, tuple):
            raise _Bad(f"must be {_describe_type(kind)}")
        variable = len(args) == 2 and args[1] is Ellipsis
        item_kinds = [args[0]] * len(value) if variable else list(args)
        if len(value) != len(item_kinds):
            raise _Bad(f"must be {_describe_type(kind)}")
        if variable and len(value) < spec.min_len:
            raise _Bad(f"must hold at least {spec.min_len} item{'s' * (spec.min_len != 1)}")
        if variable and spec.max_len is not None and len(value) > spec.max_len:
            raise _Bad(f"must hold at most {spec.max_len} item{'s' * (spec.max_len != 1)}")
        item_spec = Spec(spec.items or Range())
        out = []
        for item, item_kind in zip(value, item_kinds):
            try:
                out.append(_coerce(item, item_kind, item_spec))
            except _Bad as bad:
                raise _Bad(f"every item {bad}") from None
        return tuple(out)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, spec)
            except _Bad:
                continue
        raise _Bad(f"must be {_describe_type(kind)}")
    return value  # a type the checker does not know: no check


def check_config(config: Any) -> None:
    """Check every field of a config dataclass against its type, its declared range and the
    class's cross-field rules; normalise numbers in place. Raises ConfigError naming every
    field that breaks a rule, its value and what is allowed."""
    cls = type(config)
    problems = []
    for f in fields_of(cls):
        value = getattr(config, f.name)
        try:
            fixed = _coerce(value, f.kind, f.spec)
        except _Bad as bad:
            problems.append(f"{f.name}={_show(value)} is not allowed: {bad}")
            continue
        if fixed is not value:
            object.__setattr__(config, f.name, fixed)
    if problems:
        raise ConfigError("; ".join(problems))
    for names, predicate, allowed in rules_of(cls):
        values = [getattr(config, n) for n in names]
        if not predicate(*values):
            shown = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, values))
            together = " together" if len(names) > 1 else ""
            problems.append(
                f"{shown} {'are' if len(names) > 1 else 'is'} not allowed{together}: {allowed}"
            )
    if problems:
        raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class Config:
    """The base of every config: checked on construction (see the module docstring)."""

    RULES: ClassVar[tuple[CrossRule, ...]] = ()

    def __post_init__(self) -> None:
        check_config(self)


Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class TrainConfig(Config):
    RULES = (
        (
            ("cosine_cycles", "schedule"),
            lambda cycles, schedule: cycles == 1 or schedule == "cosine",
            "cosine_cycles > 1 needs schedule=cosine",
        ),
    )

    epochs: int = check(10, ge=1)  # passes over the training split
    batch_size: int = check(128, ge=1)  # global minibatch size (split across ranks under torchrun)
    optimizer: Literal["sgd", "adam"] = "sgd"  # SGD with (Nesterov) momentum, or Adam
    lr: float = check(0.05, gt=0)  # peak learning rate
    momentum: float = check(0.9, ge=0, lt=1)  # SGD momentum (Adam: beta1)
    nesterov: bool = True  # Nesterov momentum for SGD
    weight_decay: float = check(5e-4, ge=0)  # L2 penalty, applied to weights only (not biases)
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "onecycle"  # lr over steps
    warmup: float = check(0.2, ge=0, lt=1)  # fraction of steps to warm up (onecycle) or 0: none
    cosine_cycles: int = check(1, ge=1)  # cosine: equal cycles, each from lr down to 0 (restarts)
    step_every: int = check(10, ge=1)  # epochs between decays (step schedule)
    step_gamma: float = check(0.1, gt=0, le=1)  # decay factor (step schedule)
    decay_start: int = check(0, ge=0)  # epochs before the first decay (step; 0: step_every)
    clip_grad_norm: float = check(0.0, ge=0)  # clip the global gradient norm to this (0: off)
    momentum_warmup: int = check(0, ge=0)  # epochs at momentum 0.5 before `momentum` (SGD)
    select: Literal["best_val", "last"] = "best_val"  # test the best-on-validation or last weights
    train_subset: int = check(0, ge=0)  # use only the first N training examples (0: all)
    eval_batch_size: int = check(1000, ge=1)  # minibatch size for evaluation
    log_every: int = check(50, ge=1)  # steps between metrics.jsonl lines
    evals_per_epoch: int = check(1, ge=1)  # validations per epoch (each may keep the best)
    stop_at: float = check(0.0, ge=0)  # stop once the primary val metric reaches this (0: never)
    seed: int = check(0, ge=0)  # seeds weights, data order, dropout and augmentation
    device: Device = "auto"  # auto, cpu or cuda (whether cuda exists: check_device_exists)
    amp: bool = False  # mixed precision (bfloat16 autocast)
    compile: bool = False  # torch.compile the model


@dataclass(frozen=True)
class ClassifierConfig(TrainConfig):
    """What classification (deepnets.train.classify) adds: a validation split held out of the
    training examples, and label smoothing."""

    val_size: int = check(5000, ge=0)  # examples held out of the training split for selection
    label_smoothing: float = check(0.0, ge=0, lt=1)  # cross-entropy label smoothing
    score_train: bool = False  # also score the training split at the end (train loss, error)
    target_loss: float = check(0.0, ge=0)  # report the step the logged train loss reached it
    target_error: float = check(0.0, ge=0, le=1)  # ... and the step val error reached it (0: off)


@dataclass(frozen=True)
class ImageClassifierConfig(ClassifierConfig):
    """Classification of images (B, C, H, W)."""

    channels_last: bool = False  # channels-last memory format for the model and its inputs


def check_device_exists(config: Any) -> None:
    """Raise ConfigError if the config asks for a device this machine lacks (cuda without a CUDA
    device). Separate from the construction checks, so that a GPU run's saved config still loads
    on a CPU machine; the CLI calls it when it resolves a config for a run."""
    if getattr(config, "device", None) != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "device='cuda' is not allowed: torch sees no CUDA device on this machine "
            "(use --device cpu or auto)"
        )


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
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
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


# what `deepnets eval --set` may change: which saved weights are scored (select) and how they
# decode and are scored, never the model
EVAL_FIELDS = (
    "select", "beam_size", "length_penalty", "max_decode", "eval_batch_size", "eval_subset",
    "eval_paths",
)  # fmt: skip


def apply_eval_overrides(config: Config, overrides: list[str]) -> Config:
    """`apply_overrides` for a trained run's config, limited to the EVAL_FIELDS it has."""
    allowed = [f.name for f in fields_of(type(config)) if f.name in EVAL_FIELDS]
    for item in overrides:
        key = item.split("=", 1)[0]
        if key not in allowed:
            raise ConfigError(
                f"eval --set {key}: only how the trained model decodes and is scored can change "
                f"here ({', '.join(allowed) or 'nothing, for this experiment'})"
            )
    return apply_overrides(config, overrides)


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Return `config` with each `key=value` applied: the text is converted to the field's type,
    then the new config is checked like any other. Raises ConfigError naming the key."""
    cls = type(config)
    kinds = {f.name: f.kind for f in fields_of(cls)}
    names = list(kinds)
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in kinds:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"unknown config key {key!r} for {cls.__name__}{hint} (keys: {', '.join(names)})"
            )
        try:
            changes[key] = _convert(text, kinds[key])
        except ValueError as err:
            raise ConfigError(f"bad value for {key}: {err}") from None
    return dataclasses.replace(config, **changes)


def config_to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


# The migrations: fields added to every config after run folders were first written. A saved
# config without them gets these values, which are what the older runs did; any other missing
# key is an error.
ADDED_FIELDS: dict[str, Any] = {
    "momentum_warmup": 0,
    "evals_per_epoch": 1,
    "stop_at": 0.0,
    "empty_attention": False,  # memn2n-babi: empty memory slots were masked out
    "position_weights": "paper",  # memn2n-babi: the paper's PE formula, J per sentence
    "ls_epochs": 0,  # memn2n-babi: linear start ended when validation loss stopped falling
    "ls_lr": 0.32,  # ... at the schedule's lr (0.32 from the start with no warm-up)
    "feed_thought": False,  # seq2seq-multi30k: the thought vector only started the decoder
    "score_train": False,  # classifiers: the training split was not scored
    "target_loss": 0.0,
    "target_error": 0.0,
    "init": "pytorch",  # mlp-mnist: PyTorch's default initialisation
    "blind": False,  # caption-*: every captioner saw the image
    "mlp_hidden": (20,),  # convnet-cifar10: the fully connected baseline's hidden layers
    "max_shift": 0,  # ram-mnist, convnet-cluttered, caption-flickr8k: no training shifts
    "flip": False,  # caption-flickr8k: training images were not mirrored
    "batch_by": "caption",  # caption-flickr8k, caption-digits: batches of (image, caption) pairs
    "reinforce_core": False,  # ram-mnist: the policy read the core state through a stop-gradient
    "eval_paths": 1,  # ram-mnist: scored on the policy's mean path alone
    "std_end": 0.0,  # ram-mnist: the policy's std stayed fixed
    "cosine_cycles": 1,  # a cosine schedule was one decay from lr to 0
    "encoder_init": "scratch",  # caption-flickr8k: the encoder started from random weights
    "encoder_epochs": 10,  # ... (its CIFAR-10 pre-training settings, unused from scratch)
    "encoder_subset": 0,
}
# ... and fields every config once carried that only classifiers use; a saved config of another
# experiment may hold them (with no effect on its run) and they are dropped when it is loaded.
DROPPED_FIELDS = ("val_size", "label_smoothing", "channels_last")


def config_from_dict(cls: type[Config], values: dict[str, Any]) -> Config:
    """Rebuild a config saved as JSON: every field must be there and no other key (a saved run
    holds every field), lists become tuples, and the config is checked like any other."""
    if not isinstance(values, dict):
        raise ConfigError(f"a saved {cls.__name__} must be a JSON object, not {values!r}")
    kinds = {f.name: f.kind for f in fields_of(cls)}
    values = {k: v for k, v in values.items() if k in kinds or k not in DROPPED_FIELDS}
    unknown = [k for k in values if k not in kinds]
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} "
            f"for {cls.__name__}"
        )
    values = {**{k: v for k, v in ADDED_FIELDS.items() if k in kinds}, **values}
    missing = [k for k in kinds if k not in values]
    if missing:
        raise ConfigError(
            f"missing config key{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))} "
            f"for {cls.__name__}"
        )
    return cls(**{k: _tuples(v, kinds[k]) for k, v in values.items()})


def _tuples(value: Any, kind: Any) -> Any:
    """JSON lists back to tuples where the field is a tuple (or may be one)."""
    if isinstance(value, list) and _may_be_tuple(kind):
        return tuple(value)
    return value


def _may_be_tuple(kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is tuple:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_may_be_tuple(a) for a in typing.get_args(kind))
    return False
