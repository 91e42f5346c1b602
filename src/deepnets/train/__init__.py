"""The training loops: supervised (gradient steps), counting (N-gram models), language models
(a token stream, truncated BPTT), CTC (variable-length speech to label strings) and layer-wise
pre-training then fine-tuning; reinforcement learning comes later. `run_experiment` picks the
experiment's."""

from __future__ import annotations

from pathlib import Path

from deepnets import DeepnetsError


def run_experiment(
    experiment,
    config,
    run_dir: Path,
    preset: str = "custom",
    resume: bool = False,
    progress: bool = True,
) -> dict | None:
    """Train and evaluate `experiment` with the loop it names; return the summary."""
    if experiment.loop == "count":
        from deepnets.train.count import fit_and_evaluate

        if resume:
            raise DeepnetsError(
                f"{experiment.id} is fitted by counting in one pass; there is "
                "nothing to resume, run it again"
            )
        return fit_and_evaluate(experiment, config, run_dir, preset)
    if experiment.loop == "language_model":
        from deepnets.train.language_model import train_and_evaluate
    elif experiment.loop == "ctc":
        from deepnets.train.ctc import train_and_evaluate
    elif experiment.loop == "pretrain":
        from deepnets.train.pretrain import train_and_evaluate
    else:
        from deepnets.train.supervised import train_and_evaluate

    return train_and_evaluate(
        experiment, config, run_dir, preset=preset, resume=resume, progress=progress
    )


def evaluate_saved_run(run_dir: Path, device: str = "auto", split: str = "test") -> dict:
    """Re-evaluate a run folder with the loop its experiment names."""
    from deepnets.train.supervised import evaluate_run, load_run

    experiment, config, _ = load_run(run_dir)
    if experiment.loop == "count":
        from deepnets.train.count import evaluate_counts

        return evaluate_counts(experiment, config, split)
    if experiment.loop == "language_model":
        from deepnets.train import language_model

        return language_model.evaluate_run(run_dir, device, split)
    if experiment.loop == "ctc":
        from deepnets.train import ctc

        return ctc.evaluate_run(run_dir, device, split)
    return evaluate_run(run_dir, device, split)
