"""The local-minima figure of the review's claim 2 (Dauphin et al. 2014; Choromanska et al. 2015;
Goodfellow, Vinyals & Saxe 2015).

Left and middle: the spread over seeds of the final test error and training loss of one-hidden-
layer nets of growing width (`deepnets bench mlp-mnist --preset width-N --seeds 20`), read from
the results rows: the mean, one standard deviation and the whole range (min to max). Right: the
training loss along the straight line from each width's initial weights (alpha 0) to its
trained weights (alpha 1), continued a quarter beyond each end; a bump between 0 and 1 would be
a barrier the optimiser went round.

`deepnets figure fig-minima RUNS` takes the folder `deepnets bench` wrote the width runs into
(runs/bench/mlp-mnist); the seed-0 run of each width is interpolated. The curves are also
written beside the picture as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError

ALPHAS = np.linspace(-0.25, 1.25, 31)


def initial_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a run started from, rebuilt as the engine made them: the global generator
    seeded with the config's seed, then the task's fresh model (loading MNIST draws nothing)."""
    from deepnets.run import RunDir

    experiment, config, _ = RunDir.open(run_dir).read_config()
    torch.manual_seed(config.seed)
    model = experiment.task.build(experiment, config, None)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def line_losses(run_dir: Path, alphas=ALPHAS) -> list[float]:
    """Mean training-split loss at (1 - alpha) * initial + alpha * trained weights."""
    from deepnets.run import load_model

    experiment, config, model = load_model(run_dir, "cpu")
    start, end = initial_weights(run_dir), {k: v.clone() for k, v in model.state_dict().items()}
    task = experiment.task
    data = task.load(experiment, config, torch.device("cpu"))
    losses = []
    for alpha in alphas:
        model.load_state_dict({k: (1 - alpha) * start[k] + alpha * end[k] for k in start})
        losses.append(task.evaluate(model, data, "train", config, torch.device("cpu"))["loss"])
    return losses


def _width_runs(folder: Path) -> dict[int, Path]:
    """The seed-0 run of each width-N preset under `folder` (newest first wins)."""
    found: dict[int, Path] = {}
    for path in sorted(folder.glob("*/config.json"), reverse=True):
        meta = json.loads(path.read_text())
        preset, seed = str(meta.get("preset", "")), meta.get("config", {}).get("seed")
        done = (path.parent / "summary.json").is_file()
        if preset.startswith("width-") and "+" not in preset and seed == 0 and done:
            found.setdefault(int(preset.split("-")[1]), path.parent)
    return dict(sorted(found.items()))


def _spread_rows(root: Path | None) -> list[tuple[int, dict]]:
    from deepnets.experiments.mnist import WIDTHS
    from deepnets.results import latest_rows

    rows = latest_rows(root)
    return [
        (w, rows[("mlp-mnist", f"width-{w}")])
        for w in WIDTHS
        if ("mlp-mnist", f"width-{w}") in rows
    ]


def draw_minima(run_dir: str | None = None, out: str | None = None, root: Path | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepnets.figures.output import save_figure
    from deepnets.results import parse_secondary

    if run_dir is None:
        raise DeepnetsError("fig-minima needs the folder of the width runs (runs/bench/mlp-mnist)")
    runs = _width_runs(Path(run_dir))
    if not runs:
        raise DeepnetsError(f"{run_dir} holds no finished seed-0 run of a width-N preset")
    spread = _spread_rows(root)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    record: dict = {"spread": {}, "line": {"alphas": ALPHAS.tolist()}}
    if spread:
        widths = [w for w, _ in spread]
        test = [100 * (1 - float(r["mean"])) for _, r in spread]
        test_sd = [100 * float(r["std"]) for _, r in spread]
        test_lo = [100 * (1 - float(r["range"].split("..")[1])) for _, r in spread]
        test_hi = [100 * (1 - float(r["range"].split("..")[0])) for _, r in spread]
        loss = [parse_secondary(r)["train_loss"] for _, r in spread]
        for ax, mean, sd, lo, hi, label in (
            (axes[0], test, test_sd, test_lo, test_hi, "test error (%)"),
            (
                axes[1],
                [x["mean"] for x in loss],
                [x["std"] for x in loss],
                [x["min"] for x in loss],
                [x["max"] for x in loss],
                "final training loss (nats)",
            ),
        ):
            ax.fill_between(widths, lo, hi, alpha=0.2, label="min to max over seeds")
            ax.errorbar(widths, mean, yerr=sd, marker="o", capsize=3, label="mean ± std")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("hidden units")
            ax.set_ylabel(label)
            ax.legend(fontsize=8)
        seeds = int(spread[0][1]["seeds"])
        axes[0].set_title(f"test error over {seeds} seeds")
        axes[1].set_title(f"training loss over {seeds} seeds")
        record["spread"] = {
            str(w): {"test_error_std": sd, "test_error_range": hi - lo, "train_loss_std": x["std"],
                     "train_loss_range": x["max"] - x["min"]}
            for w, sd, lo, hi, x in zip(widths, test_sd, test_lo, test_hi, loss, strict=True)
        }  # fmt: skip
    for width, path in runs.items():
        losses = line_losses(path)
        inside = [v for a, v in zip(ALPHAS, losses, strict=True) if 0 <= a <= 1]
        rises = max(0.0, *(b - a for a, b in zip(inside, inside[1:], strict=False)))
        record["line"][str(width)] = {"losses": losses, "largest_rise_inside": rises}
        axes[2].plot(ALPHAS, losses, label=f"{width} units")
    axes[2].axvline(0, color="grey", lw=0.5)
    axes[2].axvline(1, color="grey", lw=0.5)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("alpha: initial weights (0) to trained weights (1)")
    axes[2].set_ylabel("training loss (nats)")
    axes[2].set_title("the straight line from initialisation (seed 0)")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, out or "figures/fig-minima.png")
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return path
