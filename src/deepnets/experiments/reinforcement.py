"""The deep reinforcement learning experiments (the review's ref. 100, Mnih et al. 2015):
`dqn-cartpole` (gymnasium's CartPole-v1), `dqn-minatar` (the MinAtar games of Young & Tian 2019,
one preset per game) and `dqn-atari` (Pong through ale-py with the Nature DQN preprocessing),
all trained by the DQN loop of deepnets.train.reinforce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from torch import nn

from deepnets.config import Config, Device, Range, check
from deepnets.experiments.base import Experiment, Metric, Published
from deepnets.train.reinforce import DQN

RETURN = Metric("return", True, "return")
METRICS = (
    RETURN,
    Metric("return_std", False, "return"),
    Metric("env_steps", False, "steps", digits=0),
    Metric("frames", False, "frames", digits=0),
    Metric("steps_per_second", True, "steps/s", digits=1),
    Metric("replay_gb_per_million", False, "GB per 1M transitions", digits=3),
)

# (observation shape, actions) of each environment: the model is built without making one.
# MinAtar v0 environments offer all 6 actions, as in the paper; Pong's minimal set has 6.
SHAPES = {
    ("cartpole", ""): ((4,), 2),
    ("minatar", "asterix"): ((4, 10, 10), 6),
    ("minatar", "breakout"): ((4, 10, 10), 6),
    ("minatar", "freeway"): ((7, 10, 10), 6),
    ("minatar", "seaquest"): ((10, 10, 10), 6),
    ("minatar", "space_invaders"): ((6, 10, 10), 6),
    ("atari", "pong"): ((4, 84, 84), 6),
    ("atari", "breakout"): ((4, 84, 84), 4),
}


def _known_game(env: str, game: str) -> bool:
    return (env, game) in SHAPES


@dataclass(frozen=True)
class DQNConfig(Config):
    RULES = (
        (("env", "game"), _known_game, f"must be one of {sorted(SHAPES)}"),
        (("buffer_size", "batch_size"), lambda n, b: n > b, "the replay must exceed a batch"),
        (("eps_start", "eps_end"), lambda a, b: a >= b, "epsilon must not grow"),
    )

    env: Literal["cartpole", "minatar", "atari"] = "cartpole"  # which environment family
    game: str = ""  # the MinAtar or Atari game ("" for CartPole)
    env_steps: int = check(50_000, ge=1)  # agent steps of training (Atari: 4 frames each)
    hidden: tuple[int, ...] = check((128, 128), items=Range(ge=1), min_len=1)  # fc layer sizes
    buffer_size: int = check(50_000, ge=2)  # replay capacity in transitions
    batch_size: int = check(64, ge=1)  # transitions per gradient step
    gamma: float = check(0.99, ge=0, le=1)  # discount
    optimizer: Literal["adam", "rmsprop"] = "adam"  # Adam, or the DQN papers' centred RMSProp
    lr: float = check(5e-4, gt=0)  # learning rate
    adam_eps: float = check(1e-8, gt=0)  # the optimizer's epsilon (RMSProp: min squared grad)
    clip_grad_norm: float = check(10.0, ge=0)  # clip the gradient norm (0: off)
    double: bool = False  # double Q-learning targets (van Hasselt 2016); the Nature DQN: off
    learning_starts: int = check(1000, ge=0)  # steps of experience before the first update
    train_every: int = check(1, ge=1)  # steps between gradient steps
    target_every: int = check(500, ge=1)  # steps between copies of theta into the target net
    eps_start: float = check(1.0, ge=0, le=1)  # epsilon of epsilon-greedy at step 0
    eps_end: float = check(0.05, ge=0, le=1)  # epsilon after eps_steps
    eps_steps: int = check(10_000, ge=1)  # steps of the linear epsilon decay
    clip_rewards: bool = False  # learn from sign(reward) (Atari); returns are reported unclipped
    max_episode_steps: int = check(0, ge=0)  # truncate training episodes here (0: env's limit)
    eval_every: int = check(2500, ge=0)  # steps between validations (0: none)
    val_episodes: int = check(10, ge=1)  # episodes per validation (fixed seeds)
    eval_episodes: int = check(100, ge=1)  # test episodes of the selected weights (other seeds)
    eval_epsilon: float = check(0.0, ge=0, le=1)  # epsilon while evaluating
    eval_max_steps: int = check(500, ge=1)  # cap on an evaluation episode's steps
    select: Literal["best_val", "last"] = "best_val"  # test the best-on-validation or last weights
    stop_early: bool = False  # stop once a validation's mean return reaches stop_at
    stop_at: float = check(0.0, ge=-1e6, le=1e6)  # the return that stops training (stop_early)
    checkpoint_every: int = check(10_000, ge=1)  # steps between checkpoints (at an episode end)
    log_every: int = check(1000, ge=1)  # steps between metrics.jsonl lines
    seed: int = check(0, ge=0)  # seeds weights, exploration, replay draws and episode resets
    device: Device = "auto"  # auto, cpu or cuda


def build_qnet(config: DQNConfig) -> nn.Module:
    from deepnets.models.dqn import build_qnet as build

    shape, actions = SHAPES[(config.env, config.game)]
    return build(config.env, shape, actions, config.hidden)


def _no_data(config: DQNConfig) -> None:
    return None  # the data are the environment's, made by the task


# --- dqn-cartpole ------------------------------------------------------------------------------

CARTPOLE_SMALL = DQNConfig(
    env_steps=100_000,
    hidden=(128, 128),
    buffer_size=50_000,
    batch_size=64,
    lr=1e-3,
    double=True,
    target_every=100,
    eps_steps=10_000,
    eps_end=0.02,
    eval_every=2500,
    stop_early=True,
    stop_at=500.0,
)
CARTPOLE_TINY = replace(
    CARTPOLE_SMALL,
    env_steps=600,
    hidden=(32,),
    buffer_size=1000,
    batch_size=16,
    learning_starts=100,
    target_every=100,
    eps_steps=300,
    max_episode_steps=100,
    eval_every=300,
    val_episodes=2,
    eval_episodes=3,
    eval_max_steps=100,
    checkpoint_every=200,
    log_every=100,
    stop_early=False,
)

DQN_CARTPOLE = Experiment(
    id="dqn-cartpole",
    title="DQN on CartPole-v1 (MLP Q-network, replay, target network)",
    presets={"tiny": CARTPOLE_TINY, "small": CARTPOLE_SMALL},
    load_data=_no_data,
    build_model=build_qnet,
    task=DQN(),
    published=Published(
        475.0,
        "mean return >= 475 over 100 episodes",
        "gymnasium's solved threshold for CartPole-v1",
        target=True,
    ),
    metrics=METRICS,
    notes=(
        "Test: mean return of the weights best on 10 validation episodes, over 100 episodes "
        "with other fixed seeds, greedy; training stops once a validation reaches 500.",
        "Double Q-learning targets (van Hasselt 2016) and a target copied every 100 steps: "
        "with gamma 0.99 the Nature DQN's hard copies every 500 steps propagated values too "
        "slowly to reach 475 in 50k steps here.",
    ),
)

# The Nature DQN's optimiser (Mnih et al. 2015), which MinAtar's DQN keeps: minibatches of 32,
# RMSProp at 2.5e-4 with epsilon 0.01, no gradient clipping (the Huber loss bounds the errors).
_NATURE_OPTIMISER = dict(
    batch_size=32, optimizer="rmsprop", lr=2.5e-4, adam_eps=0.01, clip_grad_norm=0.0
)

# --- dqn-minatar: Young & Tian 2019's DQN settings --------------------------------------------

MINATAR_PAPER = DQNConfig(
    env="minatar",
    game="breakout",
    env_steps=5_000_000,  # 5M frames (MinAtar has no frame skip)
    hidden=(128,),
    buffer_size=100_000,
    **_NATURE_OPTIMISER,
    learning_starts=5000,
    target_every=1000,
    eps_end=0.1,
    eps_steps=100_000,
    eval_every=50_000,
    val_episodes=10,
    eval_episodes=30,
    eval_epsilon=0.0,
    eval_max_steps=10_000,
    checkpoint_every=50_000,
)
MINATAR_TINY = replace(
    MINATAR_PAPER,
    env_steps=400,
    buffer_size=500,
    batch_size=8,
    learning_starts=50,
    target_every=50,
    eps_steps=200,
    eval_every=200,
    val_episodes=1,
    eval_episodes=2,
    eval_max_steps=200,
    checkpoint_every=100,
    log_every=100,
)
MINATAR_GAMES = ("breakout", "space_invaders", "asterix", "freeway", "seaquest")
MINATAR_PRESETS = {
    "tiny": MINATAR_TINY,
    "small": replace(MINATAR_PAPER, env_steps=100_000, eval_every=25_000),  # Breakout, 100k
} | {game: replace(MINATAR_PAPER, game=game) for game in MINATAR_GAMES}
# a fifth of the paper's frames: about an hour of one CPU core a game
MINATAR_PRESETS |= {
    f"{game}_1m": replace(MINATAR_PAPER, game=game, env_steps=1_000_000)
    for game in ("breakout", "space_invaders")
}

DQN_MINATAR = Experiment(
    id="dqn-minatar",
    title="DQN on MinAtar (one 3x3 conv of 16 channels, fc 128), a preset per game",
    presets=MINATAR_PRESETS,
    load_data=_no_data,
    build_model=build_qnet,
    task=DQN(),
    published=Published(math.nan, "DQN curves to 5M frames, Fig. 2", "Young & Tian 2019"),
    metrics=METRICS,
    headline=("breakout_1m", "space_invaders_1m"),
    default_preset="breakout",
    notes=(
        "The paper's DQN settings (replay 100k, batch 32, centred RMSProp 2.5e-4, target every "
        "1000, epsilon 1 -> 0.1 over 100k frames, sticky actions 0.1); rows with fewer frames "
        "say so in their preset (+env_steps=N).",
        "`breakout_1m` and `space_invaders_1m`: the paper's settings for 1M frames, a fifth of "
        "its 5M, about an hour of one CPU core a game. Breakout (seed 0, 3,662 s, 273 steps/s): "
        "greedy validation return (10 games) 2.1 at 50k frames, 8.0 at 200k, 18.7 at 500k, 21.1 "
        "at 600k (the weights tested) and 16.2 at 1M; the training games (epsilon 0.1, the "
        "paper's curves' measure) averaged 6.94 over frames 400k-500k and 8.41 over the last "
        "100k (`deepnets figure fig-dqn-curves RUN`). Space Invaders (seed 0, "
        "3,943 s, 254 steps/s): validation 7.8 at 50k, 36.8 at 200k, 49.0 at 500k, 71.1 at 800k "
        "(the weights tested) and 70.2 at 1M; test 77.03 +- 55.52 over 30 games; the training "
        "games averaged 25.66 over frames 400k-500k and 35.15 over the last 100k. The paper "
        "gives DQN's curves (Fig. 2), not numbers at 1M frames, so no published figure sits "
        "beside these rows.",
    ),
)

# --- dqn-atari: the Nature DQN on Pong --------------------------------------------------------

ATARI_PAPER = DQNConfig(
    env="atari",
    game="pong",
    env_steps=2_500_000,  # 10M frames at frame skip 4
    hidden=(512,),
    buffer_size=1_000_000,
    **_NATURE_OPTIMISER,
    learning_starts=50_000,
    train_every=4,
    target_every=10_000,
    eps_end=0.1,
    eps_steps=250_000,  # 1M frames
    clip_rewards=True,
    eval_every=250_000,
    val_episodes=3,
    eval_episodes=10,
    eval_epsilon=0.05,
    eval_max_steps=27_000,  # 108k frames, 30 minutes of play
    checkpoint_every=100_000,
    log_every=1000,
)
ATARI_TINY = replace(
    ATARI_PAPER,
    env_steps=120,
    buffer_size=300,
    batch_size=4,
    learning_starts=40,
    target_every=40,
    eps_steps=100,
    eval_every=0,
    eval_episodes=1,
    eval_max_steps=50,
    checkpoint_every=1000,
    log_every=60,
)
ATARI_SMALL = replace(ATARI_PAPER, env_steps=250_000, buffer_size=100_000, eval_every=50_000)
# A curve sized for an hour or two of one CPU core: the small preset's 1M frames with epsilon
# down to 0.1 by 400k frames, and Adam (1e-4 with a large epsilon, as in the Rainbow papers) in
# place of the Nature RMSProp.
ATARI_HOURS = replace(
    ATARI_SMALL,
    optimizer="adam",
    lr=1e-4,
    adam_eps=1.5e-4,
    learning_starts=10_000,
    target_every=2_000,
    eps_steps=100_000,
    eval_every=25_000,
    checkpoint_every=25_000,
)

DQN_ATARI = Experiment(
    id="dqn-atari",
    title="Nature DQN on Atari Pong (ale-py, 84x84x4 frames, frame skip 4)",
    presets={"tiny": ATARI_TINY, "hours": ATARI_HOURS, "small": ATARI_SMALL, "paper": ATARI_PAPER},
    load_data=_no_data,
    build_model=build_qnet,
    task=DQN(),
    published=Published(18.9, "18.9 +- 1.3 (Pong)", "Mnih et al. 2015"),
    published_by_preset={
        "tiny": Published(math.nan, "a smoke test", "none"),
        "small": Published(math.nan, "1M frames: a tenth of the paper's", "none"),
        "hours": Published(math.nan, "1M frames, faster epsilon, Adam", "none"),
    },
    metrics=METRICS,
    headline=("hours", "paper"),
    default_preset="paper",
    notes=(
        "10M frames (2.5M agent steps); the Nature DQN trained for 50M frames.",
        "`hours`: the curve one CPU core can draw in about an hour and a half: 1M frames, "
        "epsilon 1 -> 0.1 over the first 400k, Adam 1e-4 (epsilon 1.5e-4) in place of the "
        "centred RMSProp, learning from 40k frames, target copied every 8k frames.",
    ),
)
