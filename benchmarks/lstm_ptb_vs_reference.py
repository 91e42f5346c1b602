"""Wall time for lstm-ptb (the `small` preset) to reach validation perplexity 125 on Penn Treebank,
against a plain reference in the same run on the same machine: the classic PyTorch
word-language-model recipe, written here from its description (nn.Embedding + a 2 x 200 nn.LSTM
+ nn.Linear, untied; dropout 0.2; weights uniform in [-0.1, 0.1]; plain SGD at lr 20, the
gradient norm clipped to 0.25; batch 20, BPTT 35; lr divided by 4 after an epoch whose
validation perplexity did not improve).

Both are validated on the whole validation stream 4 times per epoch (not timed) and stopped at
the first validation at or below the target; a method's time is its training time up to there.

Also reported, to show where the difference comes from: training throughput (tokens per second,
the median of interleaved repeats of a burst of steps, the two methods alternating) and the
number of training tokens each needed. time = tokens / throughput, so the time ratio is the
product of the token ratio and the throughput ratio.

    python benchmarks/lstm_ptb_vs_reference.py [--max-epochs 8] [--bursts 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.data.batching import bptt_batches, num_bptt_batches
from deepnets.data.ptb import load_ptb_ids
from deepnets.experiments.language import LSTM_PTB
from deepnets.models.rnn_lm import detach_state
from deepnets.run import RunDir
from deepnets.train.engine import gradient_step, make_optimizer
from deepnets.train.language_model import evaluate_stream

TARGET = 125.0
EVALS_PER_EPOCH = 4


class ReferenceLM(nn.Module):
    def __init__(self, vocab_size: int, size: int = 200, layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(size, vocab_size)
        self.dropout = dropout
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x, state=None):
        e = F.dropout(self.encoder(x), self.dropout, self.training)  # (B, T, 200)
        out, state = self.rnn(e, state)
        return self.decoder(F.dropout(out, self.dropout, self.training)), state  # (B, T, V)

    def loss(self, logits, y):
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def reference_step(model, x, y, state, lr: float):
    """One step of the reference: forward, backward, clip to 0.25, plain SGD."""
    model.train()
    if state is not None:
        state = tuple(s.detach() for s in state)
    logits, state = model(x, state)
    loss = model.loss(logits, y)
    model.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(p.grad, alpha=-lr)
    return state


def train_reference(ids: dict, max_epochs: int, log) -> dict:
    """Train the reference until validation perplexity <= TARGET; return its curve and time."""
    torch.manual_seed(0)
    model = ReferenceLM(10_000)
    lr, best_epoch_val, seconds, curve = 20.0, math.inf, 0.0, []
    steps = num_bptt_batches(ids["train"].numel(), 20, 35)
    points = {(k * steps) // EVALS_PER_EPOCH for k in range(1, EVALS_PER_EPOCH + 1)}
    for epoch in range(max_epochs):
        state = None
        started = time.perf_counter()
        for i, (x, y) in enumerate(bptt_batches(ids["train"], 20, 35)):
            state = reference_step(model, x, y, state, lr)
            if i + 1 in points:
                seconds += time.perf_counter() - started
                val = evaluate_stream(model, ids["valid"], 10, 35, torch.device("cpu"))
                tokens = (epoch * steps + i + 1) * 20 * 35
                curve.append({"tokens": tokens, "seconds": seconds, "val": val["perplexity"]})
                log(f"reference  epoch {epoch + (i + 1) / steps:.2f}  {curve[-1]}")
                if val["perplexity"] <= TARGET:
                    return {"reached": True, "seconds": seconds, "tokens": tokens, "curve": curve}
                started = time.perf_counter()
        if curve[-1]["val"] >= best_epoch_val:
            lr /= 4
        best_epoch_val = min(best_epoch_val, curve[-1]["val"])
    return {"reached": False, "seconds": seconds, "tokens": None, "curve": curve}


def train_ours(config, log) -> dict:
    """Train the preset (its own schedule and length) until validation perplexity <= TARGET."""
    config = dataclasses.replace(config, evals_per_epoch=EVALS_PER_EPOCH, stop_at=TARGET)
    with tempfile.TemporaryDirectory() as tmp:
        summary = LSTM_PTB.task.train(
            LSTM_PTB, config, RunDir.create(Path(tmp) / "run"), "small", log=log
        )
        lines = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").open()]
    tokens_per_step = config.batch_size * config.bptt
    curve = [
        {"tokens": r["step"] * tokens_per_step, "seconds": r["seconds"], "val": r["val_perplexity"]}
        for r in lines
        if "val_perplexity" in r
    ]
    reached = [point for point in curve if point["val"] <= TARGET]
    first = reached[0] if reached else None
    return {
        "reached": first is not None,
        "seconds": first["seconds"] if first else curve[-1]["seconds"],
        "tokens": first["tokens"] if first else None,
        "curve": curve,
        "test_perplexity_at_stop": summary["value"],
    }


def throughput(ids: dict, config, bursts: int, steps: int = 40) -> dict:
    """Tokens per second of each method's training step: medians of alternating bursts."""
    torch.manual_seed(0)
    reference = ReferenceLM(10_000)
    ours = LSTM_PTB.build_model(config)
    optimizer = make_optimizer(ours, config)
    ref_batches = list(bptt_batches(ids["train"][:200_000], 20, 35))[:steps]
    our_batches = list(bptt_batches(ids["train"][:200_000], config.batch_size, config.bptt))
    our_batches = our_batches[:steps]

    def run_reference() -> float:
        state, started = None, time.perf_counter()
        for x, y in ref_batches:
            state = reference_step(reference, x, y, state, 1.0)
        return len(ref_batches) * 20 * 35 / (time.perf_counter() - started)

    def run_ours() -> float:
        ours.train()
        state, started = None, time.perf_counter()
        for x, y in our_batches:  # the step of deepnets.train.language_model
            if state is not None:
                state = detach_state(state)
            output, state = ours(x, state)
            gradient_step(ours, optimizer, ours.loss(output, y), config)
        return len(our_batches) * config.batch_size * config.bptt / (time.perf_counter() - started)

    run_reference(), run_ours()  # warm up
    ref, our = [], []
    for _ in range(bursts):
        ref.append(run_reference())
        our.append(run_ours())
    return {
        "reference_tokens_per_s": statistics.median(ref),
        "ours_tokens_per_s": statistics.median(our),
        "reference_bursts": ref,
        "ours_bursts": our,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=8, help="cap for the reference")
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lstm_ptb.json"))
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, flush=True)

    _, ids = load_ptb_ids()
    config = LSTM_PTB.preset("small")
    speed = throughput(ids, config, args.bursts)
    log(f"throughput {speed}")
    ours = train_ours(config, log)
    reference = train_reference(ids, args.max_epochs, log)
    result = {
        "target_val_perplexity": TARGET,
        "ours": ours,
        "reference": reference,
        "throughput": speed,
        "config": dataclasses.asdict(config),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if ours["reached"] and reference["reached"]:
        result["time_ratio"] = reference["seconds"] / ours["seconds"]
        result["token_ratio"] = reference["tokens"] / ours["tokens"]
        result["throughput_ratio"] = speed["ours_tokens_per_s"] / speed["reference_tokens_per_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    log(json.dumps({k: v for k, v in result.items() if k.endswith("ratio")}))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
