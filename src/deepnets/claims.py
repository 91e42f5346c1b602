"""The review's claims about why deep learning works, each judged from measured results rows.

A `Claim` names the review's statement (paraphrased) and its reference, the experiment that tests
it, the results rows it reads (`deepnets bench` rows in results/*.csv, or a benchmark's result
file) and a `judge`: a pure function from those rows to a `Finding` (the numbers, a verdict and
a one-line reason). The verdict is whatever the numbers give:

- "holds": the claimed effect is there and larger than the seeds' spread;
- "partly": it is there on some of the comparisons, or smaller than the spread;
- "does not hold": the opposite effect, or none;
- "not measured": a row the judge needs does not exist yet (the finding names the command).

A difference counts as larger than the spread when it exceeds twice the combined standard
deviation of the two means (`clear`); rows of one seed have no spread, which the numbers show.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepnets.results import latest_rows, project_root

HOLDS, PARTLY, FAILS, UNMEASURED = "holds", "partly", "does not hold", "not measured"
Rows = dict[tuple[str, str], dict]


@dataclass(frozen=True)
class Finding:
    numbers: str  # the measured numbers, with spread and seeds
    verdict: str  # HOLDS, PARTLY, FAILS or UNMEASURED
    reason: str  # one line


@dataclass(frozen=True)
class Measure:
    """One results row's primary metric: mean, standard deviation, seeds."""

    mean: float
    std: float
    seeds: int

    def text(self, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
        shown = f"{scale * self.mean:.{digits}f}"
        if self.seeds > 1:
            shown += f" ± {scale * self.std:.{digits}f}"
        return f"{shown}{unit} ({self.seeds} seed{'s' if self.seeds > 1 else ''})"


def measure(rows: Rows, experiment: str, preset: str) -> Measure | None:
    row = rows.get((experiment, preset))
    if row is None:
        return None
    return Measure(float(row["mean"]), float(row["std"] or 0), int(row["seeds"]))


def clear(better: Measure, worse: Measure, lower_is_better: bool) -> tuple[bool, bool]:
    """(better is ahead, ahead by more than twice the combined standard deviation)."""
    gap = (worse.mean - better.mean) if lower_is_better else (better.mean - worse.mean)
    spread = 2 * math.hypot(better.std, worse.std)
    return gap > 0, gap > spread


def missing(*commands: str) -> Finding:
    return Finding("", UNMEASURED, "no results row yet; run " + "; ".join(commands))


@dataclass(frozen=True)
class Claim:
    number: int
    statement: str  # the review's claim, paraphrased
    reference: str
    experiment: str  # what is run to test it
    commands: tuple[str, ...]  # what regenerates the rows it reads (none: not built yet)
    judge: Callable[[Rows, Path], Finding]  # (results rows, project root) -> finding


# --- the judges -----------------------------------------------------------------------------


def _compare_pairs(
    rows: Rows, pairs: list[tuple[str, str, str, str, str]], lower_is_better: bool, text
) -> Finding | None:
    """Each pair (label, experiment, claimed-better preset, experiment, other preset): the
    verdict is HOLDS when every pair is clearly ahead, PARTLY when some are ahead, else FAILS.
    None when a row is missing."""
    numbers, ahead, clearly = [], 0, 0
    for label, exp_a, preset_a, exp_b, preset_b in pairs:
        a, b = measure(rows, exp_a, preset_a), measure(rows, exp_b, preset_b)
        if a is None or b is None:
            return None
        is_ahead, is_clear = clear(a, b, lower_is_better)
        ahead += is_ahead
        clearly += is_clear
        numbers.append(f"{label}: {text(a)} vs {text(b)}")
    n = len(pairs)
    if clearly == n:
        return Finding("; ".join(numbers), HOLDS, f"ahead beyond the spread in all {n}")
    if ahead:
        why = f"ahead in {ahead} of {n}, beyond the spread in {clearly}"
        return Finding("; ".join(numbers), PARTLY, why)
    return Finding("; ".join(numbers), FAILS, f"behind or level in all {n}")


def _accuracy_error(m: Measure) -> str:  # classifier rows store accuracy
    return Measure(1 - m.mean, m.std, m.seeds).text(scale=100, unit="%")


def judge_few_labels(rows: Rows, root: Path) -> Finding:
    pairs = [
        (f"{n} labels, {exp.split('-')[0]}", exp, f"labels-{n}", exp, f"labels-{n}+pretrain=false")
        for exp in ("dbn-mnist", "sdae-mnist")
        for n in (100, 600, 1000)
    ]
    found = _compare_pairs(rows, pairs, lower_is_better=False, text=_accuracy_error)
    if found is None:
        return missing("deepnets bench dbn-mnist --preset labels-100 --seeds 3 (and 600, 1000)")
    return Finding(
        "test error pre-trained vs random init: " + found.numbers, found.verdict, found.reason
    )


def judge_language_models(rows: Rows, root: Path) -> Finding:
    kn5, nplm = measure(rows, "kn5-ptb", "small"), measure(rows, "nplm-ptb", "small")
    rnn, lstm = measure(rows, "rnn-ptb", "small"), measure(rows, "lstm-ptb", "small")
    if None in (kn5, nplm, rnn, lstm):
        return missing("deepnets bench kn5-ptb / nplm-ptb / rnn-ptb / lstm-ptb --preset small")
    numbers = (
        f"PTB test perplexity: KN5 {kn5.text()}, NPLM {nplm.text()}, RNN {rnn.text()}, "
        f"LSTM {lstm.text()}"
    )
    neural = {"NPLM": nplm, "RNN": rnn, "LSTM": lstm}
    beat = [name for name, m in neural.items() if clear(m, kn5, True)[1]]
    if len(beat) == 3:
        return Finding(numbers, HOLDS, "every neural model beats the 5-gram counts")
    if beat:
        return Finding(numbers, PARTLY, f"{', '.join(beat)} beat the 5-gram counts, not all")
    return Finding(numbers, FAILS, "no neural model beats the 5-gram counts")


LENGTHS = "benchmarks/results/translation_lengths.json"


def judge_attention_lengths(rows: Rows, root: Path) -> Finding:
    path = root / LENGTHS
    if not path.is_file():
        return missing("python benchmarks/translation_lengths.py SEQ2SEQ_RUN ATTENTION_RUN")
    table = json.loads(path.read_text())
    plain = [k for k in table if k.startswith("seq2seq")]
    attended = [k for k in table if k.startswith("attention")]
    if not plain or not attended:
        return missing("python benchmarks/translation_lengths.py SEQ2SEQ_RUN ATTENTION_RUN")
    s, a = table[plain[-1]], table[attended[-1]]  # the last written of each: the largest runs
    buckets = [b["words"] for b in s["buckets"]]
    by_a = {b["words"]: b["bleu"] for b in a["buckets"]}
    lead = [by_a[b["words"]] - b["bleu"] for b in s["buckets"] if b["words"] in by_a]
    numbers = f"BLEU lead of {attended[-1]} over {plain[-1]} by source words " + ", ".join(
        f"{w}: {x:+.1f}" for w, x in zip(buckets, lead, strict=False)
    )
    if len(lead) < 2:
        return Finding(numbers, UNMEASURED, "fewer than two length buckets")
    grows = all(later >= earlier for earlier, later in zip(lead, lead[1:], strict=False))
    if grows:
        return Finding(numbers, HOLDS, "the lead grows with every longer bucket")
    if lead[-1] > lead[0]:
        return Finding(numbers, PARTLY, "the lead is larger on the longest than the shortest")
    return Finding(numbers, FAILS, "the lead does not grow with source length")


def not_built(what: str) -> Callable[[Rows, Path], Finding]:
    """The judge of a claim whose experiment this project has not built yet."""

    def judge(rows: Rows, root: Path) -> Finding:
        return Finding("", UNMEASURED, f"{what} is not built yet")

    return judge


CLAIMS: tuple[Claim, ...] = (
    Claim(
        1,
        "ReLUs learn much faster than tanh or logistic units in deep nets",
        "Glorot, Bordes & Bengio 2011; Nair & Hinton 2010",
        "a 6-hidden-layer MLP on MNIST with each unit type, same init rule, tuned learning rate",
        (),
        not_built("the deep-net unit-type experiment"),
    ),
    Claim(
        2,
        "poor local minima are rare in large nets: solutions have similar quality",
        "Dauphin et al. 2014; Choromanska et al. 2015",
        "nets of 6+ widths x 20 seeds: spread of final loss and error against width; "
        "loss on the line from initialisation to the solution",
        (),
        not_built("the width x seeds experiment"),
    ),
    Claim(
        3,
        "weight sharing and local connectivity: ConvNets train more easily and generalise "
        "better than fully connected nets",
        "LeCun et al. 1998",
        "LeNet-5 against a fully connected net of matched size on MNIST and CIFAR-10",
        (),
        not_built("the matched-size ConvNet vs MLP experiment"),
    ),
    Claim(
        4,
        "unsupervised pre-training helps when labelled data are scarce",
        "Hinton, Osindero & Teh 2006; Bengio et al. 2007",
        "the few-label table: DBN and SDAE pre-training vs random init with 100-1000 labels",
        ("deepnets bench dbn-mnist --preset labels-100 --seeds 3 (600, 1000; sdae-mnist)",),
        judge_few_labels,
    ),
    Claim(
        5,
        "dropout reduces overfitting",
        "Srivastava et al. 2014",
        "MLP and LeNet-5 on MNIST with and without dropout: train and test error, gap",
        (),
        not_built("the dropout on/off experiment"),
    ),
    Claim(
        6,
        "LSTMs remember over long delays where plain RNNs fail",
        "Hochreiter & Schmidhuber 1997",
        "a synthetic long-lag task at growing lags: the longest lag each solves",
        (),
        not_built("the long-lag task"),
    ),
    Claim(
        7,
        "neural language models beat N-gram counts by learning distributed representations",
        "Bengio et al. 2003; Mikolov et al. 2010",
        "the PTB rows: Kneser-Ney 5-gram, NPLM, RNN, LSTM (the word-neighbour test beside)",
        ("deepnets bench kn5-ptb / nplm-ptb / rnn-ptb / lstm-ptb --preset small",),
        judge_language_models,
    ),
    Claim(
        8,
        "attention helps with long sentences",
        "Bahdanau, Cho & Bengio 2015",
        "BLEU by source length, seq2seq vs attention (Multi30k de-en test)",
        ("python benchmarks/translation_lengths.py SEQ2SEQ_RUN ATTENTION_RUN",),
        judge_attention_lengths,
    ),
    Claim(
        9,
        "GPUs train nets 10 to 20 times faster",
        "the review; Raina, Madhavan & Ng 2009",
        "the same training step of three systems on this CPU and on a GPU, as a ratio",
        (),
        not_built("a CPU and GPU measurement side by side"),
    ),
)


def findings(root: Path | None = None) -> list[tuple[Claim, Finding]]:
    root = root or project_root()
    rows = latest_rows(root)
    return [(claim, claim.judge(rows, root)) for claim in CLAIMS]


def claims_records(root: Path | None = None) -> list[dict]:
    """Every claim and its finding as JSON-able records (the web page's claims table)."""
    return [
        {
            "number": claim.number,
            "claim": claim.statement,
            "reference": claim.reference,
            "experiment": claim.experiment,
            "numbers": found.numbers,
            "verdict": found.verdict,
            "reason": found.reason,
            "commands": list(claim.commands),
        }
        for claim, found in findings(root)
    ]


def claims_table(root: Path | None = None) -> str:
    """The Markdown table of every claim, its numbers and verdict."""
    lines = [
        "| # | claim (reference) | experiment | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    for claim, found in findings(root):
        lines.append(
            f"| {claim.number} | {claim.statement} ({claim.reference}) | {claim.experiment} "
            f"| {found.numbers or '-'} | **{found.verdict}**: {found.reason} |"
        )
    return "\n".join(lines)
