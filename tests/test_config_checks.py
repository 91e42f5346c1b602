"""Every config value is checked before a run starts (issue 19), and saved configs load strictly.

(a) ordinary mistakes through the real CLI: exit status 2, one line naming the field, no run
folder; (b) property-based: any value for any field of any experiment's config either makes a
valid config or raises ConfigError, through `dataclasses.replace` and through `key=value` text;
every number field declares a range; (c) strict loading: unknown and missing keys.
"""

import dataclasses
import json
import math
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepnets import DeepnetsError
from deepnets.config import (
    Config,
    ConfigError,
    TrainConfig,
    apply_overrides,
    check_device_exists,
    config_from_dict,
    config_to_dict,
    fields_of,
)


def experiments() -> dict:
    from deepnets.experiments import EXPERIMENTS

    return EXPERIMENTS


# --- (a) the CLI: one line naming the field, exit status 2, no run folder ---------------------

TINY = ("run", "convnet-digits", "--preset", "tiny")

# id -> (command line, text the one-line message must hold; the field's name is in each). Each
# case runs with --run-dir (run) or in an empty working folder (bench).
CLI_CASES = {
    "epochs-negative": (
        [*TINY, "--set", "epochs=-1"],
        "epochs=-1 is not allowed: must be at least 1",
    ),
    "batch-size-zero": (
        [*TINY, "--set", "batch_size=0"],
        "batch_size=0 is not allowed: must be at least 1",
    ),
    "epochs-zero": ([*TINY, "--set", "epochs=0"], "epochs=0 is not allowed: must be at least 1"),
    "epochs-fraction": ([*TINY, "--set", "epochs=1.5"], "bad value for epochs"),
    "lr-zero": ([*TINY, "--set", "lr=0"], "lr=0.0 is not allowed: must be greater than 0"),
    "lr-negative": ([*TINY, "--set", "lr=-0.1"], "lr=-0.1 is not allowed: must be greater than 0"),
    "lr-nan": ([*TINY, "--set", "lr=nan"], "lr=nan is not allowed: must be a finite number"),
    "lr-inf": ([*TINY, "--set", "lr=inf"], "lr=inf is not allowed: must be a finite number"),
    "lr-text": ([*TINY, "--set", "lr=fast"], "bad value for lr: expected a number, got 'fast'"),
    "momentum-one": (
        [*TINY, "--set", "momentum=1"],
        "momentum=1.0 is not allowed: must be in [0, 1)",
    ),
    "momentum-negative": ([*TINY, "--set", "momentum=-0.5"], "momentum=-0.5 is not allowed"),
    "weight-decay-negative": (
        [*TINY, "--set", "weight_decay=-1e-4"],
        "weight_decay=-0.0001 is not allowed: must be at least 0",
    ),
    "warmup-one": ([*TINY, "--set", "warmup=1"], "warmup=1.0 is not allowed: must be in [0, 1)"),
    "step-gamma-zero": (
        [*TINY, "--set", "step_gamma=0"],
        "step_gamma=0.0 is not allowed: must be in (0, 1]",
    ),
    "step-gamma-above-one": ([*TINY, "--set", "step_gamma=2"], "step_gamma=2.0 is not allowed"),
    "step-every-zero": ([*TINY, "--set", "step_every=0"], "step_every=0 is not allowed"),
    "decay-start-negative": ([*TINY, "--set", "decay_start=-1"], "decay_start=-1 is not allowed"),
    "clip-negative": ([*TINY, "--set", "clip_grad_norm=-1"], "clip_grad_norm=-1.0 is not allowed"),
    "label-smoothing-one": (
        [*TINY, "--set", "label_smoothing=1"],
        "label_smoothing=1.0 is not allowed: must be in [0, 1)",
    ),
    "val-size-negative": ([*TINY, "--set", "val_size=-5"], "val_size=-5 is not allowed"),
    "train-subset-negative": (
        [*TINY, "--set", "train_subset=-1"],
        "train_subset=-1 is not allowed",
    ),
    "eval-batch-size-zero": ([*TINY, "--set", "eval_batch_size=0"], "eval_batch_size=0"),
    "log-every-zero": ([*TINY, "--set", "log_every=0"], "log_every=0 is not allowed"),
    "seed-negative": ([*TINY, "--seed", "-1"], "seed=-1 is not allowed: must be at least 0"),
    "optimizer-unknown": ([*TINY, "--set", "optimizer=rmsprop"], "bad value for optimizer"),
    "nesterov-not-bool": ([*TINY, "--set", "nesterov=maybe"], "bad value for nesterov"),
    "hidden-zero-units": (
        [*TINY, "--set", "hidden=64x0"],
        "hidden=(64, 0) is not allowed: every item must be at least 1",
    ),
    "hidden-one-layer": ([*TINY, "--set", "hidden=64"], "bad value for hidden: expected 2"),
    "kernel-size-zero": ([*TINY, "--set", "kernel_size=0"], "kernel_size=0 is not allowed"),
    "padding-negative": ([*TINY, "--set", "padding=-1,0"], "padding=(-1, 0) is not allowed"),
    "dropout-one": ([*TINY, "--set", "dropout=1"], "dropout=1.0 is not allowed: must be in [0, 1)"),
    "mlp-input-dropout": (
        ["run", "mlp-mnist", "--preset", "tiny", "--set", "input_dropout=1.5"],
        "input_dropout=1.5 is not allowed: must be in [0, 1)",
    ),
    "lstm-bptt-zero": (
        ["run", "lstm-ptb", "--preset", "tiny", "--set", "bptt=0"],
        "bptt=0 is not allowed: must be at least 1",
    ),
    "lstm-cutoffs-decreasing": (
        ["run", "lstm-ptb", "--preset", "tiny", "--set", "cutoffs=3000,2000"],
        "cutoffs=(3000, 2000) is not allowed: must be strictly increasing",
    ),
    "ctc-digits-reversed": (
        ["run", "ctc-digits", "--preset", "tiny", "--set", "digits=7,3"],
        "digits=(7, 3) is not allowed: the fewest must not exceed the most",
    ),
    "tdnn-layers-mismatch": (
        ["run", "tdnn-fsdd", "--preset", "tiny", "--set", "channels=16,32,64"],
        "are not allowed together: one kernel size per layer",
    ),
    "dbn-labels-not-balanced": (
        ["run", "dbn-mnist", "--preset", "tiny", "--set", "labels=55"],
        "labels=55 is not allowed: must be a multiple of the 10 classes",
    ),
    "kn5-order-zero": (
        ["run", "kn5-ptb", "--preset", "tiny", "--set", "order=0"],
        "order=0 is not allowed: must be at least 1",
    ),
    "bench-epochs-zero": (
        ["bench", "convnet-digits", "--preset", "tiny", "--seeds", "1", "--set", "epochs=0"],
        "epochs=0 is not allowed",
    ),
}

