"""convnet-cifar10: the loaders (canonical archive, image folder, the JPEG copy), the augmentations,
the ConvNet, and the experiment end to end on the real JPEG copy."""

import io
import json
import pickle
import tarfile

import numpy as np
import pytest
import torch
from conftest import needs_data, run_cli
from PIL import Image

from deepnets import DeepnetsError
from deepnets.data import cifar10
from deepnets.data.augment import random_cutout, random_flip, random_translate
from deepnets.experiments.cifar import CONVNET_CIFAR10
from deepnets.models.convnet_cifar import CifarConvNet

needs_cifar_jpeg = needs_data("cifar10-jpeg", ["cifar10-jpeg.tar.gz"])


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def image_archive(path, images: dict[str, np.ndarray]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, pixels in images.items():
            add_file(archive, name, png_bytes(pixels))


def test_image_folder_reads_splits_and_labels_from_a_tar_and_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        f"copy/{split}/{cls}/{k}.png": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        for split in ("train", "test")
        for cls in ("cat", "airplane", "truck")
        for k in range(2)
    }
    image_archive(tmp_path / "copy.tar.gz", images)
    arrays = cifar10.read_image_folder(tmp_path / "copy.tar.gz")
    assert arrays["train"][0].shape == (6, 32, 32, 3)
    assert sorted(arrays["test"][1].tolist()) == [0, 0, 3, 3, 9, 9]  # airplane, cat, truck
    first = arrays["train"][0][0]  # sorted paths: train/airplane/0.png comes first
    assert np.array_equal(first, images["copy/train/airplane/0.png"])  # PNG is lossless

    folder = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "copy.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    again = cifar10.read_image_folder(folder / "copy")
    for split in ("train", "test"):
        assert np.array_equal(again[split][0], arrays[split][0])
        assert np.array_equal(again[split][1], arrays[split][1])


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("train/dragon/0.png", None, "not a class"),
        ("train/cat/0.png", "small", "expected 32x32"),
        ("train/cat/0.png", b"\x89PNG\r\n\x1a\n not really", "cannot be decoded"),
    ],
)
def test_image_folder_rejects_bad_files_by_name(tmp_path, name, data, message):
    good = png_bytes(np.zeros((32, 32, 3), dtype=np.uint8))
    if data is None:
        data = good
    elif data == "small":
        data = png_bytes(np.zeros((28, 28, 3), dtype=np.uint8))
    with tarfile.open(tmp_path / "bad.tar.gz", "w:gz") as archive:
        add_file(archive, "test/cat/0.png", good)
        add_file(archive, name, data)
    with pytest.raises(DeepnetsError, match=message):
        cifar10.read_image_folder(tmp_path / "bad.tar.gz")


