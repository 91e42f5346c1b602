import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from deepnets import DeepnetsError
from deepnets.cli import main
from deepnets.data import mnist
from deepnets.experiments.mnist import CONVNET_DIGITS, LENET5_MNIST, MLP_MNIST
from deepnets.figures.fig2 import build_fig2, draw_fig2, layer_names, layer_outputs
from deepnets.run import RunDir, load_model
from deepnets.train import checkpoint as ckpt
from deepnets.train import train_and_evaluate


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A ConvNet trained for 2 epochs on scikit-learn's 8x8 digits (no files needed): seconds."""
    run_dir = tmp_path_factory.mktemp("digits-run")
    config = CONVNET_DIGITS.preset("tiny")
    train_and_evaluate(CONVNET_DIGITS, config, run_dir, progress=False, log=lambda s: None)
    return run_dir


def untrained_run(run_dir, experiment, config):
    """A run folder holding a fresh model's weights (what fig2 reads), without training."""
    run = RunDir.create(run_dir)
    config = dataclasses.replace(config, select="best_val")  # the weights file written below
    run.write_config(experiment, "tiny", config, "cpu", 1)
    torch.manual_seed(0)
    ckpt.save_weights(run_dir / ckpt.BEST, experiment.build_model(config), {})
    return run_dir


def dark_digit_on_paper(path, size=(90, 60)):
    """A PNG of a dark '7' drawn on light-grey paper, off-centre, wider than tall."""
    image = Image.new("L", size, 220)
    pen = ImageDraw.Draw(image)
    pen.line([(10, 10), (45, 10), (25, 50)], fill=20, width=6)
    image.save(path)


def test_fig2_of_a_trained_convnet(digits_run, tmp_path):
    out = draw_fig2(str(digits_run), str(tmp_path / "fig2.png"))
    assert out.is_file() and out.stat().st_size > 20_000
    _, _, model = load_model(digits_run, "cpu")
    x = torch.randn(1, 1, 8, 8)
    outputs = layer_outputs(model, x)
    names = layer_names(model, len(outputs))
    assert names[0] == "C1 conv" and names[-1] == "output"
    fig = build_fig2(x[0], outputs, names, CONVNET_DIGITS.class_names)
    # the input, 16 + 16 + 32 + 32 maps (C1, S2, C3, S4), the F5 and F6 strips, the scores
    assert len(fig.axes) == 1 + 16 + 16 + 32 + 32 + 1 + 1 + 1
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == list("0123456789")


def test_generic_layer_names_without_feature_names():
    model = torch.nn.Linear(2, 2)
    assert layer_names(model, 3) == ["layer 1", "layer 2", "layer 3"]


def test_mnist_image_reader_makes_an_mnist_like_input(tmp_path):
    dark_digit_on_paper(tmp_path / "seven.png")
    x = mnist.read_image(tmp_path / "seven.png")
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    black, white = -mnist.MEAN / mnist.STD, (1 - mnist.MEAN) / mnist.STD
    assert float(x[0, 0, 0, 0]) == pytest.approx(black)  # paper -> black background
    assert float(x.max()) > 0.8 * white  # dark ink -> bright
    rows, cols = np.nonzero((x[0, 0] > black + 0.5).numpy())
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20  # 20x20 box
    assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 1.5  # centred
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1.5


def test_bad_or_blank_image_files_are_clear_errors(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DeepnetsError, match="cannot be read as an image"):
        mnist.read_image(tmp_path / "notes.png")
    with pytest.raises(DeepnetsError, match="cannot be read as an image"):
        mnist.read_image(tmp_path / "missing.png")
    Image.new("L", (30, 30), 255).save(tmp_path / "blank.png")
    with pytest.raises(DeepnetsError, match="blank"):
        mnist.read_image(tmp_path / "blank.png")


def test_runs_without_feature_maps_are_clear_errors(tmp_path, digits_run):
    mlp = untrained_run(tmp_path / "mlp", MLP_MNIST, MLP_MNIST.preset("tiny"))
    with pytest.raises(DeepnetsError, match="mlp-mnist run, whose model has no features"):
        draw_fig2(str(mlp), str(tmp_path / "x.png"))
    (tmp_path / "kn5").mkdir()
    (tmp_path / "kn5" / "config.json").write_text(
        json.dumps({"experiment": "kn5-ptb", "config": {"order": 3, "seed": 0, "device": "cpu"}})
    )
    with pytest.raises(DeepnetsError, match="kn5-ptb run"):
        draw_fig2(str(tmp_path / "kn5"), str(tmp_path / "x.png"))
    with pytest.raises(DeepnetsError, match="seven.png cannot be read as an image"):
        draw_fig2(str(digits_run), str(tmp_path / "x.png"), image="seven.png")  # no such file
    with pytest.raises(DeepnetsError, match="run folder"):
        draw_fig2(None)


def test_cli_fig2_with_an_image_file(tmp_path, capsys):
    config = dataclasses.replace(LENET5_MNIST.preset("distorted"), channels=(4, 8), hidden=(16, 8))
    run_dir = str(untrained_run(tmp_path / "run", LENET5_MNIST, config))
    dark_digit_on_paper(tmp_path / "seven.png")
    out = tmp_path / "fig2.png"
    assert (
        main(["figure", "fig2", run_dir, "--image", str(tmp_path / "seven.png"), "--out", str(out)])
        == 0
    )
    assert out.stat().st_size > 20_000
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    assert main(["figure", "fig2", run_dir, "--image", str(tmp_path / "bad.png")]) == 2
    assert "bad.png cannot be read as an image" in capsys.readouterr().err
    assert main(["figure", "fig1", "--image", str(tmp_path / "seven.png")]) == 2
    assert "--image is an option of fig2 only" in capsys.readouterr().err