# Cases run in this process through `deepnets.cli.main` (the same code, without paying about
# 1.5 CPU seconds each for a fresh interpreter importing torch); all others run in a subprocess.
IN_PROCESS = {
    "epochs-zero",
    "lr-negative",
    "lr-inf",
    "momentum-negative",
    "step-gamma-above-one",
    "decay-start-negative",
    "nesterov-not-bool",
    "hidden-one-layer",
    "padding-negative",
    "lstm-bptt-zero",
}

# Saved runs whose config.json is wrong: `run --resume` must refuse them, naming the key.
RESUME_CASES = {
    "resume-unknown-key": ({"learning_rate": 0.1}, [], "unknown config key 'learning_rate'"),
    "resume-missing-key": ({}, ["epochs"], "missing config key 'epochs'"),
    "resume-bad-value": ({"batch_size": 0}, [], "batch_size=0 is not allowed"),
}


def _saved_run(folder: Path, add: dict, drop: list[str]) -> Path:
    """A run folder of convnet-digits [tiny] holding only a config.json, changed as asked."""
    from deepnets.experiments import get_experiment

    config = config_to_dict(get_experiment("convnet-digits").preset("tiny"))
    config = {k: v for k, v in {**config, **add}.items() if k not in drop}
    folder.mkdir(parents=True)
    meta = {"experiment": "convnet-digits", "preset": "tiny", "config": config}
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict:
    """Every CLI case run once, two subprocesses at a time (each pays for importing torch)."""
    base = tmp_path_factory.mktemp("cli-cases")
    jobs = {}
    for case, (args, _) in CLI_CASES.items():
        if case in IN_PROCESS:
            continue
        cwd = base / case
        cwd.mkdir()
        run_dir = [] if args[0] == "bench" else ["--run-dir", str(cwd / "run")]
        jobs[case] = (cwd, [*args, *run_dir])
    for case, (add, drop, _) in RESUME_CASES.items():
        cwd = base / case
        cwd.mkdir()
        saved = _saved_run(cwd / "saved", add, drop)
        jobs[case] = (cwd, ["run", "--resume", str(saved)])
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            case: pool.submit(run_cli, *args, cwd=cwd, env={"DEEPNETS_RESULTS": str(cwd / "res")})
            for case, (cwd, args) in jobs.items()
        }
        return {case: (jobs[case][0], f.result()) for case, f in futures.items()}


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    err = result.stderr
    assert err.startswith("deepnets: error: ") and err.count("\n") == 1, err
    return err


