"""caption-digits and caption-flickr8k: the captioner's shapes and exact parameter count, attention
that sums to 1 over the grid, gradients, the doubly stochastic regulariser by hand, beam search
against exhaustive search, CIDEr-D against pycocoevalcap, BLEU over several references, the digit
scenes' invariants (test scenes only from MNIST test digits), the Flickr8k loader's messages, the
tiny preset through the CLI, and `caption` on bad input."""

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from conftest import assert_resume_is_bit_identical, needs_mnist, run_cli, shared_data

from deepnets import DeepnetsError, cli
from deepnets.data import caption_digits as cd
from deepnets.models.captioner import Captioner, attention_penalty
from deepnets.models.seq2seq import beam_search
from deepnets.train.caption import BOS, EOS, PAD, UNK, bleu_scores, cider_d, peak_in_box


def lstm_params(inp: int, hidden: int) -> int:
    return 4 * hidden * (inp + hidden) + 8 * hidden


def conv_params(channels, in_ch):
    total, prev = 0, in_ch
    for width in channels:
        total += prev * width * 9 + 2 * width  # conv (no bias) + batch norm
        prev = width
    return total


# --- the model ---------------------------------------------------------------------------------


# the three decoders: no attention, attention used at the output, attention fed to the LSTM
DECODERS = [(False, False), (True, False), (True, True)]


@pytest.mark.parametrize("attention,feed", DECODERS)
def test_shapes_exact_parameter_count_and_attention_sums_to_one(attention, feed):
    vocab, channels, emb, hid, attn = 20, (4, 6, 8), 5, 7, 3
    model = Captioner(vocab, 1, channels, emb, hid, attention, attn, 0.0, feed_context=feed)
    images, tgt = torch.randn(2, 1, 24, 32), torch.randint(4, vocab, (2, 6))
    logits, weights = model(images, tgt)
    assert logits.shape == (2, 6, vocab)
    assert model.grid_shape(24, 32) == (6, 8)
    d = channels[-1]
    decoder = vocab * emb + lstm_params(emb + (d if feed else 0), hid) + hid * emb + emb + vocab
    if attention:
        assert weights.shape == (2, 6, 48)  # one weight per grid cell
        assert torch.allclose(weights.sum(-1), torch.ones(2, 6), atol=1e-6)
        assert (weights >= 0).all()
        extra = hid * attn + d * attn + attn + attn + (hid + d) * hid + hid  # W U v W_c
        extra += 2 * (d * hid + hid)  # init_h, init_c
        extra += (hid + 1) if feed else 0  # the gate beta
    else:
        assert weights is None
        extra = 16 * d * emb + emb  # W_I over the 4x4-pooled map
    expected = conv_params(channels, 1) + decoder + extra
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("attention,feed", DECODERS)
def test_one_backward_gives_every_parameter_a_finite_gradient(attention, feed):
    torch.manual_seed(0)
    model = Captioner(15, 3, (4, 8), 6, 8, attention, 5, 0.1, feed_context=feed)
    tgt = torch.randint(4, 15, (3, 5))
    logits, weights = model(torch.randn(3, 3, 16, 16), tgt)
    loss = logits.logsumexp(-1).sum()
    if attention:
        loss = loss + attention_penalty(weights, tgt)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0 or name.endswith("embed.weight"), name


def test_doubly_stochastic_penalty_by_hand():
    weights = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]]])  # (1, 3, 3)
    target = torch.tensor([[5, 6, PAD]])  # the third step is padding
    # coverage = (0.5, 1.5, 0.0): (1-0.5)^2 + (1-1.5)^2 + (1-0)^2 = 1.5
    assert attention_penalty(weights, target).item() == pytest.approx(1.5)


def _log_prob(model, image, tokens):
    logits, _ = model(image, torch.tensor([[BOS] + tokens[:-1]]))
    logp = torch.log_softmax(logits[0], -1)
    return float(sum(logp[t, tok] for t, tok in enumerate(tokens)))


