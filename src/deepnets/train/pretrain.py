"""The layer-wise loop: greedy unsupervised pre-training of a stack of layers, then supervised
fine-tuning of the whole net with backpropagation (Hinton, Osindero & Teh 2006; Bengio,
Lamblin, Popovici & Larochelle 2006; Hinton & Salakhutdinov 2006).

`train_and_evaluate(experiment, config, run_dir)` reads top to bottom:

1. `pretrain_stack`: train layer 1 on the images (no labels), freeze it, compute its codes
   h1 = sigmoid(W1 x + c1) for every image, train layer 2 on those codes, and so on up the
   stack. The experiment's `layerwise` says what a layer is (an RBM trained by contrastive
   divergence, or a denoising autoencoder) and how one minibatch trains it. Each layer is
   checkpointed after every epoch and saved when done, so a killed pre-training resumes at
   the epoch it had reached and repeats exactly what an uninterrupted one does (each epoch's
   data order and random draws come from (pretrain_seed, layer, epoch)).
2. The trained encoders become the hidden layers of the experiment's classifier (a sigmoid
   MLP) under a freshly initialised output layer, and the supervised loop
   (`deepnets.train.supervised`) fine-tunes it: checkpoints, resume, metrics and the test
   evaluation come from there unchanged.

Where the stack lives: pre-training never sees a label, so every run with the same
pre-training settings (the `pretrain_*` fields, the layer sizes and the data) can share one
stack; it is kept beside the run folder, in `<runs>/pretrained/<id>-<key>/`, keyed by a hash
of those settings, and each run folder gets its own copy (hard links) under `pretrain/` so that
it stands alone (the figures read it from there). Fine-tuning seeds, label counts and
schedules vary freely over one pre-training: that is what makes the few-label comparison
cheap. With `pretrain=false` the same net is fine-tuned from random initialisation.

Deviations: pre-training runs in one process (under torchrun every rank would repeat it), and
two runs that pre-train the same stack at the same moment would race on its folder: let the
first finish its pre-training before starting the next.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from deepnets import DeepnetsError
from deepnets.config import config_to_dict
from deepnets.registry import Experiment
from deepnets.train import checkpoint as ckpt
from deepnets.train import supervised
from deepnets.train.distributed import resolve_device
from deepnets.train.supervised import Log, append_jsonl, print_line, run_metadata, seed_epoch

STACK = "pretrain"  # the run folder's copy of its pre-trained stack
IN_PROGRESS = "layer.safetensors"  # the layer being trained: weights, momentum, chains, state
MEASURE_SIZE = 1000  # images on which each epoch's reconstruction is measured
MOMENTUM_WARM = 5  # epochs at momentum 0.5 before `pretrain_momentum` (Hinton's guide, sec. 9)


def stack_key(experiment: Experiment, config) -> str:
    """A hash of everything pre-training depends on, and of nothing it does not."""
    values = config_to_dict(config)
    fields = {k: v for k, v in values.items() if k.startswith("pretrain_")}
    fields.update({k: values[k] for k in config.PRETRAIN_FIELDS})
    text = json.dumps({"experiment": experiment.id, **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def stack_folder(experiment: Experiment, config, run_dir: Path) -> Path:
    return Path(run_dir).parent / "pretrained" / f"{experiment.id}-{stack_key(experiment, config)}"


def encoder(experiment: Experiment, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's recognition weights as nn.Linear holds them: (out, in) and (out,)."""
    return experiment.layerwise.weights(layer)


