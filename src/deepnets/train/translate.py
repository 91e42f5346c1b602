"""Translation: sentence pairs, teacher forcing, beam search, sacrebleu BLEU and chrF.

The data are Multi30k sentence pairs as SentencePiece ids (`load_parallel`). A batch is a
minibatch of training pairs of similar source length (pools of 50 batches sorted by length, then
the batches shuffled), padded: source (B, S) and lengths (B,), the target with the start token
in front as decoder input (B, T) and with the end token behind as the output to predict.
The loss is the cross-entropy per target token with label smoothing.

Scores: the loss (nats per target token, teacher-forced, no smoothing) and sacrebleu corpus BLEU
(and chrF) of the detokenised translations against the raw reference sentences; never BLEU
computed by hand. Validation decodes greedily; the final test decodes with beam search
(`beam_size`, length-normalised), greedy BLEU beside it. The sacrebleu signatures are written
into summary.json (`sacrebleu`) and the test translations into translations-test.txt.

A model for this task is a `deepnets.models.seq2seq.Seq2Seq`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from deepnets import DeepnetsError
from deepnets.data.multi30k import BOS, EOS, PAD, UNK, Tokenizer, load_multi30k, train_tokenizer
from deepnets.models.seq2seq import beam_search, sequence_loss
from deepnets.train import engine
from deepnets.train.task import GradientTask

METRIC = "bleu"
TRANSLATIONS = "translations-test.txt"  # the run folder's test translations, one a line
MAX_SOURCE = 200  # subword pieces translated of one sentence (the rest is cut, with a note)


@dataclass
class Parallel:
    """One split: source and target ids (without start/end tokens) and the raw sentences."""

    src: list[list[int]]
    tgt: list[list[int]]
    src_text: list[str]
    tgt_text: list[str]

    def __len__(self) -> int:
        return len(self.src)


def tokenizers(pair: str, vocab_size: int, raw: dict | None = None) -> tuple[Tokenizer, Tokenizer]:
    """The (source, target) SentencePiece models of a language pair, trained on the training
    split (or read from the cache)."""
    raw = raw or load_multi30k()
    src_lang, tgt_lang = pair.split("-")
    return (
        train_tokenizer(raw["train"][src_lang], vocab_size),
        train_tokenizer(raw["train"][tgt_lang], vocab_size),
    )


@functools.lru_cache(maxsize=2)
def _tokenized(pair: str, vocab_size: int):
    raw = load_multi30k()
    src_lang, tgt_lang = pair.split("-")
    src_tok, tgt_tok = tokenizers(pair, vocab_size, raw)
    splits = {}
    for split, texts in raw.items():
        s_text, t_text = texts[src_lang], texts[tgt_lang]
        splits[split] = Parallel(
            src_tok.model.encode(s_text), tgt_tok.model.encode(t_text), s_text, t_text
        )
    return src_tok, tgt_tok, splits


def load_parallel(config) -> dict:
    """{"train", "val", "test": Parallel, "vocab": (source, target) tokenizers}. Training pairs
    longer than `max_len` pieces on either side are dropped; `train_subset` / `eval_subset`
    keep the first N pairs (0: all)."""
    src_tok, tgt_tok, splits = _tokenized(config.pair, config.vocab_size)
    out: dict = {"vocab": (src_tok, tgt_tok)}
    for split, data in splits.items():
        keep = range(len(data))
        if split == "train":
            keep = [i for i in keep if max(len(data.src[i]), len(data.tgt[i])) <= config.max_len]
            keep = keep[: config.train_subset or None]
        else:
            keep = keep[: config.eval_subset or None]
        out[split] = Parallel(*([part[i] for i in keep] for part in vars(data).values()))
    return out


def collate(data: Parallel, idx: list[int]):
    """Pairs `idx` as (src (B, S), lengths (B,), tgt_in (B, T) = BOS y, tgt_out (B, T) = y EOS),
    padded with 0."""
    src = pad_sequence([torch.tensor(data.src[i] or [UNK]) for i in idx], batch_first=True)
    lengths = torch.tensor([max(1, len(data.src[i])) for i in idx])
    tgt_in = pad_sequence([torch.tensor([BOS] + data.tgt[i]) for i in idx], batch_first=True)
    tgt_out = pad_sequence([torch.tensor(data.tgt[i] + [EOS]) for i in idx], batch_first=True)
    return src, lengths, tgt_in, tgt_out


def length_batches(lengths: list[int], batch_size: int, generator: torch.Generator):
    """Index lists of one epoch's batches: a random permutation (the last partial batch
    dropped), cut into pools of 50 batches, each pool sorted by length and cut into batches,
    then every batch of the epoch in a random order."""
    n = len(lengths) - len(lengths) % batch_size
    order = torch.randperm(len(lengths), generator=generator)[:n].tolist()
    pool = 50 * batch_size
    batches = []
    for start in range(0, n, pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def decode_limit(src_len: int, config) -> int:
    return min(config.max_decode, int(1.5 * src_len) + 10)


@torch.no_grad()
def translate_split(model, data: Parallel, tgt_tok: Tokenizer, config, device, beam: int):
    """Detokenised translations of every source sentence of a split."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.src[i]))
    out = [""] * len(data)
    size = max(1, config.eval_batch_size // max(1, beam))
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        src, lengths, _, _ = collate(data, idx)
        limit = decode_limit(int(lengths.max()), config)
        hyps, _ = beam_search(
            model, src.to(device), lengths.to(device), BOS, EOS, beam, limit,
            config.length_penalty, banned=(PAD, UNK, BOS),
        )  # fmt: skip
        for i, hyp in zip(idx, hyps):
            out[i] = tgt_tok.decode(hyp)
    return out


@torch.no_grad()
def mean_loss(model, data: Parallel, config, device) -> float:
    """Teacher-forced cross-entropy per target token (nats), no smoothing."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(data), config.eval_batch_size):
        idx = list(range(start, min(len(data), start + config.eval_batch_size)))
        src, lengths, tgt_in, tgt_out = (t.to(device) for t in collate(data, idx))
        logits, _ = model(src, lengths, tgt_in)
        n = int((tgt_out != PAD).sum())
        total += float(sequence_loss(logits, tgt_out)) * n
        tokens += n
    return total / max(1, tokens)


def bleu_chrf(hypotheses: list[str], references: list[str]) -> tuple[float, float, str, str]:
    """sacrebleu corpus BLEU and chrF (0-100) of detokenised text, with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return b.score, c.score, str(bleu.get_signature()), str(chrf.get_signature())


class Translate(GradientTask):
    def load(self, experiment, config, device):
        return experiment.load_data(config)

    def steps_per_epoch(self, data, config) -> int:
        return len(data["train"]) // config.batch_size

    def batches(self, data, config, generator, ctx):
        train = data["train"]
        per_rank = config.batch_size // ctx.world_size
        lengths = [len(s) for s in train.src]
        for idx in length_batches(lengths, config.batch_size, generator):
            yield collate(train, idx[ctx.rank * per_rank : (ctx.rank + 1) * per_rank])

    def loss(self, step: engine.Step, batch, carry):
        src, lengths, tgt_in, tgt_out = (t.to(step.device) for t in batch)
        logits, _ = step.net(src, lengths, tgt_in)  # (B, T, V)
        return sequence_loss(logits, tgt_out, step.config.label_smoothing), None

    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        part, tgt_tok = data[split], data["vocab"][1]
        scores = {"loss": mean_loss(model, part, config, device)}
        greedy = translate_split(model, part, tgt_tok, config, device, 1)
        g_bleu, g_chrf, _, _ = bleu_chrf(greedy, part.tgt_text)
        if not final or config.beam_size <= 1:
            return {METRIC: g_bleu, "chrf": g_chrf, **scores}
        beamed = translate_split(model, part, tgt_tok, config, device, config.beam_size)
        self.final_translations = beamed  # written into the run folder by `train`
        bleu, chrf, _, _ = bleu_chrf(beamed, part.tgt_text)
        return {METRIC: bleu, "chrf": chrf, "greedy_bleu": g_bleu, **scores}

    def record_test(self, run, summary: dict) -> None:
        """Write how sacrebleu scored into the summary, and the beam-search output the test
        BLEU scored into the run folder."""
        _, _, bleu_sig, chrf_sig = bleu_chrf(["a"], ["a"])
        summary["sacrebleu"] = {"bleu": bleu_sig, "chrf": chrf_sig}
        run.write_summary(summary)
        translations = getattr(self, "final_translations", None)
        if translations is not None:
            run.write_text(TRANSLATIONS, "\n".join(translations) + "\n")


# --- using a trained run -----------------------------------------------------------------------


def load_trained(run_dir: str | Path, device: str = "cpu"):
    """A translation run's config, tokenizers (source, target) and model with its selected
    weights; any other run folder is an error, raised before its data are read."""
    from deepnets.run import load_model, load_run

    experiment, _, _ = load_run(run_dir)
    if not isinstance(experiment.task, Translate):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a translation run")
    experiment, config, model = load_model(run_dir, device)
    return config, tokenizers(config.pair, config.vocab_size), model


def translate_sentence(config, tokenizers, model, sentence: str, beam: int = 5) -> dict:
    """One sentence's translation: {"translation", "source_pieces", "target_pieces",
    "attention" (T, S) list or None, "note"}; an empty sentence is the user's error."""
    if beam < 1:
        raise DeepnetsError(f"--beam must be at least 1, got {beam}")
    if not sentence.strip():
        raise DeepnetsError("nothing to translate: the sentence is empty")
    src_tok, tgt_tok = tokenizers
    ids = src_tok.encode(sentence.strip())
    note = ""
    if not ids:
        raise DeepnetsError("nothing to translate: the sentence holds no text the model can read")
    if len(ids) > MAX_SOURCE:
        note = f"the sentence is {len(ids)} subword pieces long; the first {MAX_SOURCE} were used"
        ids = ids[:MAX_SOURCE]
    device = next(model.parameters()).device
    src = torch.tensor([ids], device=device)
    lengths = torch.tensor([len(ids)], device=device)
    hyps, maps = beam_search(
        model, src, lengths, BOS, EOS, beam, decode_limit(len(ids), config),
        config.length_penalty, banned=(PAD, UNK, BOS),
    )  # fmt: skip
    rows = len(hyps[0]) if maps[0] is None else maps[0].shape[0]  # + 1 if it ended itself
    return {
        "translation": tgt_tok.decode(hyps[0]),
        "source_pieces": src_tok.pieces(ids),
        "target_pieces": tgt_tok.pieces(hyps[0]) + ["</s>"] * (rows - len(hyps[0])),
        "attention": None if maps[0] is None else maps[0].tolist(),
        "note": note,
    }


def draw_attention(result: dict, out: str | Path) -> Path:
    """The attention matrix as a picture: source pieces across, target pieces down."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = torch.tensor(result["attention"])  # (T, S)
    t, s = weights.shape
    fig, ax = plt.subplots(figsize=(min(40, 1 + 0.35 * s), min(40, 1 + 0.35 * t)))
    ax.imshow(weights.numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(s), result["source_pieces"], rotation=90, fontsize=8)
    ax.set_yticks(range(t), result["target_pieces"], fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    fig.tight_layout()
    from deepnets.figures.output import save_figure

    return save_figure(fig, out, dpi=100)
