"""Classification: (x, y) tensors, cross-entropy (or the model's own loss), accuracy.

The data are a dict of splits, each a pair (x (N, ...), y (N,)); `train`, `val` and `test`. A
batch is a random minibatch of the training split, augmented by the experiment's `augment`
(drawn from the epoch's generator) on the way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.train.engine import autocast
from deepnets.train.task import GradientTask, index_batches


def batch_loss(model: nn.Module, logits: torch.Tensor, y: torch.Tensor, config) -> torch.Tensor:
    """The model's own loss where it defines one (squared error), else cross-entropy."""
    own = getattr(model, "loss", None)
    if callable(own):
        return own(logits, y)
    return F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)


def _channels_last(config) -> bool:
    """Whether an image classifier's config asks for channels-last memory format
    (`ImageClassifierConfig.channels_last`; other configs have no such field)."""
    return getattr(config, "channels_last", False)


def _images(x: torch.Tensor, config) -> torch.Tensor:
    """Images (B, C, H, W) in the memory format the model has."""
    if _channels_last(config) and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class Classify(GradientTask):
    def __init__(self, augment=None):
        self.augment = augment  # (x, config, generator) -> x, on training batches only

    def load(self, experiment, config, device):
        splits = experiment.load_data(config)
        if device.type == "cuda":  # the whole training split on the GPU: no copy per batch
            x, y = splits["train"]
            splits = {**splits, "train": (x.to(device), y.to(device))}
        return splits

    def build(self, experiment, config, data):
        model = super().build(experiment, config, data)
        return model.to(memory_format=torch.channels_last) if _channels_last(config) else model

    def split_size(self, data, split: str) -> int:
        return len(data[split][1]) if split in data else 0

    def steps_per_epoch(self, data, config) -> int:
        return len(data["train"][1]) // config.batch_size

    def batches(self, data, config, generator, ctx):
        x_all, y_all = data["train"]
        for idx in index_batches(len(y_all), config, generator, ctx):
            idx = idx.to(y_all.device)
            x, y = x_all[idx], y_all[idx]
            if self.augment is not None:
                x = self.augment(x, config, generator)
            yield x, y

    def loss(self, step, batch, carry):
        x, y = (t.to(step.device, non_blocking=True) for t in batch)
        logits = step.net(_images(x, step.config))
        return batch_loss(step.model, logits.float(), y, step.config), None

    def logits(self, model: nn.Module, x: torch.Tensor, config) -> torch.Tensor:
        """The class scores a model gives a batch when it is evaluated."""
        return model(_images(x, config))

    @torch.no_grad()
    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        """Mean loss and accuracy on (x, y)."""
        model.eval()
        x_all, y_all = data[split]
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y_all), config.eval_batch_size):
            x = x_all[start : start + config.eval_batch_size].to(device)
            y = y_all[start : start + config.eval_batch_size].to(device)
            with autocast(config, device):
                logits = self.logits(model, x, config)
            loss_sum += float(batch_loss(model, logits.float(), y, config)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
        n = max(1, len(y_all))
        scores = {"accuracy": correct / n, "loss": loss_sum / n}
        if final and getattr(config, "score_train", False) and split != "train":
            train = self.evaluate(model, data, "train", config, device)
            scores |= {"train_accuracy": train["accuracy"], "train_loss": train["loss"]}
        return scores

    def record_test(self, run, summary: dict) -> None:
        """With `target_loss` / `target_error` set: when the run first reached them, from its
        metrics log, into the summary's metrics."""
        config = run.read_config()[1]
        reached = steps_to_targets(run.read_metrics(), config, summary)
        if reached:
            summary["metrics"] |= reached
            run.write_summary(summary)


def steps_to_targets(log: list[dict], config, summary: dict) -> dict[str, float]:
    """The first logged step whose training loss (the running mean over `log_every` steps) was at
    most `target_loss`, and the first validation whose error was at most `target_error`, with
    the training seconds to each (the loss's from the run's mean seconds per step); NaN where
    the run never got there. Empty when neither target is set."""
    found: dict[str, float] = {}
    per_step = summary["wall_seconds"] / max(1, summary["steps"])
    if getattr(config, "target_loss", 0) > 0:
        hits = [r["step"] for r in log if r.get("train_loss", math.inf) <= config.target_loss]
        step = hits[0] if hits else math.nan
        found |= {"steps_to_loss": step, "seconds_to_loss": step * per_step}
    if getattr(config, "target_error", 0) > 0:
        hits = [
            (r["step"], r["seconds"])
            for r in log
            if 1 - r.get("val_accuracy", -math.inf) <= config.target_error
        ]
        step, seconds = hits[0] if hits else (math.nan, math.nan)
        found |= {"steps_to_error": step, "seconds_to_error": seconds}
    return found
