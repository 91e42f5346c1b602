"""Run a Neural Turing Machine (or its LSTM baseline) on a fresh copy or priority-sort
example: its output beside the target, the bits it gets wrong and, for the NTM, where it writes
and reads in memory at every step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel
from deepnets.serve.panels.image_classifier import rounded

MAX_COPY_LENGTH = 120  # six times the longest trained copy


@dataclass(frozen=True)
class SequenceModel:
    config: Any
    model: torch.nn.Module


def load(path: Path) -> SequenceModel:
    from deepnets.run import load_model

    _, config, model = load_model(path, device="cpu")
    return SequenceModel(config, model)


@torch.no_grad()
def run_example(loaded: SequenceModel, inputs: Inputs) -> dict:
    from deepnets.data.algorithmic import copy_batch, sort_batch

    config = loaded.config
    seed = inputs.number("seed", 0, 0, 2**31 - 1, integer=True)
    generator = torch.Generator().manual_seed(seed)
    if config.task == "copy":
        length = inputs.number("length", config.max_length, 1, MAX_COPY_LENGTH, integer=True)
        batch = copy_batch(1, length, config.bits, generator)
    else:
        batch = sort_batch(1, config.items, config.keep, config.bits, generator)
    traced = getattr(config, "model", "") == "ntm"
    if traced:
        logits, reads, writes = loaded.model(batch.inputs, trace=True)
    else:
        logits = loaded.model(batch.inputs)
    output = torch.sigmoid(logits[0, -batch.targets.shape[1] :])  # (T_out, bits)
    result = {
        "task": config.task,
        "input": rounded(batch.inputs[0]),
        "target": rounded(batch.targets[0]),
        "output": rounded(output),
        "bit_errors": int(((output > 0.5).float() != batch.targets[0]).sum()),
    }
    if traced:
        result["read"] = rounded(reads[0, :, 0])  # (T, memory rows)
        result["write"] = rounded(writes[0, :, 0])
    return result


PANEL = Panel(
    name="algorithmic",
    title="Copy and sort with a Neural Turing Machine",
    experiments=("ntm-copy", "lstm-copy", "ntm-sort", "lstm-sort"),
    load=load,
    actions={"run": Action(run_example)},
)
