"""Interpolated modified Kneser-Ney: normalisation, discounts and probabilities checked by hand on
tiny corpora, the PTB loader, and the published KN5 perplexity on the real Penn Treebank."""

import random

import pytest
from conftest import needs_ptb

from deepnets import DeepnetsError
from deepnets.data.ptb import Vocabulary, read_sentences
from deepnets.models.kneser_ney import BOS, KneserNey

# Five sentences, counted by hand below (with "<s>" before each):
#   <s> b d b <eos> | <s> c b <eos> | <s> d <eos> | <s> d d b <eos> | <s> c d b <eos>
TINY = [s.split() for s in ["b d b <eos>", "c b <eos>", "d <eos>", "d d b <eos>", "c d b <eos>"]]


def _markov_corpus(sentences: int = 60, seed: int = 0) -> list[list[str]]:
    """Sentences from a small word chain: enough repeats for valid discounts at every order."""
    rng = random.Random(seed)
    follow = {
        BOS: ["the", "the", "a"],
        "the": ["cat", "dog", "mat"],
        "a": ["cat", "dog"],
        "cat": ["sat", "ran", "<eos>"],
        "dog": ["ran", "sat", "<eos>"],
        "sat": ["on", "<eos>"],
        "ran": ["on", "<eos>"],
        "on": ["the", "a"],
        "mat": ["<eos>", "sat"],
    }
    corpus = []
    for _ in range(sentences):
        word, sentence = BOS, []
        while word != "<eos>":
            word = rng.choice(follow[word])
            sentence.append(word)
        corpus.append(sentence)
    for word, repeats in (("owl", 1), ("fox", 2), ("emu", 3)):  # rare words: n1, n2, n3 > 0
        corpus += [["the", word, "<eos>"]] * repeats
    return corpus


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_probabilities_over_the_vocabulary_sum_to_one(order):
    model = KneserNey(order).fit(_markov_corpus(), vocab=["zebra"])  # "zebra": never seen
    assert len(model.vocab) == 13
    contexts = [
        (),
        (BOS,),  # seen at every order
        (BOS, "the", "cat"),
        ("the", "cat", "sat", "on"),
        ("on", "the", "mat", "<eos>"),  # "<eos>" never precedes a word: unseen history
        ("dog", "dog", "dog"),  # unseen at orders 3+
        ("zebra",),
    ]
    for context in contexts:
        total = sum(model.prob(word, context) for word in model.vocab)
        assert total == pytest.approx(1.0, abs=1e-12), context
    assert model.prob("zebra", (BOS,)) > 0


def test_discounts_match_chen_goodman_formulas_by_hand():
    model = KneserNey(2).fit(TINY)
    # Bigram raw counts: d b 3; b <eos> 4; <s> c 2; <s> d 2; and six bigrams seen once
    # (<s> b, b d, c b, d <eos>, d d, c d): n1..n4 = 6, 2, 1, 1.
    y = 6 / (6 + 2 * 2)  # 0.6
    assert model.discounts[2] == pytest.approx(
        (1 - 2 * y * 2 / 6, 2 - 3 * y * 1 / 2, 3 - 4 * y * 1 / 1)  # (0.6, 1.1, 0.6)
    )
    # Unigram continuation counts (distinct words before): b {<s>, d, c} 3; d {b, <s>, d, c} 4;
    # c {<s>} 1; <eos> {b, d} 2: n1..n4 = 1, 1, 1, 1.
    assert model.counts[1] == {("b",): 3, ("d",): 4, ("c",): 1, ("<eos>",): 2}
    y = 1 / 3
    assert model.discounts[1] == pytest.approx((1 / 3, 1.0, 5 / 3))
    assert model.discounts[1] == pytest.approx((1 - 2 * y, 2 - 3 * y, 3 - 4 * y))