@pytest.mark.parametrize("attention,feed", DECODERS)
def test_beam_search_equals_exhaustive_search_on_a_tiny_vocabulary(attention, feed):
    # the search steps the decoder a word at a time; _log_prob runs it over whole captions
    torch.manual_seed(4)
    model = Captioner(7, 1, (3, 4), 5, 6, attention, 4, 0.0, feed_context=feed).eval()
    image = torch.randn(1, 1, 8, 8)
    lengths = torch.tensor([16])  # the 4x4 grid
    words, max_len, alpha = [4, 5, 6], 4, 0.7
    candidates = [
        list(p) + [EOS] for n in range(max_len) for p in itertools.product(words, repeat=n)
    ]
    candidates += [list(p) for p in itertools.product(words, repeat=max_len)]
    with torch.no_grad():
        best = max((_log_prob(model, image, c) / len(c) ** alpha, c) for c in candidates)[1]
    best = best[:-1] if best[-1] == EOS else best
    found, maps = beam_search(model, image, lengths, BOS, EOS, 3**max_len, max_len, alpha,
                              (PAD, UNK, BOS))  # fmt: skip
    assert found[0] == best
    if attention:
        assert torch.allclose(maps[0].sum(-1), torch.ones(len(maps[0])), atol=1e-5)


# --- scores ------------------------------------------------------------------------------------

HYPS = ["a dog runs on the grass", "two men play football", "a girl in a red dress"]
REFS = [
    ["a dog is running on grass", "the brown dog runs across the grass", "a dog outside"],
    ["two men are playing soccer", "men play football in a field", "two people play a game"],
    ["a little girl wearing a red dress", "a child in red", "a girl stands in a red dress"],
]


def test_cider_d_equals_pycocoevalcap():
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.cider.cider import Cider

    reference, _ = Cider().compute_score(
        {i: r for i, r in enumerate(REFS)}, {i: [h] for i, h in enumerate(HYPS)}
    )
    ours = cider_d(HYPS, REFS)
    assert ours == pytest.approx(float(reference), rel=1e-9)
    assert ours > 0.3


def test_cider_d_by_hand_properties():
    # every n-gram is in every image's references: idf 0, score 0 (as coco-caption gives)
    assert cider_d(["a b"], [["a b"]]) == 0.0
    perfect = cider_d([r[0] for r in REFS], REFS)
    assert perfect > cider_d(HYPS, REFS) > cider_d(["x y z"] * 3, REFS) == 0.0


def test_bleu_uses_every_reference():
    scores = bleu_scores([r[1] for r in REFS], REFS)
    assert scores["bleu4"] == pytest.approx(100.0)
    assert bleu_scores(HYPS, [[r[0]] for r in REFS])["bleu1"] < bleu_scores(HYPS, REFS)["bleu1"]
    # fewer references for one image: its first is repeated, the score is unchanged
    short = [REFS[0][:1], REFS[1], REFS[2]]
    assert bleu_scores(HYPS, short) == bleu_scores(HYPS, [[REFS[0][0]] * 3, REFS[1], REFS[2]])


def test_peak_in_box_counts_the_named_digits():
    ids = cd.DIGIT_IDS
    tokens = [4, ids[7], 5, 6, 4, ids[2]]  # "a 7 left of a 2"
    weights = torch.zeros(6, 4)  # a 2x2 grid over a 64x64 image
    weights[1, 0] = 1.0  # "7" looks top-left: centre (16, 16)
    weights[5, 3] = 1.0  # "2" looks bottom-right: centre (48, 48)
    boxes = torch.tensor([[5, 5, 25, 25], [40, 40, 60, 60]])
    assert peak_in_box(tokens, weights, (2, 2), (64, 64), boxes, torch.tensor([7, 2]), ids) == (
        2,
        2,
    )
    weights[5] = torch.tensor([1.0, 0, 0, 0])  # "2" looks at the 7
    assert peak_in_box(tokens, weights, (2, 2), (64, 64), boxes, torch.tensor([7, 2]), ids) == (
        1,
        2,
    )
    # a wrong digit named at a place is a miss
    assert peak_in_box(tokens, weights, (2, 2), (64, 64), boxes, torch.tensor([1, 2]), ids)[0] == 0


# --- the digit scenes --------------------------------------------------------------------------


def test_captions_name_digits_and_places():
    assert cd.caption_words([0, 1], [7, 2]) == "a 7 left of a 2".split()
    assert cd.caption_words([0, 2], [7, 2]) == "a 7 above a 2".split()
    assert cd.caption_words([0, 1, 3], [7, 2, 5]) == "a 7 left of a 2 above a 5".split()
    assert cd.caption_words([2, 3], [1, 1]) == "a 1 left of a 1".split()
    with pytest.raises(DeepnetsError, match="at least 64"):
        cd.make_scenes(np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int64), 1, 48, 0)


