"""The pre-training experiments: `dbn-mnist` (a deep belief net, stacked RBMs) and `sdae-mnist`
(stacked denoising autoencoders), each greedily pre-trained layer by layer without labels, then
fine-tuned by backpropagation; their configs, the MNIST-pixels data glue and the sigmoid MLP they
fine-tune. The layer kinds (what a layer is, its loss) live with their models
(`deepnets.models.rbm.RBM_LAYERS`, `deepnets.models.sdae.DAE_LAYERS`); `Pretrain` trains them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import nn

from deepnets.config import ClassifierConfig, Range, check
from deepnets.data.mnist import balanced_subset
from deepnets.experiments.base import Experiment, Published, Splits
from deepnets.experiments.mnist import mnist_splits
from deepnets.models.rbm import RBM_LAYERS
from deepnets.models.sdae import DAE_LAYERS
from deepnets.train.pretrain import Pretrain

# --- dbn-mnist and sdae-mnist: greedy layer-wise pre-training, then fine-tuning ---------------


@dataclass(frozen=True)
class PretrainConfig(ClassifierConfig):
    """A sigmoid MLP whose hidden layers are first pre-trained one at a time without labels."""

    PRETRAIN_FIELDS: ClassVar[tuple[str, ...]] = ("hidden", "val_size", "train_subset")
    RULES = ((("labels",), lambda n: n % 10 == 0, "must be a multiple of the 10 classes"),)

    hidden: tuple[int, ...] = check(
        (500, 500, 2000), items=Range(ge=1), min_len=1
    )  # hidden layer sizes, bottom up
    pretrain: bool = True  # pre-train the hidden layers first (false: the same net, random init)
    pretrain_epochs: int = check(10, ge=1)  # passes over the unlabelled images, per layer
    pretrain_batch_size: int = check(100, ge=1)  # minibatch of the layer-wise updates
    pretrain_lr: float = check(0.1, gt=0)  # learning rate of the layer-wise updates
    pretrain_momentum: float = check(
        0.9, ge=0, lt=1
    )  # momentum after the first epochs (0.5 before them)
    pretrain_weight_decay: float = check(2e-4, ge=0)  # L2 on the layer weights during pre-training
    pretrain_seed: int = check(
        0, ge=0
    )  # seeds pre-training alone: runs differing only in `seed` share it
    labels: int = check(
        0, ge=0
    )  # labelled images for fine-tuning, the same number per class (0: all)
    dropout: float = check(0.0, ge=0, lt=1)  # fine-tuning: dropout on the hidden units
    input_dropout: float = check(0.0, ge=0, lt=1)  # fine-tuning: dropout on the input pixels
    val_size: int = 0  # images held out for selection (0: pre-train on all 60,000)
    select: Literal["best_val", "last"] = "last"  # no validation split: the last weights
    # Fine-tuning: Adam on a cosine schedule, the same for pre-trained and random nets. (SGD with
    # momentum needs lr >= 0.1 to fine-tune the pre-trained net fast, and diverges at lr 0.1 from
    # random init: 2,000 sigmoid units of mean ~0.5 feed the output layer.)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = 1e-3
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "cosine"
    warmup: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 100


@dataclass(frozen=True)
class DBNConfig(PretrainConfig):
    PRETRAIN_FIELDS: ClassVar[tuple[str, ...]] = (
        *PretrainConfig.PRETRAIN_FIELDS,
        "cd_k",
        "persistent",
    )

    cd_k: int = check(1, ge=1)  # Gibbs steps of contrastive divergence (CD-k)
    persistent: bool = False  # persistent CD (Tieleman 2008) instead of restarting at the data


@dataclass(frozen=True)
class SDAEConfig(PretrainConfig):
    PRETRAIN_FIELDS: ClassVar[tuple[str, ...]] = (*PretrainConfig.PRETRAIN_FIELDS, "noise", "tied")

    noise: float = check(
        0.25, ge=0, lt=1
    )  # masking noise: the fraction of each layer's inputs set to zero
    tied: bool = True  # decoder weights are the encoder's, transposed
    pretrain_lr: float = 0.01  # the denoising loss is summed over inputs: a smaller step


def mnist_pixels(config: PretrainConfig) -> Splits:
    """MNIST as intensities in [0, 1] (what RBMs and autoencoders model), the training images
    again as `unlabelled` for pre-training, and `train` cut to `labels` examples if asked."""
    from deepnets.data.mnist import MEAN, STD

    splits = {k: ((x * STD + MEAN).clamp_(0, 1), y) for k, (x, y) in mnist_splits(config).items()}
    x, y = splits["train"]
    splits["unlabelled"] = (x, y[:0])  # the images, no labels
    if config.labels > 0:
        idx = balanced_subset(y, config.labels, config.seed)
        splits["train"] = (x[idx], y[idx])
    return splits


def build_sigmoid_mlp(config: PretrainConfig) -> nn.Module:
    from deepnets.models.mlp import MLP

    return MLP(
        (784, *config.hidden, 10), "logistic", "cross_entropy", config.dropout, config.input_dropout
    )


_TINY_PRETRAIN = dict(
    hidden=(64, 32),
    pretrain_epochs=2,
    epochs=3,
    batch_size=50,
    pretrain_batch_size=50,
    train_subset=2000,
    val_size=500,
    select="best_val",
    log_every=10,
)
# Few labels: the fine-tuning of `small` on 100, 600 or 1,000 labelled images (10, 60, 100 per
# class, drawn by `seed`), 200 to 300 steps; pre-training is `small`'s, on all 60,000 images, so
# all three share its stack.
_FEW_LABELS = {
    "labels-100": dict(labels=100, batch_size=25, epochs=50),
    "labels-600": dict(labels=600, batch_size=100, epochs=40),
    "labels-1000": dict(labels=1000, batch_size=100, epochs=30),
}
# `small`'s pre-trained stack, fine-tuned with dropout (Srivastava et al. 2014: 20% of the pixels,
# half the hidden units) for 50 epochs: without it the fine-tuned net fits the training set to a
# loss of 1e-4 by epoch 13; with it, 20 epochs are too few (DBN: 1.34% after 20, 1.10% after 50).
_DROPOUT_FINETUNE = dict(input_dropout=0.2, dropout=0.5, epochs=50)
_NO_PAPER_NUMBER = Published(
    math.nan, "the few-label comparison is against the same net from random init", "-"
)

# Hinton's recipe for the RBMs (lr 0.1, momentum 0.5 then 0.9, L2 2e-4, batches of 100), 10
# epochs per layer instead of 50; fine-tuning: 15 epochs of Adam on a cosine schedule.
_DBN_SMALL = DBNConfig(pretrain_epochs=10, epochs=15)

DBN_MNIST = Experiment(
    id="dbn-mnist",
    title="Deep belief net: stacked RBMs (CD-1), then backprop (ref 32)",
    presets={
        "tiny": DBNConfig(**_TINY_PRETRAIN, lr=0.01),
        "small": _DBN_SMALL,
        "dropout": dataclasses.replace(_DBN_SMALL, **_DROPOUT_FINETUNE),
        **{name: dataclasses.replace(_DBN_SMALL, **f) for name, f in _FEW_LABELS.items()},
    },
    load_data=mnist_pixels,
    build_model=build_sigmoid_mlp,
    published=Published(
        1 - 0.0125, "1.25% test error (DBN 784-500-500-2000)", "Hinton et al. 2006"
    ),
    published_by_preset={name: _NO_PAPER_NUMBER for name in _FEW_LABELS},
    task=Pretrain(RBM_LAYERS),
    headline=("small", "dropout", "labels-100"),
    notes=(
        "`small`: 784-500-500-2000 RBMs (binary hidden units, MNIST intensities as visible "
        "probabilities) trained bottom up with CD-1 for 10 epochs each (the paper: 50) on all "
        "60,000 training images, lr 0.1, momentum 0.5 then 0.9, L2 2e-4; then the sigmoid "
        "784-500-500-2000-10 net is fine-tuned with labels for 15 epochs of Adam (lr 1e-3, "
        "cosine decay); no validation split, the last weights are tested. Hinton et al.'s 1.25% "
        "came from generative up-down fine-tuning; Hinton & Salakhutdinov's 1.2% from "
        "backpropagation with conjugate gradients, as here with Adam.",
        "`dropout`: `small`'s stack fine-tuned for 50 epochs with dropout on 20% of the pixels "
        "and half the hidden units (Srivastava et al. 2014 report 0.92% for this net with "
        "dropout fine-tuning, over far longer training). Rows measured before it became the "
        "preset carry `+epochs=50`.",
        "`labels-N`: the same pre-trained stack, fine-tuned on N labelled images (N/10 per "
        "class, drawn by the seed); `+pretrain=false` rows are the same net and schedule from "
        "PyTorch's default random initialisation (benchmarks/few_labels.py).",
    ),
)

_SDAE_SMALL = SDAEConfig(pretrain_epochs=10, pretrain_lr=0.05, epochs=15)

SDAE_MNIST = Experiment(
    id="sdae-mnist",
    title="Stacked denoising autoencoders (masking noise), then backprop (refs 33, 93)",
    presets={
        "tiny": SDAEConfig(**_TINY_PRETRAIN, lr=0.01),
        "small": _SDAE_SMALL,
        # the autoencoders trained 30 epochs each: after 10, the dropout fine-tuning gave 1.31%
        "dropout": dataclasses.replace(_SDAE_SMALL, **_DROPOUT_FINETUNE, pretrain_epochs=30),
        **{name: dataclasses.replace(_SDAE_SMALL, **f) for name, f in _FEW_LABELS.items()},
    },
    load_data=mnist_pixels,
    build_model=build_sigmoid_mlp,
    published=Published(1 - 0.0128, "1.28% test error (SDAE-3)", "Vincent et al. 2010"),
    published_by_preset={name: _NO_PAPER_NUMBER for name in _FEW_LABELS},
    task=Pretrain(DAE_LAYERS),
    headline=("small", "dropout", "labels-100"),
    notes=(
        "`small`: tied-weight denoising autoencoders with 25% masking noise and cross-entropy "
        "reconstruction, 784-500-500-2000 (the DBN's sizes; SDAE-3 had 1000 units per layer "
        "chosen on validation), 10 epochs per layer of SGD (lr 0.05, momentum 0.5 then 0.9, "
        "batches of 100), then fine-tuned like dbn-mnist (15 epochs of Adam, cosine decay); "
        "`labels-N` as for dbn-mnist.",
        "`dropout`: the autoencoders trained for 30 epochs each (not 10), then fine-tuned with "
        "dropout as dbn-mnist's `dropout`. Rows measured before it became the preset carry "
        "`+epochs=50,pretrain_epochs=30`.",
    ),
)
