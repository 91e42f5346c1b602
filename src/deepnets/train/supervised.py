"""The supervised loop: minibatch SGD with backpropagation, model selection, one test evaluation.

`train_and_evaluate(experiment, config, run_dir)` is the whole of it, read top to bottom:
set up (device, data-parallel ranks, seeds), build data, model and optimizer (or restore them
from the run folder's checkpoint), then for each epoch: shuffle, shard across ranks, step the
learning-rate schedule, take gradient steps, evaluate on the validation split, keep the best
weights, checkpoint. At the end the best weights are evaluated once on the test split and
`summary.json` is written. Each epoch's data order and random state are derived from
(seed, epoch, rank), so a resumed run repeats exactly what an uninterrupted run does.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from deepnets import DeepnetsError
from deepnets.config import TrainConfig, config_from_dict, config_to_dict
from deepnets.registry import Experiment
from deepnets.train import checkpoint as ckpt
from deepnets.train import distributed

Log = Callable[[str], None]


def print_line(line: str) -> None:
    """The default log: one fixed-format line, flushed at once (logs are often redirected)."""
    print(line, flush=True)


class NonFiniteLossError(DeepnetsError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


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


def run_metadata(experiment: Experiment, preset: str, config, device, world_size: int) -> dict:
    """What config.json records: the resolved config and where and with what it ran."""
    return {
        "experiment": experiment.id,
        "preset": preset,
        "config": config_to_dict(config),
        "commit": git_commit(),
        "torch": torch.__version__,
        "device": str(device),
        "world_size": world_size,
        "python": platform.python_version(),
    }


def published_note(experiment: Experiment, preset: str) -> str:
    """'(published VALUE: how the paper states it, source)' for a run's closing log line."""
    published = experiment.published_for(preset)
    if math.isnan(published.value):
        return f"(no published number: {published.text})"
    return f"(published {published.value:.4g}: {published.text}, {published.source})"


def run_summary(
    experiment: Experiment,
    preset: str,
    value: float,
    epochs: int,
    best_epoch: int | None,
    seconds: float,
    device,
    seed: int,
) -> dict:
    """What summary.json records: the test-set figure beside the published one."""
    return {
        "experiment": experiment.id,
        "preset": preset,
        "metric": experiment.metric,
        "value": value,
        "published": experiment.published_for(preset).value,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "wall_seconds": round(seconds, 3),
        "device": str(device),
        "torch": torch.__version__,
        "commit": git_commit(),
        "seed": seed,
    }


def lr_at(step: int, total_steps: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """The learning rate for a step: a pure function of the step, so resuming needs no state."""
    warm = int(config.warmup * total_steps)
    if config.schedule == "onecycle":  # linear up from lr/25 to lr, then linear down to 0
        if step < warm:
            return config.lr * (0.04 + 0.96 * step / warm)
        return config.lr * max(0.0, (total_steps - step) / max(1, total_steps - warm))
    if step < warm:
        return config.lr * (step + 1) / warm
    if config.schedule == "cosine":
        progress = (step - warm) / max(1, total_steps - warm)
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "step":  # decays after epoch decay_start, then every step_every epochs
        epoch, start = step // steps_per_epoch, config.decay_start or config.step_every
        decays = 0 if epoch < start else (epoch - start) // config.step_every + 1
        return config.lr * config.step_gamma**decays
    return config.lr


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weight matrices and kernels only, not on biases or per-map scalars."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=(config.momentum, 0.999))
    return torch.optim.SGD(
        groups,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
    )


def build_model(experiment: Experiment, config: TrainConfig) -> nn.Module:
    """A fresh model for the config; a config that makes no valid model is the user's error."""
    try:
        return experiment.build_model(config)
    except ValueError as err:
        raise DeepnetsError(f"{experiment.id}: the config makes no valid model: {err}") from None


def batch_loss(model: nn.Module, logits: torch.Tensor, y: torch.Tensor, config: TrainConfig):
    """The model's own loss where it defines one, else cross-entropy."""
    own = getattr(model, "loss", None)
    if callable(own):
        return own(logits, y)
    return F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)