@needs_mnist
def test_scenes_are_deterministic_and_test_scenes_come_from_test_digits():
    scenes = cd.load_caption_digits(train=200, val=50, test=200, size=64, seed=0)
    again = cd.load_caption_digits(train=200, val=50, test=200, size=64, seed=0)
    assert torch.equal(scenes["test"].images, again["test"].images)
    mnist = cd.mnist_digits()
    for split, (digits, labels, offset) in mnist.items():
        s = scenes[split]
        real = s.sources >= 0
        n = real.sum(1)
        assert ((n >= 2) & (n <= 4)).all()
        assert (s.sources[real] >= offset).all() and (s.sources[real] < offset + len(digits)).all()
        for i in range(len(s)):
            words = s.caption(i).split()
            named = [int(w) for w in words if w.isdigit()]
            assert named == s.labels[i][s.labels[i] >= 0].tolist()
            for j in range(int(n[i])):
                patch = digits[int(s.sources[i, j]) - offset]
                assert labels[int(s.sources[i, j]) - offset] == s.labels[i, j]
                rows, cols = np.nonzero(patch > 0)
                top = int(s.boxes[i, j, 0]) - rows.min()
                left = int(s.boxes[i, j, 1]) - cols.min()
                region = s.images[i, 0, top : top + 28, left : left + 28].numpy()
                assert np.array_equal(region, patch)  # this very MNIST digit, from this split
    # test scenes hold no training digit: their sources index the test file, not the train one
    assert scenes["test"].sources.max() < 10000


# --- Flickr8k ----------------------------------------------------------------------------------


def test_flickr8k_without_files_says_what_to_put_where(tmp_path, monkeypatch):
    from deepnets.data import flickr8k

    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path))
    flickr8k.captions_and_splits.cache_clear()
    with pytest.raises(DeepnetsError, match="Flickr8k_text.zip") as err:
        flickr8k.load_flickr8k.__wrapped__(32)
    assert str(tmp_path / "flickr8k" / "Flickr8k_text") in str(err.value)
    root = shared_data("flickr8k", [f"Flickr8k_text/{n}" for n in flickr8k.TEXT_FILES])
    if root is None:
        return
    text = tmp_path / "flickr8k" / "Flickr8k_text"
    text.mkdir(parents=True)
    for name in flickr8k.TEXT_FILES:
        (text / name).write_bytes((root / "flickr8k" / "Flickr8k_text" / name).read_bytes())
    flickr8k.captions_and_splits.cache_clear()
    with pytest.raises(DeepnetsError, match="Flickr8k_Dataset_224.tar") as err:
        flickr8k.load_flickr8k.__wrapped__(32)
    assert "Flickr8k_Dataset.zip" in str(err.value)
    captions, splits = flickr8k.captions_and_splits()
    assert [len(splits[s]) for s in ("train", "val", "test")] == [6000, 1000, 1000]
    assert all(len(captions[n]) == 5 for s in splits.values() for n in s)
    (text / "Flickr_8k.testImages.txt").write_text("tampered\n")
    flickr8k.captions_and_splits.cache_clear()
    with pytest.raises(DeepnetsError, match="corrupt"):
        flickr8k.captions_and_splits()
    flickr8k.captions_and_splits.cache_clear()


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    if shared_data() is None:
        pytest.skip("set DEEPNETS_DATA to a folder holding mnist/")
    run_dir = tmp_path_factory.mktemp("cap") / "tiny"
    done = run_cli("run", "caption-digits", "--preset", "tiny", "--run-dir", str(run_dir),
                   "--quiet", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["metric"] == "exact" and 0 <= summary["value"] <= 1
    assert set(summary["metrics"]) >= {"bleu4", "cider", "exact", "peak_in_box", "loss"}
    assert "nrefs:1" in summary["scorers"]["bleu"]
    assert len((run_dir / "captions-test.txt").read_text().splitlines()) == 20
    return run_dir


def _pictures(folder):
    from PIL import Image

    paths = {}
    paths["one-pixel"] = folder / "one.png"
    Image.new("L", (1, 1)).save(paths["one-pixel"])
    paths["grey"] = folder / "grey.png"
    Image.fromarray((np.arange(60 * 50).reshape(50, 60) % 255).astype(np.uint8)).save(paths["grey"])
    paths["16-bit"] = folder / "deep.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 15).astype(np.uint16)).save(
        paths["16-bit"]
    )
    paths["rgba"] = folder / "rgba.png"
    Image.new("RGBA", (30, 20), (200, 10, 10, 100)).save(paths["rgba"])
    return paths


