"""Greedy layer-wise pre-training of a stack of layers without labels, then supervised fine-tuning
of the whole net with backpropagation (Hinton, Osindero & Teh 2006; Bengio, Lamblin, Popovici &
Larochelle 2006; Hinton & Salakhutdinov 2006); both run on the gradient engine.

`Pretrain(layers).train(experiment, config, run)` reads top to bottom:

1. `pretrain_stack`: train layer 1 on the images, freeze it, compute its codes
   h1 = sigmoid(W1 x + c1) for every image, train layer 2 on those codes, and so on up the stack.
   Each layer is one run of the engine with a `LayerTask`: the model is the layer (`layers`, a
   `Layerwise`, says what a layer is: an RBM, whose loss is the contrastive-divergence surrogate
   `RBM.cd_loss`, or a denoising autoencoder, whose loss is its denoising loss), the data are the
   codes of the layer below, a batch is `pretrain_batch_size` random rows, and `stage_config`
   turns the `pretrain_*` fields into the engine's SGD: lr `pretrain_lr`, momentum 0.5 for the
   first epochs then `pretrain_momentum`, L2 `pretrain_weight_decay` on the weight matrices.
   Each layer has its own run folder (`<stack>/layerK/`): checkpoints after every epoch, so a
   killed pre-training resumes at the epoch it had reached and repeats exactly what an
   uninterrupted one does; after every epoch the layer is measured (reconstruction error, free
   energy or denoising loss) on the first 1,000 rows, its `val` split. A finished layer is saved
   as `<stack>/layerK.safetensors`, and `<stack>/metrics.jsonl` gathers every layer's measures.
2. `FineTune`: the engine again, classifying with the experiment's sigmoid MLP whose hidden
   layers start at the trained encoders, under a freshly initialised output layer; checkpoints,
   resume, metrics and the test evaluation are the engine's. `evaluate_run` re-evaluates that MLP.

Where the stack lives: pre-training never sees a label, so every run with the same pre-training
settings (the `pretrain_*` fields, the layer sizes and the data) can share one stack; it is kept
beside the run folder, in `<runs>/pretrained/<id>-<key>/`, keyed by a hash of those settings,
and each run folder gets its own copy of the trained layers (hard links) under `pretrain/` so
that it stands alone (the figures read it from there). Fine-tuning seeds, label counts and
schedules vary freely over one pre-training: that is what makes the few-label comparison cheap.
With `pretrain=false` the same net is fine-tuned from random initialisation. config.json is
written before pre-training starts, so a run stopped during pre-training resumes by its folder.

Deviations: two runs that pre-train the same stack at the same moment would race on its folder:
let the first finish its pre-training before starting the next.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from deepnets import DeepnetsError
from deepnets.config import config_to_dict
from deepnets.models.layerwise import Layerwise
from deepnets.run import RunDir, file_errors
from deepnets.train import checkpoint as ckpt
from deepnets.train import engine
from deepnets.train.classify import Classify
from deepnets.train.distributed import is_main_process, launch, resolve_device
from deepnets.train.engine import Log, print_line
from deepnets.train.task import GradientTask, config_first, index_batches

STACK = "pretrain"  # the run folder's copy of its pre-trained stack
MEASURE_SIZE = 1000  # rows on which each epoch's reconstruction is measured (the `val` split)
MOMENTUM_WARM = 5  # epochs at momentum 0.5 before `pretrain_momentum` (Hinton's guide, sec. 9)
STACK_VERSION = 2  # in the stack key: changes when how a stack is trained changes (2: the engine)


def stack_key(experiment, config) -> str:
    """A hash of everything pre-training depends on, and of nothing it does not."""
    values = config_to_dict(config)
    fields = {k: v for k, v in values.items() if k.startswith("pretrain_")}
    fields.update({k: values[k] for k in config.PRETRAIN_FIELDS})
    text = json.dumps(
        {"experiment": experiment.id, "version": STACK_VERSION, **fields}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def stack_folder(experiment, config, run_dir: Path) -> Path:
    return Path(run_dir).parent / "pretrained" / f"{experiment.id}-{stack_key(experiment, config)}"


# --- one layer ---------------------------------------------------------------------------------


def encoder(kind: Layerwise, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's recognition weights as nn.Linear holds them: (out, in) and (out,)."""
    return kind.weights(layer)


