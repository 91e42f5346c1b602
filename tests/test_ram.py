"""ram-mnist / convnet-cluttered: the glimpse sensor against hand-picked pixels, cluttered MNIST
(each split's clutter from its own digits, deterministic), the REINFORCE gradient's sign and
size, shapes and exact parameter counts, gradients, resume, and the CLI with the glimpse
figure."""

import dataclasses
import json
import math

import pytest
import torch
from conftest import assert_resume_is_bit_identical, needs_mnist, run_cli

from deepnets import DeepnetsError
from deepnets.config import ConfigError
from deepnets.data import cluttered_mnist, mnist
from deepnets.data.cluttered_mnist import clutter, clutter_batch, load_cluttered
from deepnets.experiments.attention import CONVNET_CLUTTERED, RAM_MNIST, build_ram
from deepnets.figures.glimpses import draw_glimpses
from deepnets.models.ram import RAM, Trajectory, gaussian_log_prob, glimpse, hybrid_loss
from deepnets.train import engine
from deepnets.train.attention import PATHS_SEED, place

# --- the glimpse sensor, by hand -------------------------------------------------------------


def test_glimpse_extracts_the_right_pixels():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)  # pixel (r, c) holds 8 r + c
    centre = glimpse(x, torch.zeros(1, 2), 2, 2)  # (1, 2 scales, 1, 2, 2)
    # centre pixel coordinate 4: the 2x2 patch covers rows/cols 3-4; the 4x4 one rows/cols 2-5
    assert torch.equal(centre[0, 0, 0], torch.tensor([[27.0, 28.0], [35.0, 36.0]]))
    coarse = [[(18 + 19 + 26 + 27) / 4, (20 + 21 + 28 + 29) / 4]]
    coarse.append([(34 + 35 + 42 + 43) / 4, (36 + 37 + 44 + 45) / 4])
    assert torch.equal(centre[0, 1, 0], torch.tensor(coarse))
    corner = glimpse(x, torch.tensor([[-1.0, -1.0]]), 2, 1)[0, 0, 0]  # rows/cols -1 and 0
    assert torch.equal(corner, torch.tensor([[0.0, 0.0], [0.0, 0.0]]))  # pixel (0, 0) is 0
    corner = glimpse(x, torch.tensor([[1.0, 1.0]]), 2, 1)[0, 0, 0]  # rows/cols 7 and 8
    assert torch.equal(corner, torch.tensor([[63.0, 0.0], [0.0, 0.0]]))  # zeros beyond


def test_glimpse_reads_rows_then_columns_of_a_non_square_image():
    x = torch.arange(24.0).reshape(1, 1, 4, 6)  # 4 rows, 6 columns: pixel (r, c) is 6 r + c
    loc = torch.tensor([[-0.5, 0.5]])  # row 1, column 4.5
    patch = glimpse(x, loc, 2, 1)[0, 0, 0]  # rows 0-1, columns 4-5 (floor(3.5 + 0.5) = 4)
    assert torch.equal(patch, torch.tensor([[4.0, 5.0], [10.0, 11.0]]))
    batch = glimpse(torch.cat([x, -x]), torch.cat([loc, loc]), 2, 1)  # each image its own
    assert torch.equal(batch[1, 0, 0], -patch)


# --- cluttered MNIST -------------------------------------------------------------------------


def _fake_mnist(val_size: int = 0):
    """Every digit a full 28x28 block: training digits 0.3, validation 0.5, test 0.7 (0-1)."""

    def split(value: float, n: int):
        x = torch.full((n, 1, 28, 28), (value - mnist.MEAN) / mnist.STD)  # standardised
        return x, torch.arange(n) % 10

    return {"train": split(0.3, 40), "val": split(0.5, 20), "test": split(0.7, 30)}


def test_each_splits_clutter_comes_from_its_own_digits_only(monkeypatch):
    monkeypatch.setattr(mnist, "load_mnist", _fake_mnist)
    data = load_cluttered(val_size=20, size=60, pieces=4, seed=3)
    assert data["train"][0].shape == (40, 1, 28, 28)  # cluttered anew each epoch
    for split, value in (("val", 0.5), ("test", 0.7)):
        x = data[split][0]
        assert x.shape[1:] == (1, 60, 60)
        seen = {round(v, 4) for v in torch.unique(x).tolist()}
        # the digit's own value, its sums clipped to 1, or background; no other split's value
        assert seen == {0.0, value, 1.0}, (split, seen)
        ink = (x > 0).flatten(1).sum(1)
        assert (ink > 28 * 28).float().mean() > 0.9  # clutter outside the digit on most images
    again = load_cluttered(val_size=20, size=60, pieces=4, seed=3)
    assert torch.equal(again["test"][0], data["test"][0])  # a fixed seed: the same test set
    other = load_cluttered(val_size=20, size=60, pieces=4, seed=4)
    assert not torch.equal(other["test"][0], data["test"][0])


