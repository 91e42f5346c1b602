"""Word vectors: the nearest neighbours of a typed word (the t-SNE map is the run's Fig. 4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel


@dataclass(frozen=True)
class WordVectors:
    vectors: torch.Tensor  # (V, m)
    vocab: Any


def load(path: Path) -> WordVectors:
    from deepnets.figures.fig4 import word_vectors
    from deepnets.train.language_model import load_trained

    _, _, corpus, model = load_trained(path, "cpu")
    return WordVectors(word_vectors(model), corpus["vocab"])


def neighbours(loaded: WordVectors, inputs: Inputs) -> dict:
    from deepnets.figures.fig4 import nearest_neighbours

    word = inputs.text("word", 100).strip().lower()
    k = inputs.number("k", 10, 1, 50, integer=True)
    near = nearest_neighbours(loaded.vectors, loaded.vocab, word, k)
    return {"word": word, "neighbours": [[w, round(c, 4)] for w, c in near]}


PANEL = Panel(
    name="words",
    title="Word vectors",
    experiments=("nplm-ptb", "rnn-ptb", "lstm-ptb"),
    load=load,
    actions={"neighbours": Action(neighbours)},
)
