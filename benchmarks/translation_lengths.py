"""BLEU by source-sentence length: does a fixed-size "thought vector" degrade on long sentences
where attention does not (Bahdanau et al. 2015, Fig. 2)?

Each run folder (a `seq2seq-multi30k` and an `attention-multi30k` run of the same language pair)
translates the test split (test_2016_flickr) with its config's beam search (or the run's own
saved test translations are read); the sentences are
grouped by the number of words in the source, and sacrebleu corpus BLEU is computed per group.
Writes a Markdown table and a plot:

    python benchmarks/translation_lengths.py runs/seq2seq-multi30k/<run> \
        runs/attention-multi30k/<run> --out benchmarks/results/translation_lengths
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from deepnets.train.translate import (
    TRANSLATIONS,
    bleu_chrf,
    load_parallel,
    load_trained,
    translate_split,
)

BUCKETS = ((1, 8), (9, 12), (13, 16), (17, 20), (21, 1000))  # about 1000 test sentences


def bucket_bleu(hyps: list[str], refs: list[str], sources: list[str]) -> list[dict]:
    rows = []
    for low, high in BUCKETS:
        idx = [i for i, s in enumerate(sources) if low <= len(s.split()) <= high]
        if not idx:
            continue
        bleu, chrf, _, _ = bleu_chrf([hyps[i] for i in idx], [refs[i] for i in idx])
        label = f"{low}-{high}" if high < 1000 else f"{low}+"
        rows.append({"words": label, "sentences": len(idx), "bleu": bleu, "chrf": chrf})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="translation run folders")
    parser.add_argument("--out", default="benchmarks/results/translation_lengths")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    results = {}
    for run_dir in args.runs:
        started = time.perf_counter()
        config, _, model = load_trained(run_dir, "cpu")
        meta = json.loads((Path(run_dir) / "config.json").read_text())
        data = load_parallel(config)
        part = data[args.split]
        saved = Path(run_dir) / TRANSLATIONS
        if args.split == "test" and saved.is_file():  # what the run's own test scored
            hyps = saved.read_text().split("\n")[: len(part)]
        else:
            with torch.no_grad():
                hyps = translate_split(
                    model, part, data["vocab"][1], config, "cpu", config.beam_size
                )
        whole = bleu_chrf(hyps, part.tgt_text)
        name = f"{meta['experiment']} {meta['preset']} ({config.pair}, {config.epochs} ep.)"
        results[name] = {
            "run": str(run_dir),
            "bleu": whole[0],
            "signature": whole[2],
            "buckets": bucket_bleu(hyps, part.tgt_text, part.src_text),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{name}: BLEU {whole[0]:.2f} in {results[name]['seconds']}s")
    names = list(results)
    labels = [b["words"] for b in results[names[0]]["buckets"]]
    lines = [
        "| source words | sentences | " + " | ".join(f"{n} BLEU" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for k, label in enumerate(labels):
        cells = [f"{results[n]['buckets'][k]['bleu']:.2f}" for n in names]
        count = results[names[0]]["buckets"][k]["sentences"]
        lines.append(f"| {label} | {count} | " + " | ".join(cells) + " |")
    lines.append(
        "| all | " + str(sum(b["sentences"] for b in results[names[0]]["buckets"])) + " | "
        + " | ".join(f"{results[n]['bleu']:.2f}" for n in names) + " |"
    )  # fmt: skip
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    signature = results[names[0]]["signature"]
    out.with_suffix(".md").write_text(
        f"BLEU by source length on {args.split} (sacrebleu {signature})\n\n{table}\n"
    )
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in names:
        ax.plot(labels, [b["bleu"] for b in results[n]["buckets"]], "o-", label=n)
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel("BLEU (sacrebleu)")
    ax.set_title(f"BLEU by source length, {args.split}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    print(f"wrote {out.with_suffix('.md')}, {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
