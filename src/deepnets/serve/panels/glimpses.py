"""Draw a digit for the recurrent attention model (ram-mnist): its class probabilities and where
it looked, glimpse by glimpse (the policy's mean path, as at test time; Fig. 3 of Mnih et al.
2014, live).

The drawing is made into an MNIST digit as the digits panel's is (deepnets.data.mnist: the ink's
bounding box fitted to 20x20 and centred in 28x28), on the 0-1 scale the model was trained on.
For a run on larger canvases (the `cluttered` preset, 60x60) the digit is placed where it was
drawn: the page sends the ink's centre as `row` and `col`, fractions of the canvas.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepnets import DeepnetsError
from deepnets.serve.inputs import Inputs
from deepnets.serve.panels import Action, Panel
from deepnets.serve.panels.image_classifier import Classifier, rounded

DIGIT = 28  # the side of an MNIST digit


def load(path: Path) -> Classifier:
    from deepnets.run import load_model

    experiment, config, model = load_model(path, device="cpu")
    if experiment.id != "ram-mnist":
        raise DeepnetsError(f"the glimpses panel serves ram-mnist runs, not {experiment.id}")
    return Classifier(experiment, config, model)


def drawn_input(inputs: Inputs, size: int) -> torch.Tensor:
    """The uploaded drawing as the model's input (1, 1, size, size), 0-1 scale."""
    from deepnets.data.mnist import fit_ink, read_ink

    digit = torch.from_numpy(fit_ink(read_ink(inputs.image()), 20, DIGIT))
    x = torch.zeros(size, size)
    if size == DIGIT:
        x = digit
    else:  # the digit's 28x28 field centred where the ink was, inside the canvas
        row = inputs.number("row", 0.5, 0, 1)
        col = inputs.number("col", 0.5, 0, 1)
        top = min(max(round(row * size - DIGIT / 2), 0), size - DIGIT)
        left = min(max(round(col * size - DIGIT / 2), 0), size - DIGIT)
        x[top : top + DIGIT, left : left + DIGIT] = digit
    return x[None, None]


def describe(loaded: Classifier, inputs: Inputs) -> dict:
    """The run's canvas side and glimpses, for the page to size its pen and say what it shows."""
    config = loaded.config
    return {
        "size": config.image_size,
        "glimpses": config.glimpses,
        "glimpse_size": config.glimpse_size,
        "scales": config.scales,
    }


@torch.no_grad()
def look(loaded: Classifier, inputs: Inputs) -> dict:
    """Class probabilities (best first) and the glimpse path: each glimpse's centre in pixels of
    the input, (row, column), and the sides of its patches (finest first)."""
    from deepnets.figures.glimpses import glimpse_paths

    config = loaded.config
    x = drawn_input(inputs, config.image_size)
    centres, logits = glimpse_paths(loaded.model, x)
    probs = logits.float().softmax(-1)[0]
    names = loaded.experiment.class_names or tuple(str(k) for k in range(len(probs)))
    order = probs.argsort(descending=True).tolist()
    sides = [config.glimpse_size * 2**k for k in range(config.scales)]
    return {
        "top": names[order[0]],
        "classes": [[names[i], round(float(probs[i]), 5)] for i in order],
        "input": rounded(x[0, 0]),
        "size": config.image_size,
        "glimpses": [
            {"row": round(float(r), 2), "col": round(float(c), 2), "sides": sides}
            for r, c in centres[0].tolist()
        ],
    }


PANEL = Panel(
    name="glimpses",
    title="Draw a digit: where the attention model looks",
    experiments=("ram-mnist",),
    load=load,
    actions={"describe": Action(describe), "look": Action(look, body="upload")},
)
