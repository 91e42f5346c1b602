"""Fig. 1a-b of the review: a net with 2 inputs, 2 hidden units and 1 output bends the input space
so that two classes that no straight line separates become linearly separable in the hidden
layer. The net is trained here with the hand-written backpropagation of Fig. 1c-d
(`deepnets.models.mlp.explicit_forward_backward`), not autograd.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.models.mlp import explicit_forward_backward

EQUATIONS = (
    "Forward (Fig. 1c)\n"
    "  $z_j = \\sum_i w_{ij}\\,y_i$,   $y_j = f(z_j)$\n\n"
    "Backward (Fig. 1d)\n"
    "  $\\partial E/\\partial y_l = y_l - t_l$\n"
    "  $\\partial E/\\partial z_k = \\partial E/\\partial y_k\\; f'(z_k)$\n"
    "  $\\partial E/\\partial y_j = \\sum_k w_{jk}\\,\\partial E/\\partial z_k$\n"
    "  $\\partial E/\\partial w_{jk} = y_j\\,\\partial E/\\partial z_k$"
)


def two_curves(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes along parallel S-shaped curves, x2 = 1.2 tanh(3 x1) +/- 0.3: no line separates
    them (the S bends further than any straight line can follow)."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-1.5, 1.5, n)
    label = np.arange(n) % 2
    x2 = 1.2 * np.tanh(3 * x1) + np.where(label == 1, 0.3, -0.3) + rng.normal(0, 0.04, n)
    x = torch.tensor(np.stack([x1, x2], 1), dtype=torch.float64)  # (n, 2)
    return x, torch.tensor(label)


def train_221(
    x: torch.Tensor, y: torch.Tensor, steps: int = 3000, lr: float = 0.1, seed: int = 0
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
    """Full-batch gradient descent with momentum on a 2-2-1 tanh net (logistic output)."""
    gen = torch.Generator().manual_seed(seed)
    weights = [
        torch.randn(2, 2, generator=gen, dtype=x.dtype),
        torch.randn(1, 2, generator=gen, dtype=x.dtype),
    ]
    biases = [torch.zeros(2, dtype=x.dtype), torch.zeros(1, dtype=x.dtype)]
    velocity = [torch.zeros_like(p) for p in weights + biases]
    losses = []
    for _ in range(steps):
        error, grad_w, grad_b = explicit_forward_backward(weights, biases, x, y, "tanh")
        losses.append(float(error))
        for p, g, v in zip(weights + biases, grad_w + grad_b, velocity):
            v.mul_(0.9).add_(g)  # momentum: v <- 0.9 v + dE/dw
            p.sub_(lr * v)  # w <- w - lr v
    return weights, biases, losses


def hidden(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor):
    return torch.tanh(x @ weights[0].T + biases[0])  # (n, 2): the hidden layer's outputs


def predict(weights, biases, x: torch.Tensor) -> torch.Tensor:
    return (hidden(weights, biases, x) @ weights[1].T + biases[1])[:, 0] > 0


def fit_separating_net(x: torch.Tensor, y: torch.Tensor, tries: int = 20):
    """Train from successive seeds until one net classifies every point (small nets can stall)."""
    for seed in range(tries):
        weights, biases, losses = train_221(x, y, seed=seed)
        if bool((predict(weights, biases, x) == y.bool()).all()):
            return weights, biases, losses
    raise DeepnetsError(f"no 2-2-1 net separated the two curves in {tries} tries")


def draw_fig1(run_dir: str | None = None, out: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = two_curves()
    weights, biases, losses = fit_separating_net(x, y)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    colours = np.where(y.numpy() == 1, "tab:red", "tab:blue")
    lines = np.linspace(-1.6, 1.6, 17)
    dense = np.linspace(-1.6, 1.6, 200)
    grid_lines = [np.stack([np.full_like(dense, c), dense], 1) for c in lines]
    grid_lines += [np.stack([dense, np.full_like(dense, c)], 1) for c in lines]

    ax = axes[0]
    for seg in grid_lines:
        ax.plot(seg[:, 0], seg[:, 1], color="0.85", lw=0.6)
    g1, g2 = np.meshgrid(dense, dense)
    grid = torch.tensor(np.stack([g1.ravel(), g2.ravel()], 1))
    score = (hidden(weights, biases, grid) @ weights[1].T + biases[1]).reshape(g1.shape)
    ax.contour(g1, g2, score.numpy(), levels=[0], colors="k", linewidths=1.5)
    ax.scatter(x[:, 0], x[:, 1], c=colours, s=10)
    ax.set(title="input space: the net's decision boundary", xlabel="input 1", ylabel="input 2")

    ax = axes[1]
    for seg in grid_lines:
        h = hidden(weights, biases, torch.tensor(seg)).numpy()
        ax.plot(h[:, 0], h[:, 1], color="0.75", lw=0.6)
    h = hidden(weights, biases, x).numpy()
    ax.scatter(h[:, 0], h[:, 1], c=colours, s=10)
    w, b = weights[1][0].numpy(), float(biases[1][0])
    t = np.linspace(-1.1, 1.1, 2)
    if abs(w[1]) > abs(w[0]):
        ax.plot(t, -(w[0] * t + b) / w[1], "k", lw=1.5)
    else:
        ax.plot(-(w[1] * t + b) / w[0], t, "k", lw=1.5)
    ax.set(
        xlim=(-1.05, 1.05),
        ylim=(-1.05, 1.05),
        xlabel="hidden unit 1",
        ylabel="hidden unit 2",
        title="hidden space: the grid is bent, a line now separates",
    )

    ax = axes[2]
    ax.axis("off")
    ax.text(0.0, 0.95, EQUATIONS, va="top", fontsize=12, transform=ax.transAxes)
    ax.text(
        0.0,
        0.2,
        f"2-2-1 tanh net, trained by the explicit backward pass\n"
        f"final cross-entropy {losses[-1]:.4f}",
        fontsize=10,
        transform=ax.transAxes,
    )
    fig.tight_layout()
    path = Path(out) if out else Path("figures") / "fig1.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