def _in_process(args: list[str], cwd: Path, capsys) -> SimpleNamespace:
    from deepnets.cli import main

    run_dir = [] if args[0] == "bench" else ["--run-dir", str(cwd / "run")]
    code = main([*args, *run_dir])
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_config_stops_before_the_run(request, case, tmp_path, monkeypatch, capsys):
    args, expected = CLI_CASES[case]
    if case in IN_PROCESS:
        monkeypatch.chdir(tmp_path)
        cwd, result = tmp_path, _in_process(args, tmp_path, capsys)
    else:
        cwd, result = request.getfixturevalue("cli_results")[case]
    err = _one_line_error(result)
    assert expected in err, err
    assert not (cwd / "run").exists() and not (cwd / "runs").exists()
    assert not (cwd / "res").exists()  # no results row either


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_bad_saved_config_is_refused_on_resume(cli_results, case):
    cwd, result = cli_results[case]
    err = _one_line_error(result)
    assert RESUME_CASES[case][2] in err, err
    assert sorted(p.name for p in (cwd / "saved").iterdir()) == ["config.json"]


def test_at_least_23_cli_cases_in_subprocesses():
    assert len(set(CLI_CASES) - IN_PROCESS) + len(RESUME_CASES) >= 23


# --- messages and mechanism -------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": -1}, "epochs=-1 is not allowed: must be at least 1"),
        ({"epochs": True}, "epochs=true is not allowed: must be an integer"),
        ({"epochs": 2.0}, "epochs=2.0 is not allowed: must be an integer"),
        ({"lr": "0.1"}, "lr='0.1' is not allowed: must be a number"),
        ({"lr": 10**400}, "lr=1000000000000000000000000000000000000... is not allowed"),
        ({"nesterov": 1}, "nesterov=1 is not allowed: must be true or false"),
        ({"schedule": "linear"}, "must be one of constant, step, cosine, onecycle"),
        ({"device": "gpu"}, "device='gpu' is not allowed: must be one of auto, cpu, cuda"),
        (
            {"epochs": 0, "lr": -1},
            "epochs=0 is not allowed: must be at least 1; lr=-1 is not allowed",
        ),
    ],
)
def test_messages_name_field_value_and_rule(changes, message):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(TrainConfig(), **changes)
    assert message in str(err.value)
    assert isinstance(err.value, DeepnetsError)


def test_ints_become_floats_and_subclass_defaults_keep_the_range():
    from deepnets.experiments.language import StreamConfig

    assert type(TrainConfig(lr=1).lr) is float
    assert StreamConfig().batch_size == 20  # re-declared with a plain default...
    with pytest.raises(ConfigError, match="batch_size=0 is not allowed"):
        StreamConfig(batch_size=0)  # ...still at least 1
    with pytest.raises(ConfigError, match="must be a tuple"):
        experiments()["mlp-mnist"].config_cls(hidden=[800])


def test_every_config_is_checked_on_construction():
    for experiment in experiments().values():
        assert issubclass(experiment.config_cls, Config)
    with pytest.raises(ConfigError, match="order=0"):
        dataclasses.replace(experiments()["kn5-ptb"].preset("tiny"), order=0)


