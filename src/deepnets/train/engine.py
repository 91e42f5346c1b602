"""The gradient engine: the one training loop every gradient-trained system runs on.

`train(task, experiment, config, run)` reads top to bottom:

1. set up: device and data-parallel ranks (torchrun), seeds, the task's data and model, the
   optimizer, and either a fresh run folder or the state of its last checkpoint (`--resume`);
2. for each epoch (a pass over the training split, or for generated data a fixed number of
   steps): seed the epoch from (seed, epoch, rank), ask the task for this rank's batches, and
   for each batch set the learning rate of the step (a pure function of the step), compute the
   task's loss under autocast, backpropagate (the only `backward()` of a training step in the
   project), clip the gradient norm, step; every `log_every` steps write the mean training
   loss and stop with a clear error if it is NaN or infinite;
3. validate `evals_per_epoch` times an epoch on the task's validation split, keep the weights
   that score best on the experiment's primary metric (ties: the lower validation loss), stop
   early once the primary metric reaches `stop_at`; checkpoint at the end of every epoch
   (atomically, so a crash keeps the previous one);
4. test the selected weights (best on validation, or the last) on the test split once and write
   summary.json with every metric the task reports.

A resumed run restarts after its last checkpointed epoch and repeats exactly what an
uninterrupted run does: the data order, augmentation and dropout of each epoch depend only on
(seed, epoch, rank), and the learning rate only on the step.

A resumed run may also be lengthened (`deepnets run --resume RUN --set epochs=N`, with
`cosine_cycles` for a cosine schedule) when nothing it already did would have differed under the
longer config (`check_lengthening`): it then ends as a run given the longer config from the start.

A task (deepnets.train.tasks) says what a batch, a loss and an evaluation are:
`load`, `build`, `steps_per_epoch`, `batches`, `loss`, `evaluate` and its split names.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from deepnets import DeepnetsError
from deepnets.run import RunDir, summary_record
from deepnets.train import distributed

Log = Callable[[str], None]


def print_line(line: str) -> None:
    """The default log: one fixed-format line, flushed at once (logs are often redirected)."""
    print(line, flush=True)


class NonFiniteLossError(DeepnetsError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Step:
    """What a task's `loss` may use besides its batch."""

    net: nn.Module  # the model as trained: wrapped by DDP and torch.compile when asked
    model: nn.Module  # the bare model (its own methods: loss, init_state, ...)
    device: torch.device
    generator: torch.Generator  # this epoch's random draws (shared by the ranks)
    config: Any


def half_cosine(progress: float) -> float:
    """1 at progress 0 down to 0 at progress 1 on half a cosine: the shape of a cosine decay."""
    return 0.5 * (1 + math.cos(math.pi * progress))


def lr_at(step: int, total_steps: int, steps_per_epoch: int, config) -> float:
    """The learning rate for a step: a pure function of the step, so resuming needs no state."""
    warm = int(config.warmup * total_steps)
    if config.schedule == "onecycle":  # linear up from lr/25 to lr, then linear down to 0
        if step < warm:
            return config.lr * (0.04 + 0.96 * step / warm)
        return config.lr * max(0.0, (total_steps - step) / max(1, total_steps - warm))
    if step < warm:
        return config.lr * (step + 1) / warm
    if config.schedule == "cosine":  # in `cosine_cycles` equal cycles: warm restarts (SGDR)
        progress = (step - warm) / (max(1, total_steps - warm) / config.cosine_cycles)
        return config.lr * half_cosine(progress - math.floor(progress))
    if config.schedule == "step":  # decays after epoch decay_start, then every step_every epochs
        epoch, start = step // steps_per_epoch, config.decay_start or config.step_every
        decays = 0 if epoch < start else (epoch - start) // config.step_every + 1
        return config.lr * config.step_gamma**decays
    return config.lr


LENGTHENING = ("epochs", "cosine_cycles")  # what a resume may change (besides the device)


