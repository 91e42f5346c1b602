"""Deep Q-learning (issue 17): the replay buffer's invariants, the Atari preprocessing, the
Q-networks, the TD target, resume equal to an uninterrupted run, and the tiny presets through the
CLI. The environments need the `rl` extra (gymnasium, minatar, ale-py, opencv-python-headless).
"""

import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from deepnets import DeepnetsError
from deepnets.config import ConfigError, apply_overrides
from deepnets.train.replay import ReplayBuffer


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


needs_gym = pytest.mark.skipif(
    bool(_missing("gymnasium")), reason="gymnasium is not installed (pip install -e '.[rl]')"
)
needs_minatar = pytest.mark.skipif(
    bool(_missing("gymnasium", "minatar")),
    reason="minatar is not installed (pip install -e '.[rl]')",
)
needs_ale = pytest.mark.skipif(
    bool(_missing("gymnasium", "ale_py", "cv2")),
    reason="ale-py or opencv-python-headless is not installed (pip install -e '.[rl]')",
)


def experiment(name: str):
    from deepnets.experiments import get_experiment

    return get_experiment(name)


# --- the replay buffer ------------------------------------------------------------------------


def fill(buffer: ReplayBuffer, lengths: list[int], truncate_last: bool = False) -> None:
    """Episodes of the given lengths; frame value = 1000 * episode + t (t = 0 at the reset)."""
    for e, length in enumerate(lengths):
        buffer.start(np.full(buffer.frame_shape, 1000 * e, dtype=np.float32))
        for t in range(1, length + 1):
            ends = t == length
            terminated = ends and not (truncate_last and e == len(lengths) - 1)
            frame = np.full(buffer.frame_shape, 1000 * e + t, dtype=np.float32)
            buffer.add(action=t % 3, reward=float(t), terminated=terminated, next_frame=frame)


@pytest.mark.parametrize("stack", [1, 4])
def test_sampled_transitions_never_cross_an_episode_boundary(stack):
    buffer = ReplayBuffer(capacity=37, frame_shape=(2,), dtype=np.float32, stack=stack)
    rng = np.random.default_rng(0)
    fill(buffer, [1, 2, 9, 3, 15, 1, 6, 20, 4])  # 61 transitions + 9 final frames: wraps around
    batch = buffer.sample(4000, rng)
    obs, nxt = batch["obs"][..., 0], batch["next_obs"][..., 0]
    if stack == 1:
        obs, nxt = obs[:, None], nxt[:, None]
    episode, t = obs // 1000, obs % 1000  # (B, stack)
    next_episode, next_t = nxt // 1000, nxt % 1000
    assert (episode == episode[:, -1:]).all() and (next_episode == episode[:, -1:]).all()
    assert (next_t[:, -1] == t[:, -1] + 1).all()  # s' is the very next frame
    expected = np.maximum(t[:, -1:] - np.arange(stack - 1, -1, -1), 0)  # first frame repeated
    assert (t == expected).all()
    assert (batch["reward"] == t[:, -1] + 1).all()  # the reward of that step
    assert len(np.unique(batch["write"])) == len(buffer)  # every sampleable one is drawn
    # the newest 37 writes are live; everything sampled is among them
    assert batch["write"].min() >= buffer.writes - 37
    # stack 4: never a transition whose earlier frames were overwritten by the ring
    if stack == 4:
        oldest = buffer.writes - 37
        assert ((batch["write"] - np.minimum(t[:, -1], 3)) >= oldest).all()


def test_terminated_transition_ends_the_episode_and_only_it_does():
    buffer = ReplayBuffer(capacity=100, frame_shape=(1,), dtype=np.float32)
    fill(buffer, [3, 2])
    batch = buffer.sample(500, np.random.default_rng(1))
    last = batch["next_obs"][:, 0] % 1000 == np.where(batch["obs"][:, 0] < 1000, 3, 2)
    assert (batch["terminated"] == last).all() and last.any() and (~last).any()
    assert len(buffer) == 5  # the two final frames start no transition


