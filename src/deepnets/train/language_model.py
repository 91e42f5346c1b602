"""Language modelling: next-token prediction on one long token stream, truncated BPTT.

The data are the stream splits (`train`, `valid`, maybe `test`, flat id tensors) and `vocab`.
A batch is (x, y), both (B, T), from `deepnets.data.batching`: row b of batch k + 1 continues row
b of batch k, so the hidden state is carried from one batch to the next and the graph cut
between them (truncated backpropagation through time). Under torchrun each rank takes its share
of the B rows. Scores: mean nats per token and perplexity on a stream read with the state
carried throughout. A corpus with no test split is tested on its validation split.

A model for this task maps (x (B, T) ids, state) to (output, state) and has `loss(output, y)`
(mean nats per token), `log_probs(output)` and `vocab_size`: the recurrent nets of
`deepnets.models.rnn_lm` and the window model of `deepnets.models.nplm`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from deepnets import DeepnetsError
from deepnets.data.batching import bptt_batches, num_bptt_batches
from deepnets.models.rnn_lm import detach_state
from deepnets.train.task import GradientTask


class LanguageModel(GradientTask):
    val_split = "valid"

    def load(self, experiment, config, device):
        corpus = experiment.load_data(config)
        if config.train_subset > 0:
            corpus = {**corpus, "train": corpus["train"][: config.train_subset]}
        return corpus

    def build(self, experiment, config, data):
        model = super().build(experiment, config, data)
        if data is not None and model.vocab_size != len(data["vocab"]):
            raise DeepnetsError(
                f"{experiment.id}: the model has {model.vocab_size} output words but the data's "
                f"vocabulary has {len(data['vocab'])}; the data files are not the ones this "
                "experiment expects"
            )
        return model

    def split_size(self, data, split: str) -> int:
        return data[split].numel() if split in data else 0

    def test_split(self, data) -> str:
        return "test" if "test" in data else "valid"

    def steps_per_epoch(self, data, config) -> int:
        return num_bptt_batches(data["train"].numel(), config.batch_size, config.bptt)

    def batches(self, data, config, generator, ctx):
        rows = config.batch_size // ctx.world_size
        for x, y in bptt_batches(data["train"], config.batch_size, config.bptt):
            yield (
                x[ctx.rank * rows : (ctx.rank + 1) * rows],
                y[ctx.rank * rows : (ctx.rank + 1) * rows],
            )

    def loss(self, step, batch, carry):
        x, y = (t.to(step.device) for t in batch)
        state = detach_state(carry) if carry is not None else None
        output, state = step.net(x, state)
        return step.model.loss(output, y), state

    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        scores = evaluate_stream(model, data[split], config.eval_batch_size, config.bptt, device)
        return {k: v for k, v in scores.items() if k != "tokens"}


@torch.no_grad()
def evaluate_stream(
    model: nn.Module, ids: torch.Tensor, batch_size: int, bptt: int, device: torch.device
) -> dict[str, float]:
    """Loss (nats per token) and perplexity of `model` on a stream, state carried throughout.

    The stream is laid out as `batch_size` rows, each read from a fresh state; the last
    len(ids) mod batch_size tokens (fewer than batch_size) are not scored."""
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in bptt_batches(ids, batch_size, bptt):
        output, state = model(x.to(device), state)
        total += float(model.loss(output, y.to(device))) * y.numel()
        count += y.numel()
    loss = total / count
    return {"perplexity": math.exp(loss), "loss": loss, "tokens": count}


def load_trained(run_dir, device: str = "cpu"):
    """A language-model run folder's experiment, config, data and model with its selected
    weights; any other run folder is an error, raised before its data are read."""
    from deepnets.run import load_model, load_run

    experiment, _, _ = load_run(run_dir)
    if not isinstance(experiment.task, LanguageModel):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a language model's")
    experiment, config, model = load_model(run_dir, device)
    return experiment, config, experiment.load_data(config), model


def generate_steps(
    model: nn.Module,
    prompt: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Sample `length` tokens after `prompt` (ids, (P,), at least one), one at a time: each
    drawn from softmax(log p / temperature) given everything before it. Yields (the token, the
    distribution it was drawn from (V,))."""
    if temperature <= 0:
        raise DeepnetsError(f"temperature must be positive, got {temperature}")
    if prompt.numel() == 0:
        raise DeepnetsError("the prompt must hold at least one token")
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        output, state = model(prompt.view(1, -1).to(device), None)  # read the prompt: (1, P, ...)
    for _ in range(length):
        with torch.no_grad():
            log_p = model.log_probs(output[:, -1]) / temperature  # (1, V)
            probs = log_p.softmax(-1).cpu()  # (1, V)
            token = torch.multinomial(probs, 1, generator=generator)  # (1, 1)
            output, state = model(token.to(device), state)
        yield int(token), probs[0]


def generate(
    model: nn.Module,
    prompt: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`length` tokens sampled after `prompt` (generate_steps). Returns the new ids, (length,)."""
    drawn = [token for token, _ in generate_steps(model, prompt, length, temperature, generator)]
    return torch.tensor(drawn, dtype=torch.long)
