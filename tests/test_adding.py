"""The adding problem (adding-rnn, adding-lstm): the data, the model, a short run, the CLI."""

import json
from dataclasses import replace

import pytest
import torch

from deepnets.cli import main
from deepnets.data.adding import CONSTANT_MSE, adding_batch, fixed_adding_set
from deepnets.experiments import get_experiment
from deepnets.experiments.adding import (
    ADDING_LAGS,
    SOLVED_MSE,
    TINY,
    AddingConfig,
    LastStepRegressor,
    build_adding,
)
from deepnets.run import RunDir
from deepnets.train.regress_sequence import score


@pytest.mark.parametrize("length", [2, 3, 10, 101])
def test_two_markers_one_in_each_half_and_the_target_is_their_sum(length):
    batch = adding_batch(500, length, torch.Generator().manual_seed(length))
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]  # (B, T) each
    assert batch.inputs.shape == (500, length, 2) and batch.targets.shape == (500, 1)
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    assert (markers.sum(1) == 2).all()
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    torch.testing.assert_close(batch.targets[:, 0], (values * markers).sum(1))


def test_the_generator_reproduces_and_the_fixed_sets_differ_by_seed():
    a = adding_batch(8, 20, torch.Generator().manual_seed(3))
    b = adding_batch(8, 20, torch.Generator().manual_seed(3))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    val, test = fixed_adding_set(2500, 20, 7), fixed_adding_set(2500, 20, 8)
    assert [len(x.targets) for x in val] == [1000, 1000, 500]
    assert torch.equal(val[2].inputs, fixed_adding_set(2500, 20, 7)[2].inputs)
    assert not torch.equal(val[0].inputs, test[0].inputs)


def test_the_constant_guess_scores_one_sixth():
    targets = torch.cat([b.targets for b in fixed_adding_set(20_000, 10, 0)])
    assert abs(float(((targets - 1) ** 2).mean()) - CONSTANT_MSE) < 0.005

    class One(torch.nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 1)

    scores = score(One(), fixed_adding_set(4000, 10, 0), "cpu")
    assert abs(scores["mse"] - CONSTANT_MSE) < 0.01 and scores["close"] < 0.1


@pytest.mark.parametrize("cell, params", [("rnn", 320 + 17), ("lstm", 4 * 320 + 17)])
def test_model_shape_parameter_count_and_finite_gradients(cell, params):
    model = build_adding(AddingConfig(cell=cell, hidden=16))
    assert sum(p.numel() for p in model.parameters()) == params  # 2-in, 16 units, 1 out
    batch = adding_batch(4, 12, torch.Generator().manual_seed(0))
    out = model(batch.inputs)
    assert out.shape == (4, 1)
    torch.nn.functional.mse_loss(out, batch.targets).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_the_lstm_forget_gate_starts_open():
    model = LastStepRegressor("lstm", 2, 8, forget_bias=1.0)
    bias = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0  # (4H,): gates i, f, g, o
    assert torch.equal(model.rnn.bias_ih_l0[8:16], torch.ones(8))
    assert torch.equal(bias[8:16], torch.ones(8))


def test_presets_cover_every_lag_and_both_cells_share_data_and_budget():
    rnn, lstm = get_experiment("adding-rnn"), get_experiment("adding-lstm")
    names = {"tiny", "small", *(f"lag-{t}" for t in ADDING_LAGS)}
    assert set(rnn.presets) == set(lstm.presets) == names
    for name in names:
        assert rnn.preset(name).cell == "rnn" and lstm.preset(name).cell == "lstm"
        assert replace(rnn.preset(name), cell="lstm", lr=1e-2) == lstm.preset(name)
    for t in ADDING_LAGS:
        assert lstm.preset(f"lag-{t}").length == t
    assert rnn.metric.name == "mse" and not rnn.metric.higher_is_better
    assert rnn.published.value == 0.01 and rnn.published.target


def test_a_short_run_on_a_short_lag_beats_the_constant_guess(tmp_path):
    experiment = get_experiment("adding-lstm")
    config = replace(
        TINY, hidden=32, lr=1e-2, sequences_per_epoch=20_000, epochs=1, stop_at=0.0, device="cpu"
    )
    run = RunDir.create(tmp_path / "run")
    summary = experiment.task.train(experiment, config, run, preset="tiny", progress=False)
    assert summary["steps"] == 400  # T = 10: solved in 400 steps (seeds 0-2: MSE 0.0007-0.0013)
    assert summary["value"] < SOLVED_MSE, summary["metrics"]


def test_tiny_preset_through_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    code = main(["run", "adding-lstm", "--preset", "tiny", "--run-dir", str(run_dir)])
    assert code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiment"] == "adding-lstm" and summary["metric"] == "mse"
    assert summary["steps"] == 2 * (640 // 50) and 0 <= summary["metrics"]["close"] <= 1
    assert 0 < summary["value"] < 1
