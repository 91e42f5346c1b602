"""`deepnets claims`: each verdict from fabricated results rows (holds, partly, does not hold,
not measured), the table, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from deepnets.claims import (
    CLAIMS,
    FAILS,
    HOLDS,
    LENGTHS,
    PARTLY,
    UNMEASURED,
    Measure,
    clear,
    findings,
    judge_attention_lengths,
    judge_few_labels,
    judge_language_models,
)
from deepnets.results import COLUMNS, append_row, latest_rows


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


def test_every_claim_has_a_finding_and_the_unbuilt_ones_say_so(tmp_path):
    got = findings(tmp_path)
    assert [c.number for c, _ in got] == list(range(1, 10))
    for claim, found in got:
        assert found.verdict in (HOLDS, PARTLY, FAILS, UNMEASURED)
        assert found.verdict == UNMEASURED  # an empty results folder measures nothing
        assert bool(claim.commands) or "not built yet" in found.reason


def test_the_command_prints_every_claim_and_refuses_an_unknown_one(tmp_path):
    out = run_cli("claims", env={"DEEPNETS_RESULTS": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert all(f"{c.number}. {c.statement}" in out.stdout for c in CLAIMS)
    bad = run_cli("claims", "--run", "12")
    assert bad.returncode == 2 and "no claim 12: the claims are 1-9" in bad.stderr
    assert "Traceback" not in bad.stderr