@needs_gym
def test_after_a_truncation_the_stored_next_observation_is_the_true_final_one():
    from deepnets.envs import make_env

    env = make_env("cartpole", max_episode_steps=7)
    buffer = ReplayBuffer(capacity=50, frame_shape=(4,), dtype=np.float32)
    obs, _ = env.reset(seed=3)
    buffer.start(obs)
    truncated = False
    while not truncated:
        final, reward, terminated, truncated, _ = env.step(0 if len(buffer) % 2 else 1)
        assert not terminated  # 7 steps of alternating pushes keep the pole up
        buffer.add(0, reward, terminated, final)
    t = np.array([buffer.writes - 2])  # the truncated transition
    assert np.array_equal(buffer.observation(t + 1)[0], final)  # the true final observation
    assert not buffer.terminated[t[0]]  # so the target bootstraps from it
    reset, _ = env.reset(seed=4)
    assert not np.array_equal(reset, final)
    buffer.start(reset)
    batch = buffer.sample(200, np.random.default_rng(0))
    assert not (batch["next_obs"] == reset).all(axis=1).any()  # no transition into a reset


def test_state_dict_round_trip_and_memory_per_transition():
    buffer = ReplayBuffer(capacity=20, frame_shape=(84, 84), dtype=np.uint8, stack=4)
    for e in range(3):
        buffer.start(np.full((84, 84), e, np.uint8))
        for t in range(9):
            buffer.add(1, 1.0, t == 8, np.full((84, 84), e * 10 + t, np.uint8))
    tensors, state = buffer.state_dict()
    copy = ReplayBuffer(capacity=20, frame_shape=(84, 84), dtype=np.uint8, stack=4)
    copy.load_state_dict(tensors, json.loads(json.dumps(state)))
    a = buffer.sample(64, np.random.default_rng(5))
    b = copy.sample(64, np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # one 84x84 frame stored once (not 4 times, nor again as s') + 12 bytes per transition
    assert buffer.nbytes == 20 * (84 * 84 + 2 + 4 + 1 + 1 + 4)
    with pytest.raises(DeepnetsError, match="capacity"):
        ReplayBuffer(30, (84, 84), np.uint8, 4).load_state_dict(tensors, state)


def test_bad_use_of_the_buffer_is_a_clear_error():
    with pytest.raises(DeepnetsError, match="start"):
        ReplayBuffer(10, (2,), np.float32).add(0, 0.0, False, np.zeros(2))
    with pytest.raises(DeepnetsError, match="exceed the stack"):
        ReplayBuffer(4, (2,), np.float32, stack=4)
    buffer = ReplayBuffer(10, (2,), np.float32)
    buffer.start(np.zeros(2))
    with pytest.raises(DeepnetsError, match="no complete transition"):
        buffer.sample(4, np.random.default_rng(0))


# --- the TD target, epsilon, the Q-networks ---------------------------------------------------


def test_td_loss_and_target_by_hand():
    from deepnets.train.reinforce import td_loss

    q = torch.nn.Linear(2, 2, bias=False)
    target = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        target.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
    batch = {
        "obs": torch.tensor([[1.0, 3.0], [2.0, 0.0]]),
        "action": torch.tensor([1, 0]),
        "reward": torch.tensor([1.0, -1.0]),
        "terminated": torch.tensor([0.0, 1.0]),
        "next_obs": torch.tensor([[1.0, 1.0], [5.0, 5.0]]),
    }
    # Q(s,a) = (3, 2); y = (1 + 0.5 * max(2, -1), -1) = (2, -1); Huber(1) = 0.5, Huber(3) = 2.5
    loss, q_mean = td_loss(q, target, batch, gamma=0.5, double=False)
    assert loss.item() == pytest.approx((0.5 + 2.5) / 2) and q_mean.item() == pytest.approx(2.5)
    # double: Q(s') = (0, 1) picks a' = 1, which the target values -1 (its max would be 0):
    # y = 1 + 0.5 * -1 = 0.5, Huber(3 - 0.5) = 2.0
    batch["next_obs"] = torch.tensor([[0.0, 1.0], [5.0, 5.0]])
    loss, _ = td_loss(q, target, batch, gamma=0.5, double=True)
    assert loss.item() == pytest.approx((abs(3 - 0.5) - 0.5 + 2.5) / 2)


def test_epsilon_falls_linearly_then_stays():
    from deepnets.train.reinforce import epsilon_at

    config = experiment("dqn-cartpole").preset("small")
    assert epsilon_at(0, config) == 1.0
    assert epsilon_at(5000, config) == pytest.approx((1.0 + 0.02) / 2)
    assert epsilon_at(10_000, config) == epsilon_at(99_999, config) == pytest.approx(0.02)


@pytest.mark.parametrize(
    "name, preset, params, shape",
    [
        ("dqn-cartpole", "small", 4 * 128 + 128 + 128 * 128 + 128 + 128 * 2 + 2, (4,)),
        (
            "dqn-minatar",
            "breakout",
            (4 * 16 * 9 + 16) + (1024 * 128 + 128) + (128 * 6 + 6),
            (4, 10, 10),
        ),
        (
            "dqn-minatar",
            "seaquest",
            (10 * 16 * 9 + 16) + (1024 * 128 + 128) + (128 * 6 + 6),
            (10, 10, 10),
        ),
        (
            "dqn-atari",
            "paper",
            (4 * 32 * 64 + 32)
            + (32 * 64 * 16 + 64)
            + (64 * 64 * 9 + 64)
            + (3136 * 512 + 512)
            + (512 * 6 + 6),
            (4, 84, 84),
        ),
    ],
)
def test_qnet_shapes_parameter_counts_and_gradients(name, preset, params, shape):
    torch.manual_seed(0)
    q = experiment(name).build_model(experiment(name).preset(preset))
    assert sum(p.numel() for p in q.parameters()) == params
    obs = torch.randint(0, 2, (3, *shape)).to(torch.uint8 if len(shape) > 1 else torch.float32)
    values = q(obs)
    assert values.shape == (3, 2 if name == "dqn-cartpole" else 6)
    values.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in q.parameters())


