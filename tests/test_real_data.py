"""Short runs on the real MNIST files (DEEPNETS_DATA); the full-length runs are marked slow."""

import dataclasses

import pytest
import torch
from conftest import needs_mnist

from deepnets.data.mnist import load_mnist
from deepnets.experiments.mnist import LENET5_MNIST, MLP_MNIST
from deepnets.train import train_and_evaluate

pytestmark = needs_mnist


def test_mnist_loads_with_canonical_shapes_and_label_counts():
    splits = load_mnist(val_size=5000)
    assert splits["train"][0].shape == (55000, 1, 28, 28)
    assert splits["val"][0].shape == (5000, 1, 28, 28)
    assert splits["test"][0].shape == (10000, 1, 28, 28)
    counts = torch.bincount(splits["test"][1], minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(splits["train"][0].mean().item()) < 0.02  # standardised with the train statistics


def test_lenet5_two_epochs_of_mnist_reach_98_5_percent(tmp_path):
    config = dataclasses.replace(LENET5_MNIST.preset("small"), epochs=2)
    summary = train_and_evaluate(LENET5_MNIST, config, tmp_path, progress=False, log=lambda s: None)
    assert summary["value"] >= 0.985, summary


def test_mlp_three_epochs_of_mnist_reach_97_percent(tmp_path):
    # two epochs measured 96.94% on one thread and 97.02% on two (the code before the engine
    # gave the same): too close to the bar to hold on every CPU; three measured 97.64%
    config = dataclasses.replace(MLP_MNIST.preset("small"), epochs=3)
    summary = train_and_evaluate(MLP_MNIST, config, tmp_path, progress=False, log=lambda s: None)
    assert summary["value"] >= 0.97, summary


@pytest.mark.slow
@pytest.mark.parametrize("experiment, floor", [(LENET5_MNIST, 0.990), (MLP_MNIST, 0.984)])
def test_default_presets_reach_the_published_numbers(experiment, floor, tmp_path):
    summary = train_and_evaluate(
        experiment, experiment.preset("small"), tmp_path, progress=False, log=lambda s: None
    )
    assert summary["value"] >= floor, summary
