"""ntm-copy / ntm-sort: each addressing step against hand-computed weightings, no NaN at zero
memory and zero keys, the generated tasks, the NTM and LSTM baseline (shapes, parameter counts,
gradients), a short run learning, resume, and the CLI with the memory-use figure."""

import dataclasses
import json
import math

import pytest
import torch
from conftest import run_cli

from deepnets import DeepnetsError
from deepnets.data.algorithmic import copy_batch, sort_batch
from deepnets.experiments.algorithmic import LSTM_COPY, NTM_COPY, NTM_SORT, build_algorithmic
from deepnets.figures.ntm import draw_ntm_copy
from deepnets.models.ntm import (
    NTM,
    SequenceLSTM,
    address,
    content_weighting,
    interpolate,
    sharpen,
    shift,
)
from deepnets.run import RunDir
from deepnets.train import train_and_evaluate
from deepnets.train.sequence import score

QUIET = dict(progress=False, log=lambda s: None)


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# --- addressing, by hand -----------------------------------------------------------------------


def test_content_weighting_by_hand():
    memory = t([1.0, 0.0], [0.0, 1.0], [1.0, 1.0])[None]  # (1, N=3, M=2)
    key = t([2.0, 0.0])[None]  # (1, H=1, M): cosine 1, 0, 1/sqrt(2)
    beta = t([3.0])  # (1, H)
    e = [math.exp(3 * c) for c in (1.0, 0.0, 1 / math.sqrt(2))]
    expected = t([x / sum(e) for x in e])[None]
    assert torch.allclose(content_weighting(memory, key, beta), expected, atol=1e-12)
    flat = content_weighting(memory, key, t([0.0]))  # beta 0: uniform
    assert torch.allclose(flat, torch.full((1, 1, 3), 1 / 3, dtype=torch.float64))


def test_interpolation_by_hand():
    w_c, w_prev = t([1.0, 0.0, 0.0])[None], t([0.0, 0.5, 0.5])[None]
    out = interpolate(w_c, w_prev, t([0.25]))
    assert torch.allclose(out, t([0.25, 0.375, 0.375])[None])
    assert torch.equal(interpolate(w_c, w_prev, t([1.0])), w_c)  # g = 1: content only
    assert torch.equal(interpolate(w_c, w_prev, t([0.0])), w_prev)  # g = 0: previous only


def test_circular_shift_by_hand():
    w = t([0.0, 1.0, 0.0, 0.0])[None]  # weight on row 1
    forward, back, stay = t([0, 0, 1.0])[None], t([1.0, 0, 0])[None], t([0, 1.0, 0])[None]
    assert torch.equal(shift(w, forward), t([0, 0, 1.0, 0])[None])  # +1
    assert torch.equal(shift(w, back), t([1.0, 0, 0, 0])[None])  # -1
    assert torch.equal(shift(w, stay), w)
    last = t([0, 0, 0, 1.0])[None]
    assert torch.equal(shift(last, forward), t([1.0, 0, 0, 0])[None])  # wraps around
    split = shift(w, t([0.5, 0.2, 0.3])[None])  # w~_i = sum_j w_j s(i - j)
    assert torch.allclose(split, t([0.5, 0.2, 0.3, 0.0])[None])


def test_sharpening_by_hand():
    w = t([0.5, 0.25, 0.25])[None]
    out = sharpen(w, t([2.0]))  # (0.25, 0.0625, 0.0625) / 0.375
    assert torch.allclose(out, t([2 / 3, 1 / 6, 1 / 6])[None], atol=1e-7)
    assert torch.allclose(sharpen(w, t([1.0])), w, atol=1e-7)  # gamma 1: unchanged


