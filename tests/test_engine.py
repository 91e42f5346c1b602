import dataclasses
import errno
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import needs_ptb, run_cli, shared_data, tone_fsdd
from safetensors.torch import load_file

from deepnets import DeepnetsError
from deepnets.config import ConfigError
from deepnets.experiments.mnist import CONVNET_DIGITS, LeNet5Config
from deepnets.train import train_and_evaluate
from deepnets.train.engine import NonFiniteLossError, lr_at


def test_learning_rate_schedules():
    config = LeNet5Config(lr=1.0, warmup=0.1, schedule="onecycle")
    assert lr_at(0, 100, 10, config) == pytest.approx(0.04)
    assert lr_at(10, 100, 10, config) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, config) == pytest.approx(0.5)
    assert lr_at(100, 100, 10, config) == 0.0
    cosine = dataclasses.replace(config, schedule="cosine", warmup=0.0)
    assert lr_at(50, 100, 10, cosine) == pytest.approx(0.5)
    step = dataclasses.replace(config, schedule="step", warmup=0.0, step_every=2, step_gamma=0.5)
    assert [lr_at(s, 100, 10, step) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]


def test_cosine_cycles_restart_the_decay_and_one_cycle_is_the_plain_cosine():
    cosine = LeNet5Config(lr=1.0, warmup=0.0, schedule="cosine")
    cycles = dataclasses.replace(cosine, cosine_cycles=2)
    assert [lr_at(s, 100, 10, cycles) for s in (0, 25, 50, 75)] == pytest.approx(
        [1.0, 0.5, 1.0, 0.5]
    )
    assert [lr_at(s, 100, 10, cycles) for s in range(50)] == [
        lr_at(s, 50, 10, cosine)
        for s in range(50)  # the first cycle: half the run's cosine
    ]
    assert [lr_at(s, 100, 10, cosine) for s in range(100)] == [
        0.5 * (1 + math.cos(math.pi * (s / 100)))
        for s in range(100)  # as before the cycles
    ]
    with pytest.raises(ConfigError, match="cosine_cycles > 1 needs schedule=cosine"):
        dataclasses.replace(cosine, schedule="onecycle", cosine_cycles=2)


def test_a_finished_run_lengthened_ends_as_the_longer_run_from_the_start(tmp_path):
    """A 2-epoch cosine run resumed with 4 epochs in 2 cycles ends with the weights, metrics
    and test score of a 4-epoch 2-cycle run trained straight; changes that would have altered
    a step already taken, or anything but the length, are refused and leave the run as it was."""
    quiet = dict(progress=False, log=lambda line: None)
    short = dataclasses.replace(
        CONVNET_DIGITS.preset("tiny"), epochs=2, schedule="cosine", warmup=0.0, lr=0.1
    )
    longer = dataclasses.replace(short, epochs=4, cosine_cycles=2)
    straight = train_and_evaluate(CONVNET_DIGITS, longer, tmp_path / "straight", **quiet)
    train_and_evaluate(CONVNET_DIGITS, short, tmp_path / "run", **quiet)
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    refused = {
        "would have trained step 1 differently": dataclasses.replace(short, epochs=4),
        "not given a new lr": dataclasses.replace(longer, lr=0.2),
        "does not lengthen it": dataclasses.replace(short, epochs=1),
    }
    for message, config in refused.items():
        with pytest.raises(DeepnetsError, match=message):
            train_and_evaluate(CONVNET_DIGITS, config, tmp_path / "run", resume=True, **quiet)
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before
    lengthened = train_and_evaluate(CONVNET_DIGITS, longer, tmp_path / "run", resume=True, **quiet)
    assert lengthened["metrics"] == straight["metrics"]
    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "run")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in rows if "val_accuracy" in r] == [1, 2, 3, 4]
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["config"]["epochs"] == 4 and meta["config"]["cosine_cycles"] == 2
    assert [entry["after_epoch"] for entry in meta["lengthened"]] == [2]


