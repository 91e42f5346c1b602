"""Flickr8k (Hodosh, Young & Hockenmaier 2013): 8,091 Flickr photographs with 5 captions each and
the standard 6,000 / 1,000 / 1,000 train / dev / test split.

The captions are `Flickr8k_text/` (from the canonical Flickr8k_text.zip). The images are either
`Flickr8k_Dataset_224.tar` (every image at 224x224, the copy in the shared data folder) or the
canonical `Flickr8k_Dataset.zip` (original sizes, about 1 GB, from the same request form); both
are read without unpacking, and each image is resized (aspect ratio not kept) to the size the
experiment asks for. The text files and the tar are checked against their sha256; no checksum
of the canonical zip is published, so that is only checked to hold every split image.
Decoded images are cached as a .npy per size in the user's cache folder.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.data.store import data_root, read_text_file, sha256_of

TEXT = "Flickr8k_text"
TEXT_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip"
IMAGES_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_Dataset.zip"
TEXT_FILES = {
    "Flickr8k.token.txt": "9b8608b02da9040581f1e3d4c8738db1fb6f63314342100432adc3962f77d71a",
    "Flickr_8k.trainImages.txt": "e330ddd5156a4c2d2e2b67bc587e70e588f2d132bd8a10dc54dcb71e58115d8e",
    "Flickr_8k.devImages.txt": "18ba829f47f6df1cb830bf7f0506e2ddf333818925299babbd1bbcaf50fdc504",
    "Flickr_8k.testImages.txt": "c0924146c131458ceba45da59670fe9520eadce1e5cafffa16a817672a9b1f17",
}
TAR = "Flickr8k_Dataset_224.tar"
TAR_SHA256 = "2ba27f49d6de3017733e1ef24d3b09c2e7903457c83f85d76d97d2099bde709a"
ZIP = "Flickr8k_Dataset.zip"
SPLITS = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
          "test": "Flickr_8k.testImages.txt"}  # fmt: skip
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


def folder() -> Path:
    return data_root() / "flickr8k"


def _missing_text_message(missing: list[str]) -> str:
    where = folder() / TEXT
    return (
        f"flickr8k: missing {', '.join(missing)}; unzip Flickr8k_text.zip (from the Flickr8k "
        f"request form, commonly mirrored at {TEXT_URL}) so that {where}/ holds "
        f"{', '.join(TEXT_FILES)} (or set DEEPNETS_DATA to a folder holding flickr8k/)"
    )


@functools.lru_cache(maxsize=1)
def captions_and_splits() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """({image name: its captions}, {"train" / "val" / "test": image names}), checksummed."""
    base = folder() / TEXT
    missing = [name for name in TEXT_FILES if not (base / name).is_file()]
    if missing:
        raise DeepnetsError(_missing_text_message(missing))
    texts = {}
    for name, sha in TEXT_FILES.items():
        path = base / name
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise DeepnetsError(f"{path} is corrupt: its sha256 is {actual}, expected {sha}")
        texts[name] = read_text_file(path)
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(texts["Flickr8k.token.txt"].splitlines(), 1):
        if not line.strip():
            continue
        key, sep, caption = line.partition("\t")
        if not sep or "#" not in key:
            raise DeepnetsError(f"{base / 'Flickr8k.token.txt'} line {number} is malformed")
        name = key.split("#")[0].removesuffix(".1")  # the one known quirk: NAME.jpg.1#k
        captions.setdefault(name, []).append(caption.strip())
    splits = {s: texts[f].split() for s, f in SPLITS.items()}
    for split, names in splits.items():
        absent = [n for n in names if n not in captions]
        if absent:
            raise DeepnetsError(f"flickr8k: {len(absent)} {split} images have no captions")
    return captions, splits


def vocabulary(size: int, min_count: int) -> tuple[str, ...]:
    """The special tokens, then the training captions' words seen at least `min_count` times,
    most frequent first (ties alphabetical), `size` entries at most."""
    from deepnets.train.caption import words_of

    captions, splits = captions_and_splits()
    counts = Counter(w for name in splits["train"] for c in captions[name] for w in words_of(c))
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return SPECIALS + tuple(kept[: max(0, size - len(SPECIALS))])


def _image_source() -> tuple[Path, str]:
    tar, zipped = folder() / TAR, folder() / ZIP
    if tar.is_file():
        actual = sha256_of(tar)
        if actual != TAR_SHA256:
            raise DeepnetsError(f"{tar} is corrupt: its sha256 is {actual}, expected {TAR_SHA256}")
        return tar, TAR_SHA256
    if zipped.is_file():
        stat = zipped.stat()
        return zipped, f"zip-{stat.st_size}-{int(stat.st_mtime)}"
    raise DeepnetsError(
        f"flickr8k: no images. Put either {TAR} (all images at 224x224; sha256 {TAR_SHA256}) "
        f"or the canonical {ZIP} (from the Flickr8k request form, commonly mirrored at "
        f"{IMAGES_URL}) in {folder()} (or set DEEPNETS_DATA to a folder holding flickr8k/)"
    )


def _decode(data: bytes, size: int, name: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale where it can
            image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)  # (3, S, S)
    except (OSError, ValueError) as err:
        raise DeepnetsError(f"flickr8k: {name} cannot be decoded as an image: {err}") from None


def _read_images(source: Path, names: list[str], size: int) -> np.ndarray:
    wanted = set(names)
    found: dict[str, np.ndarray] = {}
    if source.suffix == ".tar":
        try:
            with tarfile.open(source) as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in wanted:
                        found[base] = _decode(tar.extractfile(member).read(), size, base)
        except (tarfile.TarError, OSError) as err:
            raise DeepnetsError(f"{source} cannot be read as a tar file: {err}") from None
    else:
        try:
            with zipfile.ZipFile(source) as archive:
                for info in archive.infolist():
                    base = info.filename.rsplit("/", 1)[-1]
                    if base in wanted and base not in found:
                        found[base] = _decode(archive.read(info), size, base)
        except (zipfile.BadZipFile, OSError) as err:
            raise DeepnetsError(f"{source} cannot be read as a zip file: {err}") from None
    absent = [n for n in names if n not in found]
    if absent:
        raise DeepnetsError(f"{source} lacks {len(absent)} split images, e.g. {absent[0]}")
    return np.stack([found[n] for n in names])


def _cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "deepnets" / "flickr8k-images"


@functools.lru_cache(maxsize=1)
def load_flickr8k(size: int = 64) -> dict[str, tuple[torch.Tensor, list[list[str]]]]:
    """{"train", "val", "test"}: (images (N, 3, size, size) uint8, each image's captions)."""
    captions, splits = captions_and_splits()
    source, key = _image_source()
    names = [n for s in ("train", "val", "test") for n in splits[s]]
    cache = _cache_dir() / f"{key[:24]}-{size}.npy"
    images = None
    if cache.is_file():
        try:
            images = np.load(cache)
        except (OSError, ValueError):
            images = None
        if images is not None and images.shape != (len(names), 3, size, size):
            images = None
    if images is None:
        images = _read_images(source, names, size)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, images)
            os.replace(tmp, cache)
        except OSError:
            pass  # a cache we cannot write is only slower
    out, start = {}, 0
    for split in ("train", "val", "test"):
        n = len(splits[split])
        out[split] = (
            torch.from_numpy(images[start : start + n]),
            [captions[name] for name in splits[split]],
        )
        start += n
    return out
