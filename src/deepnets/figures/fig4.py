"""Fig. 4, left, of the review: learned word vectors, mapped to two dimensions with t-SNE, put
semantically similar words close together. Here the vectors are the input word table of one of
this project's Penn Treebank language models (`nplm-ptb`, `rnn-ptb` or `lstm-ptb`): the rows of
C in Bengio et al.'s model, or the embedding E of the recurrent nets.

Beside the map, a table gives each probe word's nearest neighbours by cosine similarity. The
review's examples are days of the week and country names; months and a few others are added.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepnets import DeepnetsError
from deepnets.data.ptb import Vocabulary

# Groups coloured on the map (the words PTB holds of each).
GROUPS = {
    "weekdays": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    "months": (
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ),
    "countries": (
        "japan",
        "germany",
        "britain",
        "france",
        "china",
        "canada",
        "mexico",
        "italy",
        "brazil",
        "india",
        "soviet",
        "korea",
    ),
}
PROBES = ("monday", "friday", "january", "japan", "germany", "stock", "buy", "president", "two")
SKIPPED = ("<unk>", "<eos>", "N", "$")  # placeholders, not words


def word_vectors(model: torch.nn.Module) -> torch.Tensor:
    """The model's input word table, (V, m), detached."""
    table = model.word_vectors() if hasattr(model, "word_vectors") else model.embedding.weight
    return table.detach().float().cpu()


def nearest_neighbours(
    vectors: torch.Tensor, vocab, word: str, k: int = 5
) -> list[tuple[str, float]]:
    """The k words whose vectors have the highest cosine similarity with `word`'s (not itself)."""
    if word not in vocab:
        raise DeepnetsError(f"{word!r} is not in the vocabulary")
    unit = torch.nn.functional.normalize(vectors, dim=1)  # (V, m), rows of length 1
    index = vocab.ids[word]
    cosine = unit @ unit[index]  # (V,)
    cosine[index] = -2.0
    best = cosine.topk(k)
    return [(vocab.words[i], float(c)) for c, i in zip(best.values, best.indices.tolist())]


def neighbour_table(vectors: torch.Tensor, vocab, probes=PROBES, k: int = 5) -> str:
    """One line per probe word held by the vocabulary: the word, then its neighbours."""
    lines = []
    for word in probes:
        if word in vocab:
            near = nearest_neighbours(vectors, vocab, word, k)
            lines.append(f"{word:>10s}: " + ", ".join(f"{w} ({c:.2f})" for w, c in near))
    return "\n".join(lines)


def _map_words(vocab, n_frequent: int) -> list[int]:
    """The n most frequent words (ids follow frequency) and every group word, minus placeholders."""
    chosen = [i for i in range(min(n_frequent, len(vocab))) if vocab.words[i] not in SKIPPED]
    extra = [vocab.ids[w] for group in GROUPS.values() for w in group if w in vocab]
    return sorted(set(chosen) | set(extra))


def draw_fig4(run_dir: str | None = None, out: str | None = None, n_frequent: int = 400) -> Path:
    if run_dir is None:
        raise DeepnetsError(
            "fig4 needs a trained Penn Treebank language model's run folder, for example "
            "`deepnets run nplm-ptb` then `deepnets figure fig4 runs/nplm-ptb/<run>`"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from deepnets.train.language_model import load_trained

    experiment, _, corpus, model = load_trained(Path(run_dir))
    vocab = corpus["vocab"]
    if not isinstance(vocab, Vocabulary):
        raise DeepnetsError(f"fig4 needs a word-level language model, not {experiment.id}")
    vectors = word_vectors(model)
    ids = _map_words(vocab, n_frequent)
    points = TSNE(2, perplexity=30, init="pca", random_state=0).fit_transform(
        vectors[ids].numpy()
    )  # (n, 2)
    colours = {"weekdays": "tab:red", "months": "tab:blue", "countries": "tab:green"}
    group_of = {w: g for g, words in GROUPS.items() for w in words}

    fig, (ax, side) = plt.subplots(2, 1, figsize=(13, 14), gridspec_kw={"height_ratios": [5, 1]})
    for (x, y), i in zip(points, ids):
        word = vocab.words[i]
        group = group_of.get(word)
        ax.text(
            x,
            y,
            word,
            fontsize=9 if group else 6,
            color=colours[group] if group else "0.45",
            fontweight="bold" if group else "normal",
            ha="center",
            va="center",
        )
    ax.set_xlim(points[:, 0].min() - 3, points[:, 0].max() + 3)
    ax.set_ylim(points[:, 1].min() - 3, points[:, 1].max() + 3)
    ax.set_xticks([])
    ax.set_yticks([])
    for group, colour in colours.items():
        ax.plot([], [], "s", color=colour, label=group)
    ax.legend(loc="upper right")
    ax.set_title(
        f"t-SNE of the word vectors of {experiment.id} ({len(ids)} words: the "
        f"{n_frequent} most frequent and the coloured groups)"
    )
    table = neighbour_table(vectors, vocab)
    side.axis("off")
    side.set_title("nearest neighbours by cosine similarity", loc="left")
    side.text(0, 1, table, family="monospace", fontsize=9, va="top", transform=side.transAxes)
    fig.tight_layout()
    path = Path(out) if out else Path("figures") / "fig4.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    path.with_suffix(".txt").write_text(table + "\n")
    return path
