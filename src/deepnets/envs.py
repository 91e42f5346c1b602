"""The environments of the deep-RL experiments, made through gymnasium: CartPole-v1, the MinAtar
games (Young & Tian 2019) and Atari Pong through ale-py with the Nature DQN preprocessing
(Mnih et al. 2015, Methods and Extended Data Table 1).

Every environment here returns observations the agent and the replay buffer can read directly:
CartPole a float32 vector (4,), MinAtar a uint8 (C, 10, 10) grid of 0/1 channels, Atari a uint8
stack (4, 84, 84) of the last four preprocessed frames, newest last. The replay buffer stores only
the newest frame of a stack (`stack` below says how many the agent sees).

The Atari preprocessing, written here rather than taken from a wrapper library so that every
step is visible:
  * frame skip 4: each action is repeated for 4 emulator frames and the rewards summed; the
    observed frame is the pixel-wise max of the last two (Atari sprites flicker);
  * the RGB frame becomes luminance and is resized to 84x84 (OpenCV, area interpolation);
  * the last 4 frames are stacked; a new episode repeats its first frame 4 times;
  * no-op starts: a reset takes a random number (1..30) of no-op actions, so that episodes do
    not all start in the same state;
  * terminal on life loss during training: losing a life ends the agent's episode (the value
    target does not bootstrap past it) but the game goes on; the next `reset` continues the game
    with one no-op step instead of restarting it (`info["continued"]` is then true), unless it
    asks for a `new_game`. Evaluation plays whole games.
"""

from __future__ import annotations

import warnings
from collections import deque
from typing import Any

import numpy as np

from deepnets import DeepnetsError

MINATAR_GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
ATARI_GAMES = ("pong", "breakout")


def _need(module: str, extra: str = "rl"):
    """Import an optional package or stop with how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DeepnetsError(
            f"the RL experiments need the package {module!r}: pip install -e '.[{extra}]'"
        ) from None


class MinAtarObservation:
    """MinAtar's (10, 10, C) bool state as a uint8 (C, 10, 10) array (channels first)."""

    def __init__(self, env):
        self.env = env
        self.action_space = env.action_space
        shape = env.observation_space.shape
        self.observation_shape = (shape[2], shape[0], shape[1])

    def reset(self, seed: int | None = None, new_game: bool = True):
        obs, info = self.env.reset(seed=seed)
        return np.ascontiguousarray(obs.transpose(2, 0, 1), dtype=np.uint8), info

    def step(self, action: int):
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs = np.ascontiguousarray(obs.transpose(2, 0, 1), dtype=np.uint8)
        return obs, float(reward), terminated, truncated, info

    def close(self) -> None:
        self.env.close()