def test_caption_on_odd_images_gives_a_caption(tiny_run, tmp_path, capsys):
    for kind, path in _pictures(tmp_path).items():
        out = tmp_path / f"{kind}-attention.png"
        rc = cli.main(["caption", str(tiny_run), str(path), "--beam", "2", "--attention", str(out)])
        captured = capsys.readouterr()
        assert rc == 0, (kind, captured.err)
        words = captured.out.strip().split()
        assert 1 <= len(words) <= 12 and set(words) <= set(cd.WORDS), kind
        assert out.is_file() and out.stat().st_size > 1000, kind


def test_caption_on_bad_input_is_one_clear_message(tiny_run, tmp_path, capsys):
    from PIL import Image

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    huge = tmp_path / "huge.png"
    Image.new("L", (10000, 10000)).save(huge)
    cases = {
        text: "not an image",
        huge: "10000x10000 pixels; at most 4096",
        tmp_path / "missing.png": "cannot read",
    }
    for path, message in cases.items():
        rc = cli.main(["caption", str(tiny_run), str(path)])
        captured = capsys.readouterr()
        assert rc == 2 and message in captured.err, (path, captured.err)
        assert "Traceback" not in captured.err and captured.out == ""
    rc = cli.main(["caption", str(tiny_run), str(huge), "--beam", "0"])
    assert rc == 2 and "--beam must be at least 1" in capsys.readouterr().err


def test_eval_set_changes_only_how_a_trained_run_decodes(tiny_run, capsys):
    saved = (tiny_run / "config.json").read_text()

    def scores(*sets):
        assert cli.main(["eval", str(tiny_run), *sets]) == 0
        line = capsys.readouterr().out.strip()
        return dict(zip(line.split()[1::2], map(float, line.split()[2::2])))

    plain, greedy = scores(), scores("--set", "beam_size=1")
    assert scores("--set", "beam_size=2") == plain  # the tiny preset's own beam
    two_words = scores("--set", "beam_size=1", "--set", "max_decode=2")
    assert two_words["loss"] == greedy["loss"] and two_words["exact"] == 0  # captions cut short
    assert greedy["bleu1"] != two_words["bleu1"]
    assert scores("--set", "select=last") == plain  # one epoch: the last weights are the best
    for bad, message in [
        ("hidden_size=8", "only how the trained model decodes"),
        ("beam_size=0", "beam_size"),
        ("select=worst", "select"),
        ("beam_size", "key=value"),
    ]:
        assert cli.main(["eval", str(tiny_run), "--set", bad]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (bad, err)
    assert cli.main(["eval", str(tiny_run), "--rescore", "--set", "beam_size=1"]) == 2
    assert "leave out --split/--set" in capsys.readouterr().err
    assert (tiny_run / "config.json").read_text() == saved


def test_fig3_draws_a_map_per_word(tiny_run, tmp_path):
    out = tmp_path / "fig3.png"
    assert cli.main(["figure", "fig3", str(tiny_run), "--out", str(out)]) == 0
    from PIL import Image

    with Image.open(out) as image:
        assert image.size[0] > 1000  # the input and one map per word, side by side


@needs_mnist
@pytest.mark.parametrize("batch_by,feed", [("caption", False), ("image", False), ("image", True)])
def test_resume_is_bit_identical(tmp_path, monkeypatch, batch_by, feed):
    import dataclasses

    from deepnets.experiments.captioning import CAPTION_DIGITS

    config = dataclasses.replace(
        CAPTION_DIGITS.preset("tiny"), epochs=2, train_scenes=128, test_scenes=8, val_scenes=8,
        batch_by=batch_by, feed_context=feed,
    )  # fmt: skip
    assert_resume_is_bit_identical(CAPTION_DIGITS, config, tmp_path, monkeypatch)


@pytest.mark.parametrize("attention, blind", [(True, False), (False, False), (False, True)])
def test_a_batch_by_image_gives_the_loss_of_the_same_pairs_batched_by_caption(attention, blind):
    from deepnets.train.caption import CaptionSplit, collate, collate_images, pairs_by_image

    torch.manual_seed(0)
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    captions = [[4 + (i * 3 + k) % 6 for k in range(1 + i % 4)] for i in range(12)]
    owner = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 2]  # image 0 has 3 captions, image 4 has 2
    part = CaptionSplit(images, captions, owner, [[""]] * 5)
    pairs_of = pairs_by_image(part)
    assert pairs_of[0] == [0, 5, 10] and pairs_of[4] == [4, 9]
    grouped_images, g_in, g_out, rows = collate_images(part, [4, 0, 2], pairs_of)
    pairs = [4, 9, 0, 5, 10, 2, 7, 11]  # the captions of images 4, 0, 2 in that order
    assert rows.tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    flat_images, f_in, f_out = collate(part, pairs)
    assert torch.equal(grouped_images[rows], flat_images)
    assert torch.equal(g_in, f_in) and torch.equal(g_out, f_out)
    model = Captioner(10, 3, (4, 8), 6, 8, attention, 5, 0.0, blind).eval()
    x_grouped, x_flat = grouped_images.float() / 255, flat_images.float() / 255
    logits, weights = model(x_grouped, g_in, rows)
    want_logits, want_weights = model(x_flat, f_in)
    torch.testing.assert_close(logits, want_logits)
    if attention:
        torch.testing.assert_close(weights, want_weights)


