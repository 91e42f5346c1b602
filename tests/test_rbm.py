"""Tests of the restricted Boltzmann machine: CD statistics by hand, free energy and partition
function by brute force, AIS against the exact log Z, the CD surrogate loss whose gradient is the
CD update, and likelihood rising under CD-1 and PCD."""

import itertools
import math

import pytest
import torch

from deepnets.config import TrainConfig
from deepnets.models.rbm import RBM
from deepnets.train.engine import make_optimizer


def _rbm(n_visible, n_hidden, seed, w_scale=0.5, bias_scale=0.5):
    """A float64 RBM with random weights and biases of the given scales."""
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden).double()
    with torch.no_grad():
        rbm.W.copy_(torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64) * w_scale)
        rbm.b.copy_(torch.randn(n_visible, generator=g, dtype=torch.float64) * bias_scale)
        rbm.c.copy_(torch.randn(n_hidden, generator=g, dtype=torch.float64) * bias_scale)
    return rbm


def _configs(n):
    """All 2^n binary vectors, (2^n, n) float64."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def _energy(rbm, v, h):
    """E(v, h) = -b.v - c.h - v W h for single vectors."""
    return -(v @ rbm.b) - (h @ rbm.c) - (v @ rbm.W @ h)


def bars_and_stripes(rows=4, cols=3):
    """The distinct rows x cols images whose rows are all on or off, or whose columns are."""
    patterns = set()
    for bits in itertools.product([0, 1], repeat=rows):  # horizontal stripes
        patterns.add(tuple(bit for bit in bits for _ in range(cols)))
    for bits in itertools.product([0, 1], repeat=cols):  # vertical bars
        patterns.add(tuple(bits[j] for _ in range(rows) for j in range(cols)))
    return torch.tensor(sorted(patterns), dtype=torch.float64)  # (22, 12) for 4x3


def test_shapes_and_exact_parameter_count():
    rbm = RBM(784, 500)
    assert sum(p.numel() for p in rbm.parameters()) == 784 * 500 + 784 + 500 == 393_284
    assert rbm.W.shape == (784, 500) and rbm.b.shape == (784,) and rbm.c.shape == (500,)
    g = torch.Generator().manual_seed(0)
    v = torch.rand(7, 784, generator=g)
    h = rbm.sample_h(v, g)
    assert rbm.hidden_probs(v).shape == h.shape == (7, 500)
    assert rbm.visible_probs(h).shape == rbm.sample_v(h, g).shape == (7, 784)
    assert set(h.unique().tolist()) <= {0.0, 1.0}
    assert rbm.free_energy(v).shape == (7,)
    assert rbm.reconstruction_error(v).shape == ()
    dW, db, dc = rbm.cd_update(v, 2, g)
    assert dW.shape == (784, 500) and db.shape == (784,) and dc.shape == (500,)


def test_cd1_update_equals_hand_computation_with_the_same_draws():
    W = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]]
    b, c = [0.1, -0.2, 0.3], [-0.5, 0.4]
    rbm = RBM(3, 2).double()
    with torch.no_grad():
        for param, value in ((rbm.W, W), (rbm.b, b), (rbm.c, c)):
            param.copy_(torch.tensor(value, dtype=torch.float64))
    v0 = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.3]], dtype=torch.float64)  # 0.3: intensity
    dW, db, dc = rbm.cd_update(v0, 1, torch.Generator().manual_seed(3))

    # By hand: p(h_j=1|v) = sigmoid(c_j + sum_i v_i W_ij), p(v_i=1|h) = sigmoid(b_i + sum_j
    # W_ij h_j), replaying the two Bernoulli draws (h0, then v1) from a generator seeded alike.
    def sig(x):
        return 1 / (1 + math.exp(-x))

    def p_h(v):
        return [[sig(c[j] + sum(r[i] * W[i][j] for i in range(3))) for j in range(2)] for r in v]

    def p_v(h):
        return [[sig(b[i] + sum(W[i][j] * r[j] for j in range(2))) for i in range(3)] for r in h]

    g = torch.Generator().manual_seed(3)
    v_0 = v0.tolist()
    p0 = p_h(v_0)
    h0 = torch.bernoulli(torch.tensor(p0, dtype=torch.float64), generator=g).tolist()
    v1 = torch.bernoulli(torch.tensor(p_v(h0), dtype=torch.float64), generator=g).tolist()
    p1 = p_h(v1)
    B = 2
    hand_dW = [
        [sum(v_0[n][i] * p0[n][j] - v1[n][i] * p1[n][j] for n in range(B)) / B for j in range(2)]
        for i in range(3)
    ]
    hand_db = [sum(v_0[n][i] - v1[n][i] for n in range(B)) / B for i in range(3)]
    hand_dc = [sum(p0[n][j] - p1[n][j] for n in range(B)) / B for j in range(2)]
    torch.testing.assert_close(dW, torch.tensor(hand_dW, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(db, torch.tensor(hand_db, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(dc, torch.tensor(hand_dc, dtype=torch.float64), rtol=0, atol=1e-12)
    assert dW.abs().sum() > 0.1  # the draws did not make the two phases cancel


def test_cd1_update_averages_to_its_exact_expectation():
    # E[dW] = sum_{h0, v1} p(h0|v0) p(v1|h0) (v0 p(h|v0) - v1 p(h|v1)), enumerated over 4 x 8
    # configurations; the batch of 40,000 copies of v0 gives the Monte Carlo mean.
    # Measured max abs error with seed 0: 0.0034 (dW), 0.0040 (db), 0.0007 (dc); over seeds 0-4
    # at most 0.0056. The sampling std of one entry is at most 0.5 / sqrt(40,000) = 0.0025.
    rbm = _rbm(3, 2, seed=4, w_scale=1.0)
    v0 = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    p0 = rbm.hidden_probs(v0[None])[0].detach()
    exp_dW, exp_db, exp_dc = torch.zeros(3, 2, dtype=torch.float64), 0.0, 0.0
    for h0 in _configs(2):
        p_h0 = torch.prod(p0**h0 * (1 - p0) ** (1 - h0))
        pv = rbm.visible_probs(h0[None])[0].detach()
        for v1 in _configs(3):
            weight = p_h0 * torch.prod(pv**v1 * (1 - pv) ** (1 - v1))
            p1 = rbm.hidden_probs(v1[None])[0].detach()
            exp_dW += weight * (torch.outer(v0, p0) - torch.outer(v1, p1))
            exp_db += weight * (v0 - v1)
            exp_dc += weight * (p0 - p1)
    dW, db, dc = rbm.cd_update(v0.expand(40_000, 3), 1, torch.Generator().manual_seed(0))
    assert (dW - exp_dW).abs().max() < 0.01
    assert (db - exp_db).abs().max() < 0.01
    assert (dc - exp_dc).abs().max() < 0.01


def test_cd_update_is_the_free_energy_gradient_difference_and_pcd_advances_the_chain():
    # With hidden probabilities in both phases, d = -d/dtheta [mean F(v_data) - mean F(v_k)].
    rbm = _rbm(6, 4, seed=5)
    g = torch.Generator().manual_seed(1)
    v0 = torch.bernoulli(torch.full((9, 6), 0.4, dtype=torch.float64), generator=g)
    chain = torch.bernoulli(torch.full((5, 6), 0.5, dtype=torch.float64), generator=g)
    start = chain.clone()
    dW, db, dc = rbm.cd_update(v0, 3, g, persistent_chain=chain)
    assert not torch.equal(chain, start)  # advanced in place, to v_3
    (rbm.free_energy(v0).mean() - rbm.free_energy(chain).mean()).backward()
    for d, p in ((dW, rbm.W), (db, rbm.b), (dc, rbm.c)):
        torch.testing.assert_close(d, -p.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k, persistent", [(1, False), (3, False), (1, True), (2, True)])
def test_cd_loss_gradient_is_exactly_minus_the_cd_update_for_the_same_draws(k, persistent):
    rbm = _rbm(6, 4, seed=10)
    g = torch.Generator().manual_seed(2)
    v0 = torch.rand(9, 6, generator=g, dtype=torch.float64)  # intensities, as in pre-training
    chain = torch.bernoulli(torch.full((5, 6), 0.5, dtype=torch.float64), generator=g)
    chain_a, chain_b = chain.clone(), chain.clone()
    dW, db, dc = rbm.cd_update(
        v0, k, torch.Generator().manual_seed(7), chain_a if persistent else None
    )
    loss = rbm.cd_loss(v0, k, torch.Generator().manual_seed(7), chain_b if persistent else None)
    loss.backward()
    for d, p in ((dW, rbm.W), (db, rbm.b), (dc, rbm.c)):
        torch.testing.assert_close(p.grad, -d, rtol=0, atol=1e-12)
    assert torch.equal(chain_a, chain_b)  # the same Gibbs draws, the chain advanced alike
    assert persistent != torch.equal(chain_b, chain)  # PCD advanced it; CD-k left it alone
    assert dW.abs().sum() > 0.1  # the two phases did not cancel


def test_free_energy_equals_minus_log_of_the_brute_force_marginal():
    rbm = _rbm(4, 3, seed=6, w_scale=1.0)
    vs, hs = _configs(4), _configs(3)
    for v in vs:
        brute = -torch.logsumexp(torch.stack([-_energy(rbm, v, h) for h in hs]), 0)
        assert rbm.free_energy(v[None])[0].item() == pytest.approx(brute.item(), abs=1e-12)


def test_exact_log_partition_both_directions_and_normalisation():
    rbm = _rbm(7, 5, seed=7, w_scale=1.0)
    over_v, over_h = rbm.log_partition_exact("visible"), rbm.log_partition_exact("hidden")
    joint = torch.logsumexp(
        torch.stack([-_energy(rbm, v, h) for v in _configs(7) for h in _configs(5)]), 0
    )
    assert over_v == pytest.approx(over_h, abs=1e-10)
    assert over_h == pytest.approx(joint.item(), abs=1e-10)
    assert rbm.log_partition_exact() == over_h  # the smaller layer is the hidden one
    log_z = rbm.log_partition_exact()
    log_p = torch.tensor(
        [rbm.log_likelihood_exact(v[None], log_z) for v in _configs(7)], dtype=torch.float64
    )
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-10)  # sum_v p(v) = 1
    assert rbm.log_likelihood_exact(_configs(7)) == pytest.approx(log_p.mean().item(), abs=1e-10)
    wide = _rbm(5, 7, seed=7)  # more hidden than visible: enumerates v, and agrees with h
    assert wide.log_partition_exact() == pytest.approx(wide.log_partition_exact("hidden"), 1e-12)


def test_exact_methods_refuse_large_layers_and_non_binary_data():
    with pytest.raises(ValueError, match="at most 20"):
        RBM(50, 21).log_partition_exact()
    with pytest.raises(ValueError, match="at most 20"):
        RBM(784, 500).log_partition_exact("visible")
    assert math.isfinite(RBM(30, 12).log_partition_exact())
    with pytest.raises(ValueError, match="binary"):
        RBM(3, 2).log_likelihood_exact(torch.tensor([[0.0, 0.5, 1.0]]))


@pytest.mark.parametrize("w_scale", [0.5, 1.0])
def test_ais_estimate_is_close_to_the_exact_log_partition(w_scale):
    # Measured |AIS - exact| with 100 chains and 1,000 betas: 0.0079 (weights of scale 0.5) and
    # 0.0217 (scale 1.0) on this RBM (seed 0); over seeds 0-9 at most 0.0079 and 0.0217, with
    # log Z between 11.6 and 25.2.
    rbm = _rbm(10, 8, seed=0, w_scale=w_scale)
    exact = rbm.log_partition_exact()
    estimate = rbm.log_partition_ais(100, 1000, torch.Generator().manual_seed(100))
    assert abs(estimate - exact) < 0.05


def test_ais_with_a_base_rate_model_from_data_means():
    # Sparse data (means near 0.2) give non-zero base-rate biases b_A = log(m / (1 - m)).
    # Measured error 0.0116 on this RBM (0.0031 with zero base rates); over 5 such RBMs at most
    # 0.0116 (zero base rates: 0.0031).
    g = torch.Generator().manual_seed(8)
    data = torch.bernoulli(torch.full((200, 10), 0.2, dtype=torch.float64), generator=g)
    rbm = _rbm(10, 8, seed=8, w_scale=0.5)
    exact = rbm.log_partition_exact()
    estimate = rbm.log_partition_ais(100, 1000, torch.Generator().manual_seed(0), data)
    assert abs(estimate - exact) < 0.05


@pytest.mark.parametrize(
    "persistent, lr, steps, min_gain",
    # Measured mean log-likelihood, nats per pattern, seed 0: CD-1 -8.352 -> -5.463 (gain 2.89;
    # seeds 1-2: 2.39, 2.77), PCD-1 -8.352 -> -5.311 (gain 3.04; seeds 1-4: 2.54, 2.92, 2.23,
    # 2.42). The best possible is -log 22 = -3.09.
    # PCD at lr 0.1, momentum 0.9 for 2,000 steps ended at -8.16 to -8.83: it needs a small lr.
    [(False, 0.1, 1000, 2.0), (True, 0.05, 2000, 2.0)],
)
def test_cd1_and_pcd_raise_the_exact_log_likelihood_on_bars_and_stripes(
    persistent, lr, steps, min_gain
):
    data = bars_and_stripes()  # (22, 12): 16 stripes + 8 bars - 2 counted twice
    g = torch.Generator().manual_seed(0)
    rbm = RBM(12, 6, init_std=0.1, generator=g, n_chains=22 if persistent else 0).double()
    start = rbm.log_likelihood_exact(data)  # about -12 log 2 = -8.3
    if persistent:
        rbm.start_chains(data, g)  # one chain per pattern, at a binary sample of it
    optimizer = torch.optim.SGD(rbm.parameters(), lr=lr, momentum=0.5)
    for _ in range(steps):  # SGD on the CD surrogate: the CD-1 (PCD-1) update with momentum
        optimizer.zero_grad()
        rbm.cd_loss(data, 1, g, rbm.chain).backward()
        optimizer.step()
    end = rbm.log_likelihood_exact(data)
    assert start == pytest.approx(-12 * math.log(2), abs=0.1)
    assert end - start > min_gain
    assert end < -math.log(22)  # never above the entropy of the data set


def test_engine_sgd_on_cd_loss_applies_momentum_and_weight_decay_to_the_cd_increments():
    # The pre-training update written out (Hinton's guide): delta = m delta + lr (d - wd W) for
    # W, delta = m delta + lr d for the biases, theta += delta. The engine's SGD on cd_loss must
    # be exactly that.
    rbm = _rbm(5, 3, seed=9)
    W0, b0, c0 = (p.detach().clone() for p in (rbm.W, rbm.b, rbm.c))
    v = torch.bernoulli(
        torch.full((4, 5), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1)
    )
    lr, wd = 0.1, 0.01
    config = TrainConfig(optimizer="sgd", lr=lr, momentum=0.9, nesterov=False, weight_decay=wd)
    optimizer = make_optimizer(rbm, config)

    def step(seed):
        optimizer.zero_grad()
        rbm.cd_loss(v, 1, torch.Generator().manual_seed(seed)).backward()
        optimizer.step()

    dW, db, dc = rbm.cd_update(v, 1, torch.Generator().manual_seed(2))
    step(2)
    torch.testing.assert_close(rbm.W.detach(), W0 + lr * (dW - wd * W0), rtol=0, atol=1e-14)
    torch.testing.assert_close(rbm.b.detach(), b0 + lr * db, rtol=0, atol=1e-14)
    torch.testing.assert_close(rbm.c.detach(), c0 + lr * dc, rtol=0, atol=1e-14)
    W1, b1 = rbm.W.detach().clone(), rbm.b.detach().clone()
    dW2, db2, _ = rbm.cd_update(v, 1, torch.Generator().manual_seed(3))
    step(3)
    velocity = 0.9 * lr * (dW - wd * W0) + lr * (dW2 - wd * W1)  # delta = 0.9 delta + lr d
    torch.testing.assert_close(rbm.W.detach(), W1 + velocity, rtol=0, atol=1e-14)
    torch.testing.assert_close(rbm.b.detach(), b1 + 0.9 * lr * db + lr * db2, rtol=0, atol=1e-14)


@pytest.mark.parametrize("persistent", [False, True])
def test_one_engine_step_changes_every_parameter_group_and_keeps_it_finite(persistent):
    g = torch.Generator().manual_seed(0)
    rbm = RBM(20, 10, generator=g, n_chains=16 if persistent else 0)
    v = torch.rand(16, 20, generator=g)  # intensities in [0, 1]
    if persistent:
        rbm.start_chains(v, g)
    chain = None if rbm.chain is None else rbm.chain.clone()
    before = [p.detach().clone() for p in rbm.parameters()]
    config = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.5, weight_decay=2e-4)
    optimizer = make_optimizer(rbm, config)
    rbm.cd_loss(v, 1, g, rbm.chain).backward()
    for name, p in rbm.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    optimizer.step()
    for (name, p), old in zip(rbm.named_parameters(), before):
        assert torch.isfinite(p).all(), name
        assert (p.detach() - old).abs().max() > 1e-4, name
    # PCD's chains are a buffer: in the state_dict, so a checkpoint resumes them.
    assert sorted(rbm.state_dict()) == (["W", "b", "c", "chain"] if persistent else ["W", "b", "c"])
    if persistent:
        assert not torch.equal(rbm.chain, chain) and set(rbm.chain.unique().tolist()) <= {0.0, 1.0}
