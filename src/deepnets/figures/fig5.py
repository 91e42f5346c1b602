"""Fig. 5 of the review: a recurrent net and its unfolding in time, and why backpropagating
through the unfolded net makes the error signal vanish or explode.

Left: the diagram of the review's Fig. 5. One node s with a self-loop W (the state feeds back to
itself one step later), input x through U, output o through V; unfolded, it is a deep
feed-forward net with one layer per time step, s_{t-1} -> s_t -> s_{t+1}, that shares the weights
U, V, W across all its layers.

Middle: the size of the error signal that reaches each earlier step. E_T is the cross-entropy of
the prediction at the LAST step T only, so for t < T everything E_T knows about s_t travels
backwards through the chain of Jacobians:

    dE_T/ds_t = dE_T/ds_T  .  ds_T/ds_{T-1} ... ds_{t+1}/ds_t

For the Elman (tanh) net ds_k/ds_{k-1} = diag(1 - s_k^2) W: with the recurrent matrix W an
orthogonal matrix times a gain, each factor shrinks the signal when the gain is below 1 (and
tanh' <= 1 only shrinks it further), so the norm falls at least as fast as gain^(T - t); with a
large gain it can grow geometrically (by at most the gain per step: the tanh's saturation takes
part of it back). The curves are computed exactly (float64, torch.autograd.grad on every state)
for freshly initialised nets on one random token sequence.

The LSTM's memory cell has an additive path, c_k = f_k * c_{k-1} + i_k * g_k, along which the
Jacobian is just diag(f_k) (plus the terms through h): the gradient survives as long as the
forget gates stay near 1: the review's "connection to itself at the next time step that has a
weight of one". That is
a property of the gates' values, not of the architecture alone: a freshly initialised LSTM with
forget-gate bias 0 has f ~ 0.5 and its signal roughly halves at every step (here it vanishes
even faster than the Elman net's with gain 0.9); with the forget-gate bias set to 3 (f ~ 0.95) it
decays only slowly. A positive initial forget-gate bias is the usual remedy (Jozefowicz,
Zaremba & Sutskever 2015 recommend 1; 3 is used here to make the contrast plain). For the LSTM
the state is s_t = (h_t, c_t) and the norm is that of the pair (the c part at t = T is 0: the
output at T reads h_T only).

Right: what gradient clipping (Pascanu, Mikolov & Bengio 2013; torch.nn.utils.clip_grad_norm_)
does to a training step of the exploding Elman net: when ||g|| > c it replaces g by c g / ||g||,
so the step is bounded by lr * c and keeps the gradient's direction exactly (the cosine between
the step and the raw gradient is printed). The unclipped run's first step is far larger than all
its weights together. Only step sizes are shown: on this toy task (memorising one random
sequence) both runs do eventually fit it, so the panel claims nothing about final loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepnets import DeepnetsError
from deepnets.models.rnn_lm import RNNLM

VOCAB, HIDDEN, STEPS = 50, 64, 60  # vocabulary, hidden units, sequence length T
VANISH_GAIN, EXPLODE_GAIN = 0.9, 2.5  # gains of the Elman net's orthogonal W_hh
OPEN_FORGET_BIAS = 3.0  # LSTM forget-gate bias that keeps f_t ~ 0.95
CLIP, CLIP_LR, CLIP_STEPS = 1.0, 1.0, 40  # clipping threshold c, SGD learning rate, steps


def random_sequence(
    length: int = STEPS, vocab: int = VOCAB, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs x and next-token targets y, each (1, length), from one uniform random stream."""
    gen = torch.Generator().manual_seed(seed)
    stream = torch.randint(vocab, (1, length + 1), generator=gen)  # (1, length + 1)
    return stream[:, :-1], stream[:, 1:]


def elman_net(gain: float, vocab: int = VOCAB, hidden: int = HIDDEN, seed: int = 0) -> RNNLM:
    """A one-layer float64 Elman RNNLM whose recurrent W_hh (H, H) is gain * an orthogonal matrix
    (all its singular values equal gain)."""
    torch.manual_seed(seed)
    model = RNNLM(vocab, "elman", n_layers=1, hidden_size=hidden, init_range=None).double()
    with torch.no_grad():
        q = torch.nn.init.orthogonal_(torch.empty(hidden, hidden, dtype=torch.float64))  # (H, H)
        model.layers[0].cell.weight_hh.copy_(gain * q)
    return model


def lstm_net(
    forget_bias: float = 0.0, vocab: int = VOCAB, hidden: int = HIDDEN, seed: int = 0
) -> RNNLM:
    """A one-layer float64 LSTM RNNLM, default init except the forget-gate biases b_f."""
    torch.manual_seed(seed)
    model = RNNLM(vocab, "lstm", n_layers=1, hidden_size=hidden, init_range=None).double()
    with torch.no_grad():
        model.layers[0].cell.bias[hidden : 2 * hidden] = forget_bias  # gates i, f, g, o: (4H,)
    return model


