"""Image captioning: images with captions, teacher forcing, beam search, BLEU / CIDEr-D, and for
the digit scenes exact match and where the attention peaks.

The data (`CaptionSplit`) are uint8 images, the training (image, caption) pairs as word ids,
and per image its reference captions. A batch is a random minibatch of pairs: the standardised
images (B, C, H, W), the caption with the start token in front as decoder input (B, T) and with
the end token behind as the output to predict. The loss is the cross-entropy per word plus, with
attention, Xu et al.'s doubly stochastic regulariser times `attn_reg`.

Scores: BLEU-1..4 from sacrebleu (corpus BLEU against every reference of an image; the
references and the output are lower-cased words, so sacrebleu's 13a tokenisation is a no-op),
CIDEr-D (`cider_d`, the coco-caption / pycocoevalcap formula, re-implemented here and tested
against pycocoevalcap), the teacher-forced loss; on scenes with digit boxes also `exact` (the
caption equals the reference) and `peak_in_box` (of the digit words generated, the fraction
whose attention peak, the centre of the grid cell of largest weight, lies in the box of the digit
that the reference names at that place; a wrong digit there counts as a miss). Validation
decodes greedily; the final test with beam search (`beam_size`).

A model for this task is a `deepnets.models.captioner.Captioner`.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from deepnets import DeepnetsError
from deepnets.data.augment import random_flip, random_translate
from deepnets.models.captioner import attention_penalty
from deepnets.models.seq2seq import beam_search, sequence_loss
from deepnets.train import engine
from deepnets.train.task import GradientTask, config_first, index_batches

PAD, BOS, EOS, UNK = 0, 1, 2, 3
CAPTIONS = "captions-test.txt"  # the run folder's test captions, one a line
NEAREST_K = 5  # training images whose captions the nearest-neighbour baseline pools
CIDER = "CIDEr-D (coco-caption formula: n=4, sigma=6, df from the split's references)"
MAX_FILE_BYTES = 64 * 1024 * 1024  # an image file given to `caption`


def words_of(text: str) -> list[str]:
    """Lower-cased words (letters and digits) of a caption; punctuation dropped."""
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass(frozen=True)
class Vocab:
    words: tuple[str, ...]  # id -> word; 0-3 are <pad> <s> </s> <unk>

    def encode(self, words: list[str]) -> list[int]:
        index = {w: k for k, w in enumerate(self.words)}
        return [index.get(w, UNK) for w in words]

    def decode(self, ids: list[int]) -> str:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.words[i] if 0 <= i < len(self.words) else "<unk>")
        return " ".join(out)

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class CaptionSplit:
    """images (N, C, H, W) uint8; pairs: caption ids (no start / end token) and the image
    each belongs to; references: per image, its captions as space-joined words; boxes (N, 4, 4)
    and labels (N, 4) for digit scenes (None otherwise)."""

    images: torch.Tensor
    captions: list[list[int]]
    owner: list[int]
    references: list[list[str]]
    boxes: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)


def standardise(images: torch.Tensor, norm: tuple[tuple, tuple]) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float, per channel (x / 255 - mean) / std."""
    mean = torch.tensor(norm[0], device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(norm[1], device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def collate(part: CaptionSplit, idx: list[int]):
    """Pairs idx -> images (B, C, H, W) uint8, tgt_in (B, T) = BOS y, tgt_out (B, T) = y EOS."""
    images = part.images[[part.owner[i] for i in idx]]
    return (images, *_targets(part, idx))


def _targets(part: CaptionSplit, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    tgt_in = pad_sequence([torch.tensor([BOS] + part.captions[i]) for i in idx], batch_first=True)
    tgt_out = pad_sequence([torch.tensor(part.captions[i] + [EOS]) for i in idx], batch_first=True)
    return tgt_in, tgt_out


def collate_images(part: CaptionSplit, idx: list[int], pairs_of: list[list[int]]):
    """Images idx, each with all its captions -> images (B, C, H, W) uint8, tgt_in and tgt_out
    (P, T) for the P captions, owner (P,): the row of `images` each caption describes."""
    pairs = [p for i in idx for p in pairs_of[i]]
    owner = torch.tensor([row for row, i in enumerate(idx) for _ in pairs_of[i]])
    return (part.images[idx], *_targets(part, pairs), owner)


def pairs_by_image(part: CaptionSplit) -> list[list[int]]:
    """For each image, the indices of its (image, caption) pairs."""
    pairs_of: list[list[int]] = [[] for _ in range(len(part.images))]
    for pair, image in enumerate(part.owner):
        pairs_of[image].append(pair)
    return pairs_of


def augment_images(images: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    """Training images (B, C, H, W) uint8, mirrored left-right with probability 1/2 when
    `config.flip` and shifted by up to `config.max_shift` pixels (border reflected) when it is
    set; returned as float on the 0-255 scale once changed. Configs without the fields (digit
    scenes, whose captions name left and right) pass through unchanged."""
    flip, shift = getattr(config, "flip", False), getattr(config, "max_shift", 0)
    if not (flip or shift):
        return images
    images = images.float()
    if flip:
        images = random_flip(images, generator)
    return random_translate(images, shift, generator, padding="reflect")


# --- scores ------------------------------------------------------------------------------------


def bleu_scores(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """sacrebleu corpus BLEU-1..4 (0-100) against every reference of each image; an image with
    fewer references than the most has its first repeated (no change to BLEU's clipped counts
    or its closest reference length)."""
    from sacrebleu.metrics import BLEU

    most = max(len(r) for r in references)
    streams = [[r[k] if k < len(r) else r[0] for r in references] for k in range(most)]
    return {
        f"bleu{n}": BLEU(max_ngram_order=n).corpus_score(hypotheses, streams).score
        for n in range(1, 5)
    }


def _ngrams(words: list[str], n: int = 4) -> Counter:
    return Counter(
        tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1)
    )


def cider_d(hypotheses: list[str], references: list[list[str]], sigma: float = 6.0) -> float:
    """CIDEr-D (Vedantam et al. 2015) as coco-caption's cider_scorer computes it: TF-IDF
    n-gram vectors (n = 1..4; document frequency over the images' reference sets, idf
    log(N) - log(max(1, df))), per n the cosine similarity with each reference, the hypothesis'
    weights clipped at the reference's, times a Gaussian length penalty exp(-d^2 / 2 sigma^2)
    (d: the difference of the two bigram counts, as in that code), averaged over n and
    references, times 10, then averaged over images."""
    refs = [[_ngrams(r.split()) for r in rs] for rs in references]
    df: Counter = Counter()
    for rs in refs:
        df.update(set(g for r in rs for g in r))
    log_n = math.log(float(len(refs)))

    def vec(counts: Counter):
        v: list[dict] = [{} for _ in range(4)]
        norm, length = [0.0] * 4, 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            v[k][gram] = tf * (log_n - math.log(max(1.0, df[gram])))
            norm[k] += v[k][gram] ** 2
            if k == 1:
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    total = 0.0
    for hyp, rs in zip(hypotheses, refs):
        vh, nh, lh = vec(_ngrams(hyp.split()))
        score = 0.0
        for r in rs:
            vr, nr, lr = vec(r)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for k in range(4):
                val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                score += val * penalty
        total += score / 4 / len(rs) * 10.0
    return total / max(1, len(hypotheses))


def peak_in_box(tokens: list[int], weights: torch.Tensor, grid: tuple[int, int], size, boxes,
                labels, digit_ids: tuple[int, ...]) -> tuple[int, int]:  # fmt: skip
    """(hits, digit words) of one caption: weights (T, L) over a grid (H', W') of an image of
    size (H, W); the k-th digit word is checked against the k-th digit of the reference."""
    hits = count = 0
    h, w = grid
    for t, tok in enumerate(tokens):
        if tok not in digit_ids:
            continue
        k = count
        count += 1
        if k >= len(labels) or int(labels[k]) != digit_ids.index(tok):
            continue
        row, col = divmod(int(weights[t].argmax()), w)
        y, x = (row + 0.5) * size[0] / h, (col + 0.5) * size[1] / w  # the cell's centre
        top, left, bottom, right = (int(v) for v in boxes[k])
        hits += int(top <= y <= bottom + 1 and left <= x <= right + 1)
    return hits, count


# --- decoding ----------------------------------------------------------------------------------


@torch.no_grad()
def decode_images(model, images: torch.Tensor, norm, config, device, beam: int):
    """uint8 images (N, C, H, W) -> token lists and attention maps (T, L) (or None)."""
    model.eval()
    tokens, maps = [], []
    size = max(1, config.eval_batch_size // max(1, beam))
    for start in range(0, len(images), size):
        x = standardise(images[start : start + size].to(device), norm)
        grid = model.grid_shape(x.shape[2], x.shape[3])
        lengths = torch.full((len(x),), grid[0] * grid[1], device=device)  # every cell is real
        hyps, weights = beam_search(
            model, x, lengths, BOS, EOS, beam, config.max_decode, config.length_penalty,
            banned=(PAD, UNK, BOS),
        )  # fmt: skip
        tokens += hyps
        maps += weights
    return tokens, maps


@torch.no_grad()
def image_features(model, images: torch.Tensor, norm, config, device) -> torch.Tensor:
    """The model's encoder feature map of uint8 images, averaged over the grid, unit length:
    (N, D)."""
    model.eval()
    out = []
    for start in range(0, len(images), config.eval_batch_size):
        x = standardise(images[start : start + config.eval_batch_size].to(device), norm)
        out.append(model.encoder(x).mean((2, 3)).cpu())
    return torch.nn.functional.normalize(torch.cat(out), dim=1)


def consensus(captions: list[str]) -> str:
    """The caption with the highest mean sentence BLEU against the others."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)

    def agreement(i: int) -> float:
        return bleu.sentence_score(captions[i], captions[:i] + captions[i + 1 :]).score

    return captions[max(range(len(captions)), key=agreement)]


def nearest_captions(model, data, split: str, config, device, k: int = NEAREST_K) -> list[str]:
    """The nearest-neighbour baseline (after Devlin et al. 2015): for each image of `split` the
    k training images closest to it in the model's encoder features (cosine), and of their
    captions the consensus one (`consensus`). No caption is generated."""
    train, part = data["train"], data[split]
    known = image_features(model, train.images, data["norm"], config, device)  # (N, D)
    asked = image_features(model, part.images, data["norm"], config, device)  # (M, D)
    nearest = (asked @ known.T).topk(min(k, len(known)), dim=1).indices  # (M, k)
    return [consensus([c for i in row for c in train.references[i]]) for row in nearest.tolist()]


@torch.no_grad()
def mean_loss(model, part: CaptionSplit, config, device, norm) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(part.captions), config.eval_batch_size):
        idx = list(range(start, min(len(part.captions), start + config.eval_batch_size)))
        images, tgt_in, tgt_out = (t.to(device) for t in collate(part, idx))
        logits, _ = model(standardise(images, norm), tgt_in)
        n = int((tgt_out != PAD).sum())
        total += float(sequence_loss(logits, tgt_out)) * n
        count += n
    return total / max(1, count)


class Caption(GradientTask):
    """The captioning task of one data set: `vocab(config)` its Vocab, `norm(config)` the
    (mean, std) per channel, `picture(path, config)` an image file as the model's uint8 input
    (1, C, H, W); `digit_words` the words whose attention peak is checked (digit scenes)."""

    def __init__(self, vocab, norm, picture, digit_words: tuple[str, ...] = ()):
        self.vocab, self.norm, self.picture = vocab, norm, picture
        self.digit_words = digit_words

    def train(self, experiment, config, run, preset="custom", resume=False, progress=True,
              log=engine.print_line) -> dict | None:  # fmt: skip
        """Train on the engine; with `encoder_init=cifar10` the encoder starts from CIFAR-10
        classification (pre-trained first, or found: deepnets.train.encoder_pretrain)."""
        if getattr(config, "encoder_init", "scratch") == "scratch":
            return super().train(experiment, config, run, preset, resume, progress, log)
        from deepnets.train.encoder_pretrain import pretrained_encoder

        resume = config_first(experiment, config, run, preset, resume)
        task = copy.copy(self)
        task.encoder_state = pretrained_encoder(config, run.path, log, progress)
        return GradientTask.train(task, experiment, config, run, preset, resume, progress, log)

    def build(self, experiment, config, data):
        model = super().build(experiment, config, data)
        state = getattr(self, "encoder_state", None)
        if data is not None and state is not None:  # a fresh run: the pre-trained encoder
            model.encoder.load_state_dict(state)
        return model

    def split_names(self, data) -> list[str]:
        return [s for s in ("train", "val", "test") if s in data]

    @staticmethod
    def _drawn(part: CaptionSplit, config) -> int:
        """How many units an epoch draws batches from: images or (image, caption) pairs."""
        return len(part.images) if config.batch_by == "image" else len(part.captions)

    def steps_per_epoch(self, data, config) -> int:
        return self._drawn(data["train"], config) // config.batch_size

    def batches(self, data, config, generator, ctx):
        part = data["train"]
        pairs_of = pairs_by_image(part) if config.batch_by == "image" else None
        for idx in index_batches(self._drawn(part, config), config, generator, ctx):
            if pairs_of is None:  # pairs: each image row describes its own caption, no owner
                images, *rest = (*collate(part, idx.tolist()), None)
            else:
                images, *rest = collate_images(part, idx.tolist(), pairs_of)
            yield augment_images(images, config, generator), *rest

    def loss(self, step: engine.Step, batch, carry):
        images, tgt_in, tgt_out, owner = (None if t is None else t.to(step.device) for t in batch)
        images = standardise(images, self.norm(step.config))  # on the device
        logits, weights = step.net(images, tgt_in, owner)  # (B, T, V), (B, T, L)
        loss = sequence_loss(logits, tgt_out, step.config.label_smoothing)
        if weights is not None and step.config.attn_reg > 0:
            loss = loss + step.config.attn_reg * attention_penalty(weights, tgt_out)
        return loss, None

    def captions(self, model, data, split, config, device, beam):
        part = data[split]
        tokens, maps = decode_images(model, part.images, data["norm"], config, device, beam)
        return [data["vocab"].decode(t) for t in tokens], tokens, maps

    def evaluate(self, model, data, split, config, device, final=False) -> dict[str, float]:
        part, vocab = data[split], data["vocab"]
        beam = config.beam_size if final else 1
        texts, tokens, maps = self.captions(model, data, split, config, device, beam)
        scores = bleu_scores(texts, part.references)
        scores["cider"] = cider_d(texts, part.references)
        if part.boxes is not None:
            scores["exact"] = sum(t == r[0] for t, r in zip(texts, part.references)) / len(texts)
            if maps and maps[0] is not None:
                ids = tuple(vocab.encode(list(self.digit_words)))
                grid = model.grid_shape(*part.images.shape[2:])
                hits = count = 0
                for i, (tok, m) in enumerate(zip(tokens, maps)):
                    h, c = peak_in_box(tok, m, grid, part.images.shape[2:], part.boxes[i],
                                       part.labels[i][part.labels[i] >= 0], ids)  # fmt: skip
                    hits, count = hits + h, count + c
                scores["peak_in_box"] = hits / max(1, count)
        scores["loss"] = mean_loss(model, part, config, device, data["norm"])
        if final and part.boxes is None and not model.blind:  # photos: the nearest baseline too
            nearest = nearest_captions(model, data, split, config, device)
            scores.update(
                {f"nearest_{k}": v for k, v in bleu_scores(nearest, part.references).items()}
            )
            scores["nearest_cider"] = cider_d(nearest, part.references)
        if final:
            self.final_captions = texts
            self.final_references = max(len(r) for r in part.references)
        return scores

    def record_test(self, run, summary: dict) -> None:
        """Write how BLEU and CIDEr were scored into the summary, and the test captions into
        the run folder."""
        from sacrebleu.metrics import BLEU

        bleu, refs = BLEU(), getattr(self, "final_references", 1)
        bleu.corpus_score(["a"], [["a"]] * refs)  # the signature (nrefs) needs a scoring
        summary["scorers"] = {"bleu": str(bleu.get_signature()), "cider": CIDER}
        run.write_summary(summary)
        texts = getattr(self, "final_captions", None)
        if texts is not None:
            run.write_text(CAPTIONS, "\n".join(texts) + "\n")


# --- using a trained run -----------------------------------------------------------------------


def load_trained(run_dir: str | Path, device: str = "cpu"):
    """A captioning run's experiment, config, vocabulary and model (selected weights); any
    other run folder is an error, raised before its data are read."""
    from deepnets.run import load_model, load_run

    experiment, _, _ = load_run(run_dir)
    if not isinstance(experiment.task, Caption):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a captioning run")
    experiment, config, model = load_model(run_dir, device)
    return experiment, config, experiment.task.vocab(config), model


def read_picture(path, channels: int, size: int) -> torch.Tensor:
    """An image file (a path, or an upload's file object) as uint8 (1, channels, size, size):
    bounded as the web page bounds an upload (at most 4096 pixels a side, read before any pixel
    is decoded), any mode (palette, grey, 16-bit, alpha) converted, resized without keeping the
    aspect ratio."""
    import numpy as np
    from PIL import Image

    from deepnets.serve.inputs import Inputs

    try:
        if hasattr(path, "read"):  # an upload already in memory
            data = path.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise DeepnetsError(f"cannot read {path}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise DeepnetsError(f"{path} is over {MAX_FILE_BYTES >> 20} MB; not an image to caption")
    try:
        with warnings.catch_warnings():  # a huge image is refused below, not warned about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            upload = Inputs(upload=data).image()
    except DeepnetsError as err:
        raise DeepnetsError(f"{path}: {str(err).replace('the upload', 'the file')}") from None
    try:
        with Image.open(upload) as opened:
            opened.load()
            if opened.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grey
                grey = np.asarray(opened, dtype=np.float32)
                grey = grey - grey.min()
                grey = (255 * grey / max(float(grey.max()), 1e-8)).astype(np.uint8)
                picture = Image.fromarray(grey, "L")
            else:
                picture = opened.convert("RGBA").convert("RGB")  # palette, alpha, CMYK, grey
            picture = picture.convert("L" if channels == 1 else "RGB")
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DeepnetsError(f"{path} cannot be decoded as an image: {err}") from None
    array = np.asarray(picture, dtype=np.uint8).reshape(size, size, channels)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None]  # (1, C, size, size)


def caption_image(experiment, config, vocab, model, path, beam: int = 3) -> dict:
    """One image's caption: {"caption", "words" (with </s> when it ended), "attention"
    (T, H', W') list or None, "image" (C, H, W) uint8 list as the model saw it}."""
    if beam < 1:
        raise DeepnetsError(f"--beam must be at least 1, got {beam}")
    picture = experiment.task.picture(path, config)  # (1, C, H, W) uint8
    device = next(model.parameters()).device
    norm = experiment.task.norm(config)
    tokens, maps = decode_images(model, picture, norm, config, device, beam)
    words = vocab.decode(tokens[0]).split()
    attention = None
    if maps[0] is not None:
        grid = model.grid_shape(*picture.shape[2:])
        attention = maps[0].view(-1, *grid)  # (T, H', W')
        words += ["</s>"] * (attention.shape[0] - len(words))
    return {
        "caption": " ".join(w for w in words if w != "</s>"),
        "words": words,
        "attention": None if attention is None else attention.tolist(),
        "image": picture[0],
    }


def draw_attention(result: dict, out: str | Path, columns: int = 6, underline: int | None = None):
    """The image once per generated word, with the word's attention map laid over it (bright:
    where the model looked), as in Fig. 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = result["image"].permute(1, 2, 0).numpy()  # (H, W, C)
    maps = torch.tensor(result["attention"])  # (T, H', W')
    words = result["words"]
    n = len(words)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, min(n, columns), figsize=(2 * min(n, columns), 2.2 * rows),
                             squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    h, w = image.shape[:2]
    for t, word in enumerate(words):
        ax = axes.flat[t]
        ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray")
        ax.imshow(maps[t].numpy(), cmap="jet", alpha=0.45, extent=(0, w, h, 0),
                  interpolation="bilinear")  # fmt: skip
        ax.set_title(word, fontsize=10, fontweight="bold" if t == underline else "normal")
    fig.tight_layout()
    from deepnets.figures.output import save_figure

    return save_figure(fig, out, dpi=80)