@torch.no_grad()
def encode(kind: Layerwise, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The codes h = sigmoid(W x + c) of every row of x (N, n_in) -> (N, n_out), in batches."""
    weight, bias = encoder(kind, layer)
    out = [torch.sigmoid(x[i : i + 4096] @ weight.T + bias) for i in range(0, len(x), 4096)]
    return torch.cat(out)


def make_layer(kind: Layerwise, config, index: int, n_in: int, n_out: int) -> nn.Module:
    """A fresh layer, its initial weights seeded by (pretrain_seed, layer)."""
    generator = torch.Generator().manual_seed(config.pretrain_seed * 1_000_003 + 7 * index + 5)
    return kind.make_layer(config, n_in, n_out, generator)


def stage_config(config, index: int):
    """The engine config that trains layer `index` (0-based) of the stack: plain SGD with
    momentum, weight decay on the weight matrices only, a constant lr, the last weights kept."""
    return dataclasses.replace(
        config,
        epochs=config.pretrain_epochs,
        batch_size=config.pretrain_batch_size,
        optimizer="sgd",
        lr=config.pretrain_lr,
        momentum=config.pretrain_momentum,
        momentum_warmup=min(MOMENTUM_WARM, config.pretrain_epochs // 2),  # at 0.5
        nesterov=False,
        weight_decay=config.pretrain_weight_decay,
        schedule="constant",
        warmup=0.0,
        clip_grad_norm=0.0,
        select="last",
        evals_per_epoch=1,
        stop_at=0.0,
        seed=1000 * config.pretrain_seed + index,  # data order and draws: (pretrain_seed, layer)
        amp=False,
        compile=False,
    )


class LayerTask(GradientTask):
    """One layer of the stack on the engine: the model is the layer, the data the rows x
    (N, n_in) (the codes of the layer below), a batch `batch_size` random rows; the random draws
    of the loss (Gibbs sampling, masking noise) come from a generator drawn from the epoch's, so
    that a resumed layer repeats an uninterrupted one bit for bit."""

    val_split = "val"

    def __init__(self, kind: Layerwise, index: int, x: torch.Tensor, n_out: int):
        self.kind, self.index, self.x, self.n_out = kind, index, x, n_out

    def load(self, experiment, config, device):
        return {"train": self.x, "val": self.x[:MEASURE_SIZE]}

    def build(self, experiment, config, data):
        layer = make_layer(self.kind, config, self.index, self.x.shape[1], self.n_out)
        if data is not None and self.kind.start is not None:  # PCD: start the chains
            self.kind.start(
                layer, data["train"], config, torch.Generator().manual_seed(config.seed)
            )
        return layer

    def split_names(self, data) -> list[str]:
        return ["train", "val"]

    def test_split(self, data) -> str:
        return "val"

    def steps_per_epoch(self, data, config) -> int:
        return len(data["train"]) // config.batch_size

    def batches(self, data, config, generator, ctx):
        x = data["train"]
        seed = int(torch.randint(2**62, (1,), generator=generator)) + ctx.rank
        draws = torch.Generator(x.device).manual_seed(seed)  # this epoch's sampling and noise
        for idx in index_batches(len(x), config, generator, ctx):
            yield x[idx.to(x.device)], draws

    def loss(self, step, batch, carry):
        x, draws = batch
        return self.kind.loss(step.model, x, step.config, draws, step.net), None

    @torch.no_grad()
    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        model.eval()
        return self.kind.measure(model, data[split], config)


def _layer_experiment(experiment, task: LayerTask):
    """The experiment record a layer's run is filed under: its figure is the reconstruction."""
    from deepnets.experiments.base import Metric, Published  # (the table imports this module)

    what = f"layer {task.index + 1} of a pre-trained stack"
    return dataclasses.replace(
        experiment,
        task=task,
        metrics=(Metric("recon_error", False, digits=4),),
        published=Published(math.nan, what, "-"),
        published_by_preset={},
    )


def train_layer(
    experiment,
    config,
    index: int,
    x: torch.Tensor,
    folder: Path,
    log: Log = print_line,
    progress: bool = True,
) -> nn.Module:
    """Train layer `index` (0-based; `config.hidden[index]` units) on x (N, n_in) with the
    engine, in the run folder `folder/layer<index + 1>/` (resumed from its checkpoint if it
    holds one); return the trained layer."""
    kind = experiment.task.layers
    n_in, n_out = x.shape[1], config.hidden[index]
    task = LayerTask(kind, index, x, n_out)
    run = RunDir(Path(folder) / f"layer{index + 1}")
    with file_errors(run.path, "create the layer's folder"):
        run.path.mkdir(parents=True, exist_ok=True)
    stage = stage_config(config, index)
    prefix = f"pretrain layer {index + 1} ({n_in}-{n_out}) "
    engine.train(
        task,
        _layer_experiment(experiment, task),
        stage,
        run,
        preset="pretrain",
        resume=run.has_checkpoint(),
        progress=progress,
        log=lambda line: log(prefix + line.lstrip()),
    )
    layer = make_layer(kind, stage, index, n_in, n_out)
    layer.load_state_dict(run.selected_weights("last"))
    return layer.to(x.device)


# --- the stack -----------------------------------------------------------------------------------


def _gather_metrics(folder: Path, n_layers: int) -> None:
    """`<stack>/metrics.jsonl`: each layer's per-epoch measures, one line per (layer, epoch)."""
    rows = []
    for k in range(n_layers):
        for row in RunDir(folder / f"layer{k + 1}").read_metrics():
            measured = {key[4:]: v for key, v in row.items() if key.startswith("val_")}
            if measured:
                rows.append({"layer": k + 1, "epoch": row["epoch"], "seconds": row["seconds"]})
                rows[-1].update(measured)
    RunDir(folder).write_text("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def pretrain_stack(
    experiment,
    config,
    images: torch.Tensor,
    folder: Path,
    log: Log = print_line,
    progress: bool = True,
) -> list[nn.Module]:
    """Greedy layer-wise pre-training of `config.hidden` layers on images (N, ...) in [0, 1];
    returns the trained, frozen layers bottom up. Finished layers found in `folder` are loaded,
    not retrained; a layer in progress resumes from its last epoch."""
    kind, folder = experiment.task.layers, Path(folder)
    with file_errors(folder, "create the stack folder"):
        folder.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device, launch()[2])
    x = images.flatten(1).to(device)  # (N, C*H*W): the first layer's data
    sizes = (x.shape[1], *config.hidden)
    done = [folder / f"layer{k + 1}.safetensors" for k in range(len(config.hidden))]
    last_to_train = max((k for k, path in enumerate(done) if not path.is_file()), default=-1)
    layers: list[nn.Module] = []
    for k, path in enumerate(done):
        if path.is_file():
            layer = make_layer(kind, config, k, sizes[k], sizes[k + 1])
            layer.load_state_dict(ckpt.load_weights(path))
            layer = layer.to(device)
            log(f"pretrain layer {k + 1} ({sizes[k]}-{sizes[k + 1]}): loaded from {path}")
        else:
            layer = train_layer(experiment, config, k, x, folder, log, progress)
            if is_main_process():
                with file_errors(path, "write"):
                    ckpt.save_weights(path, layer, {"layer": str(k + 1)})
                _gather_metrics(folder, len(done))
        layer.requires_grad_(False).eval()  # frozen: the layers above train on its codes
        layers.append(layer)
        if k < last_to_train:  # a layer above still needs this layer's codes
            x = encode(kind, layer, x)  # (N, sizes[k + 1]): the next layer's data
    return layers


