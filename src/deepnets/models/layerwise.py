"""`Layerwise`: what greedy layer-wise pre-training (deepnets.train.pretrain) needs to know about
one kind of layer. It lives beside the models, not in deepnets.experiments, so that a model module
can define its own (`RBM_LAYERS` in rbm.py, `DAE_LAYERS` in sdae.py) without importing the
experiment table. The gradient engine does the optimisation; a layer kind only says how a layer
is made, what its training loss is and what is measured after each epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Layerwise:
    """One kind of pre-trained layer (an RBM, a denoising autoencoder)."""

    make_layer: Callable[[Any, int, int, torch.Generator], nn.Module]  # (config, n_in, n_out, g)
    # (layer, x (B, n_in), config, generator, net) -> the scalar loss of a minibatch; `net`
    # computes the layer's forward (the layer itself, or its data-parallel wrapper)
    loss: Callable[[nn.Module, torch.Tensor, Any, torch.Generator, nn.Module], torch.Tensor]
    weights: Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor]]  # encoder (out, in), (out,)
    measure: Callable[[nn.Module, torch.Tensor, Any], dict[str, float]]  # logged after each epoch
    # (layer, x (N, n_in), config, generator): training state a fresh layer draws from its data
    # before the first step (PCD's chains), or None
    start: Callable[[nn.Module, torch.Tensor, Any, torch.Generator], None] | None = None
