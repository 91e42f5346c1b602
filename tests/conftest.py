import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def shared_data(dataset: str = "mnist", files: list[str] = MNIST_FILES) -> Path | None:
    """The data root if DEEPNETS_DATA holds every file of `dataset`, else None."""
    root = os.environ.get("DEEPNETS_DATA")
    if root and all((Path(root) / dataset / f).is_file() for f in files):
        return Path(root)
    return None


def needs_data(dataset: str, files: list[str]) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        shared_data(dataset, files) is None,
        reason=f"set DEEPNETS_DATA to a folder holding {dataset}/",
    )


needs_mnist = needs_data("mnist", MNIST_FILES)
needs_ptb = needs_data("ptb", ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"])


def run_cli(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `python -m deepnets ARGS` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "deepnets", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """No test writes into the checkout's results/ or RESULTS.md."""
    monkeypatch.setenv("DEEPNETS_RESULTS", str(tmp_path / "results-root"))


needs_fsdd = pytest.mark.skipif(
    shared_data("fsdd", ["SHA256SUMS", "recordings/7_jackson_32.wav"]) is None,
    reason="set DEEPNETS_DATA to a folder holding fsdd/",
)


def write_wav(path: Path, samples, rate: int = 8000, channels: int = 1) -> None:
    """A 16-bit PCM WAV file of float samples in [-1, 1]."""
    import wave

    import numpy as np

    data = (np.clip(np.asarray(samples), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())


def tone_fsdd(
    root: Path, speakers=("alice", "bob"), repetitions: int = 12, sums: bool = False
) -> Path:
    """A fake FSDD under root/fsdd: digit d is a 0.3 s tone at 300 + 300 d Hz (each speaker a
    little higher), so that a model can learn it in seconds. Returns root."""
    import hashlib

    import numpy as np

    folder = root / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    t = np.arange(2400) / 8000
    lines = []
    for s, speaker in enumerate(speakers):
        for digit in range(10):
            for index in range(repetitions):
                freq = 300 + 300 * digit + 20 * s + 5 * (index % 3)
                path = folder / f"{digit}_{speaker}_{index}.wav"
                write_wav(path, 0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)))
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                lines.append(f"{digest}  recordings/{path.name}\n")
    if sums:
        (root / "fsdd" / "SHA256SUMS").write_text("".join(lines))
    return root


# --- the web page's tests: one runs folder of small trained runs, shared by the session -------

SERVED_RUNS = (  # (experiment, preset, overrides): a few seconds each on 2 cores
    ("lenet5-mnist", "fast", ("epochs=1",)),  # about 98.5%: a drawn 7 is read as 7
    ("lstm-ptb", "tiny", ()),
    ("tdnn-fsdd", "tiny", ("epochs=1",)),
    ("convnet-digits", "tiny", ()),
    ("convnet-digits", "tiny", ("seed=1",)),
    ("ntm-copy", "tiny", ()),
    ("memn2n-babi", "tiny", ()),
    ("attention-multi30k", "tiny", ()),
    ("caption-digits", "tiny", ()),
    ("ram-mnist", "tiny", ("epochs=1",)),  # 3 glimpses; chance-level, but a path to draw
    ("dqn-cartpole", "tiny", ()),
    ("dqn-minatar", "tiny", ()),
)


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory) -> Path:
    """A runs folder holding a finished run of each of SERVED_RUNS (those whose data are here)."""
    from deepnets.config import apply_overrides
    from deepnets.experiments import get_experiment
    from deepnets.run import RunDir

    root = tmp_path_factory.mktemp("served-runs")
    have = {
        "lenet5-mnist": shared_data() is not None,
        "lstm-ptb": shared_data("ptb", ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"]),
        "tdnn-fsdd": shared_data("fsdd", ["SHA256SUMS", "recordings/7_jackson_32.wav"]),
        "convnet-digits": True,
        "ntm-copy": True,
        "memn2n-babi": shared_data("babi", ["SHA256SUMS"]),
        "attention-multi30k": shared_data("multi30k", ["task1/raw/test_2016_flickr.de.gz"]),
        "caption-digits": shared_data(),
        "ram-mnist": shared_data(),
        "dqn-cartpole": importlib.util.find_spec("gymnasium") is not None,
        "dqn-minatar": importlib.util.find_spec("minatar") is not None,
    }
    for experiment_id, preset, overrides in SERVED_RUNS:
        if not have[experiment_id]:
            continue
        experiment = get_experiment(experiment_id)
        config = apply_overrides(experiment.preset(preset), list(overrides))
        run = RunDir.create(root / experiment_id / f"20261127-000000-{preset}-s{config.seed}")
        experiment.task.train(experiment, config, run, preset=preset, progress=False)
    return root


@pytest.fixture(scope="session")
def live_server(served_runs, tmp_path_factory):
    """`deepnets serve` on 127.0.0.1 and a free port, in a thread: its base URL."""
    import socket
    import threading
    import time

    pytest.importorskip("uvicorn")
    import uvicorn

    from deepnets.serve.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(served_runs, figures=tmp_path_factory.mktemp("live-figures"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def assert_resume_is_bit_identical(experiment, config, tmp_path, monkeypatch) -> dict:
    """Train `config` straight through; train it again, stopped (KeyboardInterrupt) right after
    its first checkpoint, then resumed. Assert both end with equal weights and test scores;
    return the resumed run's summary."""
    import json

    import torch

    from deepnets.run import RunDir
    from deepnets.train import train_and_evaluate
    from deepnets.train.checkpoint import load_checkpoint

    quiet = dict(progress=False, log=lambda line: None)
    train_and_evaluate(experiment, config, tmp_path / "straight", **quiet)
    original = RunDir.save_checkpoint

    def save_then_stop(self, *args):
        original(self, *args)
        raise KeyboardInterrupt  # killed right after the first checkpoint

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(experiment, config, tmp_path / "killed", **quiet)
    monkeypatch.setattr(RunDir, "save_checkpoint", original)
    summary = train_and_evaluate(experiment, config, tmp_path / "killed", resume=True, **quiet)
    a, b = load_checkpoint(tmp_path / "straight")[0], load_checkpoint(tmp_path / "killed")[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    straight = json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert summary["metrics"] == straight["metrics"]
    return summary
