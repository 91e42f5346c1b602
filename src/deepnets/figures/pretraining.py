"""Figures of unsupervised pre-training, from a `dbn-mnist` or `sdae-mnist` run folder.

`fig-filters`: the first layer's receptive fields (each hidden unit's 784 incoming weights shown
as a 28x28 tile): pen-stroke and blob detectors that pre-training finds without labels, for the
RBM of a deep belief net or the first denoising autoencoder of a stack.

`fig-dbn-samples`: what the deep belief net has learnt to generate: Gibbs chains run in its top
RBM, each taken down through the lower RBMs to pixels (`deepnets.models.dbn`). Each row is one
chain started from the code of a test digit; columns are steps of the chain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError

CHAIN_STEPS = (0, 1, 10, 100, 1000, 5000)  # Gibbs steps shown, left to right
N_CHAINS = 10  # rows: one chain per digit class


def _load(run_dir: str | None, kind: str | None = None):
    from deepnets.run import load_run
    from deepnets.train.pretrain import Pretrain, load_stack

    if run_dir is None:
        raise DeepnetsError("this figure needs a dbn-mnist or sdae-mnist run folder")
    experiment, config, _ = load_run(Path(run_dir))
    if not isinstance(experiment.task, Pretrain) or (kind and experiment.id != kind):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run; this figure needs {kind or 'a'}")
    return experiment, config, load_stack(experiment, config, Path(run_dir))


def tile(images: np.ndarray, rows: int, cols: int, side: int = 28, pad: int = 1) -> np.ndarray:
    """Lay (n, side*side) images out as a rows x cols mosaic, each scaled to [0, 1] alone."""
    out = np.ones((rows * (side + pad) + pad, cols * (side + pad) + pad))
    for i, image in enumerate(images[: rows * cols]):
        lo, hi = image.min(), image.max()
        scaled = (image - lo) / (hi - lo + 1e-12)
        r, c = divmod(i, cols)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        out[top : top + side, left : left + side] = scaled.reshape(side, side)
    return out


def _save(fig, out: str | None, name: str) -> Path:
    import matplotlib.pyplot as plt

    path = Path(out) if out else Path("figures") / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_filters(run_dir: str | None = None, out: str | None = None, n: int = 100) -> Path:
    """The first `n` first-layer filters of the run's pre-trained stack, as image tiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepnets.train.pretrain import encoder

    experiment, config, layers = _load(run_dir)
    weight = encoder(experiment.task.layers, layers[0])[0].detach().float().numpy()  # (out, 784)
    cols = int(np.ceil(np.sqrt(n)))
    mosaic = tile(weight, int(np.ceil(n / cols)), cols)
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(mosaic, cmap="gray", interpolation="nearest")
    ax.axis("off")
    kind = "RBM (CD-1)" if experiment.id == "dbn-mnist" else "denoising autoencoder"
    ax.set_title(f"{experiment.id}: first {n} of {weight.shape[0]} first-layer filters ({kind})")
    fig.tight_layout()
    return _save(fig, out, "fig-filters")


def draw_dbn_samples(run_dir: str | None = None, out: str | None = None) -> Path:
    """Gibbs chains of the DBN's top RBM, taken down to pixels, at several step counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepnets.experiments.pretraining import mnist_pixels
    from deepnets.models.dbn import gibbs_samples, up_pass

    experiment, config, rbms = _load(run_dir, "dbn-mnist")
    x, y = mnist_pixels(config)["test"]
    first = [int((y == c).nonzero()[0, 0]) for c in range(N_CHAINS)]  # one digit per class
    start = up_pass(rbms, x[first].flatten(1))  # (N_CHAINS, n_visible of the top RBM)
    generator = torch.Generator().manual_seed(0)
    shown = gibbs_samples(rbms, start, CHAIN_STEPS, generator)
    grid = torch.stack(shown, 1).reshape(-1, 784).numpy()  # row-major: chain, step
    fig, ax = plt.subplots(figsize=(1.2 * len(CHAIN_STEPS) + 1, 1.2 * N_CHAINS + 1))
    ax.imshow(tile(grid, N_CHAINS, len(CHAIN_STEPS)), cmap="gray", interpolation="nearest")
    ax.set_xticks([14 + 29 * i for i in range(len(CHAIN_STEPS))], [str(s) for s in CHAIN_STEPS])
    ax.set_yticks([])
    ax.set_xlabel("Gibbs steps in the top RBM")
    ax.set_title("deep belief net: chains of the top RBM, down to pixels")
    fig.tight_layout()
    return _save(fig, out, "fig-dbn-samples")
