"""seq2seq-multi30k and attention-multi30k: the model's shapes and parameter count, gradients,
additive attention by hand, beam search against exhaustive search, a tiny copy task learnt, the
Multi30k loader and tokenizer, resume, and the CLI (run, translate on bad input) on real data."""

import dataclasses
import gzip
import itertools
import json

import pytest
import torch
from conftest import assert_resume_is_bit_identical, needs_data, run_cli

from deepnets import DeepnetsError
from deepnets.data.multi30k import BOS, EOS, FILES, PAD, UNK, load_multi30k, train_tokenizer
from deepnets.experiments.translation import ATTENTION_MULTI30K, SEQ2SEQ_MULTI30K
from deepnets.models.seq2seq import AdditiveAttention, Seq2Seq, beam_search, reverse_padded
from deepnets.train import train_and_evaluate
from deepnets.train.translate import bleu_chrf, collate, length_batches

QUIET = dict(progress=False, log=lambda s: None)
needs_multi30k = needs_data("multi30k", [f.name for f in FILES.values()])


def lstm_params(inp: int, hidden: int, layers: int, directions: int = 1) -> int:
    total, size = 0, inp
    for _ in range(layers):
        total += directions * (4 * hidden * (size + hidden) + 8 * hidden)
        size = hidden * directions
    return total


# --- the model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attention", [False, True])
def test_shapes_and_exact_parameter_count(attention):
    v_src, v_tgt, emb, hid, layers, attn = 30, 40, 8, 12, 2, 5
    model = Seq2Seq(v_src, v_tgt, emb, hid, layers, attention, attn, 0.0)
    src = torch.randint(4, v_src, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    logits, weights = model(src, lengths, torch.randint(4, v_tgt, (3, 5)))
    assert logits.shape == (3, 5, v_tgt)
    decoder_common = v_tgt * emb + lstm_params(emb, hid, layers) + hid * emb + emb + v_tgt
    if attention:
        enc = v_src * emb + lstm_params(emb, hid // 2, layers, 2)
        extra = 2 * (hid * hid + hid)  # the bridges
        extra += hid * attn + (hid * attn + attn) + attn  # W, U (+ bias), v
        extra += 2 * hid * hid + hid  # W_c
        assert weights.shape == (3, 5, 7)
        assert torch.allclose(weights.sum(-1), torch.ones(3, 5))
        assert (weights[1, :, 4:] == 0).all() and (weights[2, :, 1:] == 0).all()  # padding
    else:
        enc, extra = v_src * emb + lstm_params(emb, hid, layers), 0
        assert weights is None
    assert sum(p.numel() for p in model.parameters()) == enc + decoder_common + extra


LINKS = [(False, False), (False, True), (True, False)]  # (attention, feed_thought)


@pytest.mark.parametrize("attention,feed_thought", LINKS)
def test_one_backward_gives_every_parameter_a_finite_gradient(attention, feed_thought):
    torch.manual_seed(0)
    model = Seq2Seq(20, 20, 8, 12, 2, attention, 6, 0.1, True, feed_thought)
    src = torch.randint(4, 20, (4, 6))
    logits, _ = model(src, torch.tensor([6, 5, 3, 2]), torch.randint(4, 20, (4, 5)))
    logits.logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0 or name.endswith("embed.weight"), name


def test_padding_does_not_change_the_encoding():
    torch.manual_seed(0)
    model = Seq2Seq(20, 20, 8, 12, 2, True, 6, 0.0, reverse_source=True).eval()
    src = torch.randint(4, 20, (1, 5))
    alone = model.encode(src, torch.tensor([5]))
    padded = model.encode(
        torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], 1), torch.tensor([5])
    )
    assert torch.allclose(alone[0], padded[0][:, :5], atol=1e-6)
    assert torch.allclose(alone[3][0], padded[3][0], atol=1e-6)


def test_the_thought_vector_enters_every_decoder_step_and_is_the_only_link():
    torch.manual_seed(0)
    model = Seq2Seq(20, 20, 8, 12, 2, False, 6, 0.0, feed_thought=True).eval()
    src, lengths = torch.randint(4, 20, (2, 6)), torch.tensor([6, 4])
    memory, mask, keys, (h, c) = model.encode(src, lengths)
    assert memory.shape == (2, 1, 12) and torch.equal(memory[:, 0], h[-1]) and keys is None
    tgt = torch.randint(4, 20, (2, 5))
    logits, weights = model(src, lengths, tgt)
    assert weights is None
    # the same state, but the context zeroed: every step's output changes
    zeroed, _, _ = model.decoder(tgt, (h, c), torch.zeros_like(memory), mask)
    assert ((zeroed - logits).abs().amax(-1) > 1e-6).all()
    with pytest.raises(ValueError, match="without attention"):
        Seq2Seq(20, 20, 8, 12, 2, True, 6, 0.0, feed_thought=True)


