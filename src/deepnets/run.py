"""The run folder: every file a run writes, written in one place.

A run folder holds
  config.json          the resolved config, the experiment and preset, commit, torch, device
  metrics.jsonl        one JSON line per logging step and per validation
  checkpoint.safetensors + checkpoint.json   the last finished epoch's weights, optimizer and
                       training state (safetensors and JSON; nothing is a pickle)
  best.safetensors     the weights that scored best on validation (when the config selects them)
  summary.json         the test figures of the selected weights, beside the published number

`RunDir` claims the folder (mkdir: two runs never share one), writes each file atomically, and
reads them back for `eval`, `--resume`, figures and sampling. Every file-system failure becomes a
`RunDirError` naming the path and the cause, so the CLI prints one line and exits with status 2;
a failed write leaves the previous file intact (write to a temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepnets import DeepnetsError
from deepnets.train import checkpoint as ckpt
from deepnets.train.distributed import is_main_process


class RunDirError(DeepnetsError):
    """A run folder could not be created, read or written."""


@contextmanager
def file_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn an OSError raised while `doing` something to `path` into one clear message."""
    try:
        yield
    except OSError as err:
        cause = err.strerror or str(err)
        raise RunDirError(f"cannot {doing} {err.filename or path}: {cause}") from None


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


class RunDir:
    """One run's folder. `claim` or `create` a new one, `open` an existing one."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # --- claiming and opening -----------------------------------------------------------------

    @classmethod
    def claim(cls, parent: Path | str, name: str) -> RunDir:
        """A new folder parent/name, created here, so that two runs started in the same second
        never share one: on a clash the name gets a suffix (-2, -3, ...). Under torchrun only
        rank 0 creates it; the other ranks take the name as it is (pass --run-dir there)."""
        parent = Path(parent)
        if not is_main_process():
            return cls(parent / name)
        with file_errors(parent, "create the run folder"):
            parent.mkdir(parents=True, exist_ok=True)
            for k in range(1, 1000):
                path = parent / (name if k == 1 else f"{name}-{k}")
                try:
                    path.mkdir()
                except FileExistsError:
                    continue
                return cls(path)
        raise RunDirError(f"{parent} already holds 999 runs named {name}*")

    @classmethod
    def create(cls, path: Path | str) -> RunDir:
        """The folder the user named with --run-dir: made if missing, refused if it holds a run."""
        run = cls(path)
        if (run / cls.CONFIG).exists():
            raise RunDirError(f"{run.path} already holds a run; use --resume {run.path} instead")
        if is_main_process():
            with file_errors(run.path, "create the run folder"):
                run.path.mkdir(parents=True, exist_ok=True)
                probe = run.path / ".write-test"
                probe.write_text("")
                probe.unlink()
        return run

    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """An existing run folder (one holding config.json)."""
        run = cls(path)
        if not (run / cls.CONFIG).is_file():
            raise RunDirError(f"{run.path} is not a run folder (no {cls.CONFIG})")
        return run

    # --- config.json ----------------------------------------------------------------------------

    def write_config(self, experiment, preset: str, config, device, world_size: int) -> dict:
        """Record the resolved config and where and with what it runs; forget old metrics."""
        from deepnets.config import config_to_dict

        meta = {
            "experiment": experiment.id,
            "preset": preset,
            "config": config_to_dict(config),
            "commit": git_commit(),
            "torch": torch.__version__,
            "device": str(device),
            "world_size": world_size,
            "python": platform.python_version(),
        }
        self.write_text(self.CONFIG, json.dumps(meta, indent=2) + "\n")
        with file_errors(self / self.METRICS, "remove"):
            (self / self.METRICS).unlink(missing_ok=True)
        return meta

    def lengthen_config(self, meta: dict, config, done_epochs: int) -> None:
        """Record that a resumed run was lengthened (`engine.check_lengthening`) in its
        config.json metadata `meta`: the new config, and after which epoch and at which commit;
        its metrics are kept."""
        from deepnets.config import config_to_dict

        meta = dict(meta)
        meta["config"] = config_to_dict(config)
        lengthened = {"after_epoch": done_epochs, "commit": git_commit()}
        meta["lengthened"] = [*meta.get("lengthened", []), lengthened]
        self.write_text(self.CONFIG, json.dumps(meta, indent=2) + "\n")

    def read_config(self) -> tuple[Any, Any, dict]:
        """The experiment, its typed config and the metadata that config.json records."""
        from deepnets.config import config_from_dict
        from deepnets.experiments import get_experiment

        path = self / self.CONFIG
        with file_errors(path, "read"):
            text = path.read_text()
        try:
            meta = json.loads(text)
            experiment = get_experiment(meta["experiment"])
            config = config_from_dict(experiment.config_cls, meta["config"])
        except (ValueError, KeyError, TypeError) as err:
            raise RunDirError(f"{path} cannot be read: {err}") from None
        return experiment, config, meta

    # --- metrics.jsonl ----------------------------------------------------------------------

    def log_metrics(self, record: dict) -> None:
        path = self / self.METRICS
        with file_errors(path, "append to"), open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        path = self / self.METRICS
        if not path.is_file():
            return []
        with file_errors(path, "read"):
            lines = path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def keep_metrics(self, keep: Callable[[dict], bool]) -> None:
        """On resume, forget the lines written after the checkpoint (those `keep` rejects)."""
        rows = [r for r in self.read_metrics() if keep(r)]
        self.write_text(self.METRICS, "".join(json.dumps(r) + "\n" for r in rows))

    # --- checkpoints and weights -------------------------------------------------------------

    def save_checkpoint(self, model: nn.Module, optimizer, state: dict) -> None:
        with file_errors(self / ckpt.CHECKPOINT, "write the checkpoint"):
            ckpt.save_checkpoint(self.path, model, optimizer, state)

    def has_checkpoint(self) -> bool:
        return (self / ckpt.CHECKPOINT).is_file()

    def load_checkpoint(self) -> tuple[dict, dict, dict]:
        with file_errors(self / ckpt.CHECKPOINT, "read the checkpoint"):
            return ckpt.load_checkpoint(self.path)

    def save_best(self, model: nn.Module, epoch: int, step: int) -> None:
        with file_errors(self / ckpt.BEST, "write"):
            ckpt.save_weights(self / ckpt.BEST, model, {"epoch": str(epoch), "step": str(step)})

    def selected_weights(self, select: str) -> dict[str, torch.Tensor]:
        """The weights a config selects: the best on validation where the run kept them, else
        the last checkpoint's."""
        best = self / ckpt.BEST
        with file_errors(best, "read"):
            if select == "best_val" and best.is_file():
                return ckpt.load_weights(best)
            return ckpt.load_checkpoint(self.path)[0]

    # --- summary.json and plain files ------------------------------------------------------

    def write_summary(self, summary: dict) -> None:
        self.write_text(self.SUMMARY, json.dumps(summary, indent=2) + "\n")

    def read_summary(self) -> dict:
        path = self / self.SUMMARY
        if not path.is_file():
            raise RunDirError(f"{self.path} has not finished (no {self.SUMMARY})")
        with file_errors(path, "read"):
            return json.loads(path.read_text())

    def write_text(self, name: str, text: str) -> None:
        with file_errors(self / name, "write"):
            ckpt.atomic_write_text(self / name, text)


