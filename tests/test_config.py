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


def test_classifier_fields_live_on_classifier_configs_only():
    """No config carries a field its task ignores: label smoothing, the held-out validation
    split and channels-last belong to the classifiers (CTC holds out recordings too)."""
    with_fields = {
        e.id: {
            f
            for f in ("val_size", "label_smoothing", "channels_last")
            if hasattr(e.preset(None), f)
        }
        for e in EXPERIMENTS.values()
    }
    assert with_fields["lstm-ptb"] == set() and with_fields["kn5-ptb"] == set()
    assert with_fields["ctc-digits"] == {"val_size"}
    assert with_fields["tdnn-fsdd"] == with_fields["dbn-mnist"] == {"val_size", "label_smoothing"}
    assert with_fields["convnet-cifar10"] == {"val_size", "label_smoothing", "channels_last"}


def test_a_saved_config_from_before_the_classifier_fields_moved_still_loads():
    experiment = get_experiment("lstm-ptb")
    saved = config_to_dict(experiment.preset("small"))
    older = {**saved, "label_smoothing": 0.0, "val_size": 5000, "channels_last": False}
    del older["stop_at"], older["momentum_warmup"]  # and from before these were added
    assert config_from_dict(type(experiment.preset("small")), older) == experiment.preset("small")
    with pytest.raises(DeepnetsError, match="unknown config key 'bptt_len'"):
        config_from_dict(type(experiment.preset("small")), {**saved, "bptt_len": 35})