def test_training_images_are_mirrored_and_shifted_only_when_asked():
    import dataclasses

    from deepnets.experiments.captioning import CAPTION_DIGITS, CAPTION_FLICKR8K
    from deepnets.train.caption import augment_images

    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    plain = CAPTION_FLICKR8K.preset("tiny")
    assert augment_images(images, plain, torch.Generator().manual_seed(0)) is images
    digits = CAPTION_DIGITS.preset("tiny")  # scenes name left and right: never mirrored
    assert augment_images(images, digits, torch.Generator().manual_seed(0)) is images
    mirrored = augment_images(
        images, dataclasses.replace(plain, flip=True), torch.Generator().manual_seed(0)
    )
    same = (mirrored == images.float()).flatten(1).all(1)
    flipped = (mirrored == images.flip(3).float()).flatten(1).all(1)
    assert (same | flipped).all() and 10 < flipped.sum() < 54  # about half, each whole
    shifted = augment_images(
        images, dataclasses.replace(plain, max_shift=3), torch.Generator().manual_seed(1)
    )
    assert shifted.shape == images.shape and shifted.dtype == torch.float32
    centre = shifted[:, :, 3:-3, 3:-3]  # every pixel here comes from the image, moved <= 3
    found = 0
    for i in range(len(images)):
        moves = [
            (dr, dc) for dr in range(-3, 4) for dc in range(-3, 4)
            if torch.equal(centre[i], images[i, :, 3 + dr : 13 + dr, 3 + dc : 13 + dc].float())
        ]  # fmt: skip
        assert moves, f"image {i} is not a shift of at most 3 pixels"
        found += moves != [(0, 0)]
    assert found > 40  # shifts do vary


# --- the baselines -----------------------------------------------------------------------------


def test_blind_captioner_gives_every_image_the_same_words():
    torch.manual_seed(0)
    model = Captioner(12, 3, (4, 8), 8, 16, attention=False, blind=True).eval()
    images = torch.randn(2, 3, 16, 16)
    images[1] = -images[1]
    logits, weights = model(images, torch.tensor([[BOS, 5, 6], [BOS, 5, 6]]))
    assert weights is None and torch.equal(logits[0], logits[1])
    with pytest.raises(ValueError, match="nothing to attend"):
        Captioner(12, 3, (4, 8), 8, 16, attention=True, blind=True)


def test_consensus_picks_the_caption_the_others_agree_with():
    from deepnets.train.caption import consensus

    pool = ["a cat sleeps on a sofa", "a dog runs on the grass", "a dog runs on grass",
            "the dog runs on the green grass"]  # fmt: skip
    assert consensus(pool) in pool[1:]


def test_nearest_captions_come_from_the_closest_training_image():
    from types import SimpleNamespace

    from deepnets.train.caption import CaptionSplit, nearest_captions

    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    refs = [["a red car", "a red car parked"], ["two dogs play", "two dogs play outside"],
            ["a man rides a bike", "a man on a bike"]]  # fmt: skip
    data = {
        "train": CaptionSplit(images, [[4]] * 3, [0, 1, 2], refs),
        "test": CaptionSplit(images[[2, 0]], [[4]] * 2, [0, 1], [refs[2], refs[0]]),
        "norm": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    }
    model = Captioner(12, 3, (4, 8), 8, 16, attention=False)
    config = SimpleNamespace(eval_batch_size=2)
    got = nearest_captions(model, data, "test", config, "cpu", k=1)
    assert got[0] in refs[2] and got[1] in refs[0]


