"""The counting loop, for models estimated by counting rather than by gradient steps (the
N-gram baseline): fit on the training split, report perplexity on validation and test.

It writes the same run folder files as the supervised loop (`config.json`, `metrics.jsonl`,
`summary.json`); there are no weights to checkpoint, so `eval` fits the counts again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from deepnets import DeepnetsError
from deepnets.registry import Experiment
from deepnets.train.checkpoint import atomic_write_text
from deepnets.train.supervised import Log, print_line, published_note, run_metadata, run_summary


def fit_counts(experiment: Experiment, config) -> tuple[object, dict, float]:
    """Fit the model on the training split; return (model, splits, seconds)."""
    splits = experiment.load_data(config)
    started = time.perf_counter()
    model = experiment.build_model(config).fit(splits["train"])
    return model, splits, time.perf_counter() - started


def evaluate_counts(experiment: Experiment, config, split: str) -> dict[str, float]:
    """Fit again (counting is deterministic) and score one split."""
    model, splits, _ = fit_counts(experiment, config)
    if split not in splits:
        raise DeepnetsError(f"unknown split {split!r}; splits: {', '.join(splits)}")
    return {"perplexity": model.perplexity(splits[split])}


def fit_and_evaluate(
    experiment: Experiment, config, run_dir: Path, preset: str = "custom", log: Log = print_line
) -> dict:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = run_metadata(experiment, preset, config, "cpu", 1)
    atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2) + "\n")
    model, splits, seconds = fit_counts(experiment, config)
    log(f"fitted {experiment.id} in {seconds:.1f}s")
    scores = {split: model.perplexity(splits[split]) for split in ("valid", "test")}
    record = {"epoch": 1, "seconds": seconds, "val_perplexity": scores["valid"]}
    atomic_write_text(run_dir / "metrics.jsonl", json.dumps(record) + "\n")
    summary = run_summary(experiment, preset, scores["test"], 1, 1, seconds, "cpu", config.seed)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    log(
        f"valid perplexity {scores['valid']:.2f}  test perplexity {scores['test']:.2f}  "
        + published_note(experiment, preset)
    )
    return summary
