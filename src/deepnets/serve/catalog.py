"""The runs a page may show, named by id, never by path, and a bounded cache of loaded models.

A run's id is its folder's path relative to the runs folder ("lenet5-mnist/20261127-...-s0").
Ids are only ever looked up in the catalog's own scan, so no request can name a file outside it.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepnets import DeepnetsError

MAX_RUNS = 5000  # run folders a scan lists at most
MAX_DEPTH = 4  # runs/<experiment>/<run> and runs/bench/<experiment>/<run>, with room to spare
LAYER = re.compile(r"layer\d+$")  # a pretraining stack's per-layer runs, part of their stack
RUN_ID = re.compile(r"[A-Za-z0-9._+=,-]+(/[A-Za-z0-9._+=,-]+){0,3}$")


class NotFound(DeepnetsError):
    """A request names something the server does not have (HTTP 404)."""


@dataclass(frozen=True)
class RunInfo:
    id: str
    path: Path
    experiment: str
    preset: str
    seed: int | None
    finished: bool

    def record(self) -> dict:
        summary = self.summary()
        return {
            "id": self.id,
            "experiment": self.experiment,
            "preset": self.preset,
            "seed": self.seed,
            "finished": self.finished,
            "value": summary.get("value"),
            "commit": summary.get("commit"),
        }

    def summary(self) -> dict:
        try:
            return json.loads((self.path / "summary.json").read_text())
        except (OSError, ValueError):
            return {}


def _read_info(root: Path, folder: Path) -> RunInfo | None:
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("experiment"), str):
        return None
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    seed = config.get("seed")
    return RunInfo(
        id=folder.relative_to(root).as_posix(),
        path=folder,
        experiment=meta["experiment"],
        preset=str(meta.get("preset", "custom")),
        seed=seed if isinstance(seed, int) else None,
        finished=(folder / "summary.json").is_file(),
    )


class RunCatalog:
    """Every run folder under `root` (a folder holding config.json), found by a fresh scan."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def scan(self) -> dict[str, RunInfo]:
        found: dict[str, RunInfo] = {}
        if not self.root.is_dir():
            return found
        stack = [(self.root, 0)]
        while stack and len(found) < MAX_RUNS:
            folder, depth = stack.pop()
            if folder != self.root and (folder / "config.json").is_file():
                info = _read_info(self.root, folder)
                if info is not None:
                    found[info.id] = info
                continue
            if depth >= MAX_DEPTH:
                continue
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            stack += [(c, depth + 1) for c in reversed(children) if not LAYER.match(c.name)]
        return dict(sorted(found.items()))

    def find(self, run_id: Any) -> RunInfo:
        if not isinstance(run_id, str) or not run_id:
            raise DeepnetsError("name a run with ?run=ID (ids are listed by /api/runs)")
        shown = run_id[:80]
        if not RUN_ID.match(run_id) or ".." in run_id.split("/"):
            raise DeepnetsError(f"{shown!r} is not a run id: ids are listed by /api/runs")
        info = self.scan().get(run_id)
        if info is None:
            raise NotFound(f"unknown run id {shown!r}: ids are listed by /api/runs")
        return info


class ModelCache:
    """At most `size` loaded runs, least recently used dropped first; safe across threads (a
    run is loaded once even when many requests ask for it at the same time)."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def get(self, key: tuple[str, str], load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = load()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return value

    def __len__(self) -> int:
        return len(self._items)