def test_image_folder_without_a_test_split_and_a_truncated_archive_are_errors(tmp_path):
    image_archive(tmp_path / "a.tar.gz", {"train/cat/0.png": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(DeepnetsError, match="no test/<class>/ images"):
        cifar10.read_image_folder(tmp_path / "a.tar.gz")
    raw = (tmp_path / "a.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DeepnetsError, match="cut.tar.gz"):
        cifar10.read_image_folder(tmp_path / "cut.tar.gz")


def canonical_archive(path, batches: dict[str, object]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, batch in batches.items():
            add_file(archive, f"cifar-10-batches-py/{name}", pickle.dumps(batch))


def test_canonical_archive_is_read_into_images_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    batches, expected = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        batches[name] = {b"data": data, b"labels": [1, 2, 3]}
        expected[name] = data
    canonical_archive(tmp_path / "c.tar.gz", batches)
    arrays = cifar10.read_canonical(tmp_path / "c.tar.gz")
    assert arrays["train"][0].shape == (15, 32, 32, 3)
    assert arrays["test"][1].tolist() == [1, 2, 3]
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each 32x32 row-major
    row = expected["test_batch"][0]
    assert arrays["test"][0][0, 0, 1, 0] == row[1]  # red at (0, 1)
    assert arrays["test"][0][0, 2, 0, 2] == row[2048 + 64]  # blue at (2, 0)


class Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_canonical_reader_refuses_pickles_that_would_run_code(tmp_path, capsys):
    batches = {f"data_batch_{i}": {b"data": Boom()} for i in range(1, 6)}
    canonical_archive(tmp_path / "evil.tar.gz", {**batches, "test_batch": {}})
    with pytest.raises(DeepnetsError, match="refusing to load builtins.print"):
        cifar10.read_canonical(tmp_path / "evil.tar.gz")
    assert "must never run" not in capsys.readouterr().out


def test_canonical_archive_with_a_missing_batch_or_wrong_rows_is_an_error(tmp_path):
    canonical_archive(tmp_path / "few.tar.gz", {"data_batch_1": {b"data": np.zeros((1, 3072))}})
    with pytest.raises(DeepnetsError, match="lacks data_batch_2"):
        cifar10.read_canonical(tmp_path / "few.tar.gz")
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    canonical_archive(tmp_path / "rows.tar.gz", dict.fromkeys(names, batch))
    with pytest.raises(DeepnetsError, match="expected 3072"):
        cifar10.read_canonical(tmp_path / "rows.tar.gz")


def test_source_resolution_and_a_corrupt_jpeg_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path))
    assert cifar10.resolve_source("auto") == "canonical"  # nothing here: download canonical
    (tmp_path / "cifar10-jpeg").mkdir()
    (tmp_path / "cifar10-jpeg" / "cifar10-jpeg.tar.gz").write_bytes(b"not the copy")
    assert cifar10.resolve_source("auto") == "jpeg"
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"x")
    assert cifar10.resolve_source("auto") == "canonical"
    assert cifar10.resolve_source("jpeg") == "jpeg"
    cifar10._arrays.cache_clear()
    with pytest.raises(DeepnetsError, match="is corrupt: its sha256"):
        cifar10.load_cifar10("jpeg")


def test_random_flip_mirrors_about_half_and_reflect_crops_keep_image_values():
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4).repeat(100, 1, 1, 1)
    flipped = random_flip(x, generator)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    kept = (flipped == x).flatten(1).all(1)
    assert bool((mirrored ^ kept).all()) and 60 < int(mirrored.sum()) < 140
    crops = random_translate(x, 2, generator, padding="reflect")
    assert crops.shape == x.shape
    assert set(crops.unique().tolist()) <= set(x.unique().tolist())  # reflection adds no value
    assert not torch.equal(crops, x)


@pytest.mark.parametrize("style", ["airbench", "resnet9"])
def test_convnet_shapes_names_gradients_and_mirror_averaging(style):
    torch.manual_seed(0)
    model = CifarConvNet((8, 16, 16, 32), style=style, flip_tta=True)
    x = torch.randn(4, 3, 32, 32)
    outputs = model.features(x)
    assert len(outputs) == len(model.feature_names) == 12
    assert outputs[0].shape == (4, 8, 32, 32) and outputs[-1].shape == (4, 10)
    sides = [o.shape[-1] for o in outputs[:10]]
    assert sides == [32, 32, 16, 16, 16, 8, 8, 8, 4, 4]
    model.train()
    model(x).logsumexp(1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        expected = 0.5 * (model.features(x)[-1] + model.features(x.flip(3))[-1])
        torch.testing.assert_close(model(x), expected)


def test_resnet9_units_add_their_input():
    model = CifarConvNet((8, 16, 16, 32), style="resnet9").eval()
    unit = model.blocks[0]["refine"]
    for p in unit.body.parameters():
        torch.nn.init.zeros_(p)  # F(x) = ReLU(BN(0)) = ReLU(bias 0) = 0, so y = x
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(unit(x), x)
    assert isinstance(model.blocks[1]["refine"], torch.nn.Identity)


@needs_cifar_jpeg
def test_tiny_preset_learns_on_the_jpeg_copy_through_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "run", "convnet-cifar10", "--preset", "tiny", "--quiet", "--json", "--run-dir", str(run_dir)
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["value"] > 0.15  # 10 classes: chance is 0.10; 1,000 images, 2 epochs
    evaluated = run_cli("eval", str(run_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"{summary['value']:.4f}" in evaluated.stdout

    figure = run_cli("figure", "fig2", str(run_dir), "--out", str(tmp_path / "fig2.png"))
    assert figure.returncode == 0, figure.stderr
    assert (tmp_path / "fig2.png").stat().st_size > 20_000
    photo = tmp_path / "photo.jpg"  # any photo: its central square is scaled to 32x32
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 90, 3), np.uint8)).save(photo)
    out = tmp_path / "fig2-photo.png"
    figure = run_cli("figure", "fig2", str(run_dir), "--image", str(photo), "--out", str(out))
    assert figure.returncode == 0, figure.stderr
    assert out.stat().st_size > 20_000


