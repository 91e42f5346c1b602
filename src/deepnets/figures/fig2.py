"""Fig. 2 of the review: the outputs (not the filters) of every layer of a trained ConvNet for one
input, bottom to top. The review shows a Samoyed photograph going through a ConvNet; here it is
the run's own input: by default the first image of its test split, or any image file.

Each feature map of a convolution or pooling layer is one small grayscale image (brighter: a
larger output), each on its own scale from its smallest to its largest value so that weak maps
show their shape too (a map that is zero everywhere stays black); a fully connected layer is one
strip of its units; the class scores at the top are drawn as the softmax probabilities over the
named classes. Any model whose `features(x)` returns every layer's output (class scores last)
can be drawn; its optional `feature_names` label the layers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError

MAX_PER_ROW = 32  # feature maps side by side before a layer wraps onto another row
WIDTH, LEFT = 14.0, 1.7  # figure width and the left margin for the layer labels, inches


def layer_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output for one input x (1, C, H, W), batch dimension dropped."""
    with torch.no_grad():
        return [out[0].float().cpu() for out in model.features(x)]


def check_convnet(experiment_id: str, model: torch.nn.Module, example: torch.Tensor) -> None:
    """A clear error unless `model.features` gives at least one (C, H, W) map for `example`."""
    with torch.no_grad():
        maps = [out for out in model.features(example) if out.ndim == 4]
    if not maps:
        raise DeepnetsError(
            f"{experiment_id}'s model has no convolutional feature maps to draw; fig2 draws the "
            "feature maps of a ConvNet run, for example lenet5-mnist"
        )


def layer_names(model: torch.nn.Module, n: int) -> list[str]:
    names = list(getattr(model, "feature_names", []) or [])
    return names if len(names) == n else [f"layer {k + 1}" for k in range(n)]


def _band_height(out: torch.Tensor, cell: float) -> float:
    """Inches of figure height a layer's output takes (its label sits to its left)."""
    if out.ndim == 3:
        return math.ceil(out.shape[0] / MAX_PER_ROW) * cell + 0.45
    return 0.65


def _cell(out: torch.Tensor) -> float:
    """The side of one feature map, inches: as large as fits in a row, at most 1 inch."""
    per_row = min(out.shape[0], MAX_PER_ROW)
    return min(1.0, (WIDTH - LEFT - 0.3) / per_row * 0.92)


