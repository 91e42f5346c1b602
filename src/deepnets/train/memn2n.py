"""Training end-to-end memory networks on bAbI (Sukhbaatar et al. 2015, sec. 4.2) on the shared
engine: what a batch is (with random noise), the loss, the per-task scores, linear start, and
restarts kept by validation.

- Random noise (RN): in training, empty memories are inserted at random among a story's
  sentences, one after each sentence with probability `noise` (the paper: "10% of empty
  memories"), which shifts the time indices the temporal encoding sees. A memory slot whose time
  index reaches the memory size falls out (the memory holds the most recent `memory_size`).
- Linear start (LS): training starts with the attention softmaxes removed, at lr `ls_lr` (the
  paper's 0.005 on the summed cost). With `ls_epochs` N > 0 they are reinserted after exactly
  N epochs, as the authors' released code does (MemN2N-babi-matlab: 30 epochs joint, 20 per
  task); with `ls_epochs` 0, at the first validation whose loss does not fall below the best so
  far (the paper's text), from the next training step (so the weights saved with that
  validation's score are the ones it scored). Either way the lr schedule then starts over from
  `lr` ("training recommenced"); `epochs` counts the LS epochs too.
- Restarts: `restarts` > 1 trains that many runs from different seeds (seed * 1000 + r), each a
  complete engine run in the sub-folder restart-<r>, and keeps the one with the lowest
  validation error (ties: validation loss). The paper kept the lowest training error of 10;
  this project selects on validation, never on test. The top folder gets the kept run's weights
  and a summary naming every restart's validation error; its wall time is that of all restarts.

Deviations from the paper: the loss is the batch mean at lr 0.32 and clip 1.25, which for plain
SGD is the paper's summed cost at lr 0.01 and clip 40 with batch 32 (LS: 0.16 = 0.005). The
released code clips each weight matrix's gradient on its own; here the global norm is clipped.
Its random noise leaves gaps in the time indices instead of adding empty memories. Its position
encoding differs from the paper's formula: J is the longest sentence of the data for every
sentence, and the weights are about twice the paper's. `position_weights` picks either; the
authors' (the default) solves task 16, basic induction, which the paper's formula leaves near
50% error here (joint 1k, seed 0: 0.8% against 52.0%).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from deepnets import DeepnetsError
from deepnets.run import RunDir
from deepnets.train import checkpoint as ckpt
from deepnets.train import engine
from deepnets.train.distributed import Context, resolve_device
from deepnets.train.task import GradientTask, index_batches

FAIL = 0.05  # a task fails when its test error is above 5% (Sukhbaatar et al. 2015)


def memory_inputs(
    counts: torch.Tensor,
    memory_size: int,
    noise: torch.Tensor | None = None,
    rows: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time indices (B, S) and mask (B, S) of the memory slots for stories of `counts` sentences
    stored oldest first in R rows (default R = memory_size); with `noise` (B, R) booleans, one
    empty memory after each marked sentence, as R more slots (S = 2R), else S = R.

    Sentence i of n has time (n - 1 - i) + (empties after sentences i..n-1); the empty after
    sentence i sits one step more recent than sentence i. Slots at time >= memory_size drop out.
    """
    b, m = counts.shape[0], memory_size
    i = torch.arange(rows or m).expand(b, rows or m)  # (B, R)
    real = i < counts.unsqueeze(1)  # (B, R)
    times = counts.unsqueeze(1) - 1 - i  # (B, R)
    if noise is None:
        return times, real
    noise = noise & real
    newer = noise.flip(1).cumsum(1).flip(1)  # (B, R): empties after sentences j >= i
    times = times + newer
    empty_times = times - 1  # the empty after sentence i
    times = torch.cat([times, empty_times], dim=1)  # (B, 2R)
    mask = torch.cat([real, noise], dim=1) & (times < m)  # (B, 2R)
    return times, mask


def _spans(data) -> tuple[int, int]:
    """The longest sentence and question of the tasks' data (their padded lengths): J of the
    authors' position encoding."""
    return data["train"].stories.shape[-1], data["train"].queries.shape[-1]


