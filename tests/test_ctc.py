"""ctc-digits: edit distance, greedy and prefix beam search decoding, the digit strings, the
BLSTM-CTC model, a tiny preset learning, and the CLI on the real recordings."""

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import needs_fsdd, run_cli, tone_fsdd

from deepnets.cli import main
from deepnets.data.fsdd import Recording, join_recordings, load_digit_strings
from deepnets.experiments.speech import CTC_DIGITS, build_ctc
from deepnets.models.ctc import (
    CTCRecognizer,
    collapse,
    edit_distance,
    greedy_decode,
    prefix_beam_search,
)
from deepnets.train import train_and_evaluate
from deepnets.train.ctc import collate, evaluate_strings

QUIET = dict(progress=False, log=lambda s: None)


# --- decoding and scoring ---------------------------------------------------------------------


def test_edit_distance_by_hand():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], [1, 2, 3]) == 3  # three deletions
    assert edit_distance([1, 2, 3], []) == 3  # three insertions
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 3, 2], [1, 2, 3]) == 2


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([1, 1, 0, 1, 2, 2, 0, 0, 3]) == [1, 1, 2, 3]
    assert collapse([0, 0, 0]) == []


def test_greedy_decoding_of_a_hand_made_matrix():
    probs = torch.tensor(
        [[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.1, 0.7, 0.2], [0.1, 0.1, 0.8]]
    )  # best path: a a - a b
    assert greedy_decode(probs.log()) == [1, 1, 2]


def test_beam_search_beats_greedy_where_paths_add_up():
    # two frames, blank 0.6 and "a" 0.4 each: the best path is blank blank (p = 0.36), but
    # "a" is the sum of (a, -), (-, a), (a, a): 0.24 + 0.24 + 0.16 = 0.64
    log_probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert greedy_decode(log_probs) == []
    assert prefix_beam_search(log_probs, beam=4) == [1]
    nll = F.ctc_loss(
        log_probs[:, None], torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]), 0, "sum"
    )
    assert math.exp(-nll.item()) == pytest.approx(0.64)  # torch's CTC agrees on p("a")


def _brute_force_best(log_probs: torch.Tensor) -> tuple[list[int], float]:
    """The most probable labelling by summing every path (V^T of them)."""
    totals: dict[tuple[int, ...], float] = {}
    probs = log_probs.exp().tolist()
    for path in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        p = math.prod(probs[t][s] for t, s in enumerate(path))
        key = tuple(collapse(list(path)))
        totals[key] = totals.get(key, 0.0) + p
    best = max(totals, key=totals.get)
    return list(best), totals[best]


def test_wide_beam_search_finds_the_exact_best_labelling():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        log_probs = (2 * torch.randn(5, 3, generator=generator)).log_softmax(-1)  # (T, V)
        best, p = _brute_force_best(log_probs)
        found = prefix_beam_search(log_probs, beam=100, prune=-math.inf)
        assert found == best or _brute_force_prob(log_probs, found) == pytest.approx(p)
        greedy = greedy_decode(log_probs)
        assert _brute_force_prob(log_probs, found) >= _brute_force_prob(log_probs, greedy) - 1e-12


def _brute_force_prob(log_probs: torch.Tensor, labels: list[int]) -> float:
    if not labels:
        return math.prod(log_probs[:, 0].exp().tolist())
    nll = F.ctc_loss(
        log_probs[:, None].double(),
        torch.tensor([labels]),
        torch.tensor([len(log_probs)]),
        torch.tensor([len(labels)]),
        0,
        "sum",
    )
    return math.exp(-nll.item())


def test_digit_error_rate_is_formatted_as_a_percentage():
    assert CTC_DIGITS.metric.format(0.0345) == "3.45% digit error rate"
    assert CTC_DIGITS.metric.higher_is_better is False


# --- the digit strings -------------------------------------------------------------------------


