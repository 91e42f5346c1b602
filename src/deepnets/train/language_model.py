"""The language-model loop: next-token prediction on one long token stream, truncated BPTT.

`train_and_evaluate(experiment, config, run_dir)` reads top to bottom like the supervised loop:
load the stream splits and the vocabulary, build the model and the optimizer (or restore both
from the run folder's checkpoint), then for each epoch walk the training stream in (B, T) batches
(`deepnets.data.batching`), carrying each row's state from one batch to the next and cutting the
graph between them (truncated backpropagation through time), clip the gradient norm, step;
after each epoch measure validation perplexity, keep the best weights, checkpoint. The best
weights are scored once on the test split (or, for a corpus with no test split, on validation).

A model for this loop maps (x (B, T) ids, state) to (output, state) and has `loss(output, y)`
(mean nats per token), `log_probs(output)` and `init_state(B)`: the recurrent nets of
`deepnets.models.rnn_lm` and the window model of `deepnets.models.nplm` both do. The hidden
state starts at zero at each epoch, so resuming after an epoch repeats an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from deepnets import DeepnetsError
from deepnets.data.batching import bptt_batches, num_bptt_batches
from deepnets.models.rnn_lm import detach_state
from deepnets.registry import Experiment
from deepnets.train import checkpoint as ckpt
from deepnets.train.distributed import resolve_device
from deepnets.train.supervised import (
    Log,
    append_jsonl,
    build_model,
    check_finite,
    gradient_step,
    load_saved_model,
    lr_at,
    make_optimizer,
    print_line,
    published_note,
    restore_selected,
    run_metadata,
    run_summary,
    seed_epoch,
    start_or_resume,
)


@torch.no_grad()
def evaluate_stream(
    model: nn.Module, ids: torch.Tensor, batch_size: int, bptt: int, device: torch.device
) -> dict[str, float]:
    """Loss (nats per token) and perplexity of `model` on a stream, state carried throughout.

    The stream is laid out as `batch_size` rows, each read from a fresh state; the last
    len(ids) mod batch_size tokens (fewer than batch_size) are not scored."""
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in bptt_batches(ids, batch_size, bptt):
        output, state = model(x.to(device), state)
        total += float(model.loss(output, y.to(device))) * y.numel()
        count += y.numel()
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count}


def _check_vocab(model: nn.Module, vocab, experiment: Experiment) -> None:
    if model.vocab_size != len(vocab):
        raise DeepnetsError(
            f"{experiment.id}: the model has {model.vocab_size} output words but the data's "
            f"vocabulary has {len(vocab)}; the data files are not the ones this experiment expects"
        )


def train_and_evaluate(
    experiment: Experiment,
    config,
    run_dir: Path,
    preset: str = "custom",
    resume: bool = False,
    progress: bool = True,
    log: Log = print_line,
) -> dict:
    """Train `experiment` with `config`, writing everything to `run_dir`; return the summary."""
    run_dir = Path(run_dir)
    device = resolve_device(config.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    restored = ckpt.load_checkpoint(run_dir) if resume else None
    torch.manual_seed(config.seed)

    corpus = experiment.load_data(config)
    train_ids = corpus["train"]
    if config.train_subset > 0:
        train_ids = train_ids[: config.train_subset]
    steps_per_epoch = num_bptt_batches(train_ids.numel(), config.batch_size, config.bptt)
    total_steps = steps_per_epoch * config.epochs
    model = build_model(experiment, config).to(device)
    _check_vocab(model, corpus["vocab"], experiment)
    optimizer = make_optimizer(model, config)
    meta = run_metadata(experiment, preset, config, device, 1)
    state = start_or_resume(run_dir, restored, model, optimizer, meta, log, is_main=True)
    metrics_path = run_dir / "metrics.jsonl"
    select = experiment.metric  # "loss" or "perplexity": either picks the same weights
    tokens_per_step = config.batch_size * config.bptt
    # On a terminal the bar shows progress; in a log file, five lines per epoch do.
    terminal = progress and sys.stderr.isatty()
    print_every = max(1, steps_per_epoch // 5)

    evals = config.evals_per_epoch
    # the steps of an epoch after which validation runs (the last step always)
    eval_points = {(k * steps_per_epoch) // evals for k in range(1, evals + 1)}

    def validate(epoch: int, step: int, seconds: float) -> dict[str, float]:
        """Score the validation stream, keep the best weights, record and show the result."""
        val = evaluate_stream(model, corpus["valid"], config.eval_batch_size, config.bptt, device)
        if state["best"] is None or val[select] < state["best"]:
            state["best"], state["best_epoch"] = val[select], epoch
            ckpt.save_weights(run_dir / ckpt.BEST, model, {"epoch": str(epoch), "step": str(step)})
        record = {"epoch": epoch, "step": step, "seconds": seconds}
        record.update({f"val_{k}": v for k, v in val.items() if k != "tokens"})
        append_jsonl(metrics_path, record)
        return val

    def show(epoch: int, step: int, val: dict[str, float], seconds: float) -> bool:
        """Log a validation; return whether it reached the config's target (`stop_at`)."""
        log(
            f"epoch {epoch:3d}/{config.epochs}  step {step}  lr {lr:.4g}  val loss "
            f"{val['loss']:.4f}  val perplexity {val['perplexity']:.2f}  {seconds:.1f}s"
        )
        return config.stop_at > 0 and val[select] <= config.stop_at

    stopped = False
    for epoch in range(state["epoch"], config.epochs):
        started, paused = time.perf_counter(), 0.0  # paused: seconds spent validating mid-epoch
        seed_epoch(config.seed, epoch, 0)  # dropout masks depend on (seed, epoch) only
        model.train()
        hidden = None
        running, running_n = torch.zeros((), device=device), 0
        batches = bptt_batches(train_ids, config.batch_size, config.bptt)
        bar = tqdm(
            batches,
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            dynamic_ncols=True,
            disable=not terminal,
        )
        for i, (x, y) in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = lr_at(step, total_steps, steps_per_epoch, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(device), y.to(device)
            if hidden is not None:
                hidden = detach_state(hidden)
            output, hidden = model(x, hidden)
            loss = model.loss(output, y)
            gradient_step(model, optimizer, loss, config)
            running += loss.detach()
            running_n += 1
            if (step + 1) % config.log_every == 0 or i == steps_per_epoch - 1:
                mean_loss = float(running) / running_n
                check_finite(mean_loss, epoch, step, lr, state["epoch"], run_dir)
                bar.set_postfix(ppl=f"{math.exp(min(mean_loss, 50)):.1f}", lr=f"{lr:.3g}")
                append_jsonl(
                    metrics_path,
                    {"epoch": epoch + 1, "step": step + 1, "train_loss": mean_loss, "lr": lr},
                )
                running, running_n = torch.zeros((), device=device), 0
            seconds = time.perf_counter() - started - paused
            if progress and not terminal and (i + 1) % print_every == 0:
                speed = tokens_per_step * (i + 1) / seconds
                log(
                    f"  epoch {epoch + 1} step {i + 1}/{steps_per_epoch}  loss "
                    f"{float(loss.detach()):.3f}  {speed:.0f} tokens/s"
                )
            if i + 1 in eval_points and i + 1 < steps_per_epoch:
                val = validate(epoch + 1, step + 1, state["train_seconds"] + seconds)
                stopped = show(epoch + 1, step + 1, val, state["train_seconds"] + seconds)
                paused = time.perf_counter() - started - seconds
                model.train()
                if stopped:
                    break
        bar.close()
        if stopped:  # mid-epoch: no checkpoint (a resume restarts from the last epoch's)
            state["train_seconds"] += seconds
            state["step"] = step + 1
            break
        state["train_seconds"] += time.perf_counter() - started - paused
        state["epoch"], state["step"] = epoch + 1, (epoch + 1) * steps_per_epoch
        val = validate(epoch + 1, state["step"], state["train_seconds"])
        ckpt.save_checkpoint(run_dir, model, optimizer, state)
        stopped = show(epoch + 1, state["step"], val, state["train_seconds"])
        if stopped:
            break

    restore_selected(model, run_dir, config, holds_last=True)
    split = "test" if "test" in corpus else "valid"
    scores = evaluate_stream(model, corpus[split], config.eval_batch_size, config.bptt, device)
    summary = run_summary(
        experiment,
        preset,
        scores[experiment.metric],
        state["epoch"],
        state["best_epoch"],
        state["train_seconds"],
        device,
        config.seed,
    )
    summary["split"] = split
    summary["stopped_at_target"] = stopped
    ckpt.atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    log(
        f"{split} {experiment.metric} {scores[experiment.metric]:.4f}  "
        + published_note(experiment, preset)
    )
    return summary


def load_trained(run_dir: Path, device: str = "cpu"):
    """A language-model run folder's experiment, config, data and model with its best (or last)
    weights; any other run folder is an error, raised before its data are read."""
    experiment, config, model = load_saved_model(run_dir, device)
    if experiment.loop != "language_model":
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a language model's")
    return experiment, config, experiment.load_data(config), model


def evaluate_run(run_dir: Path, device: str = "auto", split: str = "test") -> dict[str, float]:
    experiment, config, corpus, model = load_trained(run_dir, device)
    if split not in corpus or split == "vocab":
        names = [k for k in corpus if k != "vocab"]
        raise DeepnetsError(f"unknown split {split!r}; splits: {', '.join(names)}")
    dev = next(model.parameters()).device
    return evaluate_stream(model, corpus[split], config.eval_batch_size, config.bptt, dev)


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample `length` tokens after `prompt` (ids, (P,), at least one): each drawn from
    softmax(log p / temperature) given everything before it. Returns the new ids, (length,)."""
    if temperature <= 0:
        raise DeepnetsError(f"temperature must be positive, got {temperature}")
    if prompt.numel() == 0:
        raise DeepnetsError("the prompt must hold at least one token")
    model.eval()
    device = next(model.parameters()).device
    output, state = model(prompt.view(1, -1).to(device), None)  # read the prompt: (1, P, ...)
    drawn = []
    for _ in range(length):
        log_p = model.log_probs(output[:, -1]) / temperature  # (1, V)
        token = torch.multinomial(log_p.softmax(-1).cpu(), 1, generator=generator)  # (1, 1)
        drawn.append(int(token))
        output, state = model(token.to(device), state)
    return torch.tensor(drawn, dtype=torch.long)
