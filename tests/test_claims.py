"""`deepnets claims`: each verdict from fabricated results rows (holds, partly, does not hold,
not measured), the table, and the command."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import needs_mnist, run_cli

from deepnets import DeepnetsError
from deepnets.claims import (
    CLAIMS,
    FAILS,
    GPU_SPEEDUP,
    HOLDS,
    LENGTHS,
    PARTLY,
    UNMEASURED,
    Measure,
    clear,
    findings,
    judge_attention_lengths,
    judge_convnets,
    judge_dropout,
    judge_few_labels,
    judge_gpu,
    judge_language_models,
    judge_local_minima,
    judge_long_lags,
    judge_relu,
    measure,
)
from deepnets.experiments import EXPERIMENTS
from deepnets.experiments.adding import ADDING_LAGS
from deepnets.experiments.mnist import WIDTHS
from deepnets.results import COLUMNS, append_row, bench_row, latest_rows, ours, parse_secondary
from deepnets.train.classify import steps_to_targets


def add(root: Path, experiment: str, preset: str, mean: float, std: float = 0.0, seeds: int = 3):
    row = dict.fromkeys(COLUMNS, "")
    row.update(experiment=experiment, preset=preset, mean=mean, std=std, seeds=seeds)
    append_row(row, root)


def few_label_rows(root: Path, pretrained: float, random: float, std: float = 0.005) -> None:
    for experiment in ("dbn-mnist", "sdae-mnist"):
        for n in (100, 600, 1000):
            add(root, experiment, f"labels-{n}", pretrained, std)
            add(root, experiment, f"labels-{n}+pretrain=false", random, std)


def test_clear_needs_the_gap_beyond_twice_the_combined_spread():
    a, b = Measure(0.10, 0.01, 3), Measure(0.13, 0.01, 3)  # gap 0.03, 2*hypot = 0.0283
    assert clear(a, b, lower_is_better=True) == (True, True)
    assert clear(a, Measure(0.12, 0.01, 3), lower_is_better=True) == (True, False)
    assert clear(a, b, lower_is_better=False) == (False, False)


def test_few_labels_verdicts(tmp_path):
    assert judge_few_labels(latest_rows(tmp_path), tmp_path).verdict == UNMEASURED
    few_label_rows(tmp_path, pretrained=0.90, random=0.80)  # accuracy: pre-training ahead
    found = judge_few_labels(latest_rows(tmp_path), tmp_path)
    assert found.verdict == HOLDS and "10.00 ± 0.50% (3 seeds)" in found.numbers
    add(tmp_path, "sdae-mnist", "labels-1000", 0.70)  # the newest row wins: one pair behind
    assert judge_few_labels(latest_rows(tmp_path), tmp_path).verdict == PARTLY
    few_label_rows(tmp_path, pretrained=0.80, random=0.80)  # level everywhere
    assert judge_few_labels(latest_rows(tmp_path), tmp_path).verdict == FAILS


@pytest.mark.parametrize(
    "perplexities,verdict",
    [
        ((141, 137, 124, 106), HOLDS),
        ((141, 150, 124, 106), PARTLY),
        ((100, 137, 124, 106), FAILS),
    ],
)
def test_language_model_verdicts(tmp_path, perplexities, verdict):
    for experiment, value in zip(("kn5", "nplm", "rnn", "lstm"), perplexities, strict=True):
        add(tmp_path, f"{experiment}-ptb", "small", value, seeds=1)
    assert judge_language_models(latest_rows(tmp_path), tmp_path).verdict == verdict


def write_lengths(root: Path, plain: list[float], attended: list[float]) -> None:
    def table(values):
        words = ["1-8", "9-12", "13-16"]
        return {"buckets": [{"words": w, "bleu": v} for w, v in zip(words, values, strict=True)]}

    path = root / LENGTHS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seq2seq x": table(plain), "attention x": table(attended)}))


@pytest.mark.parametrize(
    "attended,verdict",
    [([30, 31, 32], HOLDS), ([30, 26, 32], PARTLY), ([30, 25, 20], FAILS)],
)
def test_attention_length_verdicts(tmp_path, attended, verdict):
    assert judge_attention_lengths({}, tmp_path).verdict == UNMEASURED
    write_lengths(tmp_path, [20, 18, 15], attended)
    found = judge_attention_lengths({}, tmp_path)
    assert found.verdict == verdict
    assert f"1-8: {attended[0] - 20:+.1f}" in found.numbers


def test_every_claim_has_a_finding_and_names_what_regenerates_it(tmp_path):
    got = findings(tmp_path)
    assert [c.number for c, _ in got] == list(range(1, 10))
    for claim, found in got:
        assert found.verdict == UNMEASURED  # an empty results folder measures nothing
        assert claim.commands and "no results row yet; run" in found.reason


def add_full(root, experiment, preset, accuracy, seeds=3, std=0.002, spread=None, **others):
    """A row with secondary metrics, as `bench_row` writes them: name=mean±std[min..max]."""
    row = dict.fromkeys(COLUMNS, "")
    parts = []
    for name, (mean, sd, *ends) in others.items():
        parts.append(
            f"{name}={mean:.6g}±{sd:.3g}" + (f"[{ends[0]:.6g}..{ends[1]:.6g}]" if ends else "")
        )
    low, high = spread or (accuracy - std, accuracy + std)
    row.update(
        experiment=experiment, preset=preset, mean=accuracy, std=std, seeds=seeds,
        secondary=";".join(parts), range=f"{low:.6f}..{high:.6f}",
    )  # fmt: skip
    append_row(row, root)


@pytest.mark.parametrize(
    "steps,verdict",
    [
        ({"relu": 300, "tanh": 600, "logistic": math.nan}, HOLDS),
        ({"relu": 300, "tanh": 290, "logistic": math.nan}, PARTLY),
        ({"relu": math.nan, "tanh": 290, "logistic": 500}, FAILS),
    ],
)
def test_relu_verdicts_count_a_target_never_reached_as_slowest(tmp_path, steps, verdict):
    assert judge_relu(latest_rows(tmp_path), tmp_path).verdict == UNMEASURED
    for unit, n in steps.items():
        add_full(tmp_path, "mlp-mnist", f"deep-{unit}", 0.97, steps_to_loss=(n, 10.0),
                 steps_to_error=(n, 10.0))  # fmt: skip
    found = judge_relu(latest_rows(tmp_path), tmp_path)
    assert found.verdict == verdict, found
    assert "logistic: steps to train loss 0.1 " in found.numbers


def test_local_minima_verdict_reads_the_spread_against_width(tmp_path):
    def widths(spreads, seeds=20):
        for w, sd in zip(WIDTHS, spreads, strict=True):
            add_full(tmp_path, "mlp-mnist", f"width-{w}", 0.95, seeds=seeds, std=sd,
                     train_loss=(0.1, sd, 0.1 - sd, 0.1 + 2 * sd))  # fmt: skip

    widths([0.02, 0.01, 0.005, 0.003, 0.002, 0.001], seeds=19)
    assert judge_local_minima(latest_rows(tmp_path), tmp_path).verdict == UNMEASURED  # < 20
    widths([0.02, 0.01, 0.005, 0.003, 0.002, 0.001])
    found = judge_local_minima(latest_rows(tmp_path), tmp_path)
    assert found.verdict == HOLDS and "5 units: test error 5.00% std 2.00" in found.numbers
    assert "range 0.0600" in found.numbers  # the training loss's max - min, 3 std
    widths([0.001, 0.002, 0.003, 0.005, 0.01, 0.02])
    assert judge_local_minima(latest_rows(tmp_path), tmp_path).verdict == FAILS


def test_convnet_and_dropout_verdicts_compare_error_gap_and_steps(tmp_path):
    def pair(experiment, good, bad, good_acc, bad_acc, good_train, bad_train, steps=(100, 200)):
        add_full(tmp_path, experiment, good, good_acc, train_accuracy=(good_train, 0.001),
                 steps_to_error=(steps[0], 5.0))  # fmt: skip
        add_full(tmp_path, experiment, bad, bad_acc, train_accuracy=(bad_train, 0.001),
                 steps_to_error=(steps[1], 5.0))  # fmt: skip

    assert judge_convnets(latest_rows(tmp_path), tmp_path).verdict == UNMEASURED
    pair("lenet5-mnist", "10k", "10k-dropout", 0.985, 0.992, 1.0, 0.999)
    add_full(tmp_path, "mlp-mnist", "10k-matched", 0.96, train_accuracy=(1.0, 0.001),
             steps_to_error=(math.nan, 0.0))  # fmt: skip
    pair("convnet-cifar10", "lenet5", "mlp-matched", 0.6, 0.45, 0.7, 0.7)
    found = judge_convnets(latest_rows(tmp_path), tmp_path)
    assert found.verdict == HOLDS, found  # error, gap and steps ahead on both data sets
    assert (
        "steps to the val error target 100 ± 5 (3 seeds) vs not reached by every seed"
        in found.numbers
    )
    pair("mlp-mnist", "10k-dropout", "10k", 0.98, 0.97, 0.995, 1.0)
    dropout = judge_dropout(latest_rows(tmp_path), tmp_path)
    # with dropout: MLP gap 1.5 vs 3 points, error 2.0% vs 3.0%; LeNet-5 0.7 vs 1.5, 0.8% vs 1.5%
    assert dropout.verdict == HOLDS, dropout
    add_full(tmp_path, "lenet5-mnist", "10k-dropout", 0.98, train_accuracy=(1.0, 0.001))
    assert judge_dropout(latest_rows(tmp_path), tmp_path).verdict == PARTLY


def test_long_lag_verdicts(tmp_path):
    assert judge_long_lags(latest_rows(tmp_path), tmp_path).verdict == UNMEASURED
    for lag in ADDING_LAGS:
        add(tmp_path, "adding-lstm", f"lag-{lag}", 0.001)
        add(tmp_path, "adding-rnn", f"lag-{lag}", 0.001 if lag == ADDING_LAGS[0] else 0.16)
    found = judge_long_lags(latest_rows(tmp_path), tmp_path)
    assert (
        found.verdict == HOLDS and f"RNN {ADDING_LAGS[0]}, LSTM {ADDING_LAGS[-1]}" in found.numbers
    )
    for lag in ADDING_LAGS:
        add(tmp_path, "adding-rnn", f"lag-{lag}", 0.001)
    assert judge_long_lags(latest_rows(tmp_path), tmp_path).verdict == FAILS


def test_gpu_verdict_is_not_measured_without_a_gpu_side(tmp_path):
    path = tmp_path / GPU_SPEEDUP
    path.parent.mkdir(parents=True)
    cpu_only = {"a": {"cpu_ms": 12.0, "gpu_ms": None, "speedup": None}}
    path.write_text(json.dumps({"systems": cpu_only}))
    found = judge_gpu({}, tmp_path)
    assert found.verdict == UNMEASURED and "a 12.0 ms" in found.numbers
    both = {"a": {"cpu_ms": 12.0, "speedup": 15.0}, "b": {"cpu_ms": 30.0, "speedup": 4.0}}
    path.write_text(json.dumps({"systems": both}))
    assert judge_gpu({}, tmp_path).verdict == PARTLY


def test_bench_rows_keep_each_metrics_range_and_read_back():
    summaries = [
        {"value": v, "metrics": {"accuracy": v, "train_loss": t}, "epochs": 1, "wall_seconds": 1.0,
         "device": "cpu", "torch": "x", "commit": "c"}
        for v, t in ((0.9, 0.3), (0.8, 0.1), (0.85, 0.2))
    ]  # fmt: skip
    row = bench_row(EXPERIMENTS["mlp-mnist"], "width-5", summaries)
    assert row["range"] == "0.800000..0.900000"
    summaries[1]["metrics"]["train_loss"] = math.nan  # one seed never got there
    assert (
        "train_loss=nan±nan[0.2..0.3]"
        in bench_row(EXPERIMENTS["mlp-mnist"], "w", summaries)["secondary"]
    )
    summaries[1]["metrics"]["train_loss"] = 0.1
    loss = parse_secondary(row)["train_loss"]
    assert loss == {"mean": pytest.approx(0.2), "std": pytest.approx(0.1), "min": 0.1, "max": 0.3}
    assert (
        ours(EXPERIMENTS["mlp-mnist"], row, spread=True) == "15.00% error ± 5.00 (10.00% to 20.00%)"
    )


def test_steps_to_targets_reads_the_metrics_log():
    log = [
        {"step": 10, "train_loss": 0.5},
        {"step": 20, "train_loss": 0.09},
        {"step": 20, "seconds": 2.0, "val_accuracy": 0.95},
        {"step": 30, "train_loss": 0.2},
        {"step": 40, "seconds": 4.0, "val_accuracy": 0.98},
    ]
    config = SimpleNamespace(target_loss=0.1, target_error=0.03)
    found = steps_to_targets(log, config, {"wall_seconds": 8.0, "steps": 40})
    assert found == {"steps_to_loss": 20, "seconds_to_loss": 4.0, "steps_to_error": 40,
                     "seconds_to_error": 4.0}  # fmt: skip
    never = steps_to_targets(
        log, SimpleNamespace(target_loss=0.01, target_error=0.0), {"wall_seconds": 1, "steps": 1}
    )
    assert list(never) == ["steps_to_loss", "seconds_to_loss"] and math.isnan(
        never["steps_to_loss"]
    )


def test_the_command_prints_every_claim_and_refuses_an_unknown_one(tmp_path):
    out = run_cli("claims", env={"DEEPNETS_RESULTS": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert all(f"{c.number}. {c.statement}" in out.stdout for c in CLAIMS)
    bad = run_cli("claims", "--run", "12")
    assert bad.returncode == 2 and "no claim 12: the claims are 1-9" in bad.stderr
    assert "Traceback" not in bad.stderr


def train_width_run(folder: Path, width: int, seed: int = 0, capture=None) -> Path:
    """A short run of the `width-N` preset (its label kept, so the figure finds it)."""
    from deepnets.run import RunDir

    experiment = EXPERIMENTS["mlp-mnist"]
    config = dataclasses.replace(
        experiment.preset(f"width-{width}"), epochs=1, train_subset=500, val_size=500, seed=seed
    )
    run = RunDir.create(folder / f"width-{width}-s{seed}")
    experiment.task.train(experiment, config, run, preset=f"width-{width}", progress=False,
                          log=lambda line: None)  # fmt: skip
    return run.path


@needs_mnist
def test_the_figure_rebuilds_the_initial_weights_the_engine_started_from(tmp_path, monkeypatch):
    from deepnets.figures.minima import initial_weights
    from deepnets.train import engine

    started = {}
    make = engine.make_optimizer

    def spy(model, config):  # the engine makes the optimizer right after building the model
        started.update({k: v.clone() for k, v in model.state_dict().items()})
        return make(model, config)

    monkeypatch.setattr(engine, "make_optimizer", spy)
    run = train_width_run(tmp_path, 5, seed=3)
    rebuilt = initial_weights(run)
    assert started.keys() == rebuilt.keys()
    assert all(torch.equal(started[k], rebuilt[k]) for k in started)


@needs_mnist
def test_fig_minima_draws_the_spread_and_the_line_from_initialisation(tmp_path):
    from deepnets.figures.minima import draw_minima

    root = tmp_path
    for w in (5, 25):
        train_width_run(tmp_path / "runs", w)
    for w, sd in zip(WIDTHS, (0.02, 0.01, 0.008, 0.005, 0.003, 0.002), strict=True):
        add_full(root, "mlp-mnist", f"width-{w}", 0.9, seeds=20, std=sd,
                 train_loss=(0.05, sd, 0.04, 0.07))  # fmt: skip
    out = draw_minima(str(tmp_path / "runs"), str(tmp_path / "minima.png"), root=root)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads(out.with_suffix(".json").read_text())
    assert set(record["line"]) == {"alphas", "5", "25"} and len(record["spread"]) == 6
    losses = record["line"]["25"]["losses"]
    at = {round(a, 2): v for a, v in zip(record["line"]["alphas"], losses, strict=True)}
    assert at[1.0] < at[0.0]  # training lowered the loss along the line
    with pytest.raises(DeepnetsError, match="holds no finished seed-0 run"):
        draw_minima(str(tmp_path), str(tmp_path / "x.png"), root=root)


def test_claims_run_regenerates_a_claims_rows_then_judges_it(tmp_path, monkeypatch, capsys):
    import deepnets.claims as claims
    from deepnets.cli import main

    def judge(rows, root):  # holds once the tiny demo row exists
        m = measure(rows, "convnet-digits", "tiny")
        return claims.missing("x") if m is None else claims.Finding(f"{m.mean}", HOLDS, "row made")

    tiny = claims.Claim(
        1, "s", "r", "e", ("c",), judge, (claims.Bench("convnet-digits", "tiny", 1),)
    )
    monkeypatch.setattr(claims, "CLAIMS", (tiny,))
    monkeypatch.setenv("DEEPNETS_RESULTS", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the bench's runs go under runs/bench here
    assert main(["claims", "--run", "1", "--quiet"]) == 0
    assert "claim 1: HOLDS: row made" in capsys.readouterr().out
    assert (tmp_path / "results" / "convnet-digits.csv").is_file()


@needs_mnist
def test_a_claim_preset_through_the_cli_reports_train_scores_and_steps(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "run", "mlp-mnist", "--preset", "deep-relu", "--set", "epochs=1", "--set",
        "train_subset=5000", "--set", "hidden=32x32x32x32x32x32", "--set", "target_loss=2.2",
        "--run-dir", str(run_dir), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    assert 0 < metrics["train_accuracy"] <= 1 and metrics["train_loss"] > 0
    assert 0 < metrics["steps_to_loss"] <= 39  # 5000 images: 39 steps of 128
    assert math.isnan(metrics["steps_to_error"])  # 3% validation error: not after one epoch
