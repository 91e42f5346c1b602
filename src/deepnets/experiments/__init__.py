"""The experiments: id -> (config presets, data, model, loop, metric, published number).

The CLI, `deepnets list`, `deepnets bench` and the README table all read `EXPERIMENTS`. Each
family of experiments has its own module (config dataclasses, data glue, model builders and the
`Experiment` records): `mnist`, `cifar`, `speech`, `language` and `pretraining`; `base` holds
the `Experiment` and `Published` records themselves.
"""

from __future__ import annotations

import difflib

from deepnets import DeepnetsError
from deepnets.experiments.adding import ADDING_LSTM, ADDING_RNN
from deepnets.experiments.algorithmic import LSTM_COPY, LSTM_SORT, NTM_COPY, NTM_SORT
from deepnets.experiments.attention import CONVNET_CLUTTERED, RAM_MNIST
from deepnets.experiments.base import Experiment, Published
from deepnets.experiments.captioning import CAPTION_DIGITS, CAPTION_FLICKR8K
from deepnets.experiments.cifar import CONVNET_CIFAR10
from deepnets.experiments.language import (
    CHARLSTM_SHAKESPEARE,
    KN5_PTB,
    LSTM_PTB,
    NPLM_PTB,
    RNN_PTB,
)
from deepnets.experiments.memory import MEMN2N_BABI
from deepnets.experiments.mnist import CONVNET_DIGITS, LENET5_MNIST, MLP_MNIST
from deepnets.experiments.pretraining import DBN_MNIST, SDAE_MNIST
from deepnets.experiments.reinforcement import DQN_ATARI, DQN_CARTPOLE, DQN_MINATAR
from deepnets.experiments.speech import CTC_DIGITS, TDNN_FSDD
from deepnets.experiments.translation import ATTENTION_MULTI30K, SEQ2SEQ_MULTI30K

__all__ = ["ALL_EXPERIMENTS", "EXPERIMENTS", "Experiment", "Published", "get_experiment"]

# In the order `deepnets list` and the README table show them.
ALL_EXPERIMENTS: tuple[Experiment, ...] = (
    MLP_MNIST,
    LENET5_MNIST,
    CONVNET_DIGITS,
    CONVNET_CIFAR10,
    TDNN_FSDD,
    CTC_DIGITS,
    KN5_PTB,
    NPLM_PTB,
    RNN_PTB,
    LSTM_PTB,
    CHARLSTM_SHAKESPEARE,
    SEQ2SEQ_MULTI30K,
    ATTENTION_MULTI30K,
    CAPTION_FLICKR8K,
    CAPTION_DIGITS,
    DBN_MNIST,
    SDAE_MNIST,
    MEMN2N_BABI,
    NTM_COPY,
    LSTM_COPY,
    NTM_SORT,
    LSTM_SORT,
    DQN_CARTPOLE,
    DQN_MINATAR,
    DQN_ATARI,
    RAM_MNIST,
    CONVNET_CLUTTERED,
    ADDING_RNN,
    ADDING_LSTM,
)

EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in ALL_EXPERIMENTS}


def get_experiment(name: str) -> Experiment:
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    close = difflib.get_close_matches(name, list(EXPERIMENTS), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DeepnetsError(
        f"unknown experiment {name!r}.{hint} Known: {', '.join(EXPERIMENTS)} (deepnets list)"
    )