def test_strings_join_only_their_pool_deterministically():
    pool = [
        Recording(d, s, i, np.full(400, 0.001 * (100 * d + 10 * k + i + 1), np.float32))
        for k, s in enumerate(("ann", "ben"))
        for d in range(10)
        for i in range(3)
    ]
    levels = {round(float(r.audio[0]), 6) for r in pool}
    strings = join_recordings(pool, 50, np.random.default_rng(0), gain_db=0.0, noise=0.0)
    again = join_recordings(pool, 50, np.random.default_rng(0), gain_db=0.0, noise=0.0)
    for (audio, digits), (audio2, digits2) in zip(strings, again):
        assert digits == digits2 and np.array_equal(audio, audio2)
        assert 3 <= len(digits) <= 7
        used = {round(float(v), 6) for v in np.unique(audio) if v != 0}
        assert used <= levels  # every sample comes from a pool recording or is silence
        speakers = {(int(round(v * 1000)) - 1) % 100 // 10 for v in used}
        assert len(speakers) == 1  # one speaker per string
        spoken = [int(round(v * 1000)) - 1 for v in audio[np.flatnonzero(np.diff(audio))[::2] + 1]]
        assert [v // 100 for v in spoken] == digits  # the digits in order


def test_load_digit_strings_on_tones(tmp_path):
    folder = tone_fsdd(tmp_path) / "fsdd"
    data = load_digit_strings((30, 10, 10), seed=1, val_size=20, folder=folder)
    assert [len(data[k]) for k in ("train", "val", "test")] == [30, 10, 10]
    x, lengths, labels, label_lengths = collate(data["train"], [0, 1, 2])
    assert x.shape == (3, int(lengths.max()), 40)
    assert labels.min() >= 1 and labels.max() <= 10  # digits shifted past the blank
    assert int(label_lengths.sum()) == len(labels)
    again = load_digit_strings((30, 10, 10), seed=1, val_size=20, folder=folder)
    assert all(torch.equal(a, b) for a, b in zip(data["test"].digits, again["test"].digits))


# --- the model -----------------------------------------------------------------------------


def test_shapes_lengths_and_exact_parameter_count():
    model = build_ctc(CTC_DIGITS.preset("small"))
    x, lengths = torch.zeros(3, 101, 40), torch.tensor([101, 60, 7])
    log_probs, out_lengths = model.eval()(x, lengths)
    assert out_lengths.tolist() == [13, 8, 1]  # ceil(T / 2), three times
    assert log_probs.shape == (3, 13, 11)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 13))
    c, h = 128, 128
    front = 40 * c * 3 + 2 * c + 2 * (c * c * 3 + 2 * c)  # three convs without bias, three BNs
    lstm = 2 * (4 * h * (c + h) + 8 * h) + 2 * (4 * h * (2 * h + h) + 8 * h)  # 2 layers x 2 dirs
    out = 2 * h * 11 + 11
    assert sum(p.numel() for p in model.parameters()) == front + lstm + out


def test_one_backward_pass_gives_every_parameter_a_finite_gradient():
    torch.manual_seed(0)
    model = CTCRecognizer(40, 16, 2, 16, 2)
    lengths = torch.tensor([80, 64])
    log_probs, out_lengths = model(torch.randn(2, 80, 40), lengths)
    F.ctc_loss(
        log_probs.transpose(0, 1), torch.tensor([1, 2, 3, 4, 4]), out_lengths, torch.tensor([3, 2])
    ).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_padding_does_not_change_an_utterance_output():
    torch.manual_seed(0)
    model = CTCRecognizer(40, 16, 2, 16, 2).eval()
    x = torch.randn(1, 40, 40)
    alone, _ = model(x, torch.tensor([40]))  # (1, 10, 11)
    padded, _ = model(torch.cat([x, torch.zeros(1, 24, 40)], 1), torch.tensor([40]))
    assert torch.allclose(alone, padded[:, :10], atol=1e-5)  # the backward LSTM starts at 40


