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

from deepnets.experiments.adding import ADDING_LAGS
from deepnets.experiments.mnist import WIDTHS
from deepnets.results import latest_rows, parse_secondary, project_root

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
class Bench:
    """One `deepnets bench` a claim's rows come from."""

    experiment: str
    preset: str
    seeds: int
    sets: tuple[str, ...] = ()  # --set overrides (the row's preset label gains them)

    def argv(self) -> list[str]:
        sets = [arg for item in self.sets for arg in ("--set", item)]
        return [
            "bench",
            self.experiment,
            "--preset",
            self.preset,
            "--seeds",
            str(self.seeds),
            *sets,
        ]


@dataclass(frozen=True)
class Claim:
    number: int
    statement: str  # the review's claim, paraphrased
    reference: str
    experiment: str  # what is run to test it
    commands: tuple[str, ...]  # what regenerates the rows it reads, for people
    judge: Callable[[Rows, Path], Finding]  # (results rows, project root) -> finding
    benches: tuple[Bench, ...] = ()  # what `deepnets claims --run N` runs
    script: str = ""  # ... or this benchmark script of the checkout


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


def secondary(rows: Rows, experiment: str, preset: str, name: str) -> Measure | None:
    """One of a row's other metrics (train_loss, steps_to_error, ...) as a Measure; NaN (a
    target never reached) stays NaN."""
    row = rows.get((experiment, preset))
    if row is None:
        return None
    found = parse_secondary(row).get(name)
    if found is None:
        return None
    return Measure(found["mean"], found["std"], int(row["seeds"]))


def never_reached_last(m: Measure) -> Measure:
    """Steps to a target with NaN (some seed never reached it within its run) counted as
    infinitely many."""
    return Measure(math.inf, 0.0, m.seeds) if math.isnan(m.mean) else m


def _steps_text(m: Measure) -> str:
    return "not reached by every seed" if not math.isfinite(m.mean) else m.text(digits=0)


def judge_relu(rows: Rows, root: Path) -> Finding:
    units = ("relu", "tanh", "logistic")
    found = {}
    for unit in units:
        preset = f"deep-{unit}"
        test = measure(rows, "mlp-mnist", preset)
        to_loss = secondary(rows, "mlp-mnist", preset, "steps_to_loss")
        to_error = secondary(rows, "mlp-mnist", preset, "steps_to_error")
        if None in (test, to_loss, to_error):
            return missing("deepnets bench mlp-mnist --preset deep-relu --seeds 3 (tanh, logistic)")
        found[unit] = (test, to_loss, to_error)
    numbers = "; ".join(
        f"{unit}: steps to train loss 0.1 {_steps_text(to_loss)}, to val error 3% "
        f"{_steps_text(to_error)}, test error {_accuracy_error(test)}"
        for unit, (test, to_loss, to_error) in found.items()
    )
    ahead = clearly = 0
    relu, beaten = found["relu"], []
    for other in ("tanh", "logistic"):
        both = 0
        for k in (1, 2):  # steps to the loss, steps to the error
            a, c = clear(never_reached_last(relu[k]), never_reached_last(found[other][k]), True)
            ahead, clearly, both = ahead + a, clearly + c, both + c
        if both == 2:
            beaten.append(other)
    if clearly == 4:
        return Finding(numbers, HOLDS, "ReLU reaches both targets first, beyond the spread")
    if ahead:
        why = f"ReLU first in {ahead} of 4 comparisons, beyond the spread in {clearly}"
        if beaten:
            why += f" (both targets before {' and '.join(beaten)} units)"
        return Finding(numbers, PARTLY, why)
    return Finding(numbers, FAILS, "ReLU reaches neither target before tanh or logistic units")


