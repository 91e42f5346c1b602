"""Counting, for models estimated by counting rather than by gradient steps (the N-gram
baseline): fit on the training split, report perplexity on validation and test.

It writes the same run folder files as the gradient engine (`config.json`, `metrics.jsonl`,
`summary.json`); there are no weights to checkpoint, so `eval` fits the counts again, and there
is nothing to resume.
"""

from __future__ import annotations

import time

from deepnets import DeepnetsError
from deepnets.run import RunDir, summary_record
from deepnets.train.engine import Log, print_line


class Count:
    def fit(self, experiment, config) -> tuple[object, dict, float]:
        """Fit the model on the training split; return (model, splits, seconds)."""
        splits = experiment.load_data(config)
        started = time.perf_counter()
        model = experiment.build_model(config).fit(splits["train"])
        return model, splits, time.perf_counter() - started

    def train(
        self,
        experiment,
        config,
        run: RunDir,
        preset: str = "custom",
        resume: bool = False,
        progress: bool = True,
        log: Log = print_line,
    ) -> dict:
        if resume:
            raise DeepnetsError(
                f"{experiment.id} is fitted by counting in one pass; there is nothing to "
                "resume, run it again"
            )
        run.write_config(experiment, preset, config, "cpu", 1)
        model, splits, seconds = self.fit(experiment, config)
        log(f"fitted {experiment.id} in {seconds:.1f}s")
        scores = {split: model.perplexity(splits[split]) for split in ("valid", "test")}
        run.log_metrics({"epoch": 1, "seconds": seconds, "val_perplexity": scores["valid"]})
        state = {"epoch": 1, "step": 0, "best_epoch": None, "train_seconds": seconds}
        test = {"perplexity": scores["test"]}
        summary = summary_record(experiment, preset, config, test, state, "cpu", "test")
        run.write_summary(summary)
        log(
            f"valid perplexity {scores['valid']:.2f}  test perplexity {scores['test']:.2f}  "
            f"vs {experiment.published_text(preset)}"
        )
        return summary

    def evaluate_run(self, run: RunDir, device: str = "auto", split: str = "test") -> dict:
        """Fit again (counting is deterministic) and score one split."""
        experiment, config, _ = run.read_config()
        model, splits, _ = self.fit(experiment, config)
        if split not in splits:
            raise DeepnetsError(f"unknown split {split!r}; splits: {', '.join(splits)}")
        return {"perplexity": model.perplexity(splits[split])}