@torch.no_grad()
def init_from_stack(kind: Layerwise, model: nn.Module, layers: list[nn.Module]) -> nn.Module:
    """Copy the pre-trained encoders into the classifier's hidden layers (`model.layers`, a list
    of nn.Linear); the output layer keeps its random initialisation."""
    for linear, layer in zip(model.layers, layers):
        weight, bias = encoder(kind, layer)
        if linear.weight.shape != weight.shape:
            raise DeepnetsError(
                f"pre-trained layer {tuple(weight.shape)} does not fit {tuple(linear.weight.shape)}"
            )
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return model


def _link_stack(source: Path, target: Path, n_layers: int) -> None:
    """Give the run folder its own copy of the stack: hard links where possible."""
    names = [f"layer{k + 1}.safetensors" for k in range(n_layers)] + ["metrics.jsonl"]
    with file_errors(target, "copy the pre-trained stack into"):
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (source / name).is_file():
                continue
            dst = target / name
            dst.unlink(missing_ok=True)
            try:
                os.link(source / name, dst)
            except OSError:
                shutil.copyfile(source / name, dst)


def load_stack(experiment, config, run_dir: Path) -> list[nn.Module]:
    """The pre-trained layers a run folder holds (under `pretrain/`), on the CPU."""
    folder = Path(run_dir) / STACK
    sizes = (28 * 28, *config.hidden)
    layers = []
    for k in range(len(config.hidden)):
        path = folder / f"layer{k + 1}.safetensors"
        if not path.is_file():
            raise DeepnetsError(f"{run_dir} holds no pre-trained stack ({path} is missing)")
        layer = make_layer(experiment.task.layers, config, k, sizes[k], sizes[k + 1])
        layer.load_state_dict(ckpt.load_weights(path))
        layers.append(layer.eval())
    return layers


