"""Continue a prompt with a trained language model, streamed token by token, and show the
distribution the last token was drawn from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets import DeepnetsError
from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel

MAX_PROMPT_CHARS = 2000
MAX_LENGTH = 500  # tokens generated per request
MAX_PROMPT_TOKENS = 1000


@dataclass(frozen=True)
class LanguageModelRun:
    model: torch.nn.Module
    vocab: Any


def load(path: Path) -> LanguageModelRun:
    from deepnets.train.language_model import load_trained

    _, _, corpus, model = load_trained(path, "cpu")
    return LanguageModelRun(model, corpus["vocab"])


def generate(loaded: LanguageModelRun, inputs: Inputs) -> Iterator[dict]:
    from deepnets.train.language_model import generate_steps

    prompt = inputs.text("prompt", MAX_PROMPT_CHARS, default="")
    length = inputs.number("length", 40, 1, MAX_LENGTH, integer=True)
    temperature = inputs.number("temperature", 1.0, 0.05, 5.0)
    seed = inputs.number("seed", 0, 0, 2**31 - 1, integer=True)
    ids = loaded.vocab.prompt_ids(prompt)[-MAX_PROMPT_TOKENS:]
    if not ids:
        raise DeepnetsError("the prompt holds no token the model knows")
    generator = torch.Generator().manual_seed(seed)
    steps = generate_steps(loaded.model, torch.tensor(ids), length, temperature, generator)
    return _stream(loaded.vocab, steps)


def _shown(piece: str) -> str:
    """A token as the distribution lists it: new lines and spaces made visible."""
    return {"\n": "(new line)", " ": "(space)", "\t": "(tab)"}.get(piece, piece.strip() or piece)


def _stream(vocab, steps) -> Iterator[dict]:
    last = None
    for token, last in steps:  # noqa: B007 (the last step's distribution is shown)
        yield {"piece": vocab.piece(token)}
    best = last.topk(min(10, len(last)))
    yield {
        "next": [
            [_shown(vocab.piece(int(i))), round(float(p), 5)]
            for p, i in zip(best.values, best.indices)
        ]
    }


PANEL = Panel(
    name="language",
    title="Continue a sentence",
    experiments=("lstm-ptb", "rnn-ptb", "nplm-ptb", "charlstm-shakespeare"),
    load=load,
    actions={"generate": Action(generate)},
)
