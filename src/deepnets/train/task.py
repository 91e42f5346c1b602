"""What an experiment's `task` is: the object that trains and evaluates it.

Every task has `train(experiment, config, run, ...)` and `evaluate_run(run, device, split)`;
the CLI and `bench` call only these, never branching on which task it is.

`GradientTask` is the base of every task trained by the gradient engine (deepnets.train.engine):
a subclass says what its data are (`load`), how a model is made (`build`), what a batch is
(`steps_per_epoch`, `batches`), what the loss of a batch is (`loss`) and how a split is scored
(`evaluate`). The engine does everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import nn

from deepnets import DeepnetsError
from deepnets.run import RunDir
from deepnets.train import engine
from deepnets.train.distributed import Context


class Task(Protocol):
    """What `Experiment.task` refers to."""

    def train(
        self, experiment, config, run: RunDir, preset: str, resume: bool, progress: bool, log
    ) -> dict | None: ...

    def evaluate_run(self, run: RunDir, device: str, split: str) -> dict[str, float]: ...


class GradientTask:
    """The engine's side of a task; subclasses fill in the data, batch, loss and scores."""

    val_split: str | None = "val"  # the split validation scores (None: none)

    # --- the protocol ----------------------------------------------------------------------

    def train(
        self,
        experiment,
        config,
        run: RunDir,
        preset: str = "custom",
        resume: bool = False,
        progress: bool = True,
        log: engine.Log = engine.print_line,
    ) -> dict | None:
        summary = engine.train(self, experiment, config, run, preset, resume, progress, log)
        if summary is not None:  # rank 0
            self.record_test(run, summary)
        return summary

    def evaluate_run(self, run: RunDir, device: str = "auto", split: str = "test") -> dict:
        return engine.evaluate_run(run, device, split)

    def record_test(self, run: RunDir, summary: dict) -> None:
        """After the final test (training or `deepnets eval --rescore`): anything a task keeps
        beside the summary (by default nothing more)."""

    # --- what the engine asks ---------------------------------------------------------------

    def load(self, experiment, config, device: torch.device) -> Any:
        """The data of every split (a dict by split name)."""
        return experiment.load_data(config)

    def build(self, experiment, config, data: Any) -> nn.Module:
        """A fresh model; a config that makes no valid model is the user's error. `data` is
        None when a saved run is reloaded."""
        try:
            return experiment.build_model(config)
        except ValueError as err:
            raise DeepnetsError(
                f"{experiment.id}: the config makes no valid model: {err}"
            ) from None

    def split_names(self, data: Any) -> list[str]:
        return [name for name in data if name not in ("vocab", "unlabelled")]

    def split_size(self, data: Any, split: str) -> int:
        return len(data[split]) if split in data else 0

    def test_split(self, data: Any) -> str:
        return "test"

    def steps_per_epoch(self, data: Any, config) -> int:
        raise NotImplementedError

    def batches(self, data: Any, config, generator: torch.Generator, ctx: Context) -> Iterator[Any]:
        """This rank's batches of one epoch, in an order drawn from `generator`."""
        raise NotImplementedError

    def lr_at(
        self, model: nn.Module, step: int, total_steps: int, steps_per_epoch: int, config
    ) -> float:
        """The learning rate of a training step (called just before its `loss`); by default
        the config's schedule (`engine.lr_at`). A task whose rate depends on the model's state
        keeps that state in the model's buffers, so that a resume restores it."""
        return engine.lr_at(step, total_steps, steps_per_epoch, config)

    def loss(self, step: engine.Step, batch: Any, carry: Any) -> tuple[torch.Tensor, Any]:
        """The mean loss of a batch, and what the next batch of the epoch carries (or None)."""
        raise NotImplementedError

    def evaluate(
        self, model: nn.Module, data: Any, split: str, config, device, final: bool = False
    ) -> dict[str, float]:
        """Scores of `model` on a split; `final` for the test of the selected weights."""
        raise NotImplementedError


def config_first(experiment, config, run: RunDir, preset: str, resume: bool) -> bool:
    """For a task with work before the engine starts (a pre-training): write config.json first,
    so that a run stopped in that work resumes by its folder; return whether the engine then
    resumes (only from a checkpoint)."""
    from deepnets.train.distributed import is_main_process, launch, resolve_device

    if is_main_process() and not resume:
        run.write_config(experiment, preset, config, resolve_device(config.device), launch()[1])
    return resume and run.has_checkpoint()


def index_batches(
    n: int, config, generator: torch.Generator, ctx: Context
) -> Iterator[torch.Tensor]:
    """Index tensors of this rank's part of each global minibatch of a random permutation of
    range(n); the last partial batch is dropped."""
    per_rank = config.batch_size // ctx.world_size
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - config.batch_size + 1, config.batch_size):
        yield order[start + ctx.rank * per_rank : start + (ctx.rank + 1) * per_rank]