# --- the tasks -----------------------------------------------------------------------------------


class FineTune(Classify):
    """Classification with the experiment's net, its hidden layers starting at `stack`."""

    def __init__(self, kind: Layerwise, stack: list[nn.Module]):
        super().__init__()
        self.kind, self.stack = kind, stack

    def build(self, experiment, config, data):
        model = super().build(experiment, config, data)
        return model if data is None else init_from_stack(self.kind, model, self.stack)


class Pretrain(Classify):
    """The task of dbn-mnist and sdae-mnist: pre-train a stack of `layers`, then fine-tune the
    classifier on it. Evaluating, reloading and the splits are those of the classifier."""

    def __init__(self, layers: Layerwise):
        super().__init__()
        self.layers = layers  # what one layer of the stack is and how it trains

    def train(
        self,
        experiment,
        config,
        run: RunDir,
        preset: str = "custom",
        resume: bool = False,
        progress: bool = True,
        log: Log = print_line,
    ) -> dict | None:
        """Pre-train the stack (or find it), then fine-tune on the engine; the summary."""
        resume = config_first(experiment, config, run, preset, resume)
        torch.manual_seed(config.seed)
        splits = experiment.load_data(config)
        finetune = Classify()
        if config.pretrain:
            folder = stack_folder(experiment, config, run.path)
            log(f"pre-trained stack: {folder}")
            stack = pretrain_stack(
                experiment, config, splits["unlabelled"][0], folder, log, progress
            )
            if is_main_process():
                _link_stack(folder, run / STACK, len(stack))
            finetune = FineTune(self.layers, stack)
        loaded = dataclasses.replace(experiment, load_data=lambda c: splits)
        return engine.train(finetune, loaded, config, run, preset, resume, progress, log)
