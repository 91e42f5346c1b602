"""Watch a trained DQN agent play one greedy episode (dqn-cartpole, dqn-minatar): at every step
the Q-value of each action, the action taken (the argmax) and the reward, and what the agent
saw, to animate: CartPole's observation (cart position, velocity, pole angle, angular velocity),
or MinAtar's 10x10 frame with its channels collapsed to one colour index per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel

MAX_SEED = 10**6
MAX_STEPS = 1000
ACTIONS = {  # the action names of each environment, by index
    "cartpole": ("push left", "push right"),
    "minatar": ("no-op", "left", "up", "right", "down", "fire"),  # MinAtar v0's full set
}


@dataclass(frozen=True)
class Agent:
    experiment: Any
    config: Any
    q: torch.nn.Module
    channels: tuple[str, ...]  # MinAtar: each channel's name, in order (colour index k + 1)


def load(path: Path) -> Agent:
    from deepnets.figures.dqn import load_agent

    experiment, config, q = load_agent(path)
    return Agent(experiment, config, q, minatar_channels(experiment, config))


def minatar_channels(experiment, config) -> tuple[str, ...]:
    """The MinAtar game's channel names (paddle, ball, ...), or () where they cannot be read."""
    if config.env != "minatar":
        return ()
    env = experiment.task.make_env(experiment, config, training=False)
    try:
        names = env.env.unwrapped.game.env.channels  # {name: index}, MinAtar's own
        return tuple(sorted(names, key=names.get))
    except AttributeError:
        return ()
    finally:
        env.close()


def colour_index(frames: np.ndarray) -> list:
    """MinAtar observations (T, C, 10, 10) of 0/1 channels as (T, 10, 10) ints: 0 for an empty
    cell, else 1 + the first channel set there (MinAtar lists the moving objects first: the
    ball shows over a brick)."""
    on = frames > 0
    return np.where(on.any(1), on.argmax(1) + 1, 0).tolist()


def play(loaded: Agent, inputs: Inputs) -> dict:
    from deepnets.figures.dqn import play_greedy

    seed = inputs.number("seed", 0, 0, MAX_SEED, integer=True)
    max_steps = inputs.number("max_steps", 500, 1, MAX_STEPS, integer=True)
    config = loaded.config
    trace = play_greedy(loaded.experiment, config, loaded.q, seed, max_steps)
    rewards = [float(r) for r in trace["rewards"]]
    result = {
        "env": config.env,
        "game": config.game,
        "action_names": list(ACTIONS[config.env]),
        "steps": len(rewards),
        "q": np.round(trace["q"].astype(np.float64), 4).tolist(),  # (T, A)
        "actions": [int(a) for a in trace["actions"]],
        "rewards": rewards,
        "return": sum(rewards),
    }
    if config.env == "minatar":
        result["frames"] = colour_index(trace["observations"])  # (T + 1, 10, 10)
        result["channels"] = list(loaded.channels)
    else:
        result["observations"] = np.round(trace["observations"].astype(np.float64), 4).tolist()
    return result


PANEL = Panel(
    name="dqn",
    title="Watch a DQN agent play one episode",
    experiments=("dqn-cartpole", "dqn-minatar"),
    load=load,
    actions={"play": Action(play)},
)