def test_addressing_has_no_nan_at_zero_memory_zero_key_and_zero_weights():
    b, h, n, m = 2, 2, 5, 4
    memory = torch.zeros(b, n, m, requires_grad=True)
    key = torch.zeros(b, h, m, requires_grad=True)
    beta = torch.full((b, h), 5.0, requires_grad=True)
    g = torch.full((b, h), 0.0, requires_grad=True)  # all from the (zero) previous weighting
    s = torch.tensor([0.0, 1.0, 0.0]).repeat(b, h, 1).requires_grad_(True)
    gamma = torch.full((b, h), 3.0, requires_grad=True)
    w = address(memory, torch.zeros(b, h, n), key, beta, g, s, gamma)
    assert torch.isfinite(w).all()
    w.sum().backward()
    for x in (memory, key, beta, g, s, gamma):
        assert torch.isfinite(x.grad).all()
    model = NTM(3, 2, hidden=8, memory_size=6, memory_width=4)
    logits = model(torch.zeros(2, 5, 3))  # the machine from its zero-ish start
    logits.sum().backward()
    assert torch.isfinite(logits).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_address_gradients_match_finite_differences():
    torch.manual_seed(0)
    d = dict(dtype=torch.float64, requires_grad=True)
    args = (
        torch.randn(1, 5, 3, **d),  # memory
        torch.softmax(torch.randn(1, 2, 5, dtype=torch.float64), -1).requires_grad_(True),
        torch.randn(1, 2, 3, **d),  # key
        torch.rand(1, 2, **d),  # beta
        torch.rand(1, 2, **d),  # g
        torch.softmax(torch.randn(1, 2, 3, dtype=torch.float64), -1).requires_grad_(True),
        (1 + torch.rand(1, 2, dtype=torch.float64)).requires_grad_(True),  # gamma
    )
    assert torch.autograd.gradcheck(address, args)


# --- the tasks -------------------------------------------------------------------------------


def test_copy_and_sort_sequences():
    g = torch.Generator().manual_seed(0)
    b = copy_batch(3, 4, 8, g)
    assert b.inputs.shape == (3, 9, 9) and b.targets.shape == (3, 4, 8)
    assert torch.equal(b.inputs[:, :4, :8], b.targets)  # the vectors, then the delimiter
    assert b.inputs[:, 4, 8].eq(1).all() and b.inputs[:, 5:].eq(0).all()
    s = sort_batch(2, 5, 3, 8, g)
    assert s.inputs.shape == (2, 9, 10) and s.targets.shape == (2, 3, 8)
    for i in range(2):
        order = s.inputs[i, :5, 8].argsort(descending=True)[:3]  # highest priority first
        assert torch.equal(s.targets[i], s.inputs[i, order, :8])
    again = copy_batch(3, 4, 8, torch.Generator().manual_seed(0))
    assert torch.equal(again.inputs, b.inputs)  # the generator fixes the sequences


# --- the models ------------------------------------------------------------------------------


def test_shapes_and_parameter_counts():
    ntm = build_algorithmic(NTM_COPY.preset("small"))
    x = torch.zeros(2, 7, 9)
    logits, reads, writes = ntm(x, trace=True)
    assert logits.shape == (2, 7, 8) and reads.shape == (2, 7, 1, 128)
    assert writes.shape == (2, 7, 1, 128)
    assert torch.allclose(writes.sum(-1), torch.ones(2, 7, 1), atol=1e-4)  # weightings sum to 1
    # LSTMCell(9 + 20, 100), heads 100 -> 2 x (20 + 1 + 1 + 3 + 1), erase/add 100 -> 40,
    # output (100 + 20) -> 8, initial read 20
    expected = (4 * 100 * (29 + 100) + 8 * 100) + (100 * 52 + 52) + (100 * 40 + 40) + 968 + 20
    assert sum(p.numel() for p in ntm.parameters()) == expected == 62_680
    lstm = build_algorithmic(LSTM_COPY.preset("small"))
    assert isinstance(lstm, SequenceLSTM) and lstm(x).shape == (2, 7, 8)
    layers = (4 * 256 * (9 + 256) + 8 * 256) + 2 * (4 * 256 * 512 + 8 * 256)
    assert sum(p.numel() for p in lstm.parameters()) == layers + 256 * 8 + 8 == 1_328_136
    sort_ntm = build_algorithmic(NTM_SORT.preset("small"))
    assert sort_ntm(torch.zeros(1, 37, 10)).shape == (1, 37, 8)