def check_lengthening(task, saved, config, steps_per_epoch: int, done_epochs: int) -> bool:
    """Refuse a resume whose config differs from the saved one unless it only lengthens the run
    (`LENGTHENING`) past the epochs done, and every step taken had the same learning rate and
    per-step settings (whatever the task's `lr_at` sets on the model) under both configs; so the
    lengthened run goes on exactly as one given the longer config from the start would. Return
    whether the config lengthens the run (False: it is the saved one)."""
    changed = sorted(
        f for f in vars(config) if f != "device" and getattr(saved, f) != getattr(config, f)
    )
    if not changed:
        return False
    if not set(changed) <= set(LENGTHENING):
        fixed = [f for f in changed if f not in LENGTHENING]
        raise DeepnetsError(
            f"a resumed run can only be lengthened ({', '.join(LENGTHENING)}), not given a "
            f"new {', '.join(fixed)}: start a new run for that"
        )
    if config.epochs <= done_epochs:
        raise DeepnetsError(
            f"the run has done {done_epochs} epochs: epochs={config.epochs} does not lengthen it"
        )
    old_total, new_total = steps_per_epoch * saved.epochs, steps_per_epoch * config.epochs
    before, after = _Settings(), _Settings()
    for step in range(done_epochs * steps_per_epoch):
        try:
            same = task.lr_at(before, step, old_total, steps_per_epoch, saved) == task.lr_at(
                after, step, new_total, steps_per_epoch, config
            )
        except AttributeError:  # the task's rate reads the model's state: not comparable here
            raise DeepnetsError(
                "this experiment's learning rate follows the model's state: "
                "its runs cannot be lengthened"
            ) from None
        if not same or vars(before) != vars(after):
            hint = (
                " (a longer cosine stretches the decay already done; with cosine_cycles=k and "
                "k times the epochs, the first cycle is the finished schedule)"
                if config.schedule == "cosine"
                else ""
            )
            raise DeepnetsError(
                f"epochs={config.epochs}, cosine_cycles={config.cosine_cycles} would have "
                f"trained step {step} differently from the finished run{hint}"
            )
    return True


class _Settings:
    """Stands in for the model when `check_lengthening` replays a task's `lr_at`."""


def momentum_at(epoch: int, config) -> float:
    """`momentum`, after `momentum_warmup` epochs at 0.5 (Hinton's practical guide, sec. 9)."""
    return 0.5 if epoch < config.momentum_warmup else config.momentum


