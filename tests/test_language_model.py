"""The language-model loop, the NPLM, the adaptive softmax option and sampling."""

import dataclasses
import json

import pytest
import torch
from conftest import needs_ptb, run_cli

from deepnets import DeepnetsError
from deepnets.data.tinyshakespeare import CharVocabulary
from deepnets.experiments import get_experiment
from deepnets.experiments.language import LSTM_PTB, NPLM_PTB, RNNLMConfig
from deepnets.models.nplm import NPLM
from deepnets.models.rnn_lm import RNNLM
from deepnets.train import checkpoint as ckpt
from deepnets.train import train_and_evaluate
from deepnets.train.language_model import evaluate_stream, generate

# --- the NPLM ---------------------------------------------------------------------------------


def test_nplm_shapes_and_parameter_count():
    model = NPLM(vocab_size=50, context=3, embedding_size=8, hidden_size=16, direct=True)
    logits, state = model(torch.randint(0, 50, (4, 7)))
    assert logits.shape == (4, 7, 50) and state.shape == (4, 3)
    # C: (V + 1) m; H, d: 3m h + h; U, b: h V + V; W: 3m V
    expected = 51 * 8 + 24 * 16 + 16 + 16 * 50 + 50 + 24 * 50
    assert sum(p.numel() for p in model.parameters()) == expected


def test_nplm_window_holds_exactly_the_previous_words():
    torch.manual_seed(0)
    model = NPLM(vocab_size=30, context=3, embedding_size=4, hidden_size=8).double()
    x = torch.randint(0, 30, (2, 9))
    whole, _ = model(x)
    # the prediction after x[:, t] depends only on x[:, t-2..t]: change x[:, 0] and only the
    # outputs at t = 0, 1, 2 move
    changed = x.clone()
    changed[:, 0] = (changed[:, 0] + 1) % 30
    moved = (model(changed)[0] - whole).abs().amax(dim=(0, 2))
    assert (moved[:3] > 0).all() and (moved[3:] == 0).all()


