"""Recurrent visual attention (deepnets.models.ram) on the gradient engine: a batch is a
minibatch of training digits, placed and cluttered anew from the epoch's generator when the
config asks for a larger canvas; the loss is the hybrid of cross-entropy, REINFORCE and the
baseline's squared error, with the policy's std fixed or annealed (`std_end`); evaluation
follows the policy's mean (one deterministic path, the paper's protocol) or, with `eval_paths`
k > 1, averages the class probabilities of the mean path and k - 1 paths sampled from the policy
(from a fixed seed: a score is reproducible, and the global RNG the training draws from is never
touched).
"""

from __future__ import annotations

import torch

from deepnets.data.augment import random_translate
from deepnets.data.cluttered_mnist import clutter_batch
from deepnets.models.ram import hybrid_loss
from deepnets.train.classify import Classify
from deepnets.train.engine import half_cosine

PATHS_SEED = 20140624  # seeds the sampled test paths of `eval_paths` (the same for every batch)


def place(x: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    """Training digits (B, 1, 28, 28), shifted by up to `max_shift` pixels within their 28x28
    frame, on the config's canvas with its clutter (`augment`)."""
    x = random_translate(x, config.max_shift, generator)  # background 0: the 0-1 scale
    return clutter_batch(x, config.image_size, config.clutter, generator)


class Attend(Classify):
    """Classification by the recurrent attention model: Classify's splits, batches (placed and
    cluttered by `place`) and scores, with the hybrid loss and the policy's mean at test."""

    def __init__(self):
        super().__init__(augment=place)

    def load(self, experiment, config, device):
        return experiment.load_data(config)  # the training digits stay on the CPU (clutter)

    def lr_at(self, model, step, total_steps, steps_per_epoch, config) -> float:
        """The step's learning rate, after setting the policy's std for the step: `std` fixed or,
        with `std_end` > 0, annealed from `std` to `std_end` on a half cosine over the training
        (a pure function of the step, as the rate is, so a resume needs no state)."""
        if config.std_end > 0:
            progress = min(1.0, step / max(1, total_steps - 1))
            span = config.std - config.std_end
            model.std = config.std_end + span * half_cosine(progress)
        return super().lr_at(model, step, total_steps, steps_per_epoch, config)

    def loss(self, step, batch, carry):
        x, y = (t.to(step.device, non_blocking=True) for t in batch)
        out = step.net(x)  # sampled locations: the global RNG, seeded per epoch by the engine
        loss, _ = hybrid_loss(out, y)
        return loss, None

    def logits(self, model, x, config) -> torch.Tensor:
        """The deterministic path's logits (the policy's mean) or, with `eval_paths` > 1, the log
        of the class probabilities averaged over it and `eval_paths - 1` sampled paths."""
        mean_path = model(x, sample=False).logits
        if config.eval_paths == 1:
            return mean_path
        generator = torch.Generator(x.device).manual_seed(PATHS_SEED)
        probs = mean_path.float().softmax(1)
        for _ in range(config.eval_paths - 1):
            probs += model(x, sample=True, generator=generator).logits.float().softmax(1)
        return (probs / config.eval_paths).log()
