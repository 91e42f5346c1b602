"""Draw a digit: the class probabilities and, for ConvNets, every layer's maps (Fig. 2, live)."""

from deepnets.serve.panels import Action, Panel
from deepnets.serve.panels.image_classifier import classify, load_classifier

PANEL = Panel(
    name="digits",
    title="Draw a digit",
    experiments=("mlp-mnist", "lenet5-mnist", "convnet-digits"),
    load=load_classifier,
    actions={"classify": Action(classify, body="upload")},
)
