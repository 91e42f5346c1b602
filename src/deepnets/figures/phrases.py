"""Fig. 4, right, of the review: the representations an English-to-German encoder-decoder's
encoder gives to short English phrases, mapped to two dimensions with t-SNE, put phrases of
similar meaning close together (after Cho et al. 2014 and Sutskever et al. 2014).

The phrases are the shortest English sentences of Multi30k's validation split (never trained
on); each is represented by the vector the decoder starts from (`Seq2Seq.thought`: the encoder's
final state, bridged when the run has attention). Phrases are coloured by the topic word they
contain (a dog, a child, a woman, water, a bike, music), found in their text, not by the model;
a table beside the map gives some phrases' nearest neighbours by cosine similarity.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepnets import DeepnetsError

TOPICS = {
    "dogs": ("dog", "dogs", "puppy"),
    "children": ("child", "children", "boy", "girl", "kids", "baby", "boys", "girls"),
    "water": ("water", "ocean", "beach", "swimming", "pool", "lake", "waves"),
    "bikes": ("bike", "bicycle", "biker", "motorcycle", "cyclist"),
    "music": ("guitar", "music", "playing drums", "band", "sings", "singing"),
}
COLOURS = ("tab:red", "tab:blue", "tab:cyan", "tab:green", "tab:purple")


def topic_of(phrase: str) -> str | None:
    words = " " + phrase.lower().replace(".", " ").replace(",", " ") + " "
    for topic, keys in TOPICS.items():
        if any(f" {key} " in words for key in keys):
            return topic
    return None


def short_phrases(sentences: list[str], n: int, max_words: int = 10) -> list[str]:
    """Up to n distinct sentences of at most max_words words, in their order in the split."""
    seen, out = set(), []
    for sentence in sentences:
        text = sentence.strip()
        if len(text.split()) <= max_words and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
        if len(out) == n:
            break
    return out


@torch.no_grad()
def phrase_vectors(model, tokenizer, phrases: list[str]) -> torch.Tensor:
    """Each phrase's encoder representation (n, H)."""
    from torch.nn.utils.rnn import pad_sequence

    ids = [torch.tensor(tokenizer.encode(p) or [1]) for p in phrases]
    src = pad_sequence(ids, batch_first=True)  # (n, S)
    lengths = torch.tensor([len(i) for i in ids])
    device = next(model.parameters()).device
    return model.eval().thought(src.to(device), lengths.to(device)).float().cpu()


def neighbour_lines(vectors: torch.Tensor, phrases: list[str], probes: list[int], k: int = 3):
    unit = torch.nn.functional.normalize(vectors, dim=1)
    similarity = unit @ unit.T  # (n, n)
    lines = []
    for i in probes:
        order = similarity[i].argsort(descending=True).tolist()
        near = [j for j in order if j != i][:k]
        lines.append(f"{phrases[i]!r:46} -> " + " | ".join(phrases[j] for j in near))
    return lines


def draw_phrases(run_dir: str | None = None, out: str | None = None, n: int = 300) -> Path:
    if run_dir is None:
        raise DeepnetsError(
            "fig4-phrases needs an English-to-German translation run, for example "
            "`deepnets run attention-multi30k --preset small-en-de` then "
            "`deepnets figure fig4-phrases runs/attention-multi30k/<run>`"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from deepnets.data.multi30k import load_multi30k
    from deepnets.train.translate import load_trained

    config, (src_tok, _), model = load_trained(run_dir)
    if config.pair != "en-de":
        raise DeepnetsError(
            f"fig4-phrases needs an en-de run (English phrases); {run_dir} is {config.pair}"
        )
    phrases = short_phrases(load_multi30k()["val"]["en"], n)
    vectors = phrase_vectors(model, src_tok, phrases)  # (n, H)
    points = TSNE(2, perplexity=min(30, len(phrases) - 1), init="pca", random_state=0)
    points = points.fit_transform(vectors.numpy())  # (n, 2)
    topics = [topic_of(p) for p in phrases]
    colour = dict(zip(TOPICS, COLOURS))

    fig, (ax, side) = plt.subplots(2, 1, figsize=(14, 15), gridspec_kw={"height_ratios": [4, 1]})
    labelled: dict[str | None, int] = {}
    for (x, y), phrase, topic in zip(points, phrases, topics):
        ax.plot(x, y, "o", color=colour.get(topic, "0.75"), markersize=5 if topic else 3)
        if labelled.get(topic, 0) < (6 if topic else 10):  # label a few of each topic
            labelled[topic] = labelled.get(topic, 0) + 1
            ax.annotate(phrase, (x, y), fontsize=7, color=colour.get(topic, "0.4"))
    for topic, c in colour.items():
        ax.plot([], [], "o", color=c, label=f"contains: {topic}")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"t-SNE of encoder representations of {len(phrases)} short English phrases "
        f"(Multi30k val), {run_dir}"
    )
    probes = [
        next(i for i, t in enumerate(topics) if t == topic) for topic in TOPICS if topic in topics
    ]
    lines = neighbour_lines(vectors, phrases, probes)
    side.axis("off")
    side.set_title("nearest phrases by cosine similarity of their representations", loc="left")
    side.text(
        0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top", transform=side.transAxes
    )
    fig.tight_layout()
    path = Path(out) if out else Path("figures") / "fig4-phrases.png"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    except OSError as err:
        raise DeepnetsError(f"cannot write {path}: {err}") from None
    finally:
        plt.close(fig)
    return path