def test_cuda_device_is_checked_only_when_a_run_resolves_it(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gpu_run = TrainConfig(device="cuda")  # a GPU run's saved config still loads here
    with pytest.raises(ConfigError, match="device='cuda' is not allowed: torch sees no CUDA"):
        check_device_exists(gpu_run)
    check_device_exists(TrainConfig(device="cpu"))
    check_device_exists(TrainConfig(device="auto"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    check_device_exists(gpu_run)


# --- (b) property: any value either makes a valid config or raises ConfigError ---------------

EXAMPLES_PER_FIELD = 25  # x ~30 fields x ~17 experiments, twice (objects, text): see the report


def _near(default, kind) -> st.SearchStrategy:
    """Values of the field's own type close to the preset's (mostly valid)."""
    if typing.get_origin(kind) is typing.Literal:
        return st.sampled_from(typing.get_args(kind))
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(default - 3, default + 3)
    if isinstance(default, float):
        return st.floats(-1.5, 2 * default + 2) | st.just(default)
    if isinstance(default, tuple):
        same_length = st.tuples(*(_near(v, type(v)) for v in default))
        item = _near(default[0], type(default[0])) if default else st.integers(-2, 5)
        return same_length | st.lists(item, max_size=5).map(tuple)
    return st.nothing()


SCALARS = st.one_of(
    st.integers(-3, 3),
    st.integers(),
    st.integers(min_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2, 2),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["auto", "cpu", "cuda", "sgd", "adam", "lstm", "last", "full", ""]),
    st.none(),
)


def _values_for(default, kind) -> st.SearchStrategy:
    """Valid and invalid values: near the default, ints, floats (nan, inf), huge, negative,
    strings, bools, None, tuples and lists."""
    return st.one_of(
        _near(default, kind),
        SCALARS,
        st.lists(SCALARS, max_size=4).map(tuple),
        st.lists(st.integers(-2, 5), max_size=3),
    )


def _text_for(default, kind) -> st.SearchStrategy:
    as_text = _values_for(default, kind).map(
        lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
    )
    return as_text | st.text(max_size=10)


PROPERTY = settings(
    max_examples=EXAMPLES_PER_FIELD,
    database=None,  # nothing written into the checkout
    derandomize=True,  # the same examples on every run: CI stays reproducible
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _accepted_or_config_error(make, name: str):
    try:
        config = make()
    except ConfigError as err:
        assert name in str(err) and "\n" not in str(err), str(err)
        return None
    # an accepted config is a valid one: it survives the JSON round trip of a saved run
    again = config_from_dict(type(config), json.loads(json.dumps(config_to_dict(config))))
    assert again == config
    return config


def _examples_for_field(preset, name: str, kind) -> int:
    """Run the property on one field; returns how many examples hypothesis tried."""
    default = getattr(preset, name)
    seen = []

    @PROPERTY
    @given(value=_values_for(default, kind), text=_text_for(default, kind))
    def one_example(value, text):
        seen.append(1)
        made = _accepted_or_config_error(lambda: dataclasses.replace(preset, **{name: value}), name)
        if made is not None:  # the value kept, ints in float fields as floats
            floats = kind is float or typing.get_args(kind)[:1] == (float,)
            expected = (
                value
                if not floats
                else (float(value) if kind is float else tuple(map(float, value)))
            )
            assert getattr(made, name) == expected
        _accepted_or_config_error(lambda: apply_overrides(preset, [f"{name}={text}"]), name)

    one_example()
    return len(seen)


@pytest.mark.parametrize("experiment_id", sorted(experiments()))
def test_any_value_makes_a_config_or_a_config_error(experiment_id, record_property):
    preset = experiments()[experiment_id].preset(None)
    started = time.perf_counter()
    counts = {f.name: _examples_for_field(preset, f.name, f.kind) for f in fields_of(type(preset))}
    seconds = time.perf_counter() - started
    record_property("examples_per_field", counts)
    record_property("seconds", round(seconds, 2))
    print(
        f"{experiment_id}: {len(counts)} fields, {min(counts.values())}-{max(counts.values())} "
        f"examples per field (each a value and a key=value text), {seconds:.2f} s"
    )
    assert min(counts.values()) >= EXAMPLES_PER_FIELD // 2


def _number_kind(kind) -> bool:
    return kind in (int, float)


def test_every_number_field_declares_a_range():
    classes = {type(p) for e in experiments().values() for p in e.presets.values()}
    missing = []
    for cls in classes:
        for field in fields_of(cls):
            args = typing.get_args(field.kind)
            if _number_kind(field.kind):
                if field.spec is None or field.spec.range.is_open():
                    missing.append(f"{cls.__name__}.{field.name}")
            elif typing.get_origin(field.kind) is tuple and any(map(_number_kind, args)):
                if field.spec is None or field.spec.items is None:
                    missing.append(f"{cls.__name__}.{field.name} (items)")
    assert not missing, f"declare a range with check(...) for {', '.join(sorted(missing))}"


def test_every_preset_is_valid_and_round_trips():
    for experiment in experiments().values():
        for preset in experiment.presets.values():
            saved = json.loads(json.dumps(config_to_dict(preset)))
            assert config_from_dict(type(preset), saved) == preset
            for value in saved.values():
                assert not (isinstance(value, float) and not math.isfinite(value))


# --- (c) strict loading -----------------------------------------------------------------------


def _saved(preset) -> dict:
    return json.loads(json.dumps(config_to_dict(preset)))


def test_loading_refuses_an_unknown_key():
    preset = experiments()["lenet5-mnist"].preset("tiny")
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate' for LeNet5Config"):
        config_from_dict(type(preset), {**_saved(preset), "learning_rate": 0.1})


def test_loading_refuses_a_missing_key():
    preset = experiments()["lstm-ptb"].preset("tiny")
    saved = _saved(preset)
    del saved["bptt"], saved["cutoffs"]
    with pytest.raises(ConfigError, match="missing config keys 'bptt', 'cutoffs' for RNNLMConfig"):
        config_from_dict(type(preset), saved)


def test_loading_turns_lists_into_tuples_and_checks_values():
    preset = experiments()["tdnn-fsdd"].preset("tiny")
    saved = _saved(preset)
    assert isinstance(saved["channels"], list)
    assert config_from_dict(type(preset), saved).channels == preset.channels
    with pytest.raises(ConfigError, match=r"kernel_sizes=\(5, 0\) is not allowed"):
        config_from_dict(type(preset), {**saved, "kernel_sizes": [5, 0]})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        config_from_dict(type(preset), ["not", "a", "dict"])
