"""Restricted Boltzmann machine trained by contrastive divergence: the building block of the
review's unsupervised pre-training (deep belief nets, ref 32).

Hinton, "Training products of experts by minimizing contrastive divergence", Neural Computation
14, 2002 (CD-k); Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural
Computation 18, 2006 (stacked RBMs); Tieleman, "Training restricted Boltzmann machines using
approximations to the likelihood gradient", ICML 2008 (persistent CD); Salakhutdinov & Murray,
"On the quantitative analysis of deep belief networks", ICML 2008 (annealed importance sampling
of the partition function); Hinton, "A practical guide to training restricted Boltzmann
machines", UTML TR 2010-003 (the choices below marked "guide").

The CD update is not the gradient of the log-likelihood, but it is exactly minus the gradient of
F(v_0) - F(v_k) with the end v_k of the Gibbs chain held fixed: `cd_loss` hands that surrogate to
autograd, so the gradient engine trains an RBM like any other net (SGD with momentum and weight
decay), and `cd_update` writes the statistics out by hand as the reference it is tested against.
Small RBMs get their exact partition function by enumeration, larger ones an AIS
estimate, so that the log-likelihood a training run reaches can be measured rather than guessed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.models.layerwise import Layerwise

if TYPE_CHECKING:
    from deepnets.experiments.pretraining import DBNConfig

MAX_ENUMERATE = 20  # enumerate at most 2^20 configurations of one layer
_CHUNK = 1 << 14  # configurations per chunk of the enumeration


def _all_binary(n: int, start: int, stop: int, like: torch.Tensor) -> torch.Tensor:
    """Rows start..stop-1 of the 2^n binary configurations of n units, (stop - start, n)."""
    codes = torch.arange(start, stop, device=like.device)[:, None]  # (N, 1)
    return ((codes >> torch.arange(n, device=like.device)) & 1).to(like.dtype)  # (N, n)


class RBM(nn.Module):
    """Binary hidden units h (n_hidden), Bernoulli visible units v (n_visible):

        E(v, h)    = -b.v - c.h - v W h                 energy; W is (n_visible, n_hidden)
        p(v, h)    = exp(-E(v, h)) / Z,  Z = sum_{v,h} exp(-E(v, h))
        p(h_j=1|v) = sigmoid(c_j + sum_i v_i W_ij)
        p(v_i=1|h) = sigmoid(b_i + sum_j W_ij h_j)
        F(v)       = -log sum_h exp(-E(v, h)) = -b.v - sum_j softplus(c_j + v.W_j)
        log p(v)   = -F(v) - log Z

    The log-likelihood gradient is <v_i h_j>_data - <v_i h_j>_model (and likewise for the biases).
    CD-k (Hinton 2002) replaces the model expectation by the statistics after k steps of Gibbs
    sampling started at the data; persistent CD (Tieleman 2008) keeps the chains ("fantasy
    particles") running from one update to the next instead of restarting them at the data:

        dW = <v p(h|v)>_data - <v_k p(h|v_k)>,   db = <v>_data - <v_k>,
        dc = <p(h|v)>_data - <p(h|v_k)>

    Both phases use the hidden probabilities p(h|v) rather than sampled h in the statistics, as
    the guide recommends (less sampling noise, same expectation); the Gibbs chain itself samples
    binary h and binary v. Data in [0, 1] (MNIST intensities) are used as they are, as
    probabilities, in the positive phase and as the start of the CD chain; they are not sampled.
    Binarise them first (torch.bernoulli) to train on binary data, as Salakhutdinov & Murray did.

    Deviations from the paper: the visible states of the negative phase are binary samples, not
    the probabilities p(v|h) that Hinton's MNIST code uses, so that CD-k and PCD run true Gibbs
    chains. Weight decay (guide: L2 on W only, not the biases) and momentum are those of the
    engine's SGD on `cd_loss` (deepnets.train.pretrain). AIS uses `n_betas` inverse temperatures
    spaced evenly in [0, 1] rather than Salakhutdinov & Murray's three-segment schedule of 14,500.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        n_chains: int = 0,
    ):
        super().__init__()
        self.n_visible, self.n_hidden = n_visible, n_hidden
        # Guide, section 8: small random weights N(0, 0.01^2), zero biases.
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden, generator=generator) * init_std)
        self.b = nn.Parameter(torch.zeros(n_visible))  # visible biases
        self.c = nn.Parameter(torch.zeros(n_hidden))  # hidden biases
        # PCD's persistent chains ("fantasy particles"), (n_chains, n_visible): a buffer, so that a
        # checkpoint holds them and a resumed run continues the same chains. None for CD-k.
        self.chain: torch.Tensor | None
        if n_chains > 0:
            self.register_buffer("chain", torch.zeros(n_chains, n_visible))
        else:
            self.chain = None

    # --- conditionals and sampling -----------------------------------------------------------

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h=1 | v), (B, n_visible) -> (B, n_hidden)."""
        return torch.sigmoid(v @ self.W + self.c)  # p(h_j=1|v) = sigmoid(c_j + sum_i v_i W_ij)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v=1 | h), (B, n_hidden) -> (B, n_visible)."""
        return torch.sigmoid(h @ self.W.T + self.b)  # p(v_i=1|h) = sigmoid(b_i + sum_j W_ij h_j)

    def sample_h(self, v: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Binary h ~ p(h | v), (B, n_hidden)."""
        return torch.bernoulli(self.hidden_probs(v), generator=generator)

    def sample_v(self, h: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Binary v ~ p(v | h), (B, n_visible)."""
        return torch.bernoulli(self.visible_probs(h), generator=generator)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)), (B, n_visible) -> (B,)."""
        return -(v @ self.b) - F.softplus(v @ self.W + self.c).sum(1)  # -b.v - sum softplus

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """The free energy F(v), (B, n_visible) -> (B,): what `cd_loss` differentiates."""
        return self.free_energy(v)

    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of sum_i (v_i - r_i)^2, with the mean-field reconstruction
        r = p(v | h = p(h|v)) (deterministic; Hinton's code samples h here)."""
        r = self.visible_probs(self.hidden_probs(v))  # (B, n_visible)
        return ((v - r) ** 2).sum(1).mean()

    # --- contrastive divergence --------------------------------------------------------------

    @torch.no_grad()
    def gibbs(
        self, v: torch.Tensor, k: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k steps of Gibbs sampling from v (N, n_visible): (v_k, p(h|v_k)), binary v_k."""
        ph = self.hidden_probs(v)  # p(h|v_0), (N, n_hidden)
        for _ in range(k):
            h = torch.bernoulli(ph, generator=generator)  # h ~ p(h|v)
            v = torch.bernoulli(self.visible_probs(h), generator=generator)  # v ~ p(v|h)
            ph = self.hidden_probs(v)
        return v, ph

    @torch.no_grad()
    def cd_update(
        self,
        v0: torch.Tensor,
        k: int = 1,
        generator: torch.Generator | None = None,
        persistent_chain: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The CD-k estimate (dW, db, dc) of the mean log-likelihood gradient over the batch v0
        (B, n_visible); a step of size lr is theta += lr * d.

        With `persistent_chain` (n_chains, n_visible), the negative phase runs k Gibbs steps
        from those states instead of from v0 (PCD), and the chain is advanced in place.
        """
        p0 = self.hidden_probs(v0)  # positive phase: p(h|v0), (B, n_hidden)
        start = v0 if persistent_chain is None else persistent_chain  # CD-k or PCD
        v, pk = self.gibbs(start, k, generator)  # negative phase: v_k, p(h|v_k), (N, ...)
        if persistent_chain is not None:
            persistent_chain.copy_(v)
        dW = v0.T @ p0 / v0.shape[0] - v.T @ pk / v.shape[0]  # <v h>_data - <v h>_k
        db = v0.mean(0) - v.mean(0)  # <v>_data - <v>_k
        dc = p0.mean(0) - pk.mean(0)  # <h>_data - <h>_k
        return dW, db, dc

    def cd_loss(
        self,
        v0: torch.Tensor,
        k: int = 1,
        generator: torch.Generator | None = None,
        persistent_chain: torch.Tensor | None = None,
        net: nn.Module | None = None,
    ) -> torch.Tensor:
        """The surrogate mean F(v0) - mean F(v_k) of the batch v0 (B, n_visible), v_k the end of
        k Gibbs steps (sampled without gradient, the same draws as `cd_update`'s for the same
        generator state; PCD: from `persistent_chain`, advanced in place). Its gradient is
        exactly minus the CD-k estimate (dW, db, dc), since dF(v)/dW = -v p(h|v)^T,
        dF/db = -v, dF/dc = -p(h|v): gradient descent on it is the CD update. `net` computes
        F (this RBM, or its data-parallel wrapper)."""
        with torch.no_grad():
            start = v0 if persistent_chain is None else persistent_chain  # CD-k or PCD
            vk, _ = self.gibbs(start, k, generator)
            if persistent_chain is not None:
                persistent_chain.copy_(vk)
        energy = (self if net is None else net)(torch.cat([v0, vk]))  # F, (B + N,)
        return energy[: len(v0)].mean() - energy[len(v0) :].mean()  # F(v0) - F(v_k)

    @torch.no_grad()
    def start_chains(self, v: torch.Tensor, generator: torch.Generator | None) -> None:
        """Start the PCD chains at binary samples of data rows v (n_chains, n_visible) in [0, 1]."""
        self.chain.copy_(torch.bernoulli(v.clamp(0, 1).to(self.chain), generator=generator))

    # --- partition function and likelihood ---------------------------------------------------

    @torch.no_grad()
    def log_partition_exact(
        self, over: Literal["smaller", "visible", "hidden"] = "smaller"
    ) -> float:
        """log Z by enumerating every configuration of one layer (the smaller by default),
        summing the other layer out analytically; computed in float64."""
        if over == "smaller":
            over = "hidden" if self.n_hidden <= self.n_visible else "visible"
        n = self.n_hidden if over == "hidden" else self.n_visible
        if n > MAX_ENUMERATE:
            raise ValueError(
                f"exact log Z enumerates 2^{n} {over} configurations of this "
                f"{self.n_visible}x{self.n_hidden} RBM; at most {MAX_ENUMERATE} units are "
                "allowed: use log_partition_ais instead"
            )
        W, b, c = (p.detach().double() for p in (self.W, self.b, self.c))
        terms = []
        for start in range(0, 2**n, _CHUNK):
            x = _all_binary(n, start, min(start + _CHUNK, 2**n), W)  # (N, n)
            if over == "hidden":  # log sum_v exp(-E(v, h)) = c.h + sum_i softplus(b_i + W_i.h)
                terms.append(x @ c + F.softplus(x @ W.T + b).sum(1))
            else:  # log sum_h exp(-E(v, h)) = -F(v) = b.v + sum_j softplus(c_j + v.W_j)
                terms.append(x @ b + F.softplus(x @ W + c).sum(1))
        return torch.logsumexp(torch.cat(terms), 0).item()  # log Z = log sum exp(...)

    @torch.no_grad()
    def log_likelihood_exact(self, v: torch.Tensor, log_z: float | None = None) -> float:
        """Mean over the batch of log p(v) = -F(v) - log Z for binary v (B, n_visible)."""
        if not ((v == 0) | (v == 1)).all():
            raise ValueError("log_likelihood_exact needs binary visible vectors (0 or 1)")
        log_z = self.log_partition_exact() if log_z is None else log_z
        return (-self.free_energy(v.to(self.W.dtype)).double().mean() - log_z).item()

    @torch.no_grad()
    def log_partition_ais(
        self,
        n_chains: int = 100,
        n_betas: int = 10_000,
        generator: torch.Generator | None = None,
        base_data: torch.Tensor | None = None,
    ) -> float:
        """Annealed importance sampling estimate of log Z (Salakhutdinov & Murray 2008).

        The base-rate RBM A has zero weights and zero hidden biases, and visible biases b_A zero
        or, given `base_data` (B, n_visible), log(m / (1 - m)) of the data means m; its
        Z_A = 2^n_hidden prod_i (1 + exp(b_A_i)). Intermediate models for 0 = beta_0 < ... <
        beta_K = 1 have unnormalised marginals

            p*_k(v) = exp((1 - beta_k) b_A.v + beta_k b.v) prod_j (1 + exp(beta_k (c_j + v.W_j)))

        Each chain starts at v ~ p_A, adds log p*_k(v) - log p*_{k-1}(v) to its log weight w,
        then moves by one Gibbs step that leaves p_k invariant. log Z = log Z_A + log mean w.
        Computed in float64; `generator` must be on the model's device.
        """
        W, b, c = (p.detach().double() for p in (self.W, self.b, self.c))
        if base_data is None:
            b_a = torch.zeros_like(b)
        else:
            m = base_data.to(b).mean(0).clamp(1e-3, 1 - 1e-3)
            b_a = torch.log(m) - torch.log1p(-m)  # base rates: sigmoid(b_A) = data mean
        betas = torch.linspace(0, 1, n_betas, dtype=torch.float64).tolist()
        log_z_a = self.n_hidden * math.log(2) + F.softplus(b_a).sum().item()  # log Z_A
        v = torch.bernoulli(torch.sigmoid(b_a).expand(n_chains, -1), generator=generator)
        log_w = torch.zeros(n_chains, dtype=torch.float64, device=W.device)
        for k in range(1, n_betas):
            beta, prev = betas[k], betas[k - 1]
            x = v @ W + c  # (n_chains, n_hidden)
            # log p*_k(v) - log p*_{k-1}(v)
            log_w += (beta - prev) * (v @ (b - b_a))
            log_w += F.softplus(beta * x).sum(1) - F.softplus(prev * x).sum(1)
            if k < n_betas - 1:  # Gibbs transition T_k, leaving p_k invariant
                h = torch.bernoulli(torch.sigmoid(beta * x), generator=generator)
                pv = torch.sigmoid((1 - beta) * b_a + beta * (h @ W.T + b))
                v = torch.bernoulli(pv, generator=generator)
        return log_z_a + (torch.logsumexp(log_w, 0) - math.log(n_chains)).item()


# --- the layer kind: how deepnets.train.pretrain trains a stack of RBMs (dbn-mnist) ------------


def _rbm_layer(config: DBNConfig, n_in: int, n_out: int, generator: torch.Generator):
    n_chains = config.pretrain_batch_size if config.persistent else 0  # PCD: one per example
    return RBM(n_in, n_out, generator=generator, n_chains=n_chains)


def _rbm_loss(layer: RBM, x, config: DBNConfig, generator, net) -> torch.Tensor:
    return layer.cd_loss(x, config.cd_k, generator, layer.chain, net)


def _rbm_start(layer: RBM, x, config: DBNConfig, generator) -> None:
    """PCD: the chains start at binary samples of random rows of the layer's data."""
    if layer.chain is not None:
        rows = torch.randperm(len(x), generator=generator)[: len(layer.chain)]
        layer.start_chains(x[rows.to(x.device)].cpu(), generator)


@torch.no_grad()
def _rbm_measure(layer, x, config) -> dict[str, float]:
    return {
        "recon_error": float(layer.reconstruction_error(x)),
        "free_energy": float(layer.free_energy(x).mean()),
    }


RBM_LAYERS = Layerwise(
    make_layer=_rbm_layer,
    loss=_rbm_loss,
    weights=lambda rbm: (rbm.W.T, rbm.c),  # p(h=1|v) = sigmoid(W^T v + c)
    measure=_rbm_measure,
    start=_rbm_start,
)
