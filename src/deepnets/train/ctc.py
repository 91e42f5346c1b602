"""CTC: variable-length utterances, connectionist temporal classification, digit error rate.

The data are the spoken digit strings of each split (`deepnets.data.fsdd.DigitStrings`). A batch
is a random minibatch of training strings padded to its longest utterance; the loss is the CTC
loss (`torch.nn.functional.ctc_loss`) divided by the label lengths. Validation decodes greedily;
the final test decodes with the prefix beam search (`beam_width`), greedy beside it.

Digit error rate = sum of edit distances (hypothesis, reference) / sum of reference lengths.
A model for this task maps (x (B, T, F), lengths (B,)) to (log-probabilities (B, T', 1 + labels),
output lengths (B,)), blank first: `deepnets.models.ctc.CTCRecognizer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from deepnets.data.fsdd import DigitStrings
from deepnets.models.ctc import BLANK, edit_distance, greedy_decode, prefix_beam_search
from deepnets.train.task import GradientTask, index_batches

METRIC = "digit_error_rate"


def collate(
    data: DigitStrings, idx: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Strings `idx` as (x (B, T_max, F) zero-padded, lengths (B,), labels of all strings
    concatenated (sum L,) with blank = 0 and digit d = d + 1, label lengths (B,))."""
    feats = [data.features[i] for i in idx]
    x = pad_sequence(feats, batch_first=True)  # (B, T_max, F)
    lengths = torch.tensor([len(f) for f in feats])
    labels = torch.cat([data.digits[i] + 1 for i in idx])
    label_lengths = torch.tensor([len(data.digits[i]) for i in idx])
    return x, lengths, labels, label_lengths


def ctc_loss(model: nn.Module, batch, device: torch.device, reduction: str = "mean"):
    """CTC loss of a collated batch: -log p(labels | x), divided by the label lengths and
    averaged over the batch (`mean`), or summed over it undivided (`sum`)."""
    x, lengths, labels, label_lengths = (t.to(device) for t in batch)
    log_probs, out_lengths = model(x, lengths)  # (B, T', V), (B,)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),  # (T', B, V), as ctc_loss wants
        labels,
        out_lengths,
        label_lengths,
        blank=BLANK,
        reduction=reduction,
        zero_infinity=True,
    )
    return loss, log_probs, out_lengths


@torch.no_grad()
def evaluate_strings(
    model: nn.Module, data: DigitStrings, config, device: torch.device, beam_width: int = 0
) -> dict[str, float]:
    """Mean CTC loss (nats per string) and digit error rate of greedy decoding, and with
    `beam_width` > 1 also of the prefix beam search (then `digit_error_rate` is the beam's)."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.features[i]))  # less padding
    loss_sum, greedy_errors, beam_errors, reference = 0.0, 0, 0, 0
    for start in range(0, len(order), config.eval_batch_size):
        idx = order[start : start + config.eval_batch_size]
        loss, log_probs, out_lengths = ctc_loss(model, collate(data, idx), device, "sum")
        loss_sum += float(loss)
        for b, i in enumerate(idx):
            frames = log_probs[b, : out_lengths[b]].cpu()  # (T'_b, V)
            ref = (data.digits[i] + 1).tolist()
            greedy_errors += edit_distance(greedy_decode(frames), ref)
            if beam_width > 1:
                beam_errors += edit_distance(prefix_beam_search(frames, beam_width), ref)
            reference += len(ref)
    n, reference = max(1, len(data)), max(1, reference)
    scores = {"loss": loss_sum / n, METRIC: greedy_errors / reference}
    if beam_width > 1:
        scores = {**scores, METRIC: beam_errors / reference, "greedy_" + METRIC: scores[METRIC]}
    return scores


class CTC(GradientTask):
    def steps_per_epoch(self, data, config) -> int:
        return len(data["train"]) // config.batch_size

    def batches(self, data, config, generator, ctx):
        for idx in index_batches(len(data["train"]), config, generator, ctx):
            yield collate(data["train"], idx.tolist())

    def loss(self, step, batch, carry):
        return ctc_loss(step.net, batch, step.device)[0], None

    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        beam = config.beam_width if final else 0
        return evaluate_strings(model, data[split], config, device, beam)