def _fake_cifar(config):
    """Ten classes of random 32x32 images, each class a brighter channel: learnable, and
    CIFAR-10's shapes, without its files."""
    g = torch.Generator().manual_seed(1)
    splits = {}
    for split, n in (("train", 320), ("val", 80), ("test", 80)):
        y = torch.arange(n) % 10
        x = torch.randn(n, 3, 32, 32, generator=g)
        x[:, y % 3] += (y.float() / 5)[:, None, None, None]
        splits[split] = (x, y)
    return splits


@pytest.fixture
def fake_cifar(monkeypatch):
    from deepnets.experiments import cifar

    monkeypatch.setattr(cifar, "CONVNET_CIFAR10", dataclasses.replace(
        cifar.CONVNET_CIFAR10, load_data=_fake_cifar))  # fmt: skip


def _flickr_tiny(**changes):
    from deepnets.experiments.captioning import CAPTION_FLICKR8K

    tiny = CAPTION_FLICKR8K.preset("tiny")
    return dataclasses.replace(tiny, **{"encoder_init": "cifar10", "encoder_epochs": 2, **changes})


def test_a_cifar10_encoder_is_trained_once_and_shared(tmp_path, fake_cifar):
    from deepnets.train import checkpoint as ckpt
    from deepnets.train.encoder_pretrain import (
        INIT_FILE,
        EncoderClassifier,
        encoder_folder,
        pretrained_encoder,
    )

    config, lines = _flickr_tiny(), []
    for run in "ab":
        (tmp_path / run).mkdir()
    state = pretrained_encoder(config, tmp_path / "a", lines.append, progress=False)
    folder = encoder_folder(config, tmp_path / "a")
    assert folder.parent == tmp_path / "pretrained" and (folder / "summary.json").is_file()
    assert any("pre-training the encoder" in line for line in lines)
    classifier = EncoderClassifier(config.channels)
    classifier.load_state_dict(ckpt.load_checkpoint(folder)[0])  # the CIFAR-10 run's last weights
    trained = classifier.encoder.state_dict()
    assert set(state) == set(trained) and all(torch.equal(state[k], trained[k]) for k in state)
    copied = ckpt.load_weights(tmp_path / "a" / INIT_FILE)  # the run folder's own copy
    assert set(copied) == set(state) and all(torch.equal(state[k], copied[k]) for k in state)
    # a second run with the same encoder settings finds it; the seed or the lr do not matter
    when = (folder / "checkpoint.safetensors").stat().st_mtime_ns
    lines.clear()
    other = _flickr_tiny(seed=3, lr=0.5)
    assert encoder_folder(other, tmp_path / "b") == folder
    again = pretrained_encoder(other, tmp_path / "b", lines.append, progress=False)
    assert not any("pre-training the encoder" in line for line in lines)
    assert (folder / "checkpoint.safetensors").stat().st_mtime_ns == when
    assert all(torch.equal(state[k], again[k]) for k in state)
    # what the encoder depends on gives another one
    assert encoder_folder(_flickr_tiny(encoder_epochs=3), tmp_path / "a") != folder
    assert encoder_folder(_flickr_tiny(channels=(8, 16, 32)), tmp_path / "a") != folder


def test_the_captioner_starts_from_the_pretrained_encoder(tmp_path, fake_cifar):
    import copy

    from deepnets.experiments.captioning import CAPTION_FLICKR8K
    from deepnets.train.encoder_pretrain import pretrained_encoder

    config = _flickr_tiny()
    (tmp_path / "a").mkdir()
    task = copy.copy(CAPTION_FLICKR8K.task)
    task.encoder_state = pretrained_encoder(config, tmp_path / "a", print, progress=False)
    fresh = task.build(CAPTION_FLICKR8K, config, data={}).encoder.state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in task.encoder_state.items())
    scratch = CAPTION_FLICKR8K.task.build(CAPTION_FLICKR8K, config, data={}).encoder
    assert not torch.equal(scratch.state_dict()["net.0.weight"], fresh["net.0.weight"])