def test_clutter_places_the_digit_and_cuts_pieces_from_other_digits():
    shades = (0.11, 0.23, 0.37)  # no sum of two of them (overlapping pieces) is the third
    digits = torch.tensor(shades)[:, None, None, None].expand(3, 1, 28, 28).contiguous()
    images, corner = clutter(digits, digits, 60, 6, torch.Generator().manual_seed(0))
    for k, shade in enumerate(shades):
        r, c = corner[k].tolist()
        block = images[k, 0, r : r + 28, c : c + 28]
        assert (block >= shade - 1e-6).all()  # the digit where the corner says
        outside = images[k, 0].clone()
        outside[r : r + 28, c : c + 28] = 0
        values = {round(v, 4) for v in torch.unique(outside).tolist()} - {0.0}
        assert values and shade not in values  # pieces of the other digits only
    assert torch.equal(clutter_batch(digits, 28, 0, torch.Generator()), digits)  # plain MNIST
    with pytest.raises(DeepnetsError, match="at least as large as a digit"):
        clutter(digits, digits, 20, 1, torch.Generator())
    with pytest.raises(DeepnetsError, match=r"must be \(N, 1, 28, 28\)"):
        clutter(digits[:, :, :20], digits, 60, 1, torch.Generator())


def test_place_shifts_training_digits_within_their_frame_only_when_asked():
    digit = torch.zeros(64, 1, 28, 28)
    digit[:, 0, 10:18, 10:18] = 1.0  # an 8x8 square of ink, 10 pixels from every edge
    config = dataclasses.replace(RAM_MNIST.presets["tiny"], max_shift=3)
    shifted = place(digit, config, torch.Generator().manual_seed(0))
    assert shifted.shape == digit.shape and torch.equal(
        shifted.sum((1, 2, 3)), digit.sum((1, 2, 3))
    )
    rows = shifted[:, 0].sum(2).nonzero()  # (ink rows) as (image, row)
    tops = torch.stack([rows[rows[:, 0] == k, 1].min() for k in range(64)])
    assert set(tops.tolist()) <= set(range(7, 14)) and len(set(tops.tolist())) > 3  # within 3
    unshifted = dataclasses.replace(config, max_shift=0)
    assert torch.equal(place(digit, unshifted, torch.Generator().manual_seed(0)), digit)


# --- REINFORCE -------------------------------------------------------------------------------


def test_reinforce_gradient_pulls_the_mean_toward_rewarded_locations_only():
    std = 0.2
    mean = torch.zeros(2, 2, requires_grad=True)  # the policy's mean for two images
    loc = torch.tensor([[0.3, -0.1], [0.3, -0.1]])  # where each looked
    logits = torch.tensor([[5.0, 0.0], [5.0, 0.0]])  # both answer class 0
    y = torch.tensor([0, 1])  # image 0 right (R = 1), image 1 wrong (R = 0)
    baselines = torch.full((2, 1), 0.5, requires_grad=True)
    out = Trajectory(logits, gaussian_log_prob(loc, mean, std)[:, None], baselines, loc[:, None])
    loss, parts = hybrid_loss(out, y)
    loss.backward()
    # d/dmean of -(R - b) log N(l; mean, std^2) / B is -(R - b) (l - mean) / std^2 / B
    expected = torch.stack([-(1 - 0.5) * loc[0], -(0 - 0.5) * loc[1]]) / std**2 / 2
    assert torch.allclose(mean.grad, expected)
    step = -mean.grad  # gradient descent: toward the rewarded look, away from the unrewarded
    assert (step[0] * loc[0] > 0).all() and (step[1] * loc[1] < 0).all()
    assert torch.allclose(baselines.grad, torch.tensor([[-0.5], [0.5]]))  # b -> R by MSE
    assert float(parts["reward"]) == 0.5
    z = gaussian_log_prob(torch.tensor([[0.1, 0.0]]), torch.zeros(1, 2), 0.5)
    assert math.isclose(float(z), -0.02 - 2 * math.log(0.5 * math.sqrt(2 * math.pi)), rel_tol=1e-6)


# --- the models ------------------------------------------------------------------------------


