"""Upload a photo: the CIFAR-10 ConvNet's top classes and its feature maps."""

from deepnets.serve.panels import Action, Panel
from deepnets.serve.panels.image_classifier import classify, load_classifier

PANEL = Panel(
    name="photo",
    title="Classify a photo",
    experiments=("convnet-cifar10",),
    load=load_classifier,
    actions={"classify": Action(classify, body="upload")},
)