def rank_correlation(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation (no ties expected)."""

    def ranks(values: list[float]) -> list[int]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0] * len(values)
        for rank, i in enumerate(order):
            out[i] = rank
        return out

    rx, ry = ranks(xs), ranks(ys)
    n = len(xs)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True)) / (n * (n * n - 1))


MIN_SEEDS_PER_WIDTH = 20


def judge_local_minima(rows: Rows, root: Path) -> Finding:
    test_std, loss_std, parts = [], [], []
    for width in WIDTHS:
        preset = f"width-{width}"
        row, loss = (
            rows.get(("mlp-mnist", preset)),
            secondary(rows, "mlp-mnist", preset, "train_loss"),
        )
        if row is None or loss is None or int(row["seeds"]) < MIN_SEEDS_PER_WIDTH:
            return missing(
                f"deepnets bench mlp-mnist --preset width-N --seeds 20 for N in {WIDTHS}"
            )
        low, high = (float(v) for v in row["range"].split(".."))
        extra = parse_secondary(row)["train_loss"]
        test_std.append(float(row["std"]))
        loss_std.append(loss.std)
        parts.append(
            f"{width} units: test error {100 * (1 - float(row['mean'])):.2f}% std "
            f"{100 * float(row['std']):.2f} range {100 * (high - low):.2f}, train loss "
            f"{loss.mean:.4f} std {loss.std:.4f} range {extra['max'] - extra['min']:.4f}"
        )
    numbers = f"{len(WIDTHS)} widths x {MIN_SEEDS_PER_WIDTH}+ seeds: " + "; ".join(parts)
    shrinks = [
        rank_correlation([float(w) for w in WIDTHS], spread) <= -0.7 and spread[-1] < spread[0]
        for spread in (test_std, loss_std)
    ]
    if all(shrinks):
        why = "the spread of test error and of training loss over seeds falls as width grows"
        return Finding(numbers, HOLDS, why)
    if any(shrinks):
        which = "test error" if shrinks[0] else "training loss"
        return Finding(numbers, PARTLY, f"only the spread of {which} falls with width")
    return Finding(numbers, FAILS, "the spread over seeds does not fall as width grows")


def _gap(rows: Rows, experiment: str, preset: str) -> Measure | None:
    """Training accuracy minus test accuracy: the generalisation gap."""
    test, train = (
        measure(rows, experiment, preset),
        secondary(rows, experiment, preset, "train_accuracy"),
    )
    if test is None or train is None:
        return None
    return Measure(train.mean - test.mean, math.hypot(train.std, test.std), test.seeds)


def _versus(
    rows: Rows, pairs: list[tuple[str, str, str, str, str]], effects: tuple[str, ...]
) -> tuple[list[str], int, int, int] | None:
    """For each pair (label, experiment A, preset A, experiment B, preset B), A claimed better
    on each effect: "error" (test error), "gap" (train minus test accuracy) or "steps" (steps to
    the fixed validation error). (lines of numbers, comparisons, ahead, ahead clearly)."""
    lines, n, ahead, clearly = [], 0, 0, 0
    for label, exp_a, pre_a, exp_b, pre_b in pairs:
        shown = []
        for effect in effects:
            if effect == "error":
                a, b = measure(rows, exp_a, pre_a), measure(rows, exp_b, pre_b)
                text, lower = _accuracy_error, False
            elif effect == "gap":
                a, b = _gap(rows, exp_a, pre_a), _gap(rows, exp_b, pre_b)
                text, lower = (lambda m: m.text(scale=100, unit=" points")), True
            else:
                a = secondary(rows, exp_a, pre_a, "steps_to_error")
                b = secondary(rows, exp_b, pre_b, "steps_to_error")
                text, lower = _steps_text, True
                if a is not None and b is not None:
                    a, b = never_reached_last(a), never_reached_last(b)
            if a is None or b is None:
                return None
            is_ahead, is_clear = clear(a, b, lower)
            n, ahead, clearly = n + 1, ahead + is_ahead, clearly + is_clear
            shown.append(f"{effect} {text(a)} vs {text(b)}")
        lines.append(f"{label}: " + ", ".join(shown))
    return lines, n, ahead, clearly


def _verdict(lines: list[str], n: int, ahead: int, clearly: int, who: str) -> Finding:
    numbers = "; ".join(lines)
    if clearly == n:
        return Finding(numbers, HOLDS, f"{who} ahead beyond the spread in all {n} comparisons")
    if ahead:
        return Finding(
            numbers, PARTLY, f"{who} ahead in {ahead} of {n}, beyond the spread in {clearly}"
        )
    return Finding(numbers, FAILS, f"{who} behind or level in all {n} comparisons")


def judge_convnets(rows: Rows, root: Path) -> Finding:
    pairs = [
        ("MNIST (10k images)", "lenet5-mnist", "10k", "mlp-mnist", "10k-matched"),
        ("CIFAR-10", "convnet-cifar10", "lenet5", "convnet-cifar10", "mlp-matched"),
    ]
    found = _versus(rows, pairs, ("error", "gap", "steps"))
    if found is None:
        return missing(
            "deepnets bench lenet5-mnist --preset 10k --seeds 3; mlp-mnist --preset 10k-matched; "
            "convnet-cifar10 --preset lenet5; convnet-cifar10 --preset mlp-matched"
        )
    lines, n, ahead, clearly = found
    lines = [line.replace("steps", "steps to the val error target") for line in lines]
    return _verdict(["LeNet-5 vs matched MLP", *lines], n, ahead, clearly, "LeNet-5")


def judge_dropout(rows: Rows, root: Path) -> Finding:
    pairs = [
        ("MLP 800-800", "mlp-mnist", "10k-dropout", "mlp-mnist", "10k"),
        ("LeNet-5", "lenet5-mnist", "10k-dropout", "lenet5-mnist", "10k"),
    ]
    found = _versus(rows, pairs, ("gap", "error"))
    if found is None:
        return missing(
            "deepnets bench mlp-mnist --preset 10k-dropout --seeds 3 (and 10k; lenet5-mnist too)"
        )
    lines, n, ahead, clearly = found
    return _verdict(
        ["with vs without dropout, 10k MNIST images", *lines], n, ahead, clearly, "dropout"
    )


SOLVED_MSE = 0.01  # the adding problem: a lag is solved when the test MSE is below this


def judge_long_lags(rows: Rows, root: Path) -> Finding:
    solved: dict[str, list[int]] = {}
    parts = []
    for cell in ("rnn", "lstm"):
        errors = []
        for lag in ADDING_LAGS:
            m = measure(rows, f"adding-{cell}", f"lag-{lag}")
            if m is None:
                return missing(
                    f"deepnets bench adding-{cell} --preset lag-T --seeds 3 for T in {ADDING_LAGS}"
                )
            errors.append(f"{lag}: {m.mean:.4f} ± {m.std:.4f}")
            if m.mean < SOLVED_MSE:
                solved.setdefault(cell, []).append(lag)
        parts.append(f"{cell.upper()} test MSE by lag ({m.seeds} seeds) " + ", ".join(errors))
    rnn, lstm = max(solved.get("rnn", [0])), max(solved.get("lstm", [0]))
    numbers = (
        "; ".join(parts)
        + f"; longest lag solved (MSE < {SOLVED_MSE}): RNN {rnn or 'none'}, LSTM {lstm or 'none'}"
    )
    lstm_only = set(solved.get("lstm", [])) - set(solved.get("rnn", []))
    if lstm > rnn and lstm_only:
        return Finding(numbers, HOLDS, f"the LSTM solves lags the RNN fails, up to {lstm}")
    if lstm_only:
        return Finding(numbers, PARTLY, "the LSTM solves some lags the RNN fails, not the longest")
    return Finding(numbers, FAILS, "the plain RNN solves every lag the LSTM does")


GPU_SPEEDUP = "benchmarks/results/gpu_speedup.json"


def judge_gpu(rows: Rows, root: Path) -> Finding:
    path = root / GPU_SPEEDUP
    if not path.is_file():
        return missing("python benchmarks/gpu_speedup.py (on a machine with a GPU)")
    table = json.loads(path.read_text())
    systems = table["systems"]
    ratios = {name: s.get("speedup") for name, s in systems.items()}
    cpu = ", ".join(f"{name} {s['cpu_ms']:.1f} ms" for name, s in systems.items())
    if any(r is None for r in ratios.values()):
        return Finding(
            f"CPU step medians: {cpu}",
            UNMEASURED,
            "no GPU was lent to the run that measured these; the GPU side is missing",
        )
    numbers = "GPU speed-up per training step: " + ", ".join(
        f"{n} {r:.1f}x" for n, r in ratios.items()
    )
    within = [r >= 10 for r in ratios.values()]
    if all(within):
        return Finding(numbers, HOLDS, "10 times faster or more on every system")
    if any(within):
        return Finding(numbers, PARTLY, "10 times faster or more on some systems")
    return Finding(numbers, FAILS, "under 10 times faster on every system")


CLAIMS: tuple[Claim, ...] = (
    Claim(
        1,
        "ReLUs learn much faster than tanh or logistic units in deep nets",
        "Glorot, Bordes & Bengio 2011; Nair & Hinton 2010",
        "a 6-hidden-layer MLP on MNIST with each unit type, same init rule, tuned learning rate",
        ("deepnets bench mlp-mnist --preset deep-relu --seeds 3 (deep-tanh, deep-logistic)",),
        judge_relu,
        tuple(Bench("mlp-mnist", f"deep-{unit}", 3) for unit in ("relu", "tanh", "logistic")),
    ),
    Claim(
        2,
        "poor local minima are rare in large nets: solutions have similar quality",
        "Dauphin et al. 2014; Choromanska et al. 2015",
        "nets of 6+ widths x 20 seeds: spread of final loss and error against width; "
        "loss on the line from initialisation to the solution",
        (
            "deepnets bench mlp-mnist --preset width-N --seeds 20 (N: 5 10 25 100 250 1000)",
            "deepnets figure fig-minima runs/bench/mlp-mnist",
        ),
        judge_local_minima,
        tuple(Bench("mlp-mnist", f"width-{w}", MIN_SEEDS_PER_WIDTH) for w in WIDTHS),
    ),
    Claim(
        3,
        "weight sharing and local connectivity: ConvNets train more easily and generalise "
        "better than fully connected nets",
        "LeCun et al. 1998",
        "LeNet-5 against a fully connected net of matched size on MNIST and CIFAR-10",
        (
            "deepnets bench lenet5-mnist --preset 10k --seeds 3; mlp-mnist --preset 10k-matched",
            "deepnets bench convnet-cifar10 --preset lenet5 --seeds 3; --preset mlp-matched",
        ),
        judge_convnets,
        (
            Bench("lenet5-mnist", "10k", 3),
            Bench("mlp-mnist", "10k-matched", 3),
            Bench("convnet-cifar10", "lenet5", 3),
            Bench("convnet-cifar10", "mlp-matched", 3),
        ),
    ),
    Claim(
        4,
        "unsupervised pre-training helps when labelled data are scarce",
        "Hinton, Osindero & Teh 2006; Bengio et al. 2007",
        "the few-label table: DBN and SDAE pre-training vs random init with 100-1000 labels",
        ("deepnets bench dbn-mnist --preset labels-100 --seeds 3 (600, 1000; sdae-mnist)",),
        judge_few_labels,
        tuple(
            Bench(experiment, f"labels-{n}", 3, sets)
            for experiment in ("dbn-mnist", "sdae-mnist")
            for n in (100, 600, 1000)
            for sets in ((), ("pretrain=false",))
        ),
    ),
    Claim(
        5,
        "dropout reduces overfitting",
        "Srivastava et al. 2014",
        "MLP and LeNet-5 on MNIST with and without dropout: train and test error, gap",
        (
            "deepnets bench mlp-mnist --preset 10k-dropout --seeds 3; --preset 10k",
            "deepnets bench lenet5-mnist --preset 10k-dropout --seeds 3; --preset 10k",
        ),
        judge_dropout,
        tuple(
            Bench(experiment, preset, 3)
            for experiment in ("mlp-mnist", "lenet5-mnist")
            for preset in ("10k-dropout", "10k")
        ),
    ),
    Claim(
        6,
        "LSTMs remember over long delays where plain RNNs fail",
        "Hochreiter & Schmidhuber 1997",
        "a synthetic long-lag task at growing lags: the longest lag each solves",
        ("deepnets bench adding-lstm --preset lag-T --seeds 3 (adding-rnn; every lag T)",),
        judge_long_lags,
        tuple(
            Bench(f"adding-{cell}", f"lag-{lag}", 3)
            for cell in ("rnn", "lstm")
            for lag in ADDING_LAGS
        ),
    ),
    Claim(
        7,
        "neural language models beat N-gram counts by learning distributed representations",
        "Bengio et al. 2003; Mikolov et al. 2010",
        "the PTB rows: Kneser-Ney 5-gram, NPLM, RNN, LSTM (the word-neighbour test beside)",
        ("deepnets bench kn5-ptb / nplm-ptb / rnn-ptb / lstm-ptb --preset small",),
        judge_language_models,
        tuple(Bench(f"{model}-ptb", "small", 1) for model in ("kn5", "nplm", "rnn", "lstm")),
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
        ("python benchmarks/gpu_speedup.py",),
        judge_gpu,
        script="benchmarks/gpu_speedup.py",
    ),
)


def training_seconds(claim: Claim, rows: Rows) -> float | None:
    """The training time of every row a claim's benches made (seconds per seed times seeds),
    None when a row is missing or the claim has no benches."""
    total = 0.0
    for bench in claim.benches:
        label = bench.preset + (f"+{','.join(bench.sets)}" if bench.sets else "")
        row = rows.get((bench.experiment, label))
        if row is None or not row["wall_seconds"]:
            return None
        total += float(row["wall_seconds"]) * int(row["seeds"])
    return total if claim.benches else None


def _time_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f} min"


def findings(root: Path | None = None, rows: Rows | None = None) -> list[tuple[Claim, Finding]]:
    """Every claim judged from the results rows under `root` (or `rows` already read)."""
    root = root or project_root()
    rows = latest_rows(root) if rows is None else rows
    return [(claim, claim.judge(rows, root)) for claim in CLAIMS]


def claims_records(root: Path | None = None) -> list[dict]:
    """Every claim and its finding as JSON-able records (the web page's claims table)."""
    rows = latest_rows(root or project_root())
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
            "training_seconds": training_seconds(claim, rows),
        }
        for claim, found in findings(root, rows)
    ]


def claims_table(root: Path | None = None) -> str:
    """The Markdown table of every claim, its numbers and verdict."""
    rows = latest_rows(root or project_root())
    lines = [
        "| # | claim (reference) | experiment | measured | verdict | training time |",
        "|---|---|---|---|---|---|",
    ]
    for claim, found in findings(root, rows):
        lines.append(
            f"| {claim.number} | {claim.statement} ({claim.reference}) | {claim.experiment} "
            f"| {found.numbers or '-'} | **{found.verdict}**: {found.reason} "
            f"| {_time_text(training_seconds(claim, rows))} |"
        )
    return "\n".join(lines)


def claims_summary(root: Path | None = None) -> str:
    """The README's short table: each claim and its verdict with the reason."""
    lines = ["| # | the review's claim | verdict |", "|---|---|---|"]
    for claim, found in findings(root):
        lines.append(
            f"| {claim.number} | {claim.statement} | **{found.verdict}**: {found.reason} |"
        )
    return "\n".join(lines)
