"""Recurrent visual attention (deepnets.models.ram) on the gradient engine: a batch is a
minibatch of training digits, placed and cluttered anew from the epoch's generator when the
config asks for a larger canvas; the loss is the hybrid of cross-entropy, REINFORCE and the
baseline's squared error; evaluation follows the policy's mean (one deterministic path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnets.data.cluttered_mnist import clutter_batch
from deepnets.models.ram import hybrid_loss
from deepnets.train.classify import Classify
from deepnets.train.task import index_batches


def place(x: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    """Training digits (B, 1, 28, 28) on the config's canvas with its clutter (`augment`)."""
    return clutter_batch(x, config.image_size, config.clutter, generator)


class Attend(Classify):
    """Classification by the recurrent attention model; the splits are Classify's."""

    def __init__(self):
        super().__init__(augment=place)

    def load(self, experiment, config, device):
        return experiment.load_data(config)  # the training digits stay on the CPU (clutter)

    def batches(self, data, config, generator, ctx):
        x_all, y_all = data["train"]
        for idx in index_batches(len(y_all), config, generator, ctx):
            yield place(x_all[idx], config, generator), y_all[idx]

    def loss(self, step, batch, carry):
        x, y = (t.to(step.device, non_blocking=True) for t in batch)
        out = step.net(x)  # sampled locations: the global RNG, seeded per epoch by the engine
        loss, _ = hybrid_loss(out, y)
        return loss, None

    @torch.no_grad()
    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        """Accuracy and cross-entropy of the deterministic path (the policy's mean)."""
        model.eval()
        x_all, y_all = data[split]
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y_all), config.eval_batch_size):
            x = x_all[start : start + config.eval_batch_size].to(device)
            y = y_all[start : start + config.eval_batch_size].to(device)
            logits = model(x, sample=False).logits.float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        n = max(1, len(y_all))
        return {"accuracy": correct / n, "loss": loss_sum / n}
