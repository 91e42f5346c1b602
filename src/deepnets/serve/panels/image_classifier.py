"""What the image panels (a drawn digit, an uploaded photo) share: a classifier run loaded for
prediction, and one image's class probabilities and every convolutional layer's feature maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepnets import DeepnetsError
from deepnets.serve.inputs import Inputs

MAX_MAPS = 64  # feature maps sent per layer


@dataclass(frozen=True)
class Classifier:
    experiment: Any
    config: Any
    model: torch.nn.Module


def load_classifier(path: Path) -> Classifier:
    from deepnets.run import load_model

    experiment, config, model = load_model(path, device="cpu")
    if experiment.read_image is None:
        raise DeepnetsError(f"{experiment.id} has no reader for images")
    return Classifier(experiment, config, model)


@torch.no_grad()
def classify(loaded: Classifier, inputs: Inputs) -> dict:
    """Class probabilities, best first, and the maps of every layer whose output is (C, H, W)."""
    x = loaded.experiment.read_image(inputs.image(), loaded.config)  # (1, C, H, W)
    model = loaded.model
    if hasattr(model, "features"):
        outputs = model.features(x)
        logits = outputs[-1]
    else:
        outputs, logits = [], model(x)
    probs = logits.float().softmax(-1)[0]  # (classes,)
    names = loaded.experiment.class_names or tuple(str(k) for k in range(len(probs)))
    order = probs.argsort(descending=True).tolist()
    layer_names = list(getattr(model, "feature_names", []))
    layers = []
    for k, out in enumerate(outputs):
        if out.ndim != 4:
            continue
        maps = out[0, :MAX_MAPS].float()  # (C, H, W)
        layers.append(
            {
                "name": layer_names[k] if k < len(layer_names) else f"layer {k + 1}",
                "channels": int(out.shape[1]),
                "maps": rounded(maps),
            }
        )
    return {
        "top": names[order[0]],
        "classes": [[names[i], round(float(probs[i]), 5)] for i in order],
        "input": rounded(x[0, 0]),
        "layers": layers,
    }


def rounded(values: torch.Tensor) -> list:
    """Nested lists of the values to 3 decimals (what the page draws; a third of the bytes)."""
    return (values.float() * 1000).round().div(1000).tolist()
