"""Denoising autoencoder, the layer of a stacked denoising autoencoder (refs 33 and 93 of the
review's pre-training story).

Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with denoising
autoencoders", ICML 2008; Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked denoising
autoencoders", JMLR 11, 2010 (SDAE-3: 1.28% MNIST test error after supervised fine-tuning).

Each layer learns to reconstruct its clean input from a corrupted copy; the greedy loop
(`deepnets.train.pretrain`) trains one layer on the codes of the layer below, and the encoders
are then stacked under an output layer and fine-tuned by backpropagation. The gradient engine
minimises `loss` (SGD with momentum, L2 on the weights), as it minimises the RBM's `cd_loss`, so
the greedy loop treats both kinds of layer alike.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.models.layerwise import Layerwise

if TYPE_CHECKING:
    from deepnets.experiments.pretraining import SDAEConfig


class DenoisingAutoencoder(nn.Module):
    """Inputs x in [0, 1]^n_in (pixel intensities, or the codes of the layer below):

        x~ = x * m,  m_i ~ Bernoulli(1 - noise)       masking noise: a fraction of inputs zeroed
        h  = sigmoid(W x~ + b)                         the code; W is (n_hidden, n_in)
        r  = sigmoid(W' h + c),  W' = W^T (tied)       the reconstruction
        L  = -sum_i [x_i log r_i + (1 - x_i) log(1 - r_i)]   cross-entropy to the CLEAN x

    L is summed over the inputs and averaged over the batch. The code used for the layer above
    and for fine-tuning is that of the clean input, h(x) = sigmoid(W x + b).

    Deviations from the paper: weights are tied by default (Vincent et al. 2010 tried both);
    SGD uses minibatches of 100 with momentum where the paper used single examples; the layer
    sizes are those of the deep belief net (500-500-2000) so the two pre-trainings are compared
    on one architecture, where SDAE-3 had 1000 units per layer chosen on validation.
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        tied: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_in, self.n_hidden, self.tied = n_in, n_hidden, tied
        # Uniform in +-4 sqrt(6 / (n_in + n_hidden)): Glorot & Bengio's range for sigmoid units.
        bound = 4 * math.sqrt(6 / (n_in + n_hidden))
        self.W = nn.Parameter((torch.rand(n_hidden, n_in, generator=generator) * 2 - 1) * bound)
        self.b = nn.Parameter(torch.zeros(n_hidden))  # code biases
        self.c = nn.Parameter(torch.zeros(n_in))  # reconstruction biases
        self.W_dec = None  # decoder weights (n_in, n_hidden) when untied
        if not tied:
            self.W_dec = nn.Parameter(self.W.detach().T.clone())

    @staticmethod
    def corrupt(x: torch.Tensor, noise: float, generator: torch.Generator | None) -> torch.Tensor:
        """x~ = x * m with m_i ~ Bernoulli(1 - noise): each input zeroed with probability noise."""
        keep = torch.full_like(x, 1 - noise)
        return x * torch.bernoulli(keep, generator=generator)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = sigmoid(W x + b), (B, n_in) -> (B, n_hidden)."""
        return torch.sigmoid(x @ self.W.T + self.b)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        """W' h + c, (B, n_hidden) -> (B, n_in): the reconstruction before its sigmoid."""
        w_dec = self.W.T if self.W_dec is None else self.W_dec  # W' = W^T when tied
        return h @ w_dec.T + self.c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction's logits W' h(x) + c, (B, n_in) -> (B, n_in)."""
        return self.decode_logits(self.encode(x))

    def loss(
        self,
        x: torch.Tensor,
        noise: float,
        generator: torch.Generator | None = None,
        net: nn.Module | None = None,
    ) -> torch.Tensor:
        """Mean over the batch of the cross-entropy between x and r(h(x~)). `net` computes the
        forward (this autoencoder, or its data-parallel wrapper)."""
        logits = (self if net is None else net)(self.corrupt(x, noise, generator))  # (B, n_in)
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


# --- the layer kind: how deepnets.train.pretrain trains a stack of autoencoders (sdae-mnist) ---


def _dae_layer(config: SDAEConfig, n_in: int, n_out: int, generator: torch.Generator):
    return DenoisingAutoencoder(n_in, n_out, config.tied, generator)


def _dae_loss(layer, x, config: SDAEConfig, generator, net) -> torch.Tensor:
    return layer.loss(x, config.noise, generator, net)


@torch.no_grad()
def _dae_measure(layer, x, config: SDAEConfig) -> dict[str, float]:
    r = torch.sigmoid(layer.decode_logits(layer.encode(x)))
    return {
        "denoising_loss": float(
            layer.loss(x, config.noise, torch.Generator(x.device).manual_seed(0))
        ),
        "recon_error": float(((x - r) ** 2).sum(1).mean()),
    }


DAE_LAYERS = Layerwise(
    make_layer=_dae_layer,
    loss=_dae_loss,
    weights=lambda dae: (dae.W, dae.b),  # h = sigmoid(W x + b)
    measure=_dae_measure,
)