def test_reverse_padded_keeps_padding_in_place():
    src = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    assert reverse_padded(src, torch.tensor([3, 2])).tolist() == [[7, 6, 5, 0], [9, 8, 0, 0]]


def test_additive_attention_matches_a_hand_computed_example():
    attention = AdditiveAttention(query_size=1, memory_size=1, attn_size=1)
    with torch.no_grad():
        attention.query.weight.fill_(1.0)  # W = 1
        attention.key.weight.fill_(2.0)  # U = 2
        attention.key.bias.fill_(0.0)
        attention.v.weight.fill_(3.0)  # v = 3
    query = torch.tensor([[[0.5]]])  # (1, 1, 1)
    memory = torch.tensor([[[1.0], [-1.0], [7.0]]])  # (1, 3, 1); the last is padding
    mask = torch.tensor([[True, True, False]])
    context, weights = attention(query, memory, mask)
    # e_1 = 3 tanh(0.5 + 2) = 2.95898..., e_2 = 3 tanh(0.5 - 2) = -2.71484...
    e1, e2 = 3 * torch.tanh(torch.tensor(2.5)), 3 * torch.tanh(torch.tensor(-1.5))
    a1 = torch.exp(e1) / (torch.exp(e1) + torch.exp(e2))
    assert abs(float(a1) - 0.996582) < 1e-5
    assert torch.allclose(weights[0, 0], torch.stack([a1, 1 - a1, torch.tensor(0.0)]), atol=1e-6)
    assert torch.allclose(context[0, 0, 0], a1 * 1.0 + (1 - a1) * -1.0, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(1, 1))


def _sequence_log_prob(model, src, lengths, seq: list[int]) -> float:
    tgt_in = torch.tensor([[BOS] + seq[:-1]])
    logits, _ = model(src, lengths, tgt_in)
    log_probs = torch.log_softmax(logits[0], -1)
    for banned in (PAD, UNK, BOS):  # the search never emits these: renormalise without them
        log_probs[:, banned] = float("-inf")
    log_probs = torch.log_softmax(log_probs, -1)
    return float(sum(log_probs[t, tok] for t, tok in enumerate(seq)))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("attention,feed_thought", LINKS)
def test_beam_search_equals_exhaustive_search_on_a_tiny_vocabulary(alpha, attention, feed_thought):
    torch.manual_seed(3)
    model = Seq2Seq(7, 7, 6, 8, 1, attention, 4, 0.0, feed_thought=feed_thought).eval()
    src, lengths = torch.tensor([[4, 5, 6]]), torch.tensor([3])
    words, max_len = [4, 5, 6], 4  # EOS is 3
    candidates = [
        list(p) + [EOS] for n in range(max_len) for p in itertools.product(words, repeat=n)
    ]
    candidates += [list(p) for p in itertools.product(words, repeat=max_len)]  # cut at max_len
    with torch.no_grad():
        scored = [
            (_sequence_log_prob(model, src, lengths, c) / len(c) ** alpha, c) for c in candidates
        ]
    best = max(scored)[1]
    best = best[:-1] if best[-1] == EOS else best
    found, _ = beam_search(
        model, src, lengths, BOS, EOS, 3**max_len, max_len, alpha, (PAD, UNK, BOS)
    )
    assert found[0] == best
    # beam 1 is greedy: the most likely next token at each step
    greedy, tokens = [], [BOS]
    with torch.no_grad():
        for _ in range(max_len):
            logits, _ = model(src, lengths, torch.tensor([tokens]))
            step = logits[0, -1].clone()
            step[[PAD, UNK, BOS]] = float("-inf")
            tokens.append(int(step.argmax()))
            if tokens[-1] == EOS:
                break
    greedy = tokens[1:-1] if tokens[-1] == EOS else tokens[1:]
    assert (
        beam_search(model, src, lengths, BOS, EOS, 1, max_len, alpha, (PAD, UNK, BOS))[0][0]
        == greedy
    )


