"""Experience replay (Lin 1992; Mnih et al. 2015): a ring of the last `capacity` observations,
each stored once, from which minibatches of transitions (s, a, r, s', terminated) are drawn
uniformly.

Each slot holds one frame (the newest frame of an observation: the whole observation where
`stack` is 1, one 84x84 frame of Atari's stack of 4) and the transition that leaves it (action,
reward, terminated). Slots are written in order: `start(frame)` opens an episode, and
`add(action, reward, terminated, next_frame)` attaches a transition to the newest slot and writes
its next frame into the following one. So the next observation of slot i is always slot i + 1,
and an episode's last slot holds its final observation with no transition leaving it: after a
truncation (a time limit) that final observation is the true one the environment returned, and
the target bootstraps from it (terminated is false); after a termination it does not.

A slot can be sampled when it holds a transition, its next frame has been written, and the
frames of its stack (the `stack - 1` before it in the same episode) have not been overwritten.
Frames before an episode's first are replaced by its first frame, as the environment's stack
does at a reset, so no observation or transition ever mixes two episodes.

Memory: one frame per transition plus 12 bytes (action int16, reward float32, terminated,
valid, position in the episode int32) and one extra frame per episode; `nbytes` measures it.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnets import DeepnetsError


class ReplayBuffer:
    def __init__(self, capacity: int, frame_shape: tuple[int, ...], dtype, stack: int = 1):
        if capacity < stack + 1:
            raise DeepnetsError(f"replay capacity {capacity} must exceed the stack {stack}")
        self.capacity, self.stack = capacity, stack
        self.frame_shape = tuple(frame_shape)
        self.frames = np.zeros((capacity, *frame_shape), dtype=dtype)
        self.actions = np.zeros(capacity, dtype=np.int16)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.valid = np.zeros(capacity, dtype=bool)  # a transition leaves this slot
        self.position = np.zeros(capacity, dtype=np.int32)  # index of the frame in its episode
        self.writes = 0  # slots written so far; slot of write t is t % capacity

    # --- writing ------------------------------------------------------------------------------

    def _write(self, frame: np.ndarray, position: int) -> None:
        slot = self.writes % self.capacity
        self.frames[slot] = frame
        self.valid[slot] = False
        self.terminated[slot] = False
        self.position[slot] = position
        self.writes += 1

    def start(self, frame: np.ndarray) -> None:
        """Open an episode with its first frame."""
        self._write(frame, 0)

    def add(self, action: int, reward: float, terminated: bool, next_frame: np.ndarray) -> None:
        """The transition from the newest frame: the action taken, the reward received, whether
        the episode terminated there, and the next frame (the final one if the episode ended)."""
        if self.writes == 0:
            raise DeepnetsError("replay: add() before start(): an episode must be opened first")
        slot = (self.writes - 1) % self.capacity
        self.actions[slot], self.rewards[slot] = action, reward
        self.terminated[slot], self.valid[slot] = terminated, True
        self._write(next_frame, int(self.position[slot]) + 1)

    # --- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """The transitions that can be sampled now."""
        return int(self._sampleable(self._live_writes()).sum())

    def _live_writes(self) -> np.ndarray:
        return np.arange(max(0, self.writes - self.capacity), self.writes)

    def _sampleable(self, t: np.ndarray) -> np.ndarray:
        """Whether the slots of writes `t` can be sampled (see the module docstring)."""
        slot = t % self.capacity
        history = np.minimum(self.position[slot], self.stack - 1)  # frames needed before it
        oldest = max(0, self.writes - self.capacity)
        return self.valid[slot] & (t + 1 < self.writes) & (t - history >= oldest)

    def observation(self, t: np.ndarray) -> np.ndarray:
        """The observations at writes `t`: (B, *frame_shape) if stack is 1, else
        (B, stack, *frame_shape), oldest frame first, never reaching before its episode."""
        slot = t % self.capacity
        if self.stack == 1:
            return np.take(self.frames, slot, axis=0)  # take: a row copy, faster than [slot]
        back = np.arange(self.stack - 1, -1, -1)  # (stack,): stack-1 .. 0 frames back
        steps = np.minimum(back[None, :], self.position[slot][:, None])  # (B, stack)
        rows = ((t[:, None] - steps) % self.capacity).ravel()  # (B * stack,)
        return np.take(self.frames, rows, axis=0).reshape(len(t), self.stack, *self.frame_shape)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A minibatch drawn uniformly from the sampleable transitions with `rng` (drawn from
        every live slot, redrawing those that cannot be sampled)."""
        oldest = max(0, self.writes - self.capacity)
        t = rng.integers(oldest, self.writes, size=batch_size)
        for _ in range(64):  # rejection: redraw the few that cannot be sampled
            bad = ~self._sampleable(t)
            if not bad.any():
                break
            t[bad] = rng.integers(oldest, self.writes, size=int(bad.sum()))
        else:
            live = self._live_writes()
            ok = live[self._sampleable(live)]
            if len(ok) == 0:
                raise DeepnetsError("replay: no complete transition to sample yet")
            bad = ~self._sampleable(t)
            t[bad] = ok[rng.integers(0, len(ok), size=int(bad.sum()))]
        slot = t % self.capacity
        return {
            "obs": self.observation(t),
            "action": self.actions[slot].astype(np.int64),
            "reward": self.rewards[slot],
            "terminated": self.terminated[slot],
            "next_obs": self.observation(t + 1),
            "write": t,
        }

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays."""
        arrays = (self.frames, self.actions, self.rewards, self.terminated, self.valid)
        return sum(a.nbytes for a in arrays) + self.position.nbytes

    # --- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The written slots as tensors, and the counters as JSON (for safetensors)."""
        n = min(self.writes, self.capacity)
        tensors = {
            "frames": torch.from_numpy(self.frames[:n].copy()),
            "actions": torch.from_numpy(self.actions[:n].copy()),
            "rewards": torch.from_numpy(self.rewards[:n].copy()),
            "terminated": torch.from_numpy(self.terminated[:n].astype(np.uint8)),
            "valid": torch.from_numpy(self.valid[:n].astype(np.uint8)),
            "position": torch.from_numpy(self.position[:n].copy()),
        }
        return tensors, {"writes": self.writes, "capacity": self.capacity, "stack": self.stack}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        if state["capacity"] != self.capacity or state["stack"] != self.stack:
            raise DeepnetsError(
                f"replay: saved capacity {state['capacity']}, stack {state['stack']} differ from "
                f"this config's {self.capacity}, {self.stack}"
            )
        n = tensors["frames"].shape[0]
        if tuple(tensors["frames"].shape[1:]) != self.frame_shape:
            raise DeepnetsError(
                f"replay: saved frames {tuple(tensors['frames'].shape[1:])} differ from "
                f"{self.frame_shape}"
            )
        self.frames[:n] = tensors["frames"].numpy()
        self.actions[:n] = tensors["actions"].numpy()
        self.rewards[:n] = tensors["rewards"].numpy()
        self.terminated[:n] = tensors["terminated"].numpy().astype(bool)
        self.valid[:n] = tensors["valid"].numpy().astype(bool)
        self.position[:n] = tensors["position"].numpy()
        self.writes = int(state["writes"])
