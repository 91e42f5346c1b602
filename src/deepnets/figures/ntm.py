"""The Neural Turing Machine's memory use (Graves et al. 2014, Figs. 6 and 17): for one copy or
priority-sort example, the inputs and outputs over time, and the write and read weightings over
the memory rows at every step, from a trained `ntm-copy` or `ntm-sort` run.

On the copy task a trained NTM writes the inputs to consecutive rows and then reads the same
rows in the same order: two parallel diagonals. On sort, writes land at rows chosen by priority
and the reads walk through them in order.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepnets import DeepnetsError
from deepnets.figures.output import save_figure

COPY_LENGTH = 20  # the copy example drawn: the longest training length
EXAMPLE_SEED = 7  # which random example


def memory_trace(model, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run one example (1, T, n_in) and return its inputs (T, n_in), output probabilities
    (T, bits) and the first read and write heads' weightings (T, N)."""
    model.eval()
    with torch.no_grad():
        logits, reads, writes = model(inputs, trace=True)
    return {
        "inputs": inputs[0],
        "outputs": torch.sigmoid(logits[0]),
        "read": reads[0, :, 0],
        "write": writes[0, :, 0],
    }


def example(config) -> torch.Tensor:
    """The one example the figure draws, (1, T, n_in)."""
    from deepnets.data.algorithmic import copy_batch, sort_batch

    generator = torch.Generator().manual_seed(EXAMPLE_SEED)
    if config.task == "copy":
        length = min(COPY_LENGTH, config.max_length)
        return copy_batch(1, length, config.bits, generator).inputs
    return sort_batch(1, config.items, config.keep, config.bits, generator).inputs


def touched_rows(written: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """The memory rows to show, in circular order: every row a head touched, starting after the
    longest circular run of untouched rows (so a pass that wraps past row N - 1 stays whole)."""
    used = (written | read).tolist()
    n = len(used)
    if not any(used):
        return torch.arange(n)
    best, best_end, run = 0, 0, 0
    for k in range(2 * n):  # twice round: runs that wrap
        run = 0 if used[k % n] else run + 1
        if run > best and run <= n:
            best, best_end = run, k % n
    start = (best_end + 1) % n
    return (start + torch.arange(n - best)) % n


def targets_len(config) -> int:
    """Steps of the output phase of the figure's example."""
    return min(COPY_LENGTH, config.max_length) if config.task == "copy" else config.keep


def _draw(run_dir: str | None, out: str | None, task: str) -> Path:
    name = f"fig-ntm-{task}"
    if run_dir is None:
        raise DeepnetsError(
            f"{name} needs a trained ntm-{task} run folder, for example `deepnets run ntm-{task}` "
            f"then `deepnets figure {name} runs/ntm-{task}/<run>`"
        )
    from deepnets.run import load_model, load_run

    experiment, config, _ = load_run(Path(run_dir))
    if getattr(config, "model", None) != "ntm" or getattr(config, "task", None) != task:
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run; {name} needs an ntm-{task} run")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, config, model = load_model(Path(run_dir), device="cpu")
    trace = memory_trace(model, example(config))
    rows = touched_rows(trace["write"].amax(0) > 0.01, trace["read"].amax(0) > 0.01)
    outputs = trace["outputs"].clone()
    outputs[: len(outputs) - targets_len(config)] = float("nan")  # only the output phase counts
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex="col")
    panels = [
        (axes[0, 0], trace["inputs"].T, "inputs", "channel"),
        (axes[0, 1], outputs.T, "outputs (probability of 1, output phase)", "bit"),
        (axes[1, 0], trace["write"][:, rows].T, "write weighting", "memory row"),
        (axes[1, 1], trace["read"][:, rows].T, "read weighting", "memory row"),
    ]
    for ax, image, title, ylabel in panels:
        ax.imshow(image.numpy(), aspect="auto", cmap="gray_r", vmin=0, vmax=1)
        ax.set(title=title, ylabel=ylabel)
        if "weighting" in title:  # label the rows shown (they may wrap around row N - 1)
            ticks = list(range(0, len(rows), max(1, len(rows) // 8)))
            ax.set_yticks(ticks, [str(int(rows[k])) for k in ticks])
    for ax in axes[1]:
        ax.set_xlabel("time step")
    fig.suptitle(
        f"NTM memory use on one {task} example ({experiment.id}, {Path(run_dir).name}): "
        "weightings over the memory rows at each step (darker = more weight)"
    )
    fig.tight_layout()
    path = Path(out) if out else Path("figures") / f"{name}.png"
    return save_figure(fig, path, dpi=110)


def draw_ntm_copy(run_dir: str | None = None, out: str | None = None) -> Path:
    """The write and read weightings of a trained ntm-copy run on one length-20 copy."""
    return _draw(run_dir, out, "copy")


def draw_ntm_sort(run_dir: str | None = None, out: str | None = None) -> Path:
    """The write and read weightings of a trained ntm-sort run on one priority-sort example."""
    return _draw(run_dir, out, "sort")