@pytest.mark.parametrize("kind", ["nplm", "lstm", "elman"])
def test_state_carried_across_batches_equals_one_pass(kind):
    torch.manual_seed(0)
    if kind == "nplm":
        model = NPLM(40, context=4, embedding_size=6, hidden_size=10).double()
    else:
        model = RNNLM(40, kind, n_layers=2, hidden_size=12, use_builtin=True).double()
    model.eval()
    x = torch.randint(0, 40, (3, 20))
    whole, _ = model(x)
    first, state = model(x[:, :7])
    second, _ = model(x[:, 7:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=1e-12)


def test_every_nplm_parameter_gets_a_finite_nonzero_gradient():
    torch.manual_seed(0)
    model = NPLM(30, context=2, embedding_size=4, hidden_size=8, direct=True, dropout=0.1)
    x = torch.cat([torch.full((2, 1), 0), torch.randint(0, 30, (2, 9))], dim=1)
    out, _ = model(x[:, :-1], torch.full((2, 2), model.start))  # reads the start row too
    model.loss(out, x[:, 1:]).backward()
    for name, p in model.named_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# --- the adaptive softmax option of the recurrent model ----------------------------------------


@pytest.mark.parametrize("tied", [False, True])
def test_adaptive_softmax_is_a_normalised_distribution_and_its_loss_matches(tied):
    torch.manual_seed(0)
    model = RNNLM(
        100, "lstm", 1, 16, softmax="adaptive", cutoffs=(20, 60), use_builtin=True, tie_weights=tied
    )
    model = model.double().eval()
    x = torch.randint(0, 100, (2, 5))
    y = torch.tensor([[0, 19, 20, 59, 60], [99, 5, 42, 70, 1]])  # every cluster and its edges
    out, _ = model(x)
    log_p = model.log_probs(out)  # (2, 5, 100)
    assert log_p.shape == (2, 5, 100)
    torch.testing.assert_close(log_p.logsumexp(-1), torch.zeros(2, 5, dtype=torch.float64))
    expected = -log_p.gather(-1, y.unsqueeze(-1)).mean()
    torch.testing.assert_close(model.loss(out, y), expected)


def test_tied_adaptive_softmax_scores_words_with_their_input_vectors():
    torch.manual_seed(0)
    model = RNNLM(30, "lstm", 1, 8, softmax="adaptive", cutoffs=(10,), tie_weights=True)
    model = model.double().train()
    assert model.adaptive.weight is model.embedding.weight
    names = {name for name, _ in model.named_parameters()}
    assert "adaptive.weight" not in names  # one parameter, listed once, under the embedding
    x, y = torch.randint(0, 30, (3, 6)), torch.randint(0, 30, (3, 6))
    out, _ = model(x)
    model.loss(out, y).backward()
    for name, p in model.named_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # A head word's probability by hand: the softmax over the head words and the cluster entry.
    h = out[0, 0]
    e, a = model.adaptive.weight, model.adaptive
    head = torch.cat([e[:10] @ h + a.bias[:10], a.cluster_weight @ h + a.cluster_bias])
    torch.testing.assert_close(model.log_probs(out)[0, 0, 3], head.log_softmax(0)[3])
    # and a tail word's: the cluster entry's, times the word's within the cluster
    tail = (e[10:] @ h + a.bias[10:]).log_softmax(0)
    torch.testing.assert_close(model.log_probs(out)[0, 0, 17], head.log_softmax(0)[10] + tail[7])


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_tied_weights_survive_a_checkpoint(tmp_path, softmax):
    model = RNNLM(
        50, "lstm", 1, 8, tie_weights=True, use_builtin=True, softmax=softmax, cutoffs=(9,)
    )
    ckpt.save_weights(tmp_path / "w.safetensors", model, {})
    again = RNNLM(
        50, "lstm", 1, 8, tie_weights=True, use_builtin=True, softmax=softmax, cutoffs=(9,)
    )
    again.load_state_dict(ckpt.load_weights(tmp_path / "w.safetensors"))
    assert again.vocab_output.weight is again.embedding.weight
    torch.testing.assert_close(again.embedding.weight, model.embedding.weight)


# --- the loop, on a stream whose next token is predictable ------------------------------------

PATTERN = "abcdefgh" * 3 + "hgfedcba" * 3  # a period of 48: the next character needs context


def _pattern_experiment(epochs: int = 3):
    vocab = CharVocabulary.from_text(PATTERN)
    stream = vocab.encode(PATTERN * 120)

    def load(config):
        cut = int(0.9 * stream.numel())
        return {"vocab": vocab, "train": stream[:cut], "valid": stream[cut:]}

    def build(config):
        return RNNLM(len(vocab), "lstm", 1, config.hidden_size, use_builtin=True)

    config = RNNLMConfig(
        hidden_size=32,
        epochs=epochs,
        batch_size=8,
        bptt=24,
        optimizer="adam",
        lr=1e-2,
        schedule="constant",
        clip_grad_norm=1.0,
        log_every=5,
    )
    experiment = dataclasses.replace(
        get_experiment("charlstm-shakespeare"), load_data=load, build_model=build
    )
    return experiment, config, vocab


def test_the_loop_learns_a_stream_that_needs_memory(tmp_path):
    experiment, config, vocab = _pattern_experiment()
    summary = train_and_evaluate(experiment, config, tmp_path / "run", log=lambda line: None)
    # a unigram model scores log 8 = 2.08 nats; knowing where in the period one is scores ~0
    assert summary["split"] == "valid" and summary["value"] < 0.3
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    epochs = [line for line in lines if "val_loss" in line]
    assert [line["epoch"] for line in epochs] == [1, 2, 3]
    assert epochs[-1]["val_perplexity"] < epochs[0]["val_perplexity"]


def test_resuming_after_an_epoch_repeats_the_uninterrupted_run(tmp_path):
    experiment, config, _ = _pattern_experiment(epochs=2)
    quiet = dict(log=lambda line: None)
    train_and_evaluate(experiment, config, tmp_path / "whole", **quiet)

    class Stop(Exception):
        pass

    def crash_after_first_epoch(line: str) -> None:
        if line.startswith("epoch   1/2"):  # logged once the epoch's checkpoint is written
            raise Stop

    with pytest.raises(Stop):
        train_and_evaluate(experiment, config, tmp_path / "parts", log=crash_after_first_epoch)
    assert not (tmp_path / "parts" / "summary.json").exists()
    train_and_evaluate(experiment, config, tmp_path / "parts", resume=True, **quiet)
    whole = ckpt.load_checkpoint(tmp_path / "whole")[0]
    parts = ckpt.load_checkpoint(tmp_path / "parts")[0]
    for key in whole:
        assert torch.equal(whole[key], parts[key]), key


def test_generate_follows_the_learned_pattern_and_checks_its_inputs(tmp_path):
    experiment, config, vocab = _pattern_experiment()
    train_and_evaluate(experiment, config, tmp_path / "run", log=lambda line: None)
    model = experiment.build_model(config)
    model.load_state_dict(ckpt.load_weights(tmp_path / "run" / ckpt.BEST))
    prompt = vocab.encode(PATTERN * 2)
    drawn = vocab.decode(generate(model, prompt, 48, 0.05, torch.Generator().manual_seed(0)))
    # the blocks of 8 run up or down as in training (how many of each come in a row needs a
    # memory of 24 characters, which this short training need not have learned)
    assert all(drawn[k : k + 8] in ("abcdefgh", "hgfedcba") for k in range(0, 48, 8)), drawn
    again = vocab.decode(generate(model, prompt, 48, 0.05, torch.Generator().manual_seed(0)))
    assert again == drawn
    with pytest.raises(DeepnetsError, match="temperature"):
        generate(model, prompt, 5, temperature=0.0)
    with pytest.raises(DeepnetsError, match="at least one"):
        generate(model, prompt[:0], 5)


def test_evaluate_stream_scores_every_token_it_can_lay_out():
    model = RNNLM(20, "elman", 1, 8, use_builtin=True)
    scores = evaluate_stream(model, torch.randint(0, 20, (103,)), 4, 10, torch.device("cpu"))
    assert scores["tokens"] == 4 * (103 // 4 - 1)
    assert scores["perplexity"] == pytest.approx(torch.tensor(scores["loss"]).exp().item())


def test_presets_build_models_of_the_stated_size():
    lstm = LSTM_PTB.build_model(LSTM_PTB.preset("paper-small"))
    # Zaremba's small net: 2 x 200 LSTM, 10,000 words, untied; PyTorch's LSTM has two biases
    expected = 10_000 * 200 + 2 * (4 * 200 * 400 + 2 * 4 * 200) + 200 * 10_000 + 10_000
    assert sum(p.numel() for p in lstm.parameters()) == expected
    nplm = NPLM_PTB.build_model(NPLM_PTB.preset("small"))
    output, _ = nplm(torch.zeros(1, 3, dtype=torch.long))
    assert nplm.log_probs(output).shape == (1, 3, 10_000)


# --- end to end on Penn Treebank, through the command line ------------------------------------


@needs_ptb
@pytest.mark.parametrize("experiment", ["nplm-ptb", "rnn-ptb", "lstm-ptb"])
def test_cli_trains_evaluates_and_samples_a_ptb_model(tmp_path, experiment):
    run_dir = tmp_path / "run"
    result = run_cli("run", experiment, "--preset", "tiny", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "perplexity" and summary["split"] == "test"
    assert summary["value"] < 2000  # 20,000 tokens of training; the uniform guess is 10,000
    evaluated = run_cli("eval", str(run_dir), "--split", "test")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"perplexity {summary['value']:.4f}" in evaluated.stdout
    sampled = run_cli("sample", str(run_dir), "--prompt", "The market", "--length", "12")
    assert sampled.returncode == 0, sampled.stderr
    words = sampled.stdout.split()
    assert words[:2] == ["the", "market"] and len(words) >= 3
    bad = run_cli("sample", str(run_dir), "--temperature", "-1")
    assert bad.returncode == 2 and "temperature" in bad.stderr and "Traceback" not in bad.stderr


# --- Fig. 4: word vectors and their nearest neighbours ----------------------------------------


def test_nearest_neighbours_rank_by_cosine_and_skip_the_word_itself():
    from deepnets.data.ptb import Vocabulary
    from deepnets.figures.fig4 import nearest_neighbours, neighbour_table

    vocab = Vocabulary(["monday", "tuesday", "stock", "friday"])
    vectors = torch.tensor([[1.0, 0.1], [2.0, 0.3], [0.0, 1.0], [0.9, -0.2]])  # (4, 2)
    near = nearest_neighbours(vectors, vocab, "monday", k=2)
    assert [w for w, _ in near] == ["tuesday", "friday"]
    assert near[0][1] == pytest.approx(float(torch.cosine_similarity(vectors[0], vectors[1], 0)))
    assert "monday: tuesday" in neighbour_table(vectors, vocab, probes=("monday", "absent"), k=1)
    with pytest.raises(DeepnetsError, match="not in the vocabulary"):
        nearest_neighbours(vectors, vocab, "absent")


@needs_ptb
def test_fig4_draws_a_map_and_a_neighbour_table_from_a_run(tmp_path):
    from deepnets.figures.fig4 import draw_fig4

    config = dataclasses.replace(NPLM_PTB.preset("tiny"), train_subset=5000)
    train_and_evaluate(NPLM_PTB, config, tmp_path / "run", log=lambda line: None)
    path = draw_fig4(str(tmp_path / "run"), str(tmp_path / "fig4.png"), n_frequent=150)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    table = path.with_suffix(".txt").read_text()
    assert table.splitlines()[0].strip().startswith("monday:")
    with pytest.raises(DeepnetsError, match="run folder"):
        draw_fig4(None)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


@needs_ptb
@pytest.mark.slow
def test_word_vectors_of_the_trained_nplm_put_weekdays_beside_weekdays(tmp_path):
    """Fig. 4's claim on the `nplm-ptb` small preset, trained here (about 25 minutes on two CPU
    cores), or on the run folder named by $DEEPNETS_NPLM_RUN: most of the five nearest
    neighbours (cosine) of a weekday are weekdays. One epoch of a smaller net is not enough
    (measured: no weekday among any weekday's five neighbours), hence a slow test."""
    import os
    from pathlib import Path

    from deepnets.figures.fig4 import nearest_neighbours, word_vectors
    from deepnets.train.language_model import load_trained

    run_dir = os.environ.get("DEEPNETS_NPLM_RUN")
    if run_dir is None:
        run_dir = tmp_path / "run"
        train_and_evaluate(NPLM_PTB, NPLM_PTB.preset("small"), run_dir, log=lambda line: None)
    experiment, _, corpus, model = load_trained(Path(run_dir))
    assert experiment.id == "nplm-ptb"
    vectors, vocab = word_vectors(model), corpus["vocab"]
    hits = {}
    for day in WEEKDAYS:
        hits[day] = sum(word in WEEKDAYS for word, _ in nearest_neighbours(vectors, vocab, day))
    assert sum(hits.values()) / len(hits) >= 3, hits
    assert min(hits.values()) >= 2, hits
