"""Translate a sentence with a trained translation run: the beam-search output and, for the
attention model, the attention matrix (source pieces across, target pieces down)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel

MAX_SENTENCE_CHARS = 2_000
MAX_BEAM = 10


@dataclass(frozen=True)
class Translator:
    config: Any
    tokenizers: Any
    model: torch.nn.Module


def load(path: Path) -> Translator:
    from deepnets.train.translate import load_trained

    return Translator(*load_trained(path, "cpu"))


def translate(loaded: Translator, inputs: Inputs) -> dict:
    from deepnets.train.translate import translate_sentence

    sentence = inputs.text("sentence", MAX_SENTENCE_CHARS)
    beam = inputs.number("beam", 5, 1, MAX_BEAM, integer=True)
    out = translate_sentence(loaded.config, loaded.tokenizers, loaded.model, sentence, beam)
    return {**out, "pair": loaded.config.pair}


PANEL = Panel(
    name="translation",
    title="Translate a sentence",
    experiments=("seq2seq-multi30k", "attention-multi30k"),
    load=load,
    actions={"translate": Action(translate)},
)
