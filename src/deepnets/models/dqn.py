"""Q-networks for deep Q-learning: "Human-level control through deep reinforcement learning"
(Mnih et al., Nature 518, 529-533, 2015), the review's ref. 100, and the small network of
"MinAtar: An Atari-inspired testbed for thorough and reproducible reinforcement learning
experiments" (Young & Tian, 2019).

Each network maps an observation to one value per action, Q(s, a; theta), trained towards the
target  y = r + gamma * max_a' Q(s', a'; theta^-)  (theta^-: the periodically copied target
network; no bootstrap past a terminal state).

  * `MLPQNet`: CartPole's 4 numbers -> hidden ReLU layers -> one value per action.
  * `MinAtarQNet`: (C, 10, 10) -> conv 3x3, 16 channels, stride 1, ReLU -> fc 128, ReLU -> actions
    (Young & Tian 2019, Sec. 4).
  * `NatureQNet`: (4, 84, 84) uint8 frames / 255 -> conv 8x8/4, 32 -> conv 4x4/2, 64 ->
    conv 3x3/1, 64 -> fc 512 -> actions, ReLU after each hidden layer (Mnih et al. 2015, Methods).

Deviations from the paper: none in the architectures; PyTorch's default initialisation is used
(the papers do not specify theirs beyond the framework's defaults).
"""

from __future__ import annotations

import torch
from torch import nn


class MLPQNet(nn.Module):
    """Q(s, .) = W_L relu(... relu(W_1 s + b_1) ...) + b_L for a vector state s."""

    def __init__(self, n_inputs: int, n_actions: int, hidden: tuple[int, ...] = (128, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float())  # (B, n_inputs) -> (B, n_actions)


class MinAtarQNet(nn.Module):
    """Q(s, .) = W_2 relu(W_1 flatten(relu(conv3x3(s))) + b_1) + b_2 for a (C, 10, 10) grid."""

    def __init__(self, in_channels: int, n_actions: int, channels: int = 16, hidden: int = 128):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=3, stride=1)
        self.fc = nn.Linear(channels * 8 * 8, hidden)  # 10x10 -> 8x8 after a 3x3 valid conv
        self.out = nn.Linear(hidden, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(obs.float()))  # (B, C, 10, 10) -> (B, 16, 8, 8)
        x = torch.relu(self.fc(x.flatten(1)))  # (B, 1024) -> (B, 128)
        return self.out(x)  # (B, n_actions)


class NatureQNet(nn.Module):
    """The Nature DQN ConvNet on 4 stacked 84x84 grey frames."""

    def __init__(self, in_channels: int, n_actions: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(
                in_channels, 32, kernel_size=8, stride=4
            ),  # (B, 4, 84, 84) -> (B, 32, 20, 20)
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),  # -> (B, 64, 9, 9)
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),  # -> (B, 64, 7, 7)
            nn.ReLU(),
        )
        self.fc = nn.Linear(64 * 7 * 7, 512)
        self.out = nn.Linear(512, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.features(obs.float() / 255.0)  # uint8 pixels -> [0, 1]
        x = torch.relu(self.fc(x.flatten(1)))  # (B, 3136) -> (B, 512)
        return self.out(x)  # (B, n_actions)


def build_qnet(
    kind: str, obs_shape: tuple[int, ...], n_actions: int, hidden: tuple[int, ...]
) -> nn.Module:
    """The Q-network for an environment kind (cartpole, minatar, atari)."""
    if kind == "cartpole":
        return MLPQNet(obs_shape[0], n_actions, hidden)
    if kind == "minatar":
        return MinAtarQNet(obs_shape[0], n_actions, hidden=hidden[0] if hidden else 128)
    if kind == "atari":
        return NatureQNet(obs_shape[0], n_actions)
    raise ValueError(f"unknown environment kind {kind!r}")
