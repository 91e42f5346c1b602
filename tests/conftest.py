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


def shared_data() -> Path | None:
    root = os.environ.get("DEEPNETS_DATA")
    if root and all((Path(root) / "mnist" / f).is_file() for f in MNIST_FILES):
        return Path(root)
    return None


needs_mnist = pytest.mark.skipif(
    shared_data() is None, reason="set DEEPNETS_DATA to a folder holding mnist/"
)


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