@needs_ale
@needs_minatar
def test_the_shape_table_matches_the_environments():
    from deepnets.envs import make_env
    from deepnets.experiments.reinforcement import SHAPES

    for (kind, game), (shape, actions) in SHAPES.items():
        if (kind, game) == ("atari", "breakout"):
            continue
        env = make_env(kind, game)
        obs, _ = env.reset(seed=0)
        assert obs.shape == shape and env.action_space.n == actions, (kind, game)
        assert obs.dtype == (np.float32 if kind == "cartpole" else np.uint8)
        env.close()


def test_bad_configs_are_refused():
    config = experiment("dqn-minatar").preset("breakout")
    with pytest.raises(ConfigError, match="env='minatar', game='pong' are not allowed"):
        dataclasses.replace(config, game="pong")
    with pytest.raises(ConfigError, match="replay must exceed a batch"):
        dataclasses.replace(config, buffer_size=32)
    with pytest.raises(ConfigError, match="gamma=2.0 is not allowed: must be in"):
        apply_overrides(config, ["gamma=2"])
    with pytest.raises(DeepnetsError, match="unknown MinAtar game"):
        from deepnets.envs import make_env

        make_env("minatar", "pong")


# --- the Atari preprocessing, on a scripted emulator -------------------------------------------


class FakeALE:
    """An emulator whose screen at frame n is all n (RGB), loses a life at frame 12, ends at 40."""

    def __init__(self):
        self.n, self.life = 0, 3
        self.unwrapped = self
        self.ale = self
        self.action_space = type("Space", (), {"n": 6})()
        self.actions: list[int] = []

    def lives(self):
        return self.life

    def reset(self, seed=None):
        self.n, self.life = 0, 3
        return np.zeros((210, 160, 3), np.uint8), {}

    def step(self, action):
        self.n += 1
        self.actions.append(action)
        if self.n == 12:
            self.life -= 1
        screen = np.full((210, 160, 3), self.n % 256, np.uint8)
        if self.n % 2:  # odd frames flicker to black: the max over two frames hides it
            screen[:] = 0
        return screen, 1.0, self.n >= 40, False, {}

    def close(self):
        pass


@needs_ale
def test_atari_preprocessing_skips_maxes_stacks_and_ends_on_a_lost_life():
    from deepnets.envs import AtariPreprocessing

    fake = FakeALE()
    env = AtariPreprocessing(fake, noop_max=1)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert fake.n == 4 and (obs == 4).all()  # one no-op start of 4 frames; first frame repeated
    obs, reward, terminated, _, _ = env.step(2)  # frames 5..8: max(frame 7, frame 8) = 8
    assert reward == 4.0 and fake.actions[-4:] == [2, 2, 2, 2]
    assert [int(f[0, 0]) for f in obs] == [4, 4, 4, 8] and not terminated
    obs, _, terminated, _, _ = env.step(1)  # frames 9..12: the life lost at 12
    assert terminated and not env.game_over and [int(f[0, 0]) for f in obs] == [4, 4, 8, 12]
    obs, info = env.reset(seed=1)  # continues the game with one no-op step, no restart
    assert info["continued"] and fake.n == 16 and (obs == 16).all()
    obs, info = env.reset(seed=1, new_game=True)
    assert not info["continued"] and fake.n == 4


