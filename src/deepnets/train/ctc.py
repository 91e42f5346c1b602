"""The CTC loop: variable-length utterances, connectionist temporal classification, digit error
rate.

`train_and_evaluate(experiment, config, run_dir)` reads top to bottom like the supervised loop,
whose helpers it reuses: load the spoken digit strings, build the model and the optimizer (or
restore both from the run folder's checkpoint), then for each epoch shuffle the training
strings, pad each minibatch to its longest utterance, take gradient steps on the CTC loss
(`torch.nn.functional.ctc_loss`), then decode the validation strings greedily, keep the weights
with the lowest digit error rate (ties: the lower validation loss), checkpoint. The kept weights
are scored once on the test strings with the prefix beam search (`beam_width`), greedy beside it.

Digit error rate = sum of edit distances (hypothesis, reference) / sum of reference lengths.
A model for this loop maps (x (B, T, F), lengths (B,)) to (log-probabilities (B, T', 1 + labels),
output lengths (B,)), blank first: `deepnets.models.ctc.CTCRecognizer`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

from deepnets import DeepnetsError
from deepnets.data.fsdd import DigitStrings
from deepnets.models.ctc import BLANK, edit_distance, greedy_decode, prefix_beam_search
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
    record_epoch,
    restore_selected,
    run_metadata,
    run_summary,
    seed_epoch,
    start_or_resume,
)

METRIC = "digit_error_rate"


def collate(
    data: DigitStrings, idx: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Strings `idx` as (x (B, T_max, F) zero-padded, lengths (B,), labels of all strings
    concatenated (sum L,) with blank = 0 and digit d = d + 1, label lengths (B,))."""
    feats = [data.features[i] for i in idx]
    x = pad_sequence(feats, batch_first=True)  # (B, T_max, F)
    lengths = torch.tensor([len(f) for f in feats])
    labels = torch.cat([data.digits[i] + 1 for i in idx])
    label_lengths = torch.tensor([len(data.digits[i]) for i in idx])
    return x, lengths, labels, label_lengths


def ctc_loss(model: nn.Module, batch, device: torch.device, reduction: str = "mean"):
    """CTC loss of a collated batch: -log p(labels | x), divided by the label lengths and
    averaged over the batch (`mean`), or summed over it undivided (`sum`)."""
    x, lengths, labels, label_lengths = (t.to(device) for t in batch)
    log_probs, out_lengths = model(x, lengths)  # (B, T', V), (B,)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),  # (T', B, V), as ctc_loss wants
        labels,
        out_lengths,
        label_lengths,
        blank=BLANK,
        reduction=reduction,
        zero_infinity=True,
    )
    return loss, log_probs, out_lengths