def test_tiny_digits_run_learns_and_writes_a_run_folder(tmp_path):
    config = dataclasses.replace(CONVNET_DIGITS.preset("tiny"), epochs=6, lr=0.1)
    summary = train_and_evaluate(
        CONVNET_DIGITS, config, tmp_path, preset="tiny", progress=False, log=lambda s: None
    )
    assert summary["value"] > 0.85
    assert set(summary) >= {
        "experiment",
        "preset",
        "metric",
        "value",
        "published",
        "epochs",
        "wall_seconds",
        "device",
        "torch",
        "commit",
    }
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["value"] == summary["value"]
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines if "val_accuracy" in l] == list(range(1, 7))
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["config"]["lr"] == 0.1 and meta["torch"] == torch.__version__


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    config = dataclasses.replace(CONVNET_DIGITS.preset("tiny"), epochs=3, log_every=1)
    train_and_evaluate(CONVNET_DIGITS, config, tmp_path, progress=False, log=lambda s: None)
    before = load_file(str(tmp_path / "checkpoint.safetensors"))
    # every step's rate becomes 1e30 (the check that lengthening changes no step sees the same)
    monkeypatch.setattr(type(CONVNET_DIGITS.task), "lr_at", lambda self, *args: 1e30)
    longer = dataclasses.replace(config, epochs=4)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train_and_evaluate(
            CONVNET_DIGITS, longer, tmp_path, resume=True, progress=False, log=lambda s: None
        )
    after = load_file(str(tmp_path / "checkpoint.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 3


def _final_weights(run_dir):
    return load_file(str(run_dir / "checkpoint.safetensors"))


def _kill_after_first_checkpoint(args: list[str], run_dir, env: dict) -> int:
    """Start `deepnets ARGS --run-dir RUN_DIR`, SIGKILL it once its first checkpoint exists;
    return the number of epochs that checkpoint holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepnets", *args, "--run-dir", str(run_dir)],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = run_dir / "checkpoint.json"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return json.loads(state.read_text())["epoch"]


def _assert_same_run(straight, resumed) -> None:
    """Bit-identical final weights and optimizer state, summary and metrics lines."""
    a, b = _final_weights(straight), _final_weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = json.loads((straight / "summary.json").read_text())
    sb = json.loads((resumed / "summary.json").read_text())
    assert sa["value"] == sb["value"] and sa["best_epoch"] == sb["best_epoch"]
    assert sa["metrics"] == sb["metrics"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    rows_a = [json.loads(l) for l in (straight / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(l) for l in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert strip(rows_a) == strip(rows_b)


def _sigkill_then_resume(tmp_path, args: list[str], epochs: int, env: dict | None = None):
    env = env or {}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    result = run_cli(*args, "--run-dir", str(straight), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    done = _kill_after_first_checkpoint(args, killed, env)
    assert 1 <= done < epochs and not (killed / "summary.json").exists()
    result = run_cli("run", "--resume", str(killed), "--quiet", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {killed} after epoch {done}" in result.stdout
    _assert_same_run(straight, killed)


def test_sigkill_then_resume_equals_an_uninterrupted_run_classifier(tmp_path):
    args = ["run", "convnet-digits", "--preset", "tiny", "--quiet", "--set", "epochs=40"]
    _sigkill_then_resume(tmp_path, [*args, "--set", "log_every=5"], 40)


@needs_ptb
def test_sigkill_then_resume_equals_an_uninterrupted_run_language_model(tmp_path):
    args = ["run", "lstm-ptb", "--preset", "tiny", "--quiet", "--set", "epochs=12"]
    _sigkill_then_resume(
        tmp_path, [*args, "--set", "train_subset=8000", "--set", "dropout=0.3"], 12
    )


def test_sigkill_then_resume_equals_an_uninterrupted_run_ctc(tmp_path):
    data = tone_fsdd(tmp_path / "data")
    args = ["run", "ctc-digits", "--preset", "tiny", "--quiet", "--set", "epochs=10"]
    args += ["--set", "strings=48,8,8", "--set", "val_size=20"]
    _sigkill_then_resume(tmp_path, args, 10, env={"DEEPNETS_DATA": str(data)})


DDP_TOLERANCE = 1e-4  # max abs weight difference: float32 all-reduce sums in another order


def _ddp_matches_one_process(tmp_path, args: list[str]) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    result = run_cli("run", *args, "--run-dir", str(single))
    assert result.returncode == 0, result.stderr[-2000:]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "deepnets",
            "run",
            *args,
            "--run-dir",
            str(ddp),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((ddp / "config.json").read_text())
    assert meta["world_size"] == 2
    a, b = _final_weights(single), _final_weights(ddp)
    model_keys = [k for k in a if k.startswith("model.")]
    worst = max((a[k] - b[k]).abs().max().item() for k in model_keys)
    assert worst < DDP_TOLERANCE, worst
    sa = json.loads((single / "summary.json").read_text())
    sb = json.loads((ddp / "summary.json").read_text())
    assert abs(sa["value"] - sb["value"]) < 1e-3 * max(1.0, abs(sa["value"])), (sa, sb)
    steps = [json.loads(l)["step"] for l in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == sa["steps"] == sb["steps"] > 0  # the same global steps were taken


def test_ddp_two_ranks_match_one_process_classifier(tmp_path):
    args = ["convnet-digits", "--preset", "tiny", "--quiet", "--device", "cpu", "--set", "epochs=3"]
    _ddp_matches_one_process(tmp_path, args)


@needs_ptb
def test_ddp_two_ranks_match_one_process_language_model(tmp_path):
    args = ["lstm-ptb", "--preset", "tiny", "--quiet", "--device", "cpu"]
    _ddp_matches_one_process(tmp_path, [*args, "--set", "epochs=2", "--set", "train_subset=8000"])


AMP_COMPILE_RUNS = [
    ("convnet-digits", ["epochs=1"], None),
    ("lstm-ptb", ["epochs=1", "train_subset=4000"], "ptb"),
    ("ctc-digits", ["epochs=1", "strings=32,8,8", "val_size=20"], "tones"),
    ("dbn-mnist", ["epochs=1", "pretrain_epochs=1", "train_subset=1000"], "mnist"),
    ("caption-digits", ["epochs=1"], "mnist"),  # the seq2seq decoder's nn.LSTM
    ("lstm-copy", ["epochs=1"], None),
]


@pytest.mark.parametrize("experiment, overrides, data", AMP_COMPILE_RUNS)
def test_amp_and_compile_are_accepted_by_every_task(tmp_path, experiment, overrides, data):
    """bfloat16 autocast and torch.compile together, one short epoch of each gradient task."""
    env = {}
    if data == "ptb" and shared_data("ptb", ["ptb.train.txt"]) is None:
        pytest.skip("set DEEPNETS_DATA to a folder holding ptb/")
    if data == "mnist" and shared_data() is None:
        pytest.skip("set DEEPNETS_DATA to a folder holding mnist/")
    if data == "tones":
        env["DEEPNETS_DATA"] = str(tone_fsdd(tmp_path / "data"))
    sets = [arg for o in [*overrides, "amp=true", "compile=true"] for arg in ("--set", o)]
    run_dir = tmp_path / "run"
    args = ["run", experiment, "--preset", "tiny", "--quiet", *sets, "--run-dir", str(run_dir)]
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((run_dir / "config.json").read_text())
    assert meta["config"]["amp"] is True and meta["config"]["compile"] is True
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all(math.isfinite(v) for v in summary["metrics"].values()), summary


@pytest.mark.parametrize("kind", ["tensor", "packed"])
def test_a_builtin_lstm_under_cpu_autocast_runs_in_float32_where_onednn_has_no_bfloat16(
    kind, monkeypatch
):
    from torch.nn.utils.rnn import pack_padded_sequence

    from deepnets.models import recurrence

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, batch_first=True)
    x, state = torch.randn(3, 4, 6), (torch.randn(1, 3, 5), torch.randn(1, 3, 5))
    if kind == "packed":
        x = pack_padded_sequence(x, torch.tensor([4, 2, 3]), batch_first=True, enforce_sorted=False)
    want_out, (want_h, want_c) = lstm(x, state)
    monkeypatch.setattr(recurrence, "cpu_has_bfloat16_rnn", lambda: False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = recurrence.run_rnn(lstm, x, (state[0].bfloat16(), state[1]))
    if kind == "packed":
        out, want_out = out.data, want_out.data
    assert out.dtype == h.dtype == torch.float32
    torch.testing.assert_close(out, want_out, atol=0.02, rtol=0)  # h_0 was rounded to bfloat16
    torch.testing.assert_close(c, want_c, atol=0.02, rtol=0)
    out, _ = recurrence.run_rnn(lstm, x, state)  # no autocast: the plain call
    torch.testing.assert_close(out.data if kind == "packed" else out, want_out, atol=0, rtol=0)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_resume_continues(
    tmp_path, monkeypatch
):
    """ENOSPC while the second epoch's checkpoint is written: one clear error naming the file,
    the first epoch's checkpoint intact, no temporary file left; --resume then finishes the run
    exactly as an uninterrupted one."""
    from deepnets.run import RunDirError
    from deepnets.train import checkpoint

    config = dataclasses.replace(CONVNET_DIGITS.preset("tiny"), epochs=3)
    quiet = dict(progress=False, log=lambda s: None)
    train_and_evaluate(CONVNET_DIGITS, config, tmp_path / "straight", **quiet)
    real_save, calls = checkpoint.save_file, []

    def disk_full_on_second_checkpoint(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 3:  # epoch 1: best + checkpoint; epoch 2: best, then this one
            with open(filename, "wb") as handle:
                handle.write(b"half a file")
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(tensors, filename, metadata=metadata)

    run_dir = tmp_path / "full"
    monkeypatch.setattr(checkpoint, "save_file", disk_full_on_second_checkpoint)
    with pytest.raises(RunDirError, match="No space left on device") as caught:
        train_and_evaluate(CONVNET_DIGITS, config, run_dir, **quiet)
    assert "\n" not in str(caught.value) and str(run_dir) in str(caught.value)
    monkeypatch.setattr(checkpoint, "save_file", real_save)
    assert json.loads((run_dir / "checkpoint.json").read_text())["epoch"] == 1
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []
    load_file(str(run_dir / "checkpoint.safetensors"))  # whole, readable
    train_and_evaluate(CONVNET_DIGITS, config, run_dir, resume=True, **quiet)
    _assert_same_run(tmp_path / "straight", run_dir)
