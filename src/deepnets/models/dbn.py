"""Deep belief net: RBMs stacked by greedy layer-wise training, used generatively (ref 32).

Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural Computation 18,
2006; Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
Science 313, 2006 (the same stack, fine-tuned by backpropagation as a classifier: 1.2% on MNIST).

The stack's layers are `deepnets.models.rbm.RBM`s trained bottom up by `deepnets.train.pretrain`;
as a classifier the stack becomes a sigmoid MLP (`deepnets.models.mlp.MLP`) whose hidden layers
start at the RBMs' recognition weights. This file holds the generative use: the top two layers
form an undirected associative memory (the top RBM), the layers below are directed, top down.

    sample:  run Gibbs sampling in the top RBM,  h ~ p(h | v_top),  v_top ~ p(v_top | h)
    down:    v_{k-1} = p(v_{k-1} | v_k) = sigmoid(W_k v_k + b_k)   through each lower RBM

Deviations from the paper: the DBN here has no label units joined to its top RBM (it is
pre-trained without labels, then fine-tuned discriminatively), and the down pass uses
probabilities (mean field) rather than binary samples, so the pixels shown are p(v = 1).
"""

from __future__ import annotations

import torch

from deepnets.models.rbm import RBM


@torch.no_grad()
def up_pass(rbms: list[RBM], x: torch.Tensor) -> torch.Tensor:
    """The codes of x (B, n_visible of the bottom RBM) at the top RBM's visible layer."""
    for rbm in rbms[:-1]:
        x = rbm.hidden_probs(x)  # p(h = 1 | v) feeds the layer above
    return x


@torch.no_grad()
def down_pass(rbms: list[RBM], v_top: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities (B, n_visible of the bottom RBM) from top-RBM visible states."""
    x = v_top
    for rbm in reversed(rbms[:-1]):
        x = rbm.visible_probs(x)  # p(v = 1 | h) of the layer below
    return x


@torch.no_grad()
def gibbs_samples(
    rbms: list[RBM],
    start: torch.Tensor,
    record_at: tuple[int, ...],
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Run one Gibbs chain per row of `start` (B, n_visible of the top RBM) in the top RBM and
    return, for each step count in `record_at`, the chains taken down to pixels (B, n_pixels)."""
    top = rbms[-1]
    v = torch.bernoulli(start, generator=generator)
    shown, step = [], 0
    for target in sorted(record_at):
        while step < target:
            h = top.sample_h(v, generator)  # h ~ p(h | v)
            v = top.sample_v(h, generator)  # v ~ p(v | h)
            step += 1
        # The last visible state's probabilities, rather than its binary sample, are shown.
        shown.append(down_pass(rbms, top.visible_probs(top.hidden_probs(v))))
    return shown