class MemN2NTask(GradientTask):
    """bAbI question answering with a memory network; scores are error rates per task."""

    def split_names(self, data) -> list[str]:
        return ["train", "val", "test"]

    def build(self, experiment, config, data) -> nn.Module:
        if data is None:  # a saved run: the vocabulary comes from the data files again
            data = experiment.load_data(config)
        from deepnets.models.memn2n import MemN2N

        model = MemN2N(
            len(data["vocab"]),
            config.dim,
            config.hops,
            config.memory_size,
            config.position_encoding,
            config.temporal_encoding,
            empty_attention=config.empty_attention,
            spans=_spans(data) if config.position_weights == "authors" else None,
        )
        model.linear.fill_(config.linear_start)
        return model

    def steps_per_epoch(self, data, config) -> int:
        return len(data["train"]) // config.batch_size

    def batches(self, data, config, generator: torch.Generator, ctx: Context) -> Iterator:
        train = data["train"]
        for idx in index_batches(len(train), config, generator, ctx):
            counts = train.counts[idx]
            noise = None
            if config.noise > 0:
                noise = torch.rand(len(idx), config.memory_size, generator=generator) < config.noise
            rows = int(counts.max())  # the rows past the longest story in the batch are empty
            noise = noise[:, :rows] if noise is not None else None
            times, mask = memory_inputs(counts, config.memory_size, noise, rows)
            stories = train.stories[idx, :rows]  # (B, R, L); with noise R more empty slots
            yield stories, times, mask, train.queries[idx], train.answers[idx]

    def lr_at(self, model, step: int, total_steps: int, steps_per_epoch: int, config) -> float:
        """`ls_lr` while linear start lasts; after it, the config's schedule from `lr`, started
        over at the step LS ended (the paper: "training recommenced"). LS ends at the step after
        the validation that asked for it (`ls_epochs` 0), or after `ls_epochs` epochs."""
        if bool(model.linear):
            fixed = config.ls_epochs > 0 and step >= config.ls_epochs * steps_per_epoch
            if bool(model.reinsert) or fixed:  # the softmaxes come back from this step
                model.linear.fill_(False)
                model.reinsert.fill_(False)
                model.ls_end.fill_(step)
            else:
                return config.ls_lr
        start = int(model.ls_end)
        return engine.lr_at(step - start, total_steps - start, steps_per_epoch, config)

    def loss(self, step: engine.Step, batch, carry) -> tuple[torch.Tensor, None]:
        stories, times, mask, queries, answers = (t.to(step.device) for t in batch)
        logits = step.net(stories, times, mask, queries)  # (B, V)
        return F.cross_entropy(logits, answers), None

    @torch.no_grad()
    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        model.eval()
        part = data[split]
        wrong = torch.zeros(21)
        seen = torch.zeros(21)
        total_loss = 0.0
        for start in range(0, len(part), config.eval_batch_size):
            sl = slice(start, start + config.eval_batch_size)
            rows = int(part.counts[sl].max())
            times, mask = memory_inputs(part.counts[sl], config.memory_size, rows=rows)
            logits = model(
                part.stories[sl, :rows].to(device), times.to(device), mask.to(device),
                part.queries[sl].to(device),
            )  # fmt: skip
            answers = part.answers[sl].to(device)
            total_loss += float(F.cross_entropy(logits, answers, reduction="sum"))
            miss = (logits.argmax(-1) != answers).float().cpu()
            tasks = part.tasks[sl]
            wrong.index_add_(0, tasks, miss)
            seen.index_add_(0, tasks, torch.ones_like(miss))
        loss = total_loss / max(1, len(part))
        if split == self.val_split and not final and bool(model.linear) and not config.ls_epochs:
            if loss >= float(model.ls_best):  # validation loss stopped falling: reinsert softmax
                model.reinsert.fill_(True)
            else:
                model.ls_best.fill_(loss)
        errors = {t: float(wrong[t] / seen[t]) for t in range(1, 21) if seen[t] > 0}
        scores = {
            "mean_error": sum(errors.values()) / len(errors),
            "failed_tasks": float(sum(e > FAIL for e in errors.values())),
            "loss": loss,
        }
        return scores | {f"error_qa{t}": e for t, e in errors.items()}

    # --- restarts ------------------------------------------------------------------------------

    def train(
        self,
        experiment,
        config,
        run: RunDir,
        preset: str = "custom",
        resume: bool = False,
        progress: bool = True,
        log: engine.Log = engine.print_line,
    ) -> dict | None:
        if config.restarts == 1:
            return engine.train(self, experiment, config, run, preset, resume, progress, log)
        if not resume:
            run.write_config(experiment, preset, config, resolve_device(config.device), 1)
        kept: list[tuple[list[float], int, dict]] = []
        wall = 0.0
        for r in range(config.restarts):
            sub = RunDir(run.path / f"restart-{r}")
            sub_config = dataclasses.replace(config, restarts=1, seed=config.seed * 1000 + r)
            if (sub / RunDir.SUMMARY).is_file():
                summary = sub.read_summary()
            else:
                again = resume and sub.has_checkpoint()
                if not again:
                    shutil.rmtree(sub.path, ignore_errors=True)
                    sub = RunDir.create(sub.path)
                log(f"restart {r + 1}/{config.restarts} (seed {sub_config.seed}) -> {sub.path}")
                summary = engine.train(
                    self, experiment, sub_config, sub, preset, again, progress, log
                )
            vals = [row for row in sub.read_metrics() if "val_mean_error" in row]
            if not vals:
                raise DeepnetsError(f"{sub.path} recorded no validation scores")
            best = min([row["val_mean_error"], row["val_loss"]] for row in vals)
            kept.append((best, r, summary))
            wall += summary["wall_seconds"]
        best, r, summary = min(kept, key=lambda k: (k[0], k[1]))
        source = run.path / f"restart-{r}"
        for name in (ckpt.BEST, ckpt.CHECKPOINT, ckpt.STATE, RunDir.METRICS):
            if (source / name).is_file():
                shutil.copyfile(source / name, run.path / name)
        summary = summary | {
            "seed": config.seed,
            "wall_seconds": round(wall, 3),
            "restart": r,
            "restart_val_errors": [k[0][0] for k in kept],
        }
        run.write_summary(summary)
        log(
            f"kept restart {r + 1} of {config.restarts} (val error {best[0]:.4f}); "
            f"test mean_error {summary['value']:.4f}  vs {experiment.published_text(preset)}"
        )
        return summary


