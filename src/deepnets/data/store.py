"""The data store: where data sets live, how they are fetched, and how they are checked.

The data root is `$DEEPNETS_DATA`, else `$XDG_CACHE_HOME/deepnets` (default `~/.cache/deepnets`).
Each data set has a folder there with its canonical file names. A missing file is downloaded from
its canonical URL (mirrors tried in order) and checked against its sha256; with no network, or in
offline mode (`--offline` or `DEEPNETS_OFFLINE=1`), the error names the missing files, the URLs and
the folder to put them in. A file that fails its checksum is an error naming it, never a retry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deepnets import DeepnetsError

_offline_override: bool | None = None


@dataclass(frozen=True)
class RemoteFile:
    name: str  # canonical file name inside the data set's folder
    sha256: str  # expected checksum of the file as stored
    urls: tuple[str, ...]  # canonical source first, then mirrors


def data_root() -> Path:
    """The folder that holds one sub-folder per data set."""
    env = os.environ.get("DEEPNETS_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "deepnets"


def set_offline(offline: bool | None) -> None:
    """Force offline mode on (True), off (False) or back to the environment's choice (None)."""
    global _offline_override
    _offline_override = offline


def is_offline() -> bool:
    if _offline_override is not None:
        return _offline_override
    return os.environ.get("DEEPNETS_OFFLINE", "").lower() in ("1", "true", "yes")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _where_to_put(dataset: str, files: list[RemoteFile]) -> str:
    folder = data_root() / dataset
    lines = [f"put these files in {folder} (or set DEEPNETS_DATA to a folder holding {dataset}/):"]
    for remote in files:
        lines.append(f"  {remote.name}  sha256 {remote.sha256}  from {remote.urls[0]}")
    return "\n".join(lines)


def verify(path: Path, remote: RemoteFile) -> None:
    actual = sha256_of(path)
    if actual != remote.sha256:
        raise DeepnetsError(
            f"{path} is corrupt: its sha256 is {actual}, expected {remote.sha256}. "
            f"Delete it and download it again from {remote.urls[0]}"
        )


def _download(remote: RemoteFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in remote.urls:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{remote.name}.")
        tmp = Path(tmp_name)
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "deepnets"})
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=30) as resp:
                shutil.copyfileobj(resp, out)
            if sha256_of(tmp) != remote.sha256:
                failures.append(f"{url}: checksum mismatch")
                continue
            os.replace(tmp, target)
            return
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DeepnetsError(f"could not download {remote.name} ({'; '.join(failures)})")


def read_text_file(path: Path) -> str:
    """A data file as text; anything that is not non-empty UTF-8 text is an error naming it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DeepnetsError(f"{path} cannot be decoded as UTF-8 text: {err}") from None
    except OSError as err:
        raise DeepnetsError(f"{path} cannot be read: {err}") from None
    if "\x00" in text:
        raise DeepnetsError(f"{path} holds NUL bytes; it is not a text file")
    if not text:
        raise DeepnetsError(f"{path} is empty")
    return text


def fetch(dataset: str, files: list[RemoteFile]) -> dict[str, Path]:
    """Return the local path of every file of `dataset`, downloading missing ones unless offline."""
    folder = data_root() / dataset
    missing = [remote for remote in files if not (folder / remote.name).is_file()]
    if missing and is_offline():
        raise DeepnetsError(
            f"{dataset}: missing {', '.join(r.name for r in missing)} and offline mode is on; "
            + _where_to_put(dataset, missing)
        )
    for remote in missing:
        try:
            _download(remote, folder / remote.name)
        except DeepnetsError as err:
            raise DeepnetsError(f"{dataset}: {err}\n" + _where_to_put(dataset, missing)) from None
    paths = {}
    for remote in files:
        path = folder / remote.name
        verify(path, remote)
        paths[remote.name] = path
    return paths
