"""The results part of the page: the systems table, each run's learning curves, and the review's
figures drawn from the runs found (rendered once, then cached), plus the static export."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from deepnets import DeepnetsError
from deepnets.serve.catalog import NotFound, RunCatalog, RunInfo

# The figures drawn from a run, and the experiments whose runs each accepts.
RUN_FIGURES: dict[str, tuple[str, ...]] = {
    "fig2": ("lenet5-mnist", "convnet-digits", "convnet-cifar10"),
    "fig4": ("nplm-ptb", "rnn-ptb", "lstm-ptb"),
    "fig-filters": ("dbn-mnist", "sdae-mnist"),
    "fig-dbn-samples": ("dbn-mnist",),
    "fig4-phrases": ("attention-multi30k", "seq2seq-multi30k"),  # English-to-German runs
    "fig-memn2n-hops": ("memn2n-babi",),
    "fig-ntm-copy": ("ntm-copy",),
    "fig-ntm-sort": ("ntm-sort",),
}
MAX_CURVE_RECORDS = 20000
STATIC = Path(__file__).with_name("static")


def curves(info: RunInfo) -> dict:
    """The run's metrics.jsonl records (at most MAX_CURVE_RECORDS, evenly thinned)."""
    from deepnets.run import RunDir

    records = (
        RunDir.open(info.path).read_metrics() if (info.path / "metrics.jsonl").exists() else []
    )
    stride = max(1, len(records) // MAX_CURVE_RECORDS + (len(records) % MAX_CURVE_RECORDS > 0))
    return {"run": info.id, "experiment": info.experiment, "records": records[::stride]}


def figure_choices(catalog: RunCatalog) -> list[dict]:
    """For each figure, the newest finished run of each experiment it draws."""
    newest: dict[tuple[str, str], RunInfo] = {}
    for info in catalog.scan().values():
        if not info.finished:
            continue
        for name, experiments in RUN_FIGURES.items():
            key = (name, info.experiment)
            if info.experiment in experiments and (
                key not in newest or info.path.name > newest[key].path.name
            ):
                newest[key] = info
    return [
        {"name": name, "run": info.id, "experiment": info.experiment}
        for (name, _), info in sorted(newest.items())
    ]


class FigureCache:
    """Figures rendered into `folder` on first request, one at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()

    def get(self, name: str, info: RunInfo) -> tuple[Path, str]:
        from deepnets.figures import FIGURES
        from deepnets.run import git_commit

        if name not in RUN_FIGURES:
            raise NotFound(f"unknown figure {name[:40]!r}; figures: {', '.join(RUN_FIGURES)}")
        if info.experiment not in RUN_FIGURES[name]:
            raise DeepnetsError(f"{name} is not drawn from a {info.experiment} run")
        if not info.finished:
            raise DeepnetsError(f"run {info.id} has not finished")
        file = self.folder / f"{name}--{info.id.replace('/', '--')}.png"
        made = info.summary().get("commit", "unknown")
        caption = (
            f"{name}: drawn from run {info.id} ({info.experiment}, preset {info.preset}, "
            f"seed {info.seed}; trained at commit {made}, drawn at commit {git_commit()})"
        )
        with self._lock:
            if not file.is_file():
                self.folder.mkdir(parents=True, exist_ok=True)
                FIGURES[name](run_dir=str(info.path), out=str(file))
        return file, caption


def export_static(catalog: RunCatalog, out: Path, figures: bool = True) -> Path:
    """The results part as files that open without a server: index.html reads data.js."""
    from deepnets.claims import claims_records
    from deepnets.results import systems_records

    (out / "static").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STATIC / "index.html", out / "index.html")
    for name in ("app.js", "app.css"):
        shutil.copyfile(STATIC / name, out / "static" / name)
    runs = [info for info in catalog.scan().values() if info.finished]
    shown = []
    if figures:
        cache = FigureCache(out / "figures")
        for choice in figure_choices(catalog):
            try:
                file, caption = cache.get(choice["name"], catalog.find(choice["run"]))
            except DeepnetsError as err:
                print(f"skipped {choice['name']} of {choice['run']}: {err}")
                continue
            shown.append({**choice, "src": f"figures/{file.name}", "caption": caption})
    data = {
        "systems": systems_records(),
        "claims": claims_records(),
        "runs": [info.record() for info in runs],
        "curves": {info.id: curves(info)["records"] for info in runs},
        "figures": shown,
    }
    (out / "data.js").write_text("window.DEEPNETS_EXPORT = " + json.dumps(data) + ";\n")
    return out / "index.html"