def gradient_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, config: TrainConfig
) -> None:
    """Backpropagate `loss`, clip the global gradient norm if the config asks, take the step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.clip_grad_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
    optimizer.step()


def check_finite(mean_loss: float, epoch: int, step: int, lr: float, done: int, run_dir) -> None:
    """Stop with a clear message once the training loss is NaN or infinite."""
    if not math.isfinite(mean_loss):
        raise NonFiniteLossError(
            f"training loss became {mean_loss} at epoch {epoch + 1}, step {step + 1} "
            f"(lr {lr:.4g}); stopped. The last good checkpoint (after epoch {done}) is kept in "
            f"{run_dir}; try a lower lr or clip_grad_norm"
        )


def start_or_resume(
    run_dir: Path, restored, model: nn.Module, optimizer, meta: dict, log: Log, is_main: bool
) -> dict:
    """Load a restored checkpoint into the model and optimizer and forget the metrics of the
    interrupted epoch; or start the run folder afresh. Returns the training state."""
    if restored is not None:
        model_state, optimizer_state, state = restored
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        log(f"resuming {run_dir} after epoch {state['epoch']}")
        if is_main:
            drop_unfinished_epoch(run_dir / "metrics.jsonl", state["epoch"])
        return state
    if is_main:
        ckpt.atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2) + "\n")
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    return {"epoch": 0, "step": 0, "best": None, "best_epoch": None, "train_seconds": 0.0}


def train_batches(
    n: int, config: TrainConfig, generator: torch.Generator, ctx: distributed.Context
) -> Iterator[torch.Tensor]:
    """Index tensors of this rank's part of each global minibatch; the last partial one dropped."""
    per_rank = config.batch_size // ctx.world_size
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - config.batch_size + 1, config.batch_size):
        yield order[start + ctx.rank * per_rank : start + (ctx.rank + 1) * per_rank]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """Mean loss and accuracy of `model` on (x, y)."""
    model.eval()
    x_all, y_all = data
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y_all), config.eval_batch_size):
        x = x_all[start : start + config.eval_batch_size].to(device)
        y = y_all[start : start + config.eval_batch_size].to(device)
        if config.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(config, device):
            logits = model(x)
        loss_sum += float(batch_loss(model, logits.float(), y, config)) * len(y)
        correct += int((logits.argmax(1) == y).sum())
    n = max(1, len(y_all))
    return {"loss": loss_sum / n, "accuracy": correct / n}


def autocast(config: TrainConfig, device: torch.device):
    if not config.amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def record_epoch(path: Path, state: dict, val: dict, lr: float, epochs: int, log: Log) -> None:
    """The finished epoch's line in metrics.jsonl (its validation scores) and its log line."""
    record = {"epoch": state["epoch"], "step": state["step"], "seconds": state["train_seconds"]}
    record.update({f"val_{k}": v for k, v in val.items()})
    append_jsonl(path, record)
    shown = "  ".join(f"val {k} {v:.4f}" for k, v in val.items())
    log(f"epoch {state['epoch']:3d}/{epochs}  lr {lr:.4g}  {shown}  {state['train_seconds']:.1f}s")


def drop_unfinished_epoch(path: Path, epochs_done: int) -> None:
    """On resume, forget the metrics lines of the epoch that the crash interrupted."""
    if path.is_file():
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line)["epoch"] <= epochs_done]
        ckpt.atomic_write_text(path, "".join(line + "\n" for line in kept))


def seed_epoch(seed: int, epoch: int, rank: int) -> torch.Generator:
    """Seed dropout (global RNG, per rank) and return the data-order generator (shared by ranks)."""
    torch.manual_seed(seed * 1_000_003 + epoch * 7919 + rank * 104_729 + 1)
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def train_and_evaluate(
    experiment: Experiment,
    config: TrainConfig,
    run_dir: Path,
    preset: str = "custom",
    resume: bool = False,
    progress: bool = True,
    log: Log = print_line,
) -> dict | None:
    """Train `experiment` with `config`, writing everything to `run_dir`; return the summary.

    Under torchrun every rank calls this; rank 0 writes files and returns the summary, the
    others return None.
    """
    ctx = distributed.setup(config.device)
    try:
        return _train(experiment, config, Path(run_dir), preset, resume, progress, log, ctx)
    finally:
        distributed.teardown(ctx)