@pytest.mark.parametrize("experiment", [NTM_COPY, LSTM_COPY])
def test_one_backward_gives_every_parameter_a_finite_gradient(experiment):
    torch.manual_seed(0)
    model = build_algorithmic(experiment.preset("tiny"))
    b = copy_batch(4, 5, 8, torch.Generator().manual_seed(1))
    logits = model(b.inputs)[:, -5:]
    torch.nn.functional.binary_cross_entropy_with_logits(logits, b.targets).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


# --- training --------------------------------------------------------------------------------


def test_tiny_ntm_learns_to_copy_short_sequences(tmp_path):
    config = dataclasses.replace(
        NTM_COPY.preset("tiny"),
        bits=4,
        max_length=3,
        epochs=6,
        lr=1e-2,
        schedule="constant",
        sequences_per_epoch=512,
    )  # about 5 s; seeds 0-2 reach 1.08-1.5 bits wrong per sequence
    summary = train_and_evaluate(NTM_COPY, config, tmp_path / "run", **QUIET)
    chance = 2 * 2  # half of 4 bits wrong at each of 2 steps on average (lengths 1-3)
    assert summary["value"] < 0.5 * chance
    assert set(summary["metrics"]) == {"bit_error", "loss", "bit_error_len10"}


def test_resume_is_bit_identical(tmp_path):
    tiny = NTM_COPY.preset("tiny")
    config = dataclasses.replace(tiny, epochs=3, sequences_per_epoch=64, schedule="constant")
    train_and_evaluate(NTM_COPY, config, tmp_path / "straight", **QUIET)
    once = dataclasses.replace(config, epochs=1)  # as if stopped after epoch 1: lr is constant
    train_and_evaluate(NTM_COPY, once, tmp_path / "stopped", **QUIET)
    train_and_evaluate(NTM_COPY, config, tmp_path / "stopped", resume=True, **QUIET)
    straight, stopped = RunDir.open(tmp_path / "straight"), RunDir.open(tmp_path / "stopped")
    a, b = straight.load_checkpoint()[0], stopped.load_checkpoint()[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = straight.read_summary(), stopped.read_summary()
    assert sa["metrics"] == sb["metrics"]


def test_evaluation_counts_wrong_bits_per_sequence():
    class Oracle(torch.nn.Module):  # outputs the target, with one bit of every sequence flipped
        def __init__(self, targets):
            super().__init__()
            self.targets = targets

        def forward(self, x):
            out = torch.zeros(x.shape[0], x.shape[1], 8)
            flipped = self.targets.clone()
            flipped[:, 0, 0] = 1 - flipped[:, 0, 0]
            out[:, -self.targets.shape[1] :] = flipped * 20 - 10  # logits of the bits
            return out

    b = copy_batch(5, 4, 8, torch.Generator().manual_seed(0))
    assert score(Oracle(b.targets), [b], "cpu")["bit_error"] == 1.0


# --- the command line ------------------------------------------------------------------------


def test_cli_tiny_run_then_memory_figure(tmp_path):
    run_dir = tmp_path / "run"
    ran = run_cli("run", "ntm-sort", "--preset", "tiny", "--run-dir", str(run_dir), "--quiet")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "bit_error" and 0 <= summary["value"] <= 4 * 8
    out = tmp_path / "fig.png"
    drawn = run_cli("figure", "fig-ntm-sort", str(run_dir), "--out", str(out))
    assert drawn.returncode == 0, drawn.stderr
    assert out.stat().st_size > 10_000
    with pytest.raises(DeepnetsError, match="needs an ntm-copy run"):
        draw_ntm_copy(str(run_dir))  # a sort run given to the copy figure