@torch.no_grad()
def encode(experiment: Experiment, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The codes h = sigmoid(W x + c) of every row of x (N, n_in) -> (N, n_out), in batches."""
    weight, bias = encoder(experiment, layer)
    out = [torch.sigmoid(x[i : i + 4096] @ weight.T + bias) for i in range(0, len(x), 4096)]
    return torch.cat(out)


def _training_tensors(layer: nn.Module) -> dict[str, torch.Tensor]:
    """Weights plus the state a layer keeps off its state_dict: momentum and PCD chains."""
    tensors = {f"model.{k}": v for k, v in ckpt.model_tensors(layer).items()}
    for i, v in enumerate(getattr(layer, "_velocity", None) or []):
        tensors[f"velocity.{i}"] = v
    if getattr(layer, "_fantasy", None) is not None:
        tensors["fantasy"] = layer._fantasy
    return tensors


def _restore_training_tensors(layer: nn.Module, tensors: dict, device) -> None:
    layer.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    velocity = sorted((int(k.split(".")[1]), v) for k, v in tensors.items() if "velocity." in k)
    layer._velocity = [v.to(device) for _, v in velocity] or None
    if "fantasy" in tensors:
        layer._fantasy = tensors["fantasy"].to(device)


def _keep_metrics_until(path: Path, layer: int, epoch: int) -> None:
    """On resume, forget metrics lines written after the checkpoint (layer, epoch)."""
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        kept = [r for r in rows if (r["layer"], r["epoch"]) <= (layer, epoch)]
        ckpt.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def train_layer(
    experiment: Experiment,
    config,
    layer: nn.Module,
    index: int,
    x: torch.Tensor,
    folder: Path,
    log: Log,
    progress: bool,
) -> None:
    """Train one layer on x (N, n_in) for `pretrain_epochs`, checkpointing after each epoch."""
    device, n, batch = x.device, len(x), config.pretrain_batch_size
    if n < batch:
        raise DeepnetsError(f"pre-training needs at least {batch} images, got {n}")
    folder.mkdir(parents=True, exist_ok=True)
    start, seconds = 0, 0.0
    in_progress = folder / IN_PROGRESS
    if in_progress.is_file():
        tensors, state = ckpt.load_tensors(in_progress)
        if state["layer"] == index + 1:
            _restore_training_tensors(layer, tensors, device)
            start, seconds = state["epoch"], state["seconds"]
            log(f"layer {index + 1}: resuming after epoch {start}")
    _keep_metrics_until(folder / "metrics.jsonl", index + 1, start)
    for epoch in range(start, config.pretrain_epochs):
        began = time.perf_counter()
        order_gen = seed_epoch(config.pretrain_seed, 1000 * (index + 1) + epoch, 0)
        draws = torch.Generator(device=device).manual_seed(int(order_gen.initial_seed()) + 1)
        momentum = 0.5 if epoch < min(MOMENTUM_WARM, config.pretrain_epochs // 2) else None
        momentum = config.pretrain_momentum if momentum is None else momentum
        order = torch.randperm(n, generator=order_gen).to(device)
        starts = range(0, n - batch + 1, batch)  # the last partial batch is dropped
        bar = tqdm(
            starts,
            desc=f"layer {index + 1} epoch {epoch + 1}/{config.pretrain_epochs}",
            leave=False,
            disable=None if progress else True,
        )
        for s in bar:
            experiment.layerwise.train_step(layer, x[order[s : s + batch]], config, momentum, draws)
        bar.close()
        seconds += time.perf_counter() - began
        measured = experiment.layerwise.measure(layer, x[:MEASURE_SIZE], config)
        state = {"layer": index + 1, "epoch": epoch + 1, "seconds": seconds}
        ckpt.save_tensors(in_progress, _training_tensors(layer), state)
        append_jsonl(folder / "metrics.jsonl", {**state, **measured})
        shown = "  ".join(f"{k} {v:.4f}" for k, v in measured.items())
        log(
            f"pretrain layer {index + 1} ({layer_shape(experiment, layer)}) epoch "
            f"{epoch + 1:3d}/{config.pretrain_epochs}  {shown}  {seconds:.1f}s"
        )


def layer_shape(experiment: Experiment, layer: nn.Module) -> str:
    out_features, in_features = encoder(experiment, layer)[0].shape
    return f"{in_features}-{out_features}"


def make_layer(experiment: Experiment, config, index: int, n_in: int, n_out: int) -> nn.Module:
    """A fresh layer, its initial weights seeded by (pretrain_seed, layer)."""
    generator = torch.Generator().manual_seed(config.pretrain_seed * 1_000_003 + 7 * index + 5)
    return experiment.layerwise.make_layer(config, n_in, n_out, generator)


def pretrain_stack(
    experiment: Experiment,
    config,
    images: torch.Tensor,
    folder: Path,
    log: Log = print_line,
    progress: bool = True,
) -> list[nn.Module]:
    """Greedy layer-wise pre-training of `config.hidden` layers on images (N, ...) in [0, 1];
    returns the trained, frozen layers bottom up. Finished layers found in `folder` are loaded,
    not retrained; a layer in progress resumes from its last epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    x = images.flatten(1).to(device)  # (N, C*H*W): the first layer's data
    sizes = (x.shape[1], *config.hidden)
    n_layers = len(config.hidden)
    to_train = [k for k in range(n_layers) if not (folder / f"layer{k + 1}.safetensors").is_file()]
    layers: list[nn.Module] = []
    for k in range(n_layers):
        layer = make_layer(experiment, config, k, sizes[k], sizes[k + 1]).to(device)
        done = folder / f"layer{k + 1}.safetensors"
        if done.is_file():
            layer.load_state_dict(ckpt.load_weights(done))
            log(f"pretrain layer {k + 1} ({sizes[k]}-{sizes[k + 1]}): loaded from {done}")
        else:
            train_layer(experiment, config, layer, k, x, folder, log, progress)
            ckpt.save_weights(done, layer, {"layer": str(k + 1)})
        layer.requires_grad_(False).eval()  # frozen: the layers above train on its codes
        layers.append(layer)
        if any(j > k for j in to_train):  # a layer above still needs this layer's codes
            x = encode(experiment, layer, x)  # (N, sizes[k + 1]): the next layer's data
    (folder / IN_PROGRESS).unlink(missing_ok=True)
    return layers


@torch.no_grad()
def init_from_stack(experiment: Experiment, model: nn.Module, layers: list[nn.Module]):
    """Copy the pre-trained encoders into the classifier's hidden layers (`model.layers`, a list
    of nn.Linear); the output layer keeps its random initialisation."""
    for linear, layer in zip(model.layers, layers):
        weight, bias = encoder(experiment, layer)
        if linear.weight.shape != weight.shape:
            raise DeepnetsError(
                f"pre-trained layer {tuple(weight.shape)} does not fit {tuple(linear.weight.shape)}"
            )
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return model


def _link_stack(source: Path, target: Path, n_layers: int) -> None:
    """Give the run folder its own copy of the stack: hard links where possible."""
    target.mkdir(parents=True, exist_ok=True)
    names = [f"layer{k + 1}.safetensors" for k in range(n_layers)] + ["metrics.jsonl"]
    for name in names:
        dst = target / name
        dst.unlink(missing_ok=True)
        try:
            os.link(source / name, dst)
        except OSError:
            shutil.copyfile(source / name, dst)


def load_stack(experiment: Experiment, config, run_dir: Path) -> list[nn.Module]:
    """The pre-trained layers a run folder holds (under `pretrain/`), on the CPU."""
    folder = Path(run_dir) / STACK
    sizes = (28 * 28, *config.hidden)
    layers = []
    for k in range(len(config.hidden)):
        path = folder / f"layer{k + 1}.safetensors"
        if not path.is_file():
            raise DeepnetsError(f"{run_dir} holds no pre-trained stack ({path} is missing)")
        layer = make_layer(experiment, config, k, sizes[k], sizes[k + 1])
        layer.load_state_dict(ckpt.load_weights(path))
        layers.append(layer.eval())
    return layers


def train_and_evaluate(
    experiment: Experiment,
    config,
    run_dir: Path,
    preset: str = "custom",
    resume: bool = False,
    progress: bool = True,
    log: Log = print_line,
) -> dict | None:
    """Pre-train the stack (or find it), then fine-tune with the supervised loop; the summary."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # so that a run stopped during pre-training can be resumed by its folder
        meta = run_metadata(experiment, preset, config, resolve_device(config.device), 1)
        ckpt.atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2) + "\n")
    torch.manual_seed(config.seed)
    splits = experiment.load_data(config)
    build = experiment.build_model
    if config.pretrain:
        folder = stack_folder(experiment, config, run_dir)
        log(f"pre-trained stack: {folder}")
        layers = pretrain_stack(experiment, config, splits["unlabelled"][0], folder, log, progress)
        _link_stack(folder, run_dir / STACK, len(layers))

        def build(c):  # the classifier with the pre-trained hidden layers
            return init_from_stack(experiment, experiment.build_model(c), layers)

    finetune = dataclasses.replace(experiment, load_data=lambda c: splits, build_model=build)
    resumable = resume and (run_dir / ckpt.CHECKPOINT).is_file()
    return supervised.train_and_evaluate(
        finetune, config, run_dir, preset=preset, resume=resumable, progress=progress, log=log
    )
