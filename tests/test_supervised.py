import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import run_cli
from safetensors.torch import load_file

from deepnets.registry import CONVNET_DIGITS, LeNet5Config
from deepnets.train.supervised import NonFiniteLossError, lr_at, train_and_evaluate


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


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    config = dataclasses.replace(CONVNET_DIGITS.preset("tiny"), epochs=3, log_every=1)
    train_and_evaluate(CONVNET_DIGITS, config, tmp_path, progress=False, log=lambda s: None)
    before = load_file(str(tmp_path / "checkpoint.safetensors"))
    exploding = dataclasses.replace(config, epochs=4, lr=1e30, schedule="constant", warmup=0.0)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train_and_evaluate(
            CONVNET_DIGITS, exploding, tmp_path, resume=True, progress=False, log=lambda s: None
        )
    after = load_file(str(tmp_path / "checkpoint.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 3


def _final_weights(run_dir):
    return load_file(str(run_dir / "checkpoint.safetensors"))


RESUME_ARGS = [
    "run",
    "convnet-digits",
    "--preset",
    "tiny",
    "--quiet",
    "--set",
    "epochs=40",
    "--set",
    "log_every=5",
]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_cli(*RESUME_ARGS, "--run-dir", str(straight)).returncode == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepnets", *RESUME_ARGS, "--run-dir", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = killed / "checkpoint.json"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 40 and not (killed / "summary.json").exists()
    result = run_cli("run", "--resume", str(killed), "--quiet")
    assert result.returncode == 0, result.stderr
    a, b = _final_weights(straight), _final_weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = json.loads((straight / "summary.json").read_text())
    sb = json.loads((killed / "summary.json").read_text())
    assert sa["value"] == sb["value"] and sa["best_epoch"] == sb["best_epoch"]
    metrics_a = [json.loads(l) for l in (straight / "metrics.jsonl").read_text().splitlines()]
    metrics_b = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(metrics_a) == strip(metrics_b)


DDP_TOLERANCE = 1e-4  # max abs weight difference: float32 all-reduce sums in another order


def test_ddp_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    args = ["convnet-digits", "--preset", "tiny", "--quiet", "--device", "cpu", "--set", "epochs=3"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert run_cli("run", *args, "--run-dir", str(single)).returncode == 0
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
    moved = max(
        (a[k] - load_file(str(single / "best.safetensors"))[k[6:]]).abs().max().item()
        for k in model_keys
    )
    assert worst < DDP_TOLERANCE, worst
    assert moved == 0.0  # the best weights are the last ones here; sanity of the comparison