def test_shapes_and_exact_parameter_counts():
    ram = RAM_MNIST.build_model(RAM_MNIST.preset("cluttered"))
    # W_g 432x128, W_l 2x128, W_hg and W_hl 128x256, an LSTM of 256, loc, baseline, out
    lstm = 4 * 256 * (256 + 256) + 2 * 4 * 256
    expected = (432 + 1) * 128 + 3 * 128 + 2 * (129 * 256) + lstm + 257 * 2 + 257
    assert sum(p.numel() for p in ram.parameters()) == expected + 257 * 10 == 651_533
    relu_core = RAM_MNIST.build_model(
        dataclasses.replace(RAM_MNIST.preset("cluttered"), core="rnn")
    )
    # the paper's ReLU core instead: W_gh and W_hh 256x256
    assert sum(p.numel() for p in relu_core.parameters()) == 651_533 - lstm + 2 * 257 * 256
    conv = CONVNET_CLUTTERED.build_model(CONVNET_CLUTTERED.preset("small"))
    # 8 10x10 filters, 11x11 maps of stride 5 on 60x60, 256 hidden, 10 out: the ReLU RAM's size
    assert sum(p.numel() for p in conv.parameters()) == 808 + (968 + 1) * 256 + 257 * 10
    out = ram(torch.rand(5, 1, 60, 60))
    assert out.logits.shape == (5, 10) and out.locations.shape == (5, 8, 2)
    assert out.log_probs.shape == out.baselines.shape == (5, 7)
    assert out.locations.abs().max() <= 1 and torch.equal(out.locations[:, 0], torch.zeros(5, 2))
    assert conv(torch.rand(5, 1, 60, 60)).shape == (5, 10)
    lstm = RAM(glimpses=2, hidden=16, core="lstm").eval()
    first, second = lstm(torch.rand(3, 1, 28, 28)), lstm(torch.rand(3, 1, 28, 28))
    assert torch.equal(first.locations[:, 0], second.locations[:, 0])  # no sampling in eval
    with pytest.raises(ValueError, match="core must be rnn or lstm"):
        RAM(core="gru")


