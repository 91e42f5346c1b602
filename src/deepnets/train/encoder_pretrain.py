"""A captioner's ConvNet encoder pre-trained on CIFAR-10 classification (`encoder_init=cifar10`).

The captioning papers' encoders were trained on ImageNet's 1.2 million labelled photographs;
no such weights can be had on these machines. The labelled photographs this project does have
are CIFAR-10's 50,000 (32x32, ten classes, among them the dogs, horses and birds Flickr8k often
shows). So: the captioner's own encoder (`ConvEncoder` of the config's `channels`), global
average pooled under a linear ten-way classifier, is trained on CIFAR-10 with convnet-cifar10's
data, augmentation (4-pixel crops and flips) and engine; the captioner then starts from its
convolutions and batch-norm statistics, and the classifier layer is dropped. Everything is
fine-tuned with the captions (nothing is frozen).

Where it lives: the pre-training does not depend on the captioning run's seed or schedule, so
every run with the same encoder settings (`channels`, `encoder_epochs`) shares one: a run folder
of its own, `<runs>/pretrained/caption-encoder-cifar10-<key>/`, with checkpoints after every
epoch (a stopped pre-training resumes where it was). Each captioning run copies the encoder's
weights into its own folder (`encoder-init.safetensors`) so that it stands alone.

Two runs that need the same encoder at the same moment would race on its folder: let the first
finish its pre-training before starting the next.

Deviations: 32x32 images, where the captioner reads 64x64 or larger (a CIFAR object fills its
frame; a Flickr8k subject fills a good part of it); CIFAR-10 is standardised by its own channel
statistics, Flickr8k by its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import torch
from torch import nn

from deepnets.models.captioner import ConvEncoder
from deepnets.run import RunDir, file_errors
from deepnets.train import checkpoint as ckpt
from deepnets.train import engine
from deepnets.train.distributed import is_main_process
from deepnets.train.engine import Log, print_line

VERSION = 1  # in the key: changes when how the encoder is pre-trained changes
INIT_FILE = "encoder-init.safetensors"  # the run folder's copy of the pre-trained encoder


class EncoderClassifier(nn.Module):
    """The captioner's encoder, its map averaged over the grid, a linear layer to the classes."""

    def __init__(self, channels: tuple[int, ...], classes: int = 10):
        super().__init__()
        self.encoder = ConvEncoder(3, channels)
        self.out = nn.Linear(self.encoder.out_channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(x).mean((2, 3)))


def pretrain_config(config):
    """The CIFAR-10 run: Nesterov SGD on a one-cycle schedule, batch 256, label smoothing 0.1,
    4-pixel crops and flips, 5,000 training images held out to measure it, the last weights
    kept; its own seed 0 (one encoder for every captioning seed)."""
    from deepnets.experiments.cifar import CifarConvNetConfig

    return CifarConvNetConfig(
        epochs=config.encoder_epochs,
        batch_size=256,
        lr=0.2,
        label_smoothing=0.1,
        max_shift=4,
        flip=True,
        flip_tta=False,
        val_size=5000,
        select="last",
        seed=0,
        device=config.device,
        train_subset=config.encoder_subset,
        eval_batch_size=1000,
    )


def encoder_key(config) -> str:
    """A hash of everything the pre-trained encoder depends on, and of nothing it does not."""
    settings = dataclasses.asdict(pretrain_config(config)) | {"channels": list(config.channels)}
    settings.pop("device")
    text = json.dumps({"version": VERSION, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encoder_folder(config, run_dir: Path) -> Path:
    return Path(run_dir).parent / "pretrained" / f"caption-encoder-cifar10-{encoder_key(config)}"


def _experiment(config):
    """convnet-cifar10, its net replaced by the captioner's encoder under a classifier."""
    from deepnets.experiments.base import Published
    from deepnets.experiments.cifar import CONVNET_CIFAR10

    return dataclasses.replace(
        CONVNET_CIFAR10,
        id="caption-encoder-cifar10",  # convnet-cifar10's data, task and metrics
        build_model=lambda c: EncoderClassifier(config.channels),
        published=Published(math.nan, "a captioner's encoder, pre-trained", "-"),
        published_by_preset={},
        notes=(),
    )


def pretrained_encoder(
    config, run_dir: Path, log: Log = print_line, progress: bool = True
) -> dict[str, torch.Tensor]:
    """The encoder's weights (a ConvEncoder state dict) after `config.encoder_epochs` epochs
    of CIFAR-10: trained here, or resumed, or loaded when an earlier run finished it; copied
    into `run_dir` as INIT_FILE."""
    folder = encoder_folder(config, run_dir)
    run = RunDir(folder)
    if not (folder / "summary.json").is_file():
        with file_errors(folder, "create the pre-trained encoder's folder"):
            folder.mkdir(parents=True, exist_ok=True)
        log(f"pre-training the encoder on CIFAR-10 in {folder}")
        experiment = _experiment(config)
        engine.train(
            experiment.task,
            experiment,
            pretrain_config(config),
            run,
            preset="caption-encoder",
            resume=run.has_checkpoint(),
            progress=progress,
            log=lambda line: log("encoder " + line.lstrip()),
        )
    else:
        log(f"pre-trained encoder: {folder}")
    summary = run.read_summary()
    log(
        f"encoder pre-trained on CIFAR-10: test accuracy {summary['value']:.4f} after "
        f"{summary['epochs']} epochs"
    )
    weights = run.selected_weights("last")
    state = {k[len("encoder.") :]: v for k, v in weights.items() if k.startswith("encoder.")}
    if is_main_process():
        target = Path(run_dir) / INIT_FILE
        encoder = ConvEncoder(3, config.channels)
        encoder.load_state_dict(state)
        with file_errors(target, "write"):
            ckpt.save_weights(target, encoder, {"from": str(folder)})
    return state