class AtariPreprocessing:
    """ALE with the Nature DQN preprocessing (see the module docstring)."""

    def __init__(
        self,
        env,
        frame_skip: int = 4,
        size: int = 84,
        stack: int = 4,
        noop_max: int = 30,
        terminal_on_life_loss: bool = True,
    ):
        self.env = env
        self.ale = env.unwrapped.ale
        self.action_space = env.action_space
        self.frame_skip, self.size, self.stack, self.noop_max = frame_skip, size, stack, noop_max
        self.terminal_on_life_loss = terminal_on_life_loss
        self.observation_shape = (stack, size, size)
        self.frames: deque[np.ndarray] = deque(maxlen=stack)
        self.lives = 0
        self.game_over = True
        self.rng = np.random.default_rng(0)

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # luminance, as the Nature DQN's Y channel
        return cv2.resize(grey, (self.size, self.size), interpolation=cv2.INTER_AREA)

    def _observation(self) -> np.ndarray:
        return np.stack(self.frames)  # (stack, 84, 84), newest last

    def _act(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Repeat `action` frame_skip times; the frame is the max of the last two."""
        total, last_two = 0.0, []
        terminated = truncated = False
        for k in range(self.frame_skip):
            rgb, reward, terminated, truncated, _ = self.env.step(action)
            total += float(reward)
            if k >= self.frame_skip - 2:
                last_two.append(rgb)
            if terminated or truncated:
                break
        frame = np.maximum(last_two[0], last_two[-1]) if last_two else rgb
        return self._grey(frame), total, terminated, truncated

    def reset(self, seed: int | None = None, new_game: bool = False):
        if (
            not self.game_over and not new_game
        ):  # a life was lost: the game goes on with one no-op step
            frame, _, terminated, truncated = self._act(0)
            self.game_over = terminated or truncated
            if not self.game_over:
                self.frames.extend([frame] * self.stack)
                return self._observation(), {"continued": True, "lives": self.ale.lives()}
        rgb, _ = self.env.reset(seed=seed)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        frame = self._grey(rgb)
        for _ in range(int(self.rng.integers(1, self.noop_max + 1))):  # no-op starts
            frame, _, terminated, truncated = self._act(0)
            if terminated or truncated:
                rgb, _ = self.env.reset()
                frame = self._grey(rgb)
        self.lives, self.game_over = self.ale.lives(), False
        self.frames.extend([frame] * self.stack)
        return self._observation(), {"continued": False, "lives": self.lives}

    def step(self, action: int):
        frame, reward, terminated, truncated = self._act(action)
        self.frames.append(frame)
        self.game_over = terminated or truncated
        lives = self.ale.lives()
        lost = lives < self.lives
        self.lives = lives
        if self.terminal_on_life_loss and lost and not self.game_over:
            terminated = True  # the agent's episode ends; the game does not
        return self._observation(), reward, terminated, truncated, {"lives": lives}

    def close(self) -> None:
        self.env.close()


class PlainEnv:
    """A gymnasium environment with float32 vector observations (CartPole)."""

    def __init__(self, env):
        self.env = env
        self.action_space = env.action_space
        self.observation_shape = env.observation_space.shape

    def reset(self, seed: int | None = None, new_game: bool = True):
        obs, info = self.env.reset(seed=seed)
        return np.asarray(obs, dtype=np.float32), info

    def step(self, action: int):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs, dtype=np.float32), float(reward), terminated, truncated, info

    def close(self) -> None:
        self.env.close()


def make_env(
    name: str, game: str = "", max_episode_steps: int = 0, training: bool = True, **options: Any
):
    """One environment: name is 'cartpole', 'minatar' or 'atari'; `game` picks the MinAtar or
    Atari game; `max_episode_steps` > 0 truncates episodes there (0: the environment's own
    limit); `training` turns on life-loss terminals for Atari."""
    gym = _need("gymnasium")
    limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    if name == "cartpole":
        return PlainEnv(gym.make("CartPole-v1", **limit))
    if name == "minatar":
        if game not in MINATAR_GAMES:
            raise DeepnetsError(f"unknown MinAtar game {game!r}; games: {', '.join(MINATAR_GAMES)}")
        minatar_gym = _need("minatar.gym")
        env_id = f"MinAtar/{game.title().replace('_', '')}-v0"  # v0: all 6 actions, as the paper
        if env_id not in gym.registry:
            minatar_gym.register_envs()  # MinAtar's gymnasium ids are not registered on import
        with warnings.catch_warnings():  # gymnasium calls v0 "out of date": v1 has fewer actions
            warnings.simplefilter("ignore", DeprecationWarning)
            return MinAtarObservation(gym.make(env_id, **limit))
    if name == "atari":
        if game not in ATARI_GAMES:
            raise DeepnetsError(f"unknown Atari game {game!r}; games: {', '.join(ATARI_GAMES)}")
        ale_py = _need("ale_py")
        _need("cv2")
        gym.register_envs(ale_py)
        env = gym.make(
            f"ALE/{game.title()}-v5",
            frameskip=1,  # the skip (with the max over two frames) is done here
            repeat_action_probability=0.0,  # no sticky actions, as the Nature DQN
            full_action_space=False,
            **limit,
        )
        return AtariPreprocessing(env, terminal_on_life_loss=training, **options)
    raise DeepnetsError(f"unknown environment {name!r}: cartpole, minatar or atari")
