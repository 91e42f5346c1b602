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
