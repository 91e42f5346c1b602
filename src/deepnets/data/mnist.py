"""MNIST (LeCun, Cortes & Burges): 60,000 training and 10,000 test digits, 28x28, in IDX files.

The four canonical gzip files are fetched through the data store and parsed here. The
validation split is carved from the end of the training set; the test set is only for the
final evaluation.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.data.store import RemoteFile, fetch

_SOURCE = "http://yann.lecun.com/exdb/mnist/"
_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def _canonical(name: str, sha256: str) -> RemoteFile:
    return RemoteFile(name, sha256, (_SOURCE + name, _MIRROR + name))


FILES = {
    "train_images": _canonical(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train_labels": _canonical(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "test_images": _canonical(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "test_labels": _canonical(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}

MEAN, STD = 0.1307, 0.3081  # pixel statistics of the training images on the 0-1 scale


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzip-compressed) of unsigned bytes into an array.

    Layout: two zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions,
    then each dimension as a big-endian uint32, then the data in C order.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DeepnetsError(f"{path} cannot be read as an IDX file: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DeepnetsError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DeepnetsError(f"{path}: IDX type 0x{raw[2]:02x} is not unsigned bytes (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DeepnetsError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) if shape else 0
    if len(raw) - header != expected:
        raise DeepnetsError(
            f"{path} holds {len(raw) - header} data bytes but its header promises "
            f"{expected} for shape {shape} (truncated or corrupt file)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(val_size: int = 5000) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return {"train", "val", "test"}: (images (N, 1, 28, 28) float, standardised; labels (N,))."""
    paths = fetch("mnist", list(FILES.values()))
    arrays = {key: read_idx(paths[remote.name]) for key, remote in FILES.items()}
    for split, count in (("train", 60000), ("test", 10000)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape != (count, 28, 28) or labels.shape != (count,):
            raise DeepnetsError(
                f"MNIST {split} files have shapes {images.shape} and {labels.shape}, "
                f"expected ({count}, 28, 28) and ({count},)"
            )
        if labels.max() > 9:
            raise DeepnetsError(f"MNIST {split} labels hold {labels.max()}, expected 0-9")

    def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(images.copy()).float().div_(255).sub_(MEAN).div_(STD)
        return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))  # (N, 1, 28, 28), (N,)

    if not 0 <= val_size < 60000:
        raise DeepnetsError(f"val_size must be in [0, 60000), got {val_size}")
    train_x, train_y = to_tensors(arrays["train_images"], arrays["train_labels"])
    cut = 60000 - val_size
    return {
        "train": (train_x[:cut], train_y[:cut]),
        "val": (train_x[cut:], train_y[cut:]),
        "test": to_tensors(arrays["test_images"], arrays["test_labels"]),
    }


CLASS_NAMES = tuple(str(digit) for digit in range(10))  # label k is the digit k


def read_ink(path) -> np.ndarray:
    """An image file (a path or a file object) as its ink: grayscale 0-1, light ink on black
    (an image whose border is brighter than its middle is inverted, the background's own shade
    becomes black), cropped to the ink's bounding box."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            gray = np.asarray(opened.convert("L"), dtype=np.float32) / 255  # (H, W), 0-1
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DeepnetsError(f"{path} cannot be read as an image (PNG or JPEG): {err}") from None
    if gray.size == 0:
        raise DeepnetsError(f"{path} is an empty image")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > gray.mean():
        gray, border = 1 - gray, 1 - border  # dark ink on light paper -> light ink on black
    gray = np.clip(gray - np.median(border), 0, 1)
    if gray.max() <= 0:
        raise DeepnetsError(f"{path} holds no digit (the image is blank)")
    rows, cols = np.nonzero(gray > 0.1 * gray.max())
    return gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # bounding box


def fit_ink(ink: np.ndarray, box: int, field: int) -> np.ndarray:
    """The ink scaled to fit a box x box square, keeping its aspect ratio, centred in a
    field x field array of zeros; values 0-1."""
    from PIL import Image

    h, w = ink.shape
    fit = box / max(h, w)
    size = (max(1, round(w * fit)), max(1, round(h * fit)))  # PIL: (width, height)
    small = Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    canvas = np.zeros((field, field), dtype=np.float32)
    top, left = (field - size[1]) // 2, (field - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = np.asarray(small, np.float32) / 255
    return canvas


def read_image(path) -> torch.Tensor:
    """A PNG or JPEG file (a path or a file object) as one MNIST input (1, 1, 28, 28),
    standardised like the data set. As MNIST was made: grayscale, light ink on a dark
    background, the ink's bounding box scaled to fit 20x20 pixels, keeping its aspect ratio, and
    centred in a 28x28 field."""
    x = torch.from_numpy(fit_ink(read_ink(path), 20, 28)).sub_(MEAN).div_(STD)
    return x[None, None]  # (1, 1, 28, 28)


def balanced_subset(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Indices of `count` examples, count / 10 of each class, drawn at random by `seed`."""
    classes = int(labels.max()) + 1
    if count % classes:
        raise DeepnetsError(f"labels={count} must be a multiple of the {classes} classes")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    picked = []
    for c in range(classes):
        members = (labels == c).nonzero()[:, 0]
        if len(members) < count // classes:
            raise DeepnetsError(f"class {c} has {len(members)} examples, fewer than labels/10")
        picked.append(
            members[torch.randperm(len(members), generator=generator)[: count // classes]]
        )
    return torch.cat(picked).sort().values
