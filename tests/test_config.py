import pytest

from deepnets import DeepnetsError
from deepnets.config import ConfigError, apply_overrides, config_from_dict, config_to_dict
from deepnets.experiments import EXPERIMENTS, get_experiment
from deepnets.experiments.mnist import MLPMnistConfig


def test_overrides_are_converted_to_field_types():
    config = apply_overrides(
        MLPMnistConfig(),
        ["lr=0.3", "epochs=7", "nesterov=false", "hidden=300x100", "optimizer=adam"],
    )
    assert config.lr == 0.3 and config.epochs == 7 and config.nesterov is False
    assert config.hidden == (300, 100) and config.optimizer == "adam"


@pytest.mark.parametrize(
    "override, message",
    [
        ("lr=abc", "bad value for lr"),
        ("epochs=1.5", "bad value for epochs"),
        ("optimizer=rmsprop", "expected one of sgd, adam"),
        ("nesterov=maybe", "true or false"),
        ("lrr=0.1", "did you mean lr"),
        ("lr", "key=value"),
        ("epochs=-1", r"epochs=-1 is not allowed: must be at least 1"),
        ("lr=0", r"lr=0.0 is not allowed: must be greater than 0"),
        ("dropout=1", r"dropout=1.0 is not allowed: must be in \[0, 1\)"),
        ("hidden=800x0", r"hidden=\(800, 0\) is not allowed: every item must be at least 1"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(MLPMnistConfig(), [override])


def test_config_round_trips_through_json_types():
    config = MLPMnistConfig(hidden=(10, 20), lr=0.2)
    as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in config_to_dict(config).items()}
    assert config_from_dict(MLPMnistConfig, as_json) == config


def test_every_experiment_has_tiny_and_small_presets_of_one_type():
    for experiment in EXPERIMENTS.values():
        assert {"tiny", "small"} <= set(experiment.presets)
        assert len({type(p) for p in experiment.presets.values()}) == 1


def test_unknown_experiment_suggests_close_names():
    with pytest.raises(DeepnetsError, match="Did you mean lenet5-mnist"):
        get_experiment("lenet-mnist")