# --- the loop: tiny runs, resume, the CLI ---------------------------------------------------------


def tiny_run(name, preset, path, log=lambda line: None, **changes):
    from deepnets.run import RunDir

    exp = experiment(name)
    config = dataclasses.replace(exp.preset(preset), device="cpu", **changes)
    run = RunDir.create(path)
    return exp, config, run, exp.task.train(exp, config, run, preset, progress=False, log=log)


class Crash(Exception):
    pass


def crash_after_first_checkpoint(line: str) -> None:
    if line.startswith("checkpoint"):
        raise Crash(line)


@needs_gym
def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    from deepnets.run import RunDir
    from deepnets.train import checkpoint as ckpt

    short = {"env_steps": 400, "eval_episodes": 2}
    _, config, _, whole = tiny_run("dqn-cartpole", "tiny", tmp_path / "whole", **short)
    with pytest.raises(Crash, match="checkpoint at step 2"):
        tiny_run("dqn-cartpole", "tiny", tmp_path / "cut", crash_after_first_checkpoint, **short)
    cut = RunDir.open(tmp_path / "cut")
    assert not (cut / "summary.json").exists()
    exp = experiment("dqn-cartpole")
    resumed = exp.task.train(exp, config, cut, "tiny", resume=True, progress=False, log=print)
    games = [
        [(r["step"], r["return"]) for r in RunDir(tmp_path / p).read_metrics() if "return" in r]
        for p in ("whole", "cut")
    ]
    assert games[0] == games[1] and len(games[0]) > 10
    a, b = (ckpt.load_checkpoint(tmp_path / p)[0] for p in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["value"] == whole["value"] and resumed["steps"] == whole["steps"] == 400
    with pytest.raises(DeepnetsError, match="has finished"):
        exp.task.train(exp, config, cut, "tiny", resume=True, progress=False, log=print)


@needs_minatar
def test_minatar_tiny_run_and_replay_memory(tmp_path):
    _, _, run, summary = tiny_run("dqn-minatar", "tiny", tmp_path / "m", game="space_invaders")
    assert summary["steps"] == 400 and np.isfinite(summary["value"])
    # one uint8 (6, 10, 10) frame + 12 bytes per transition
    assert summary["metrics"]["replay_gb_per_million"] == pytest.approx((600 + 12) / 1000)
    assert any("loss" in r for r in run.read_metrics())


@needs_ale
def test_atari_tiny_run_stores_one_frame_per_transition(tmp_path):
    _, _, run, summary = tiny_run("dqn-atari", "tiny", tmp_path / "a")
    assert summary["steps"] == 120 and summary["metrics"]["frames"] == 480
    assert summary["metrics"]["replay_gb_per_million"] == pytest.approx((7056 + 12) / 1000)


@needs_gym
def test_cli_tiny_cartpole_run_eval_and_figures(tmp_path):
    run_dir = tmp_path / "run"
    ran = run_cli("run", "dqn-cartpole", "--preset", "tiny", "--run-dir", str(run_dir), "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert "test return" in ran.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiment"] == "dqn-cartpole" and summary["steps"] == 600
    assert summary["published"] == 475.0 and summary["selected"] == "best_val"
    from deepnets.figures import FIGURES
    from deepnets.train import evaluate_run

    assert evaluate_run(run_dir, "cpu", "test")["return"] == summary["value"]  # same seeds
    with pytest.raises(DeepnetsError, match="dqn-cartpole is not one"):
        evaluate_run(run_dir, "cpu", "test", ["select=last"])  # eval --set: gradient runs only
    for name in ("fig-dqn-curves", "fig-dqn-q"):
        out = FIGURES[name](run_dir=str(run_dir), out=str(tmp_path / f"{name}.png"))
        assert out.stat().st_size > 10_000
