import numpy as np
import pytest
import torch
from conftest import run_cli

from deepnets import DeepnetsError
from deepnets.figures.fig5 import (
    CLIP,
    CLIP_LR,
    EXPLODE_GAIN,
    OPEN_FORGET_BIAS,
    STEPS,
    VANISH_GAIN,
    clipping_run,
    draw_fig5,
    elman_net,
    lstm_net,
    random_sequence,
    state_gradient_norms,
)


@pytest.fixture(scope="module")
def sequence():
    return random_sequence()


def decay(norms: np.ndarray) -> float:
    """||dE_T/ds_1|| / ||dE_T/ds_T||: below 1 the signal vanished on its way back, above 1 grew."""
    return float(norms[0] / norms[-1])


def test_elman_state_gradients_match_a_hand_written_backward_pass(sequence):
    x, y = sequence
    model = elman_net(VANISH_GAIN)
    norms = state_gradient_norms(model, x, y)
    cell = model.layers[0].cell
    with torch.no_grad():
        h, hs = torch.zeros(1, model.hidden_size, dtype=torch.float64), []
        for e in model.embedding(x)[0]:  # e_t (E,)
            h = torch.tanh(e @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias)  # (1, H)
            hs.append(h)
        p = torch.softmax(model.decoder(hs[-1]), dim=1)  # (1, V)
        p[0, y[0, -1]] -= 1  # dE_T/dlogits_T = p - onehot(y_T)
        v = p @ model.decoder.weight  # dE_T/dh_T, (1, H)
        expected = [float(v.norm())]
        for t in range(STEPS - 1, 0, -1):  # dE_T/dh_{t-1} = W^T ((1 - h_t^2) * dE_T/dh_t)
            v = ((1 - hs[t] ** 2) * v) @ cell.weight_hh
            expected.append(float(v.norm()))
    np.testing.assert_allclose(norms, expected[::-1], rtol=1e-10)


def test_elman_gradient_vanishes_below_gain_one_and_explodes_above(sequence):
    x, y = sequence
    small = state_gradient_norms(elman_net(VANISH_GAIN), x, y)  # measured ratio 9.4e-11
    large = state_gradient_norms(elman_net(EXPLODE_GAIN), x, y)  # measured ratio 6.4e4
    assert small.shape == large.shape == (STEPS,)
    assert decay(small) < 1e-7
    assert decay(large) > 1e3
    # each backward step multiplies by W^T diag(1 - h^2): never more than the gain (tanh' <= 1)
    assert np.all(small[:-1] <= VANISH_GAIN * small[1:] * (1 + 1e-12))


def test_lstm_with_open_forget_gates_keeps_the_signal(sequence):
    x, y = sequence
    vanishing = decay(state_gradient_norms(elman_net(VANISH_GAIN), x, y))  # measured 9.4e-11
    open_gates = decay(state_gradient_norms(lstm_net(OPEN_FORGET_BIAS), x, y))  # measured 0.39
    default = decay(state_gradient_norms(lstm_net(0.0), x, y))  # f ~ 0.5: measured 1.3e-14
    assert open_gates > 0.05
    assert open_gates > 1e6 * vanishing
    assert default < 1e-10  # the LSTM's advantage is the forget gates' values, not the wiring


def test_clipping_bounds_the_step_and_keeps_its_direction():
    free, clipped = clipping_run(None), clipping_run(CLIP)
    bound = CLIP_LR * CLIP
    active = clipped["raw"] > CLIP
    assert active.sum() >= 10  # the exploding net's gradients do exceed c (25 of 40 steps)
    assert np.all(clipped["step"] <= bound + 1e-9)
    # clip_grad_norm_ scales by c / (||g|| + 1e-6), so an active step is just under lr * c
    np.testing.assert_allclose(clipped["step"][active], bound, rtol=1e-5)
    np.testing.assert_allclose(clipped["step"][~active], CLIP_LR * clipped["raw"][~active])
    assert np.all(np.abs(clipped["cosine"] - 1) < 1e-12)  # same direction as the raw gradient
    np.testing.assert_allclose(free["step"], CLIP_LR * free["raw"], rtol=1e-9)
    assert free["step"][0] > float(free["theta0"])  # measured 2.6e3 against ||theta_0|| = 60
    assert np.all(np.isfinite(free["loss"])) and np.all(np.isfinite(clipped["loss"]))


def test_draw_fig5_writes_a_png(tmp_path):
    out = draw_fig5(out=str(tmp_path / "fig5.png"))
    assert out == tmp_path / "fig5.png"
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DeepnetsError, match="no run folder"):
        draw_fig5(run_dir=str(tmp_path))


def test_figure_fig5_through_the_cli(tmp_path):
    out = tmp_path / "figs" / "fig5.png"
    result = run_cli("figure", "fig5", "--out", str(out), env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert out.is_file() and out.stat().st_size > 10_000
    assert str(out) in result.stdout