def _show_input(ax, x: torch.Tensor) -> None:
    image = x.numpy()  # (C, H, W)
    if image.shape[0] == 3:  # colour: each image's own range to 0-1
        rgb = image.transpose(1, 2, 0)
        ax.imshow((rgb - rgb.min()) / max(float(np.ptp(rgb)), 1e-8))
    else:
        ax.imshow(image[0], cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def build_fig2(
    x: torch.Tensor,
    outputs: list[torch.Tensor],
    names: list[str],
    class_names: tuple[str, ...] = (),
    title: str = "",
):
    """The figure: input (C, H, W) at the bottom, then each layer's output, class scores on top."""
    import matplotlib.pyplot as plt

    scores = outputs[-1]
    if scores.ndim != 1:
        raise DeepnetsError(
            f"the last output should be class scores (N,), got {tuple(scores.shape)}"
        )
    labels = (
        list(class_names) if len(class_names) == len(scores) else list(map(str, range(len(scores))))
    )
    # bottom to top: (kind, tensor, label, height in inches)
    bands = [("input", x, f"input\n{x.shape[0]} x {x.shape[1]}x{x.shape[2]}", 1.5)]
    for out, name in zip(outputs[:-1], names[:-1]):
        if out.ndim == 3:
            text = f"{name}\n{out.shape[0]} maps {out.shape[1]}x{out.shape[2]}"
            bands.append(("maps", out, text, _band_height(out, _cell(out))))
        else:
            out = out.flatten()
            bands.append(("units", out, f"{name}\n{len(out)} units", _band_height(out, 0)))
    bands.append(("scores", scores, f"{names[-1]}\nsoftmax of\n{len(scores)} scores", 1.9))
    height = sum(b[3] for b in bands) + 0.5 + (0.4 if title else 0)
    fig = plt.figure(figsize=(WIDTH, height))
    inner = WIDTH - LEFT - 0.3  # inches available for the panels

    def axes(left: float, bottom: float, w: float, h: float):
        return fig.add_axes((left / WIDTH, bottom / height, w / WIDTH, h / height))

    y = 0.25
    for kind, out, text, h in bands:
        fig.text(0.15 / WIDTH, (y + h / 2) / height, text, va="center", fontsize=9)
        if kind == "input":
            _show_input(axes(LEFT + (inner - 1.2) / 2, y + 0.15, 1.2, 1.2), out)
        elif kind == "maps":
            cell = _cell(out)
            n_rows = math.ceil(out.shape[0] / MAX_PER_ROW)
            for k, fmap in enumerate(out):
                row, col = divmod(k, MAX_PER_ROW)
                in_row = min(MAX_PER_ROW, out.shape[0] - row * MAX_PER_ROW)
                start = LEFT + (inner - in_row * cell / 0.92) / 2
                ax = axes(
                    start + col * cell / 0.92,
                    y + 0.2 + (n_rows - 1 - row) * cell,
                    cell,
                    cell * 0.92,
                )
                low, high = float(fmap.min()), float(fmap.max())  # each map on its own scale
                if high - low < 1e-6:  # constant (often all zero after a ReLU): black
                    low, high = high, high + 1.0
                ax.imshow(fmap.numpy(), cmap="gray", vmin=low, vmax=high)
                ax.set_xticks([])
                ax.set_yticks([])
        elif kind == "units":
            ax = axes(LEFT, y + 0.2, inner, 0.3)
            ax.imshow(out.numpy()[None, :], cmap="gray", aspect="auto", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax = axes(LEFT + 0.4, y + 0.45, inner - 0.8, h - 0.7)
            probs = torch.softmax(out, 0).numpy()
            best = int(probs.argmax())
            colours = ["0.6"] * len(probs)
            colours[best] = "tab:red"
            ax.bar(range(len(probs)), probs, color=colours)
            rotate = 30 if max(map(len, labels)) > 3 else 0
            ax.set_xticks(range(len(probs)), labels, rotation=rotate, fontsize=9)
            ax.set_ylim(0, 1)
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=8)
            ax.set_title(f"predicted {labels[best]!r} (p = {probs[best]:.3f})", fontsize=9)
        y += h
    if title:
        fig.text(0.5, (height - 0.3) / height, title, ha="center", va="center", fontsize=11)
    return fig


def input_for(experiment, config, image: str | None) -> tuple[torch.Tensor, str]:
    """The input (1, C, H, W) and a phrase saying where it came from."""
    if image is not None:
        if experiment.read_image is None:
            raise DeepnetsError(
                f"{experiment.id} has no reader for image files; draw its first test image "
                "by leaving out --image"
            )
        return experiment.read_image(image, config), Path(image).name
    x, y = experiment.load_data(config)["test"]
    names = experiment.class_names
    label = names[int(y[0])] if len(names) > int(y[0]) else str(int(y[0]))
    return x[:1], f"first test image, label {label!r}"


def draw_fig2(run_dir: str | None = None, out: str | None = None, image: str | None = None) -> Path:
    """Draw a saved ConvNet run's layer outputs for one input (default figures/fig2.png)."""
    if run_dir is None:
        raise DeepnetsError(
            "fig2 needs a trained ConvNet's run folder, for example `deepnets run lenet5-mnist` "
            "then `deepnets figure fig2 runs/lenet5-mnist/<run>`"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepnets.run import load_model, load_run
    from deepnets.train.classify import Classify

    experiment, config, _ = load_run(Path(run_dir))
    hint = "fig2 draws the feature maps of a ConvNet run, for example lenet5-mnist"
    convnet = isinstance(experiment.task, Classify) and hasattr(
        experiment.build_model(config), "features"
    )
    if not convnet:
        raise DeepnetsError(
            f"{run_dir} is a {experiment.id} run, whose model has no features(x); {hint}"
        )
    experiment, config, model = load_model(Path(run_dir), device="cpu")
    x, source = input_for(experiment, config, image)
    check_convnet(experiment.id, model, x)
    outputs = layer_outputs(model, x)
    title = f"Fig. 2: the output of every layer of {experiment.id} for one input ({source})"
    fig = build_fig2(x[0], outputs, layer_names(model, len(outputs)), experiment.class_names, title)
    path = Path(out) if out else Path("figures") / "fig2.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