def _train(experiment, config, run_dir, preset, resume, progress, log, ctx) -> dict | None:
    device = ctx.device
    if config.batch_size % ctx.world_size:
        raise DeepnetsError(
            f"batch_size {config.batch_size} must divide evenly across {ctx.world_size} ranks"
        )
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    restored = ckpt.load_checkpoint(run_dir) if resume else None
    torch.manual_seed(config.seed)

    splits = experiment.load_data(config)
    train_x, train_y = splits["train"]
    steps_per_epoch = len(train_y) // config.batch_size
    if steps_per_epoch == 0:
        raise DeepnetsError(
            f"the training split has {len(train_y)} examples, fewer than one batch of "
            f"{config.batch_size}"
        )
    total_steps = steps_per_epoch * config.epochs
    if device.type == "cuda":  # the whole training split on the GPU: no copy per batch
        train_x, train_y = train_x.to(device), train_y.to(device)
    model = build_model(experiment, config).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    meta = run_metadata(experiment, preset, config, device, ctx.world_size)
    state = start_or_resume(run_dir, restored, model, optimizer, meta, log, ctx.is_main)
    trained = model
    if ctx.world_size > 1:
        trained = nn.parallel.DistributedDataParallel(model)
    if config.compile:
        trained = torch.compile(trained)
    has_val = len(splits["val"][1]) > 0
    sign = 1 if experiment.higher_is_better else -1
    metrics_path = run_dir / "metrics.jsonl"

    for epoch in range(state["epoch"], config.epochs):
        started = time.perf_counter()
        generator = seed_epoch(config.seed, epoch, ctx.rank)
        model.train()
        running, running_n = torch.zeros((), device=device), 0
        bar = tqdm(
            train_batches(len(train_y), config, generator, ctx),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            dynamic_ncols=True,
            disable=None if progress and ctx.is_main else True,  # None: only on a terminal
        )
        for i, idx in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = lr_at(step, total_steps, steps_per_epoch, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = idx.to(train_y.device)
            x, y = train_x[idx], train_y[idx]
            if experiment.augment is not None:
                x = experiment.augment(x, config, generator)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if config.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(config, device):
                logits = trained(x)
            loss = batch_loss(model, logits.float(), y, config)
            gradient_step(model, optimizer, loss, config)
            running += loss.detach()
            running_n += 1
            if (step + 1) % config.log_every == 0 or i == steps_per_epoch - 1:
                mean_loss = float(distributed.mean_over_ranks(ctx, running)) / running_n
                check_finite(mean_loss, epoch, step, lr, state["epoch"], run_dir)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.3g}")
                if ctx.is_main:
                    append_jsonl(
                        metrics_path,
                        {"epoch": epoch + 1, "step": step + 1, "train_loss": mean_loss, "lr": lr},
                    )
                running, running_n = torch.zeros((), device=device), 0
        bar.close()
        state["train_seconds"] += time.perf_counter() - started
        state["epoch"], state["step"] = epoch + 1, (epoch + 1) * steps_per_epoch
        if ctx.is_main:
            val = evaluate(model, splits["val"], config, device) if has_val else {}
            value = val.get(experiment.metric) if config.select == "best_val" else None
            if value is not None and (state["best"] is None or sign * value > sign * state["best"]):
                state["best"], state["best_epoch"] = value, epoch + 1
                ckpt.save_weights(run_dir / ckpt.BEST, model, {"epoch": str(epoch + 1)})
            ckpt.save_checkpoint(run_dir, model, optimizer, state)
            record_epoch(metrics_path, state, val, lr, config.epochs, log)
        distributed.barrier(ctx)

    if not ctx.is_main:
        return None
    restore_selected(model, run_dir, config, holds_last=True)
    test = evaluate(model, splits["test"], config, device)
    summary = run_summary(
        experiment,
        preset,
        test[experiment.metric],
        state["epoch"],
        state["best_epoch"],
        state["train_seconds"],
        device,
        config.seed,
    )
    ckpt.atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    log(
        f"test {experiment.metric} {test[experiment.metric]:.4f}  "
        + published_note(experiment, preset)
    )
    return summary


def load_run(run_dir: Path) -> tuple[Experiment, TrainConfig, dict]:
    """Read a run folder's config.json back into its experiment and typed config."""
    from deepnets.registry import get_experiment

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DeepnetsError(f"{run_dir} is not a run folder (no config.json)")
    try:
        meta = json.loads(path.read_text())
        experiment = get_experiment(meta["experiment"])
        config = config_from_dict(experiment.config_cls, meta["config"])
    except (ValueError, KeyError, TypeError) as err:
        raise DeepnetsError(f"{path} cannot be read: {err}") from None
    return experiment, config, meta


def restore_selected(model: nn.Module, run_dir: Path, config, holds_last: bool = False) -> None:
    """Give `model` the weights the config selects: the best on validation where the run kept
    them, else the last checkpoint's (already in place when `holds_last`)."""
    best = Path(run_dir) / ckpt.BEST
    if config.select == "best_val" and best.is_file():
        model.load_state_dict(ckpt.load_weights(best))
    elif not holds_last:
        model.load_state_dict(ckpt.load_checkpoint(Path(run_dir))[0])


def load_saved_model(run_dir: Path, device: str = "auto"):
    """A run folder's experiment, config and model (in eval mode) with its selected weights."""
    experiment, config, _ = load_run(run_dir)
    model = build_model(experiment, config).to(distributed.resolve_device(device))
    restore_selected(model, run_dir, config)
    return experiment, config, model.eval()


def evaluate_run(run_dir: Path, device: str = "auto", split: str = "test") -> dict[str, float]:
    """Re-evaluate a saved supervised run: its best (or last) weights on a split."""
    experiment, config, model = load_saved_model(run_dir, device)
    splits = experiment.load_data(config)
    if split not in splits:
        raise DeepnetsError(f"unknown split {split!r}; splits: {', '.join(splits)}")
    return evaluate(model, splits[split], config, next(model.parameters()).device)
