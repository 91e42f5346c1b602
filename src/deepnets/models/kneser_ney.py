"""Interpolated modified Kneser-Ney N-gram language model: the count-based baseline of the review.

Kneser & Ney, "Improved backing-off for M-gram language modeling", ICASSP 1995 (absolute
discounting with lower orders estimated from continuation counts), and Chen & Goodman, "An
empirical study of smoothing techniques for language modeling", TR-10-98, Harvard 1998 (and
Computer Speech and Language 13, 1999): "modified Kneser-Ney", with three discounts per order,
interpolated rather than backed off. Mikolov et al. (2011) report 141.2 test perplexity
for this model with N = 5 on the Penn Treebank, built with SRILM (`-kndiscount -interpolate`)
without count cut-offs; this implementation measures 141.19 (valid 148.01).

Sentence boundaries follow SRILM: every sentence is preceded by a context-only "<s>" (never
predicted) and ends with its end-of-sentence token (here PTB's "<eos>", SRILM's "</s>"), which is
predicted and counted. To treat a corpus as one continuous stream instead, pass it as a single
"sentence" holding all the tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from deepnets import DeepnetsError

BOS = "<s>"  # sentence-start context; never predicted


class KneserNey:
    """Interpolated modified Kneser-Ney smoothing of order N (Chen & Goodman 1998).

    For a word w after a history h of k-1 words, with h' the history minus its first word:

        p_k(w | h) = (c_k(h w) - D_k(c_k(h w))) / sum_v c_k(h v)  +  gamma_k(h) p_{k-1}(w | h')
        gamma_k(h) = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / sum_v c_k(h v)
        p_0(w)     = 1 / |V|                              (the uniform distribution)

    where N_r(h .) is the number of words v with c_k(h v) = r, and D_k(c) is 0, D_k1, D_k2 or
    D_k3+ for c = 0, 1, 2, >= 3 (the paper's max(c - D, 0) is not needed: D_kr <= r is checked).
    If the history h was never seen, p_k(w | h) = p_{k-1}(w | h').

    The counts c_k are the raw counts at the highest order N. At lower orders they are
    continuation counts (Kneser & Ney): c_k(g) = N1+(. g), the number of distinct words seen
    just before the k-gram g, except that a k-gram starting with "<s>" (which no word can
    precede) keeps its raw count, as in SRILM.

    The discounts of order k come from the count-of-counts n_r (the number of k-grams g with
    c_k(g) = r):

        Y = n1 / (n1 + 2 n2),  D_k1 = 1 - 2Y n2/n1,  D_k2 = 2 - 3Y n3/n2,  D_k3+ = 3 - 4Y n4/n3

    Deviations from the paper: the smoothing is the paper's; the sentence-boundary details,
    which the paper leaves open, follow SRILM (the tool behind Mikolov et al.'s 141.2): one
    "<s>" of context per sentence, never predicted and absent from |V|; n-grams that start with
    "<s>" keep raw counts at lower orders; lower-order count-of-counts are taken over the
    continuation counts; no count cut-offs. Where a corpus is too small for the discount
    formulas (n1, n2 or n3 is zero, or a discount falls outside [0, r]), `fit` stops with an
    error rather than inventing discounts.
    """

    def __init__(self, order: int = 5):
        if order < 1:
            raise DeepnetsError(f"a Kneser-Ney model needs order >= 1, got {order}")
        self.order = order
        self.vocab: set[str] = set()  # the words the model predicts; p_0 is uniform over them
        self.counts: list[dict[tuple[str, ...], int]] = []  # [k]: k-gram -> c_k (index 0 unused)
        self.discounts: list[tuple[float, float, float]] = []  # [k]: (D_k1, D_k2, D_k3+)
        self.contexts: list[dict[tuple[str, ...], tuple[int, float]]] = []
        # [k]: history h -> (sum_v c_k(h v), D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .))

    def fit(self, sentences: Iterable[Sequence[str]], vocab: Iterable[str] = ()) -> KneserNey:
        """Count the n-grams of `sentences` (each ends with its end-of-sentence token) and
        derive the discounts. `vocab` may add words that never occur in the sentences."""
        N = self.order
        raw: list[Counter] = [Counter() for _ in range(N + 1)]  # [k]: k-gram -> raw count
        self.vocab = set(vocab)
        for sentence in sentences:
            tokens = (BOS, *sentence)
            self.vocab.update(sentence)
            for k in range(1, N + 1):  # every k-gram that ends at a predicted token
                raw[k].update(tokens[i - k + 1 : i + 1] for i in range(max(1, k - 1), len(tokens)))
        if BOS in self.vocab:
            raise DeepnetsError(f"{BOS} is reserved for the sentence start; it cannot be a word")
        if not self.vocab:
            raise DeepnetsError("cannot fit a language model to an empty corpus")

        self.counts = [{}] * (N + 1)
        self.counts[N] = dict(raw[N])  # c_N = raw counts
        for k in range(N - 1, 0, -1):
            left = Counter(g[1:] for g in raw[k + 1])  # N1+(. g): distinct left extensions
            self.counts[k] = {g: c if g[0] == BOS else left[g] for g, c in raw[k].items()}
            raw[k + 1] = Counter()  # free memory as we go

        self.discounts = [(0.0, 0.0, 0.0)] + [self._discounts(k) for k in range(1, N + 1)]
        self.contexts = [{}]
        for k in range(1, N + 1):
            stats: dict[tuple[str, ...], list[float]] = {}
            d1, d2, d3 = self.discounts[k]
            for g, c in self.counts[k].items():
                entry = stats.setdefault(g[:-1], [0, 0.0])
                entry[0] += c  # sum_v c_k(h v)
                entry[1] += d1 if c == 1 else d2 if c == 2 else d3  # D_k1 N1 + D_k2 N2 + D_k3+ N3+
            self.contexts.append({h: (int(t), d) for h, (t, d) in stats.items()})
        return self

    def _discounts(self, k: int) -> tuple[float, float, float]:
        n = Counter(c for c in self.counts[k].values() if c <= 4)  # count-of-counts n1..n4
        n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
        if min(n1, n2, n3) == 0:
            raise DeepnetsError(
                f"order {k}: count-of-counts n1..n4 = {n1}, {n2}, {n3}, {n4}; the modified "
                "Kneser-Ney discounts need n1, n2, n3 > 0 (the corpus is too small)"
            )
        y = n1 / (n1 + 2 * n2)  # Y = n1 / (n1 + 2 n2)
        d1 = 1 - 2 * y * n2 / n1  # D1 = 1 - 2Y n2/n1
        d2 = 2 - 3 * y * n3 / n2  # D2 = 2 - 3Y n3/n2
        d3 = 3 - 4 * y * n4 / n3  # D3+ = 3 - 4Y n4/n3
        if not (0 <= d1 <= 1 and 0 <= d2 <= 2 and 0 <= d3 <= 3):
            raise DeepnetsError(
                f"order {k}: discounts {d1:.3f}, {d2:.3f}, {d3:.3f} from n1..n4 = "
                f"{n1}, {n2}, {n3}, {n4} fall outside [0, 1], [0, 2], [0, 3]"
            )
        return d1, d2, d3

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """p(word | context). The context's last N-1 words are used; a context that starts a
        sentence should begin with "<s>" (`log_prob_sentence` adds it)."""
        if word not in self.vocab:
            raise DeepnetsError(f"word {word!r} is not in the model's vocabulary")
        context = tuple(context[max(0, len(context) - (self.order - 1)) :])  # last N-1 words
        p = 1.0 / len(self.vocab)  # p_0(w) = 1 / |V|
        for k in range(1, len(context) + 2):
            history = context[len(context) - (k - 1) :]
            stats = self.contexts[k].get(history)
            if stats is None:  # unseen history: p_k = p_{k-1}, and so for all longer ones
                break
            total, gamma_num = stats
            c = self.counts[k].get((*history, word), 0)
            d1, d2, d3 = self.discounts[k]
            discount = 0.0 if c == 0 else d1 if c == 1 else d2 if c == 2 else d3
            p = (c - discount + gamma_num * p) / total  # (c - D(c)) / sum + gamma(h) p_{k-1}
        return p

    def log_prob_sentence(self, sentence: Sequence[str]) -> float:
        """Natural-log probability of every token of `sentence` (its end token included), each
        predicted from "<s>" and the tokens before it."""
        tokens = (BOS, *sentence)
        start = 1 - self.order  # context = the N-1 tokens before position i
        return sum(
            math.log(self.prob(tokens[i], tokens[max(0, start + i) : i]))
            for i in range(1, len(tokens))
        )

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(-mean log p) over every token of every sentence, end-of-sentence tokens included."""
        total_log_prob, tokens = 0.0, 0
        for sentence in sentences:
            total_log_prob += self.log_prob_sentence(sentence)
            tokens += len(sentence)
        if tokens == 0:
            raise DeepnetsError("perplexity needs at least one token")
        return math.exp(-total_log_prob / tokens)