def load_trained(run_dir: str, device: str = "auto"):
    """A trained memn2n run's config, data (with its vocabulary) and model (eval mode)."""
    from deepnets.run import load_model

    experiment, config, model = load_model(run_dir, device)
    if not isinstance(experiment.task, MemN2NTask):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a memory network")
    data = experiment.load_data(config)
    return config, data, model


def answer(config, vocab, model, story: list[str], question: str) -> dict:
    """Answer a question about a story (one sentence per item): the answer, its probability and
    the attention over the story's sentences at each hop. Bad input raises DeepnetsError."""
    from deepnets.data.babi import tokenize

    sentences = [tokenize(s) for s in story if s.strip()]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise DeepnetsError("the story is empty: give at least one sentence")
    if len(sentences) > config.memory_size:
        raise DeepnetsError(
            f"the story has {len(sentences)} sentences but the memory holds "
            f"{config.memory_size}; shorten it to the {config.memory_size} most recent"
        )
    if not question.strip().endswith("?"):
        raise DeepnetsError(f"the question must end with a question mark: {question!r}")
    words = tokenize(question)
    if not words:
        raise DeepnetsError("the question has no words")
    unknown = vocab.unknown([w for s in sentences for w in s] + words)
    if unknown:
        raise DeepnetsError(
            f"unknown word{'s' * (len(set(unknown)) > 1)} {', '.join(sorted(set(unknown)))}: "
            f"the model knows the {len(vocab) - 1} words of the bAbI tasks it was trained on"
        )
    sentence_len = max(len(s) for s in sentences)
    if model.spans is not None and (sentence_len > model.spans[0] or len(words) > model.spans[1]):
        raise DeepnetsError(
            f"the model reads sentences of at most {model.spans[0]} words and questions of at "
            f"most {model.spans[1]} (the longest in its bAbI tasks); split longer ones"
        )
    stories = torch.zeros(1, config.memory_size, sentence_len, dtype=torch.long)
    for i, s in enumerate(sentences):
        stories[0, i, : len(s)] = torch.tensor(vocab.encode(s))
    queries = torch.tensor([vocab.encode(words)])
    times, mask = memory_inputs(torch.tensor([len(sentences)]), config.memory_size)
    device = next(model.parameters()).device
    with torch.no_grad():
        logits, attention = model.attend(
            stories.to(device), times.to(device), mask.to(device), queries.to(device)
        )
    probs = torch.softmax(logits[0], -1)
    best = int(probs.argmax())
    return {
        "answer": vocab.words[best],
        "probability": float(probs[best]),
        "sentences": [" ".join(s) for s in sentences],
        "attention": attention[0, :, : len(sentences)].cpu().tolist(),  # (K, n)
        # with empty_attention the unused slots share each hop's softmax: the rest, (K,)
        "unused": (1 - attention[0, :, : len(sentences)].sum(-1)).clamp(min=0).cpu().tolist(),
    }


def format_answer(result: dict) -> str:
    """The answer and a table of attention: one row per sentence, one column per hop."""
    hops = len(result["attention"])
    width = max(len(s) for s in result["sentences"])
    lines = [f"answer: {result['answer']}  (p = {result['probability']:.3f})", ""]
    lines.append(f"{'sentence':<{width}}  " + "  ".join(f"hop {k + 1}" for k in range(hops)))
    for i, sentence in enumerate(result["sentences"]):
        cells = "  ".join(f"{result['attention'][k][i]:5.3f}" for k in range(hops))
        lines.append(f"{sentence:<{width}}  {cells}")
    return "\n".join(lines)
