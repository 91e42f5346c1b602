"""`run_rnn`: a built-in torch RNN (nn.RNN / nn.LSTM / nn.GRU) that also runs under CPU autocast.

oneDNN's bfloat16 RNN kernels need CPU features (AVX-512 with bfloat16) that many machines
lack; there, `torch.autocast("cpu", torch.bfloat16)` makes nn.LSTM fail with "could not create a
primitive descriptor". On such a CPU the recurrence runs in float32 with autocast off, and the
layers around it keep their bfloat16. Everywhere else the call is unchanged.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


@functools.cache
def cpu_has_bfloat16_rnn() -> bool:
    """Whether oneDNN on this CPU has the bfloat16 kernels that autocast's RNNs use."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _float(x):
    if x is None:
        return None
    if isinstance(x, tuple) and not hasattr(x, "batch_sizes"):  # an LSTM's (h, c)
        return tuple(t.float() for t in x)
    return x.float()  # a tensor or a PackedSequence


def run_rnn(rnn: nn.RNNBase, x, state=None):
    """rnn(x, state), as nn.RNNBase takes and returns them; x a tensor or a PackedSequence."""
    on_cpu = rnn.weight_ih_l0.device.type == "cpu"
    if on_cpu and torch.is_autocast_enabled("cpu") and not cpu_has_bfloat16_rnn():
        with torch.autocast("cpu", enabled=False):
            return rnn(_float(x), _float(state))
    return rnn(x, state)