@needs_cifar_jpeg
def test_an_image_file_is_read_as_the_loader_reads_the_data_set(tmp_path):
    test_images = cifar10._arrays("jpeg")["test"][0]  # (10000, 32, 32, 3) uint8
    x_test = cifar10.load_cifar10("jpeg")["test"][0]
    for k in (0, 7):
        # the 32x32 image between two bars: the central square is the image itself
        wide = np.zeros((32, 50, 3), np.uint8)
        wide[:, 9:41] = test_images[k]
        Image.fromarray(wide).save(tmp_path / "wide.png")
        x = cifar10.read_image(tmp_path / "wide.png", "jpeg")
        assert x.shape == (1, 3, 32, 32)
        torch.testing.assert_close(x[0], x_test[k], atol=1e-5, rtol=0)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DeepnetsError, match="cannot be read as an image"):
        cifar10.read_image(tmp_path / "notes.png", "jpeg")


def test_fig2_draws_every_map_of_both_styles_with_the_class_names():
    from deepnets.figures.fig2 import build_fig2, layer_names, layer_outputs

    for style in ("airbench", "resnet9"):
        model = CifarConvNet((4, 8, 8, 16), style=style).eval()
        x = torch.randn(1, 3, 32, 32)
        outputs = layer_outputs(model, x)
        names = layer_names(model, len(outputs))
        assert names == model.feature_names
        fig = build_fig2(x[0], outputs, names, CONVNET_CIFAR10.class_names)
        maps = sum(o.shape[0] for o in outputs if o.ndim == 3)  # every (C, H, W) map
        assert len(fig.axes) == 1 + maps + 1 + 1  # the input, the maps, the pooled strip, scores
        labels = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
        assert labels == list(cifar10.CLASSES)


@needs_cifar_jpeg
def test_the_jpeg_copy_loads_balanced_and_standardised():
    splits = CONVNET_CIFAR10.load_data(CONVNET_CIFAR10.preset("tiny"))
    x, y = splits["test"]
    assert x.shape == (10000, 3, 32, 32) and y.bincount().tolist() == [1000] * 10
    full = cifar10.load_cifar10("jpeg", val_size=5000)
    assert full["val"][1].bincount(minlength=10).min() > 400  # a random, balanced split
    train = full["train"][0]
    assert abs(float(train.mean())) < 0.05 and abs(float(train.std()) - 1) < 0.05


def test_cutout_zeroes_one_square_per_image_in_every_channel():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(500, 3, 12, 12) + 1.0  # no zero anywhere before the cutout
    out = random_cutout(x, 4, generator)
    zeroed = out == 0  # (B, C, H, W)
    assert bool((zeroed.all(1) == zeroed.any(1)).all())  # the same pixels in every channel
    torch.testing.assert_close(out[~zeroed], x[~zeroed])  # the rest untouched
    for mask in zeroed[:, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert int(mask.sum()) == len(rows) * len(cols)  # one axis-aligned rectangle
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
    counts = zeroed[:, 0].flatten(1).sum(1)
    assert (counts == 16).float().mean() > 0.3  # a whole square unless it crosses a border
    assert bool((counts < 16).any())  # ...which happens near the borders
    assert random_cutout(x, 0, generator) is x