def make_optimizer(model: nn.Module, config) -> torch.optim.Optimizer:
    """Weight decay on weight matrices and kernels only, not on biases or per-map scalars."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=(config.momentum, 0.999))
    return torch.optim.SGD(
        groups,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
    )


def gradient_step(model: nn.Module, optimizer, loss: torch.Tensor, config) -> None:
    """Backpropagate `loss` (the project's one training `backward()`), clip the global gradient
    norm if the config asks, take the optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.clip_grad_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
    optimizer.step()


def seed_epoch(seed: int, epoch: int, rank: int) -> torch.Generator:
    """Seed dropout (global RNG, per rank) and return the data-order generator (shared by ranks)."""
    torch.manual_seed(seed * 1_000_003 + epoch * 7919 + rank * 104_729 + 1)
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def autocast(config, device: torch.device):
    if not config.amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def selection_key(scores: dict[str, float], metric: str, higher_is_better: bool) -> list[float]:
    """Smaller is better: the primary metric (oriented), then the validation loss."""
    sign = -1.0 if higher_is_better else 1.0
    return [sign * scores[metric], scores.get("loss", 0.0)]


def train(
    task,
    experiment,
    config,
    run: RunDir,
    preset: str = "custom",
    resume: bool = False,
    progress: bool = True,
    log: Log = print_line,
) -> dict | None:
    """Train with `task`, writing everything to `run`; return the summary. Under torchrun every
    rank calls this; rank 0 writes the files and returns the summary, the others None."""
    ctx = distributed.setup(config.device)
    try:
        return _train(task, experiment, config, run, preset, resume, progress, log, ctx)
    finally:
        distributed.teardown(ctx)


def _train(task, experiment, config, run, preset, resume, progress, log, ctx) -> dict | None:
    device, main = ctx.device, ctx.is_main
    if config.batch_size % ctx.world_size:
        raise DeepnetsError(
            f"batch_size {config.batch_size} must divide evenly across {ctx.world_size} ranks"
        )
    restored = run.load_checkpoint() if resume else None
    torch.manual_seed(config.seed)

    # --- data, model, optimizer, state ----------------------------------------------------
    data = task.load(experiment, config, device)
    steps_per_epoch = task.steps_per_epoch(data, config)
    if steps_per_epoch < 1:
        raise DeepnetsError(
            f"{experiment.id}: the training split holds fewer than one batch of "
            f"{config.batch_size}; lower batch_size or use more data"
        )
    total_steps = steps_per_epoch * config.epochs
    model = task.build(experiment, config, data).to(device)
    optimizer = make_optimizer(model, config)
    if restored is not None:
        model_state, optimizer_state, state = restored
        _, saved, meta = run.read_config()
        lengthened = check_lengthening(task, saved, config, steps_per_epoch, state["epoch"])
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        log(f"resuming {run.path} after epoch {state['epoch']}")
        if main and lengthened:
            run.lengthen_config(meta, config, state["epoch"])
            log(f"lengthened to {config.epochs} epochs ({config.cosine_cycles} cosine cycles)")
        if main:
            run.keep_metrics(lambda row: row["epoch"] <= state["epoch"])
    else:
        state = {"epoch": 0, "step": 0, "best": None, "best_epoch": None, "train_seconds": 0.0}
        if main:
            run.write_config(experiment, preset, config, device, ctx.world_size)
    net = model
    if ctx.world_size > 1:
        net = nn.parallel.DistributedDataParallel(model)
    if config.compile:
        net = torch.compile(net)
    metric, higher = experiment.metrics[0].name, experiment.metrics[0].higher_is_better
    has_val = task.val_split is not None and task.split_size(data, task.val_split) > 0
    eval_points = {
        (k * steps_per_epoch) // config.evals_per_epoch
        for k in range(1, 1 + config.evals_per_epoch)
    }
    terminal = progress and main and sys.stderr.isatty()
    print_every = max(1, steps_per_epoch // 5) if steps_per_epoch >= 100 else 0

    def validate(epoch: int, step: int, seconds: float, lr: float) -> tuple[bool, str]:
        """Score the validation split, keep the best weights, record the scores; return whether
        the primary metric reached `stop_at`, and the log line."""
        scores = task.evaluate(model, data, task.val_split, config, device) if has_val else {}
        model.train()
        if scores and config.select == "best_val":
            key = selection_key(scores, metric, higher)
            if state["best"] is None or key < state["best"]:
                state["best"], state["best_epoch"] = key, epoch
                run.save_best(model, epoch, step)
        run.log_metrics(
            {"epoch": epoch, "step": step, "seconds": seconds}
            | {f"val_{k}": v for k, v in scores.items()}
        )
        shown = "  ".join(f"val {k} {v:.4f}" for k, v in scores.items())
        line = (
            f"epoch {epoch:3d}/{config.epochs}  step {step}  lr {lr:.4g}  {shown}  {seconds:.1f}s"
        )
        reached = (scores.get(metric, math.nan) - config.stop_at) * (1 if higher else -1) >= 0
        return config.stop_at > 0 and bool(scores) and reached, line

    # --- the epochs -------------------------------------------------------------------------
    stopped, lr = False, config.lr
    for epoch in range(state["epoch"], config.epochs):
        started, paused = time.perf_counter(), 0.0  # paused: seconds validating mid-epoch
        generator = seed_epoch(config.seed, epoch, ctx.rank)
        for group in optimizer.param_groups:
            if "momentum" in group:
                group["momentum"] = momentum_at(epoch, config)
        step_args = Step(net, model, device, generator, config)
        model.train()
        carry = None
        running, running_n = torch.zeros((), device=device), 0
        bar = tqdm(
            task.batches(data, config, generator, ctx),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            dynamic_ncols=True,
            disable=not terminal,
        )
        for i, batch in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = task.lr_at(model, step, total_steps, steps_per_epoch, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(config, device):
                loss, carry = task.loss(step_args, batch, carry)
            gradient_step(model, optimizer, loss, config)
            running += loss.detach().float()
            running_n += 1
            if (step + 1) % config.log_every == 0 or i == steps_per_epoch - 1:
                mean_loss = float(distributed.mean_over_ranks(ctx, running)) / running_n
                if not math.isfinite(mean_loss):
                    raise NonFiniteLossError(
                        f"training loss became {mean_loss} at epoch {epoch + 1}, step {step + 1} "
                        f"(lr {lr:.4g}); stopped. The last good checkpoint (after epoch "
                        f"{state['epoch']}) is kept in {run.path}; try a lower lr or "
                        "clip_grad_norm"
                    )
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.3g}")
                if main:
                    run.log_metrics(
                        {"epoch": epoch + 1, "step": step + 1, "train_loss": mean_loss, "lr": lr}
                    )
                running, running_n = torch.zeros((), device=device), 0
            seconds = time.perf_counter() - started - paused
            if progress and main and not terminal and print_every and (i + 1) % print_every == 0:
                log(
                    f"  epoch {epoch + 1} step {i + 1}/{steps_per_epoch}  loss "
                    f"{float(loss.detach()):.4f}  {seconds:.1f}s"
                )
            if i + 1 in eval_points and i + 1 < steps_per_epoch:  # mid-epoch validation
                if main:
                    stopped, line = validate(
                        epoch + 1, step + 1, state["train_seconds"] + seconds, lr
                    )
                    log(line)
                paused = time.perf_counter() - started - seconds
                stopped = distributed.agree(ctx, stopped)
                if stopped:
                    break
        bar.close()
        if stopped:  # mid-epoch: no checkpoint (a resume restarts from the last epoch's)
            state["train_seconds"] += seconds
            state["step"] = step + 1
            break
        state["train_seconds"] += time.perf_counter() - started - paused
        state["epoch"], state["step"] = epoch + 1, (epoch + 1) * steps_per_epoch
        if main:
            stopped, line = validate(epoch + 1, state["step"], state["train_seconds"], lr)
            run.save_checkpoint(model, optimizer, state)
            log(line)  # after the checkpoint: a line seen is an epoch saved
        stopped = distributed.agree(ctx, stopped)
        if stopped:
            break

    # --- the test ---------------------------------------------------------------------------
    if not main:
        return None
    if config.select == "best_val" and state["best_epoch"] is not None:
        model.load_state_dict(run.selected_weights("best_val"))
    split = task.test_split(data)
    scores = task.evaluate(model, data, split, config, device, final=True)
    summary = summary_record(experiment, preset, config, scores, state, device, split)
    summary["stopped_at_target"] = stopped
    run.write_summary(summary)
    shown = "  ".join(f"{k} {v:.4f}" for k, v in scores.items())
    log(f"{split} {shown}  vs {experiment.published_text(preset)}")
    return summary


def rescore_run(path, device: str = "auto") -> dict:
    """Score a finished run's selected weights on its test split again with the current code
    (a fix to decoding or scoring, say) and record the new scores in its summary.json, the old
    ones kept under `rescored`; `deepnets bench --from-runs` then makes a row of them."""
    from deepnets.run import RunDir, git_commit, load_model

    run = RunDir.open(path)
    summary = run.read_summary()
    experiment, config, model = load_model(run.path, device)
    task = experiment.task
    if not hasattr(task, "record_test"):
        raise DeepnetsError(f"{experiment.id} is not trained by the gradient engine: no rescore")
    dev = next(model.parameters()).device
    data = task.load(experiment, config, dev)
    scores = task.evaluate(model, data, task.test_split(data), config, dev, final=True)
    previous = {"metrics": summary["metrics"], "commit": summary["commit"]}
    summary.update(value=scores[summary["metric"]], metrics=scores)
    summary["rescored"] = {"commit": git_commit(), "previous": previous}
    run.write_summary(summary)
    task.record_test(run, summary)
    return summary


def evaluate_run(
    run: RunDir, device: str = "auto", split: str = "test", overrides: Sequence[str] = ()
) -> dict[str, float]:
    """Re-evaluate a saved run's selected weights on one split; `overrides` (key=value) change
    how it decodes and is scored (`config.EVAL_FIELDS`), never the saved run."""
    from deepnets.run import load_model

    experiment, config, model = load_model(run.path, device, overrides)
    task = experiment.task
    dev = next(model.parameters()).device
    data = task.load(experiment, config, dev)
    splits = task.split_names(data)
    if split not in splits:
        raise DeepnetsError(f"unknown split {split!r}; splits: {', '.join(splits)}")
    return task.evaluate(model, data, split, config, dev, final=True)