@torch.no_grad()
def evaluate_strings(
    model: nn.Module, data: DigitStrings, config, device: torch.device, beam_width: int = 0
) -> dict[str, float]:
    """Mean CTC loss (nats per string) and digit error rate of greedy decoding, and with
    `beam_width` > 1 also of the prefix beam search (then `digit_error_rate` is the beam's)."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.features[i]))  # less padding
    loss_sum, greedy_errors, beam_errors, reference = 0.0, 0, 0, 0
    for start in range(0, len(order), config.eval_batch_size):
        idx = order[start : start + config.eval_batch_size]
        loss, log_probs, out_lengths = ctc_loss(model, collate(data, idx), device, "sum")
        loss_sum += float(loss)
        for b, i in enumerate(idx):
            frames = log_probs[b, : out_lengths[b]].cpu()  # (T'_b, V)
            ref = (data.digits[i] + 1).tolist()
            greedy_errors += edit_distance(greedy_decode(frames), ref)
            if beam_width > 1:
                beam_errors += edit_distance(prefix_beam_search(frames, beam_width), ref)
            reference += len(ref)
    n, reference = max(1, len(data)), max(1, reference)
    scores = {"loss": loss_sum / n, METRIC: greedy_errors / reference}
    if beam_width > 1:
        scores = {**scores, METRIC: beam_errors / reference, "greedy_" + METRIC: scores[METRIC]}
    return scores


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

    splits = experiment.load_data(config)
    train = splits["train"]
    steps_per_epoch = len(train) // config.batch_size
    if steps_per_epoch == 0:
        raise DeepnetsError(
            f"the training split has {len(train)} strings, fewer than one batch of "
            f"{config.batch_size}"
        )
    total_steps = steps_per_epoch * config.epochs
    model = build_model(experiment, config).to(device)
    optimizer = make_optimizer(model, config)
    meta = run_metadata(experiment, preset, config, device, 1)
    state = start_or_resume(run_dir, restored, model, optimizer, meta, log, is_main=True)
    metrics_path = run_dir / "metrics.jsonl"

    for epoch in range(state["epoch"], config.epochs):
        started = time.perf_counter()
        generator = seed_epoch(config.seed, epoch, 0)
        model.train()
        running, running_n = torch.zeros((), device=device), 0
        order = torch.randperm(len(train), generator=generator).tolist()
        batches = [
            order[k * config.batch_size : (k + 1) * config.batch_size]
            for k in range(steps_per_epoch)
        ]
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            dynamic_ncols=True,
            disable=None if progress else True,  # None: only on a terminal
        )
        for i, idx in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = lr_at(step, total_steps, steps_per_epoch, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = ctc_loss(model, collate(train, idx), device)[0]
            gradient_step(model, optimizer, loss, config)
            running += loss.detach()
            running_n += 1
            if (step + 1) % config.log_every == 0 or i == steps_per_epoch - 1:
                mean_loss = float(running) / running_n
                check_finite(mean_loss, epoch, step, lr, state["epoch"], run_dir)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.3g}")
                append_jsonl(
                    metrics_path,
                    {"epoch": epoch + 1, "step": step + 1, "train_loss": mean_loss, "lr": lr},
                )
                running, running_n = torch.zeros((), device=device), 0
        bar.close()
        state["train_seconds"] += time.perf_counter() - started
        state["epoch"], state["step"] = epoch + 1, (epoch + 1) * steps_per_epoch
        val = evaluate_strings(model, splits["val"], config, device) if len(splits["val"]) else {}
        if val and config.select == "best_val":
            key = [val[METRIC], val["loss"]]  # fewest errors, then the lowest loss
            if state["best"] is None or key < [state["best"], state["best_loss"]]:
                state["best"], state["best_loss"], state["best_epoch"] = *key, epoch + 1
                ckpt.save_weights(run_dir / ckpt.BEST, model, {"epoch": str(epoch + 1)})
        ckpt.save_checkpoint(run_dir, model, optimizer, state)
        record_epoch(metrics_path, state, val, lr, config.epochs, log)

    restore_selected(model, run_dir, config, holds_last=True)
    test = evaluate_strings(model, splits["test"], config, device, config.beam_width)
    summary = run_summary(
        experiment,
        preset,
        test[METRIC],
        state["epoch"],
        state["best_epoch"],
        state["train_seconds"],
        device,
        config.seed,
    )
    summary.update({k: v for k, v in test.items() if k != METRIC})
    ckpt.atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    shown = "  ".join(f"{k} {v:.4f}" for k, v in test.items())
    log(
        f"test {shown}  (published {experiment.published.value:.4f}: "
        f"{experiment.published.text}, {experiment.published.source})"
    )
    return summary


def evaluate_run(run_dir: Path, device: str = "auto", split: str = "test") -> dict[str, float]:
    """Re-evaluate a saved CTC run: its best (or last) weights on a split, beam search included."""
    experiment, config, model = load_saved_model(run_dir, device)
    if experiment.loop != "ctc":
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a CTC recogniser's")
    splits = experiment.load_data(config)
    if split not in splits:
        raise DeepnetsError(f"unknown split {split!r}; splits: {', '.join(splits)}")
    dev = next(model.parameters()).device
    return evaluate_strings(model, splits[split], config, dev, config.beam_width)
