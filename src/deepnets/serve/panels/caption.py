"""Caption an uploaded image with a trained captioning run: the caption and, with attention,
one map per generated word over the image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel

MAX_BEAM = 10


@dataclass(frozen=True)
class Captioner:
    experiment: Any
    config: Any
    vocab: Any
    model: torch.nn.Module


def load(path: Path) -> Captioner:
    from deepnets.train.caption import load_trained

    return Captioner(*load_trained(path, "cpu"))


def caption(loaded: Captioner, inputs: Inputs) -> dict:
    from deepnets.train.caption import caption_image

    beam = inputs.number("beam", 3, 1, MAX_BEAM, integer=True)
    out = caption_image(
        loaded.experiment, loaded.config, loaded.vocab, loaded.model, inputs.image(), beam
    )
    return {
        "caption": out["caption"],
        "words": out["words"],
        "attention": out["attention"],  # (T, H', W') per word
        "image": out["image"].tolist(),  # (C, H, W) uint8: what the model saw
    }


PANEL = Panel(
    name="caption",
    title="Caption an image",
    experiments=("caption-digits", "caption-flickr8k"),
    load=load,
    actions={"caption": Action(caption, body="upload")},
)