def state_gradient_norms(model: RNNLM, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """||dE_T/ds_t|| for t = 1..T (array of shape (T,)), E_T the cross-entropy at the last step
    only. s_t is h_t (n_layers, B, H) for the Elman net and the pair (h_t, c_t) for the LSTM."""
    model.eval()
    logits, _, states = model.forward_with_states(x)  # logits (B, T, V), T states
    loss_last = F.cross_entropy(logits[:, -1], y[:, -1])  # E_T: (B, V), (B,) -> scalar
    parts = [list(s) if isinstance(s, tuple) else [s] for s in states]  # T x [h] or [h, c]
    flat = [p for ps in parts for p in ps]
    grads = torch.autograd.grad(loss_last, flat, allow_unused=True)  # None: s_t not used by E_T
    squares = [0.0 if g is None else float((g**2).sum()) for g in grads]
    per_step = np.array(squares).reshape(len(states), -1).sum(1)  # (T, parts) -> (T,)
    return np.sqrt(per_step)


def clipping_run(
    clip: float | None,
    gain: float = EXPLODE_GAIN,
    lr: float = CLIP_LR,
    steps: int = CLIP_STEPS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Plain SGD on the whole sequence's mean cross-entropy for the Elman net of `gain`, with
    clip_grad_norm_(clip) before each step when clip is not None. Per step (arrays of (steps,)):
    the raw gradient norm ||g||, the norm of the step actually taken ||theta_new - theta_old||,
    the cosine between -step and g, and the loss; also ||theta_0|| (shape ())."""
    model = elman_net(gain, seed=seed)
    x, y = random_sequence(seed=seed)
    params = list(model.parameters())
    record: dict[str, list[float]] = {"raw": [], "step": [], "cosine": [], "loss": []}
    theta0 = torch.cat([p.detach().flatten() for p in params])  # (P,)
    for _ in range(steps):
        logits, _ = model(x)  # (1, T, V)
        loss = model.loss(logits, y)
        model.zero_grad()
        loss.backward()
        raw = torch.cat([p.grad.flatten() for p in params])  # g, (P,)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)  # g <- g * min(1, c / ||g||)
        before = torch.cat([p.detach().flatten() for p in params])  # (P,)
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
        step = torch.cat([p.detach().flatten() for p in params]) - before  # (P,)
        record["raw"].append(float(raw.norm()))
        record["step"].append(float(step.norm()))
        record["cosine"].append(float(F.cosine_similarity(-step, raw, dim=0)))
        record["loss"].append(loss.item())
    out = {k: np.array(v) for k, v in record.items()}
    out["theta0"] = np.array(float(theta0.norm()))
    return out


def _node(ax, xy, label, colour):
    from matplotlib.patches import Circle

    ax.add_patch(Circle(xy, 0.42, facecolor=colour, edgecolor="k", lw=1.2, zorder=3))
    ax.text(*xy, label, ha="center", va="center", fontsize=12, zorder=4)


def _arrow(ax, a, b, label=None, offset=(0.0, 0.0), rad=0.0, **kw):
    from matplotlib.patches import FancyArrowPatch

    style = {"arrowstyle": "-|>", "mutation_scale": 14, "lw": 1.3, "color": "k"} | kw
    ax.add_patch(
        FancyArrowPatch(a, b, connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0, **style)
    )
    if label:
        mid = ((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1])
        ax.text(*mid, label, ha="center", va="center", fontsize=11, style="italic")


def _draw_diagram(ax) -> None:
    """The review's Fig. 5 diagram in data coordinates: x in [0, 11], y in [-1.6, 6]."""
    r = 0.42  # node radius
    cs, cx, co = "#cfe2f3", "#fde9c9", "#d9ead3"  # state, input, output fill colours
    # folded net
    _node(ax, (1.3, 3), "$s$", cs)
    _node(ax, (1.3, 1), "$x$", cx)
    _node(ax, (1.3, 5), "$o$", co)
    _arrow(ax, (1.3, 1 + r), (1.3, 3 - r), "U", (0.25, 0))
    _arrow(ax, (1.3, 3 + r), (1.3, 5 - r), "V", (0.25, 0))
    d = r * np.sqrt(0.5)  # self-loop on the left, from the node's upper-left to its lower-left
    _arrow(ax, (1.3 - d, 3 + d), (1.3 - d, 3 - d), rad=1.9)
    ax.text(0.1, 3, "W", ha="center", va="center", fontsize=11, style="italic")
    # "unfold"
    _arrow(ax, (2.1, 3), (3.0, 3), lw=2.5, color="0.45", mutation_scale=20)
    ax.text(2.55, 3.35, "unfold", ha="center", fontsize=10, color="0.3")
    # unfolded chain
    xs = [4.9, 7.0, 9.1]
    for x, t in zip(xs, ["t-1", "t", "t+1"]):
        _node(ax, (x, 3), f"$s_{{{t}}}$", cs)
        _node(ax, (x, 1), f"$x_{{{t}}}$", cx)
        _node(ax, (x, 5), f"$o_{{{t}}}$", co)
        _arrow(ax, (x, 1 + r), (x, 3 - r), "U", (0.25, 0))
        _arrow(ax, (x, 3 + r), (x, 5 - r), "V", (0.25, 0))
    for a, b in zip([3.7] + xs, xs + [10.4]):
        _arrow(ax, (a + (r if a in xs else 0), 3), (b - (r if b in xs else 0), 3), "W", (0, 0.25))
    ax.text(3.55, 3, "...", ha="right", va="center", fontsize=12)
    ax.text(10.5, 3, "...", ha="left", va="center", fontsize=12)
    # the backward chain of Jacobians, one line each
    lines = [
        (
            -0.35,
            "$\\dfrac{\\partial E_T}{\\partial s_t} = \\dfrac{\\partial E_T}{\\partial s_T}"
            "\\;\\prod_{k=t+1}^{T}\\; \\dfrac{\\partial s_k}{\\partial s_{k-1}}$",
        ),
        (-1.45, "Elman: $\\partial s_k / \\partial s_{k-1} = \\mathrm{diag}(1-s_k^2)\\,W$"),
        (
            -2.05,
            "LSTM cell path: $c_k = f_k \\odot c_{k-1} + i_k \\odot g_k$, "
            "so $\\partial c_k / \\partial c_{k-1} = \\mathrm{diag}(f_k)$ (+ terms via $h$)",
        ),
    ]
    for y, text in lines:
        ax.text(5.5, y, text, ha="center", va="center", fontsize=10.5)
    ax.set(xlim=(-0.4, 11.2), ylim=(-2.4, 5.6), aspect="equal")
    ax.axis("off")
    ax.set_title("a recurrent net and its unfolding in time")


def draw_fig5(run_dir: str | None = None, out: str | None = None) -> Path:
    """Draw the three panels (module docstring) to `out` (default figures/fig5.png); ~7 s."""
    if run_dir is not None:
        raise DeepnetsError("fig5 draws freshly initialised nets; it takes no run folder")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(19, 6), gridspec_kw={"width_ratios": [1.45, 1, 1]})
    _draw_diagram(axes[0])

    ax = axes[1]
    x, y = random_sequence()
    t = np.arange(1, STEPS + 1)
    curves = [
        (elman_net(EXPLODE_GAIN), f"Elman, $W$ = {EXPLODE_GAIN} x orthogonal", "tab:red", "-"),
        (elman_net(VANISH_GAIN), f"Elman, $W$ = {VANISH_GAIN} x orthogonal", "tab:blue", "-"),
        (lstm_net(OPEN_FORGET_BIAS), f"LSTM, forget bias {OPEN_FORGET_BIAS:g}", "tab:green", "-"),
        (lstm_net(0.0), "LSTM, forget bias 0 (default init)", "tab:green", "--"),
    ]
    for model, label, colour, ls in curves:
        norms = state_gradient_norms(model, x, y)
        ax.semilogy(t, norms, ls, color=colour, lw=1.8, label=label)
    ax.set(
        xlabel=f"time step $t$  (loss $E_T$ at the last step, $T$ = {STEPS})",
        ylabel="$\\|\\partial E_T / \\partial s_t\\|$",
        title="error signal reaching step $t$ from step $T$",
        xlim=(1, STEPS),
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9, loc="lower right", title="LSTM: $s_t = (h_t, c_t)$", title_fontsize=9)

    ax = axes[2]
    free, clipped = clipping_run(None), clipping_run(CLIP)
    steps = np.arange(1, CLIP_STEPS + 1)
    ax.semilogy(steps, free["step"], "o-", color="tab:red", ms=3, lw=1.3, label="no clipping")
    ax.semilogy(
        steps,
        clipped["step"],
        "o-",
        color="tab:blue",
        ms=3,
        lw=1.3,
        label=f"clipped at c = {CLIP:g}",
    )
    ax.semilogy(
        steps,
        CLIP_LR * clipped["raw"],
        ":",
        color="tab:blue",
        lw=1.3,
        label="clipped run, lr x raw $\\|g\\|$ (before clipping)",
    )
    ax.axhline(CLIP_LR * CLIP, color="k", ls="--", lw=1, label="bound lr x c")
    ax.axhline(
        float(free["theta0"]), color="0.5", ls="-.", lw=1, label="$\\|\\theta_0\\|$, all weights"
    )
    active = clipped["raw"] > CLIP  # the steps where clipping changed g
    worst = float(np.max(np.abs(1 - clipped["cosine"][active])))
    note = (
        f"Elman, $W$ = {EXPLODE_GAIN} x orthogonal, SGD lr = {CLIP_LR:g}\n"
        f"clipped steps: max |1 - cos(step, $-g$)| = {worst:.0e}"
    )
    ax.set(
        xlabel="training step",
        ylabel="size of the update $\\|\\Delta\\theta\\|$",
        title="gradient clipping bounds the step, keeps its direction",
        xlim=(0, CLIP_STEPS + 1),
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.set_ylim(top=1e7)
    ax.legend(fontsize=9, loc="upper right", title=note, title_fontsize=9)

    fig.tight_layout()
    path = Path(out) if out else Path("figures") / "fig5.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