@pytest.mark.parametrize("core", ["rnn", "lstm"])
def test_one_backward_gives_every_parameter_a_finite_gradient(core):
    torch.manual_seed(0)
    model = RAM(glimpses=3, glimpse_size=4, scales=2, hidden=16, core=core)
    loss, _ = hybrid_loss(model(torch.rand(8, 1, 28, 28)), torch.randint(10, (8,)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("reinforce_core", [False, True])
def test_the_policy_and_baseline_train_the_core_only_when_asked(reinforce_core):
    """The REINFORCE and baseline terms alone (cross-entropy left out) reach the core and glimpse
    networks with reinforce_core (the paper's hybrid loss), and never without (stop-gradient)."""
    torch.manual_seed(0)
    model = RAM(glimpses=3, glimpse_size=4, scales=2, hidden=16, reinforce_core=reinforce_core)
    out = model(torch.rand(8, 1, 28, 28))
    reward = torch.randint(2, (8, 1)).float()
    policy = -(out.log_probs * (reward - out.baselines.detach())).sum()
    (policy + ((out.baselines - reward) ** 2).sum()).backward()
    assert model.locate.weight.grad.abs().sum() > 0 and model.baseline.weight.grad.abs().sum() > 0
    for layer in (model.what, model.where, model.core, model.recur):
        reached = layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
        assert reached == reinforce_core
    assert model.classify.weight.grad is None  # the classifier is the cross-entropy's alone


def test_averaged_test_paths_are_reproducible_and_leave_the_training_rng_alone():
    """eval_paths=1 is the policy's mean path; k > 1 averages the class probabilities of it and
    k - 1 sampled paths drawn from a fixed seed: the same score twice, the global RNG untouched,
    each sampled path the one a generator of that seed gives."""
    torch.manual_seed(0)
    model = RAM(glimpses=3, glimpse_size=4, scales=2, hidden=16, std=0.5).eval()
    x = torch.rand(6, 1, 28, 28)
    config = RAM_MNIST.preset("tiny")
    attend = RAM_MNIST.task
    with torch.no_grad():
        mean_path = model(x, sample=False).logits
        assert torch.equal(attend.logits(model, x, config), mean_path)
        state = torch.get_rng_state()
        four = dataclasses.replace(config, eval_paths=4)
        averaged = attend.logits(model, x, four)
        assert torch.equal(torch.get_rng_state(), state)
        assert torch.equal(attend.logits(model, x, four), averaged)
        assert torch.allclose(averaged.exp().sum(1), torch.ones(6))
        g = torch.Generator().manual_seed(PATHS_SEED)
        probs = [model(x, sample=False).logits.softmax(1)]
        probs += [model(x, sample=True, generator=g).logits.softmax(1) for _ in range(3)]
        assert torch.allclose(averaged, torch.stack(probs).mean(0).log(), atol=1e-6)
        assert not torch.allclose(averaged, mean_path.log_softmax(1), atol=1e-3)  # paths differ
    with pytest.raises(ConfigError, match="eval_paths=0 is not allowed"):
        dataclasses.replace(config, eval_paths=0)


def test_the_policy_std_is_annealed_on_a_half_cosine_only_when_asked():
    """std_end > 0: the std of each training step falls from std to std_end on a half cosine
    (a function of the step alone); std_end 0 keeps std; the built model has the final std."""
    config = dataclasses.replace(RAM_MNIST.preset("tiny"), std=0.25, std_end=0.05)
    model, attend = build_ram(config), RAM_MNIST.task
    assert model.std == 0.05  # the policy as trained, for sampled test paths
    stds = []
    for step in (0, 50, 100):
        lr = attend.lr_at(model, step, 101, 10, config)
        assert lr == engine.lr_at(step, 101, 10, config)  # the rate itself is unchanged
        stds.append(model.std)
    assert stds == pytest.approx([0.25, 0.15, 0.05])
    fixed = dataclasses.replace(config, std_end=0.0)
    model = build_ram(fixed)
    attend.lr_at(model, 100, 101, 10, fixed)
    assert model.std == 0.25
    with pytest.raises(ConfigError, match="std_end=-0.1 is not allowed"):
        dataclasses.replace(config, std_end=-0.1)


# --- training, resume, the command line ------------------------------------------------------


def _fake_experiment():
    """ram-mnist on generated data: class 0 a bright block at the top left, 1 at the bottom
    right, on a 28x28 canvas (no MNIST needed)."""
    g = torch.Generator().manual_seed(0)

    def make(n):
        y = torch.randint(2, (n,), generator=g)
        x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
        x[y == 0, :, 2:12, 2:12] += 0.9
        x[y == 1, :, 16:26, 16:26] += 0.9
        return x, y

    data = {"train": make(512), "val": make(128), "test": make(128)}
    return dataclasses.replace(RAM_MNIST, load_data=lambda config: data)


def test_tiny_model_learns_and_resume_is_bit_identical(tmp_path, monkeypatch):
    experiment = _fake_experiment()
    config = dataclasses.replace(
        RAM_MNIST.preset("tiny"),
        epochs=4,
        batch_size=32,
        lr=3e-3,
        schedule="constant",
        train_subset=0,
        val_size=128,
        std=0.3,
        std_end=0.05,  # the std's anneal, too, must resume where it stopped
    )
    summary = assert_resume_is_bit_identical(experiment, config, tmp_path, monkeypatch)
    assert summary["value"] >= 0.9  # two classes, each block overlapping the first glimpse


@needs_mnist
def test_cli_tiny_run_then_glimpse_figure(tmp_path):
    run_dir = tmp_path / "run"
    ran = run_cli("run", "ram-mnist", "--preset", "tiny", "--run-dir", str(run_dir), "--quiet")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "accuracy" and summary["value"] > 0.15  # 10 classes: chance 0.1
    paths = run_cli("eval", str(run_dir), "--set", "eval_paths=3")  # a test-time choice
    assert paths.returncode == 0 and paths.stdout.startswith("test accuracy "), paths.stderr
    out = tmp_path / "glimpses.png"
    drawn = run_cli("figure", "fig-glimpses", str(run_dir), "--out", str(out))
    assert drawn.returncode == 0, drawn.stderr
    assert out.stat().st_size > 10_000
    with pytest.raises(DeepnetsError, match="needs a trained recurrent attention model"):
        draw_glimpses(None)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="image_size=20 is not allowed"):
        dataclasses.replace(RAM_MNIST.preset("tiny"), image_size=20)
    with pytest.raises(ConfigError, match="kernel must not exceed image_size"):
        dataclasses.replace(CONVNET_CLUTTERED.preset("tiny"), image_size=28, kernel=30)
    assert cluttered_mnist.DIGIT == 28


def test_a_run_with_an_annealed_std_cannot_be_lengthened_but_one_with_a_fixed_std_can():
    """Lengthening replays the task's per-step settings: the std anneal over more steps would
    have given every step taken another std, so it is refused; a fixed std passes."""
    annealed = dataclasses.replace(
        RAM_MNIST.preset("tiny"), schedule="cosine", warmup=0.0, std_end=0.05, epochs=2
    )
    longer = dataclasses.replace(annealed, epochs=4, cosine_cycles=2)
    with pytest.raises(DeepnetsError, match="would have trained step 1 differently"):
        engine.check_lengthening(RAM_MNIST.task, annealed, longer, 10, 2)
    fixed, fixed_longer = (dataclasses.replace(c, std_end=0.0) for c in (annealed, longer))
    engine.check_lengthening(RAM_MNIST.task, fixed, fixed_longer, 10, 2)
