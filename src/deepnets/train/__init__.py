"""Training: the gradient engine (`engine.py`, the one loop) and the tasks that plug into it
(`classify.py`, `language_model.py`, `ctc.py`, `pretrain.py`), counting (`count.py`), checkpoints
(`checkpoint.py`) and data-parallel set-up (`distributed.py`). An experiment names its task;
`experiment.task.train(...)` runs it and `experiment.task.evaluate_run(...)` re-evaluates a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deepnets import DeepnetsError


def train_and_evaluate(
    experiment,
    config,
    run_dir: Path | str,
    preset: str = "custom",
    resume: bool = False,
    progress: bool = True,
    log=None,
) -> dict | None:
    """Train and test `experiment` with `config` in the run folder `run_dir` (made here; with
    `resume`, the folder of a stopped run); return the summary (None on a non-zero rank)."""
    from deepnets.run import RunDir
    from deepnets.train.engine import print_line

    run = RunDir.open(run_dir) if resume else RunDir.create(run_dir)
    return experiment.task.train(
        experiment, config, run, preset, resume, progress, log or print_line
    )


def evaluate_run(
    run_dir: Path | str, device: str = "auto", split: str = "test", overrides: Sequence[str] = ()
) -> dict:
    """Re-evaluate a finished (or stopped) run folder's selected weights on one split, with
    `overrides` (key=value) of how a gradient-trained model decodes and is scored."""
    from deepnets.run import RunDir
    from deepnets.train import engine
    from deepnets.train.task import GradientTask

    run = RunDir.open(run_dir)
    experiment, _, _ = run.read_config()
    if not overrides:
        return experiment.task.evaluate_run(run, device, split)
    if not isinstance(experiment.task, GradientTask):
        raise DeepnetsError(
            f"eval --set re-scores runs of the gradient engine; {experiment.id} is not one "
            "(train it again with run --set instead)"
        )
    return engine.evaluate_run(run, device, split, overrides)