def summary_record(
    experiment, preset: str, config, scores: dict[str, float], state: dict, device, split: str
) -> dict:
    """What summary.json records: every test figure, the primary one as `metric` and `value`,
    beside the published number, with which weights were tested and where they ran."""
    primary = experiment.metrics[0].name
    return {
        "experiment": experiment.id,
        "preset": preset,
        "metric": primary,
        "value": scores[primary],
        "metrics": scores,
        "split": split,
        "published": experiment.published_for(preset).value,
        "selected": "best_val" if state.get("best_epoch") else "last",
        "epochs": state["epoch"],
        "steps": state["step"],
        "best_epoch": state.get("best_epoch"),
        "wall_seconds": round(state["train_seconds"], 3),
        "device": str(device),
        "torch": torch.__version__,
        "commit": git_commit(),
        "seed": config.seed,
    }


def load_run(path: Path | str) -> tuple[Any, Any, dict]:
    """A run folder's experiment, typed config and config.json metadata."""
    return RunDir.open(path).read_config()


def load_model(path: Path | str, device: str = "auto", overrides: Sequence[str] = ()):
    """A gradient-trained run folder's experiment, config and model (eval mode) with the weights
    its config selects; `overrides` change how it is evaluated (`config.EVAL_FIELDS`)."""
    from deepnets.config import apply_eval_overrides
    from deepnets.train.distributed import resolve_device

    run = RunDir.open(path)
    experiment, config, _ = run.read_config()
    config = apply_eval_overrides(config, list(overrides))
    model = experiment.task.build(experiment, config, None)
    model.load_state_dict(run.selected_weights(config.select))
    return experiment, config, model.to(resolve_device(device)).eval()