class _ChainModel:
    """A fake model whose next-token log-probabilities depend on the previous token only."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int):
        self.log_probs = torch.full((vocab, vocab), -50.0)
        for prev, nxt in table.items():
            for token, value in nxt.items():
                self.log_probs[prev, token] = value
        self.decoder = self  # what beam_search steps

    def eval(self):
        return self

    def encode(self, src, lengths):
        return None, None, None, (torch.zeros(1, src.shape[0], 1), torch.zeros(1, src.shape[0], 1))

    def step(self, tokens, state, memory=None, mask=None, keys=None):
        return self.log_probs[tokens], state, None


def test_beam_search_keeps_growing_a_better_hypothesis_after_beam_worse_ones_ended():
    # the likely path a1 a2 a3 <eos> (log p -0.04) against three early endings (-5, -6.01, -30.01)
    a1, a2, a3, b, c = 4, 5, 6, 7, 8
    table = {
        BOS: {a1: -0.01, EOS: -5.0, b: -6.0, c: -7.0},
        a1: {a2: -0.01, EOS: -30.0},
        a2: {a3: -0.01, EOS: -30.0},
        a3: {EOS: -0.01},
        b: {EOS: -0.01},
        c: {EOS: -0.01},
    }
    model = _ChainModel(table, vocab=9)
    src, lengths = torch.tensor([[4]]), torch.tensor([1])
    for alpha in (0.0, 1.0):
        found, _ = beam_search(model, src, lengths, BOS, EOS, 3, 10, alpha)
        assert found == [[a1, a2, a3]]


def test_a_tiny_attention_model_learns_to_reverse_sequences():
    torch.manual_seed(0)
    model = Seq2Seq(12, 12, 32, 64, 1, True, 32, 0.0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    gen = torch.Generator().manual_seed(0)

    def batch(n):
        seqs = [
            torch.randint(4, 12, (int(torch.randint(2, 6, (1,), generator=gen)),), generator=gen)
            for _ in range(n)
        ]
        src = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
        tgt = [s.flip(0).tolist() for s in seqs]
        return src, torch.tensor([len(s) for s in seqs]), tgt

    for _ in range(150):
        src, lengths, tgt = batch(64)
        tgt_in = torch.nn.utils.rnn.pad_sequence([torch.tensor([BOS] + t) for t in tgt], True)
        tgt_out = torch.nn.utils.rnn.pad_sequence([torch.tensor(t + [EOS]) for t in tgt], True)
        logits, _ = model(src, lengths, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, lengths, tgt = batch(100)
    found, maps = beam_search(model, src, lengths, BOS, EOS, 3, 10, 1.0, (PAD, UNK, BOS))
    exact = sum(f == t for f, t in zip(found, tgt)) / len(tgt)
    assert exact >= 0.8, exact
    assert all(torch.allclose(m.sum(-1), torch.ones(m.shape[0]), atol=1e-5) for m in maps)


def test_length_batches_cover_the_epoch_once_in_similar_lengths():
    lengths = [i % 17 for i in range(1000)]
    batches = length_batches(lengths, 10, torch.Generator().manual_seed(0))
    flat = [i for b in batches for i in b]
    assert len(batches) == 100 and len(set(flat)) == 1000
    assert max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) <= 2


def test_sacrebleu_scores_a_perfect_and_a_wrong_corpus():
    refs = ["A man rides a bike.", "Two dogs play in the snow."]
    bleu, chrf, signature, _ = bleu_chrf(refs, refs)
    assert bleu == pytest.approx(100.0) and chrf == pytest.approx(100.0)
    assert "tok:13a" in signature
    assert bleu_chrf(["x y z", "q"], refs)[0] < 5


def test_tokenizer_is_deterministic_and_round_trips(tmp_path):
    sentences = [f"Ein Mann {w} mit einem Hund im Park." for w in ("spielt", "läuft", "isst")] * 50
    a = train_tokenizer(sentences, 40, tmp_path / "a")
    b = train_tokenizer(sentences, 40, tmp_path / "b")
    assert a.path.read_bytes() == b.path.read_bytes()
    text = "Ein Mann läuft im Park."
    assert a.decode(a.encode(text)) == text and min(a.encode(text)) > EOS


def test_a_corrupt_file_is_an_error_naming_it(tmp_path, monkeypatch):
    folder = tmp_path / "multi30k" / "task1" / "raw"
    folder.mkdir(parents=True)
    for remote in FILES.values():
        (tmp_path / "multi30k" / remote.name).write_bytes(gzip.compress(b"bad\n"))
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path))
    with pytest.raises(DeepnetsError, match="is corrupt: its sha256"):
        load_multi30k()


# --- the real data ---------------------------------------------------------------------------


@needs_multi30k
def test_multi30k_splits_and_first_pair():
    data = load_multi30k()
    assert [len(data[s]["en"]) for s in ("train", "val", "test")] == [29000, 1014, 1000]
    assert data["train"]["en"][0] == "Two young, White males are outside near many bushes."
    assert data["train"]["de"][0].startswith("Zwei junge weiße Männer")


TINY = dict(train_subset=256, eval_subset=16, epochs=2, max_decode=12)


@needs_multi30k
def test_resume_is_bit_identical(tmp_path, monkeypatch):
    config = dataclasses.replace(ATTENTION_MULTI30K.preset("tiny"), **TINY)
    summary = assert_resume_is_bit_identical(ATTENTION_MULTI30K, config, tmp_path, monkeypatch)
    assert "tok:13a" in summary["sacrebleu"]["bleu"]


@needs_multi30k
def test_cli_run_then_translate_good_and_bad_input(tmp_path, capsys):
    from deepnets.cli import main

    run_dir = tmp_path / "run"
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    ran = run_cli(
        "run", "attention-multi30k", "--preset", "tiny", *sets, "--run-dir", str(run_dir),
        "--quiet",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "bleu" and 0 <= summary["value"] <= 100
    assert set(summary["metrics"]) == {"bleu", "chrf", "greedy_bleu", "loss"}
    picture = tmp_path / "attention.png"
    out = run_cli("translate", str(run_dir), "Ein Mann fährt Fahrrad.", "--attention", str(picture))
    assert out.returncode == 0 and out.stdout.strip() and picture.stat().st_size > 0, out.stderr
    out = run_cli("translate", str(run_dir), "")
    assert out.returncode == 2 and "the sentence is empty" in out.stderr
    assert "Traceback" not in out.stderr
    capsys.readouterr()
    long_sentence = " ".join(["Ein Hund läuft."] * 334)  # 1,002 words
    for sentence in ["?!...", "日本語 ☃ ЖЖ", long_sentence]:  # bad input, still a translation
        picture.unlink()
        assert (
            main(["translate", str(run_dir), sentence, "--beam", "2", "--attention", str(picture)])
            == 0
        )
        assert capsys.readouterr().out.strip() and picture.stat().st_size > 0
    assert main(["translate", str(run_dir), long_sentence, "--beam", "1"]) == 0
    assert "the first 200 were used" in capsys.readouterr().err
    for bad, message in [("   ", "the sentence is empty"), ("\u200b", "holds no text")]:
        assert main(["translate", str(run_dir), bad]) == 2
        assert message in capsys.readouterr().err
    assert main(["translate", str(run_dir), "Hallo", "--beam", "0"]) == 2
    assert "--beam must be at least 1" in capsys.readouterr().err


@needs_multi30k
def test_seq2seq_en_de_run_draws_fig4_phrases_and_has_no_attention_picture(tmp_path):
    from deepnets.cli import main
    from deepnets.figures.phrases import short_phrases, topic_of

    config = dataclasses.replace(
        SEQ2SEQ_MULTI30K.preset("tiny"), **{**TINY, "epochs": 1, "pair": "en-de"}
    )
    train_and_evaluate(SEQ2SEQ_MULTI30K, config, tmp_path / "run", **QUIET)
    out = tmp_path / "phrases.png"
    assert main(["figure", "fig4-phrases", str(tmp_path / "run"), "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and len(out.with_suffix(".txt").read_text().splitlines()) >= 3
    phrases = short_phrases(load_multi30k()["val"]["en"], 300)
    assert len(phrases) == 300 and all(len(p.split()) <= 10 for p in phrases)
    assert topic_of("A dog runs.") == "dogs" and topic_of("A man sits.") is None
    picture = str(tmp_path / "a.png")
    assert main(["translate", str(tmp_path / "run"), "A dog.", "--attention", picture]) == 2
    assert main(["translate", str(tmp_path / "missing"), "A dog."]) == 2


def test_collate_pads_and_frames_the_target():
    from deepnets.train.translate import Parallel

    data = Parallel([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]], ["", ""], ["", ""])
    src, lengths, tgt_in, tgt_out = collate(data, [0, 1])
    assert src.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    assert tgt_in.tolist() == [[BOS, 9, 10, 0], [BOS, 11, 12, 13]]
    assert tgt_out.tolist() == [[9, 10, EOS, 0], [11, 12, 13, EOS]]