def test_tiny_preset_learns_tone_strings_in_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_DATA", str(tone_fsdd(tmp_path / "data")))
    config = dataclasses.replace(CTC_DIGITS.preset("tiny"), val_size=20)
    summary = train_and_evaluate(CTC_DIGITS, config, tmp_path / "run", **QUIET)
    assert summary["value"] <= 0.1, summary
    assert summary["value"] <= summary["metrics"]["greedy_digit_error_rate"] + 0.02


def test_resume_continues_after_the_last_finished_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_DATA", str(tone_fsdd(tmp_path / "data")))
    config = dataclasses.replace(
        CTC_DIGITS.preset("tiny"), val_size=20, epochs=1, strings=(48, 8, 8)
    )
    train_and_evaluate(CTC_DIGITS, config, tmp_path / "run", **QUIET)
    lines = []
    config = dataclasses.replace(config, epochs=2)
    summary = train_and_evaluate(
        CTC_DIGITS, config, tmp_path / "run", resume=True, progress=False, log=lines.append
    )
    assert lines[0].startswith("resuming") and summary["epochs"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in records if "val_loss" in r] == [1, 2]


# --- the real recordings -------------------------------------------------------------------------


@needs_fsdd
def test_cli_tiny_preset_on_real_strings_then_eval(tmp_path, capsys):
    run_dir = tmp_path / "run"
    ran = run_cli(
        "run", "ctc-digits", "--preset", "tiny", "--set", "epochs=2", "--run-dir", str(run_dir),
        "--quiet",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "digit_error_rate" and 0 <= summary["value"] <= 1.0
    assert main(["eval", str(run_dir)]) == 0  # in this process
    assert f"digit_error_rate {summary['value']:.4f}" in capsys.readouterr().out


@needs_fsdd
def test_real_strings_use_disjoint_recordings():
    data = load_digit_strings((20, 10, 10), seed=0)
    assert [len(data[k]) for k in ("train", "val", "test")] == [20, 10, 10]
    for split in data.values():
        for digits, feats in zip(split.digits, split.features):
            assert 3 <= len(digits) <= 7 and feats.shape[1] == 40


def test_evaluate_strings_scores_a_perfect_and_a_silent_model():
    from deepnets.data.fsdd import DigitStrings

    class Oracle(torch.nn.Module):
        """Reads the digits hidden in its input's first frame and emits each on its own frame,
        blanks elsewhere; `silent` emits only blanks."""

        def __init__(self, silent: bool = False):
            super().__init__()
            self.silent = silent

        def forward(self, x, lengths):
            out = torch.full((len(x), x.shape[1], 11), -30.0)
            out[..., 0] = 0.0
            for b in range(len(x)):
                digits = [] if self.silent else x[b, 0, 1 : 1 + int(x[b, 0, 0])].long().tolist()
                for t, d in enumerate(digits):
                    out[b, 2 * t + 1, 0], out[b, 2 * t + 1, d + 1] = -30.0, 0.0
            return out, lengths

    digits = [torch.tensor([3, 1, 4]), torch.tensor([1, 5, 9, 2, 6, 6])]
    feats = []
    for d in digits:
        f = torch.zeros(16, 40)
        f[0, 0], f[0, 1 : 1 + len(d)] = len(d), d.float()
        feats.append(f)
    data = DigitStrings(feats, digits)
    config = CTC_DIGITS.preset("tiny")
    cpu = torch.device("cpu")
    scores = evaluate_strings(Oracle(), data, config, cpu, beam_width=4)
    assert scores["digit_error_rate"] == 0.0 and scores["greedy_digit_error_rate"] == 0.0
    scores = evaluate_strings(Oracle(silent=True), data, config, cpu, beam_width=4)
    assert scores["digit_error_rate"] == 1.0  # nine deletions of nine reference digits