def test_bigram_interpolated_kneser_ney_probabilities_by_hand():
    model = KneserNey(2).fit(TINY)
    # Unigram level: continuation counts b 3, d 4, c 1, <eos> 2 (total 10), D = 1/3, 1, 5/3,
    # gamma = (1/3 * 1 + 1 * 1 + 5/3 * 2) / 10 = 7/15, p_0 = 1/4.
    p1 = {"b": (3 - 5 / 3) / 10 + 7 / 60, "d": (4 - 5 / 3) / 10 + 7 / 60}
    p1 |= {"c": (1 - 1 / 3) / 10 + 7 / 60, "<eos>": (2 - 1) / 10 + 7 / 60}
    assert p1 == pytest.approx({"b": 0.25, "d": 0.35, "c": 11 / 60, "<eos>": 13 / 60})
    for word, p in p1.items():
        assert model.prob(word, ()) == pytest.approx(p, abs=1e-15)
        assert model.prob(word, ("<eos>",)) == pytest.approx(p, abs=1e-15)  # unseen history
    # History d: d b 3, d <eos> 1, d d 1 (total 5); gamma(d) = (0.6 * 2 + 0.6 * 1) / 5 = 0.36.
    assert model.prob("b", ("d",)) == pytest.approx((3 - 0.6) / 5 + 0.36 * 0.25)  # 0.57
    assert model.prob("c", ("d",)) == pytest.approx(0.36 * 11 / 60)  # 0.066
    # History <s>: <s> b 1, <s> c 2, <s> d 2 (total 5); gamma(<s>) = (0.6 + 1.1 * 2) / 5 = 0.56.
    assert model.prob("c", (BOS,)) == pytest.approx((2 - 1.1) / 5 + 0.56 * 11 / 60)
    # A sentence: log p(c | <s>) + log p(<eos> | c); c <eos> unseen, gamma(c) = 0.6*2/2 = 0.6
    expected = (2 - 1.1) / 5 + 0.56 * 11 / 60, 0.6 * 13 / 60
    assert model.perplexity([["c", "<eos>"]]) == pytest.approx((expected[0] * expected[1]) ** -0.5)


def test_lower_orders_use_continuation_counts_except_after_sentence_start():
    corpus = _markov_corpus()
    model = KneserNey(3).fit(corpus)
    raw, left = {}, {}
    for sentence in corpus:
        tokens = [BOS, *sentence]
        for i in range(1, len(tokens)):
            raw[tuple(tokens[i - 1 : i + 1])] = raw.get(tuple(tokens[i - 1 : i + 1]), 0) + 1
            if i >= 2:
                left.setdefault(tuple(tokens[i - 1 : i + 1]), set()).add(tokens[i - 2])
    for bigram, count in raw.items():
        expected = count if bigram[0] == BOS else len(left[bigram])
        assert model.counts[2][bigram] == expected, bigram
    assert model.counts[2][(BOS, "the")] == raw[(BOS, "the")] > len(left.get((BOS, "the"), ()))


def test_unknown_word_and_too_small_corpus_are_errors():
    model = KneserNey(2).fit(TINY)
    with pytest.raises(DeepnetsError, match="'zebra'"):
        model.prob("zebra", ("d",))
    with pytest.raises(DeepnetsError, match="order 3"):
        KneserNey(3).fit(TINY)  # trigram count-of-counts lack n3
    assert len(model.vocab) == 4


def test_vocabulary_round_trips():
    sentences = [["b", "a", "<eos>"], ["a", "c", "a", "<eos>"]]
    vocab = Vocabulary.from_sentences(sentences)
    assert vocab.words == ["a", "<eos>", "b", "c"]  # by frequency (3, 2, 1, 1), ties alphabetical
    assert len(vocab) == 4 and "<eos>" in vocab and "d" not in vocab
    for sentence in sentences:
        assert vocab.decode(vocab.encode(sentence)) == sentence
    assert vocab.encode(["c", "a"]) == [3, 0]
    assert Vocabulary.from_sentences([["x"]]).words == ["x", "<eos>"]  # "<eos>" always included
    with pytest.raises(DeepnetsError, match="'d'"):
        vocab.encode(["d"])


def test_a_file_that_is_not_text_is_an_error_naming_it(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "ptb.bad.txt"
    good.write_text(" a b \n\n c \n")
    bad.write_bytes(b"\xff\xfe\x00\x81 not text")
    assert read_sentences(good) == [["a", "b", "<eos>"], ["c", "<eos>"]]
    with pytest.raises(DeepnetsError, match="ptb.bad.txt"):
        read_sentences(bad)


@needs_ptb
def test_ptb_loads_with_canonical_token_counts_and_kn3_perplexity():
    from deepnets.data.ptb import load_ptb, load_ptb_ids

    vocab, ids = load_ptb_ids()
    assert len(vocab) == 10000 and vocab.words[0] == "the"
    assert {split: len(t) for split, t in ids.items()} == {
        "train": 929589,
        "valid": 73760,
        "test": 82430,
    }
    data = load_ptb()
    words = [word for sentence in data["valid"][:2] for word in sentence]
    assert vocab.decode(ids["valid"][: len(words)]) == words
    model = KneserNey(3).fit(data["train"])
    assert model.perplexity(data["valid"]) == pytest.approx(157.77, abs=0.5)  # measured: 157.77


@needs_ptb
@pytest.mark.slow
def test_kn5_reaches_the_published_test_perplexity():
    from deepnets.data.ptb import load_ptb

    data = load_ptb()
    model = KneserNey(5).fit(data["train"])
    assert model.perplexity(data["valid"]) == pytest.approx(148.0, abs=3)  # measured: 148.01
    assert model.perplexity(data["test"]) == pytest.approx(141.2, abs=3)  # Mikolov 2011: 141.2
