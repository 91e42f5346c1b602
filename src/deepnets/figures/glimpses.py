"""Where the recurrent attention model looks (Mnih et al. 2014, Fig. 3): the glimpse paths of a
trained `ram-mnist` run drawn over test digits.

Each panel is one test image with the T glimpse locations joined in order (1 is the first, at
the centre), the square the finest patch covered at each glimpse, and the largest patch at the
last glimpse dashed; the title gives the label and the model's answer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepnets import DeepnetsError
from deepnets.figures.output import save_figure

EXAMPLES = 8  # test images drawn


def glimpse_paths(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic path (the policy's mean) for images x (B, C, H, W): glimpse centres in
    pixel coordinates (B, T, 2) as (row, column), and the class logits (B, classes)."""
    model.eval()
    with torch.no_grad():
        out = model(x, sample=False)
    size = torch.tensor(x.shape[-2:], dtype=torch.float32)
    centres = (out.locations + 1) / 2 * size  # (B, T, 2), the glimpse sensor's convention
    return centres, out.logits


def draw_glimpses(run_dir: str | None = None, out: str | None = None) -> Path:
    """Draw a ram-mnist run's glimpse paths over test digits (default figures/fig-glimpses.png)."""
    if run_dir is None:
        raise DeepnetsError(
            "fig-glimpses needs a trained recurrent attention model's run folder, for example "
            "`deepnets run ram-mnist --preset cluttered` then "
            "`deepnets figure fig-glimpses runs/ram-mnist/<run>`"
        )
    from deepnets.run import load_model

    experiment, config, model = load_model(run_dir, "cpu")
    if experiment.id != "ram-mnist":
        raise DeepnetsError(f"fig-glimpses needs a ram-mnist run, not {experiment.id}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    x, y = experiment.load_data(config)["test"]
    x, y = x[:EXAMPLES], y[:EXAMPLES]
    centres, logits = glimpse_paths(model, x)
    predicted = logits.argmax(1)
    side = x.shape[-1]
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.4), layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k >= len(y):
            ax.axis("off")
            continue
        ax.imshow(x[k, 0], cmap="gray", vmin=0, vmax=1, extent=(0, side, side, 0))
        rows, cols = centres[k, :, 0], centres[k, :, 1]
        ax.plot(cols, rows, "-", color="tab:orange", lw=1.2)
        for t, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
            s = config.glimpse_size
            ax.add_patch(Rectangle((c - s / 2, r - s / 2), s, s, fill=False, ec="tab:green", lw=1))
            ax.text(c, r, str(t + 1), color="yellow", fontsize=8, ha="center", va="center")
        big = config.glimpse_size * 2 ** (config.scales - 1)
        r, c = float(rows[-1]), float(cols[-1])
        if config.scales > 1:
            ax.add_patch(
                Rectangle((c - big / 2, r - big / 2), big, big, fill=False, ec="tab:green", ls="--")
            )
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        mark = "" if int(predicted[k]) == int(y[k]) else "  (wrong)"
        ax.set_title(f"label {int(y[k])}, model {int(predicted[k])}{mark}", fontsize=9)
    fig.suptitle(
        f"ram-mnist: {config.glimpses} glimpses of {config.scales} x {config.glimpse_size}x"
        f"{config.glimpse_size} on {side}x{side} test images (numbers: glimpse order)",
        fontsize=10,
    )
    path = Path(out) if out else Path("figures") / "fig-glimpses.png"
    return save_figure(fig, path, dpi=110)
