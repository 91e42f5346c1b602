"""Ask a memory network about a story: the answer and the attention over the story's sentences
at each hop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel

MAX_STORY_CHARS = 20_000


@dataclass(frozen=True)
class MemoryNetwork:
    config: Any
    vocab: Any
    model: torch.nn.Module


def load(path: Path) -> MemoryNetwork:
    from deepnets.train.memn2n import load_trained

    config, data, model = load_trained(str(path), "cpu")
    return MemoryNetwork(config, data["vocab"], model)


def ask(loaded: MemoryNetwork, inputs: Inputs) -> dict:
    from deepnets.train.memn2n import answer

    story = inputs.text("story", MAX_STORY_CHARS).splitlines()
    question = inputs.text("question", 500)
    return answer(loaded.config, loaded.vocab, loaded.model, story, question)


PANEL = Panel(
    name="memory",
    title="Ask a memory network",
    experiments=("memn2n-babi",),
    load=load,
    actions={"answer": Action(ask)},
)
