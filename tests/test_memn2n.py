"""memn2n-babi: the bAbI loader, the memory network (shapes, parameter count, position encoding
against its formula, gradients), random noise and linear start, a short run on task 1, resume,
restarts, and `deepnets answer` end to end with bad input."""

import dataclasses
import json

import pytest
import torch
from conftest import needs_data, run_cli
from safetensors.torch import load_file

from deepnets import DeepnetsError
from deepnets.cli import main
from deepnets.config import ConfigError
from deepnets.data import babi
from deepnets.experiments.memory import MEMN2N_BABI, MemN2NConfig
from deepnets.models.memn2n import MemN2N, position_encoding
from deepnets.run import RunDir
from deepnets.train.memn2n import memory_inputs

needs_babi = needs_data(
    "babi",
    [
        "tasks_1-20_v1-2/en/qa1_single-supporting-fact_train.txt",
        "tasks_1-20_v1-2/en/qa1_single-supporting-fact_test.txt",
    ],
)
QUIET = dict(progress=False, log=lambda line: None)
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # these tiny ops only slow down on more threads


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread for this module's tests, restored after them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


STORY = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary?\tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel?\thallway\t4
1 Sandra travelled to the office.
2 Where is Sandra?\toffice\t1
"""


# --- the loader ------------------------------------------------------------------------------


def test_parse_stories_questions_answers_and_supporting_facts():
    stories = babi.parse(STORY, task=1)
    assert [len(s) for s in stories] == [2, 1]
    second = stories[0][1]
    assert second.story == (
        ("mary", "moved", "to", "the", "bathroom"),
        ("john", "went", "to", "the", "hallway"),
        ("daniel", "went", "back", "to", "the", "hallway"),
    )  # the question before it is not part of the story
    assert second.question == ("where", "is", "daniel") and second.answer == "hallway"
    assert second.support == (2,) and second.task == 1
    assert stories[1][0].story == (("sandra", "travelled", "to", "the", "office"),)


def test_parse_errors_name_the_line():
    with pytest.raises(DeepnetsError, match="line 2"):
        babi.parse("1 Mary went home.\n2 Where is Mary?\thome\t7\n", 1, "f.txt")
    with pytest.raises(DeepnetsError, match="line 1"):
        babi.parse("Mary went home.\n", 1, "f.txt")


def test_missing_10k_file_of_task_3_is_a_clear_error():
    with pytest.raises(DeepnetsError, match="task 3 has no 10k training file"):
        babi.load_questions((3,), "10k")


def test_corrupt_file_is_an_error_naming_it(tmp_path, monkeypatch):
    folder = tmp_path / "babi" / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text(STORY)
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path))
    monkeypatch.setenv("DEEPNETS_OFFLINE", "1")
    babi.load_questions.cache_clear()
    with pytest.raises(DeepnetsError, match="qa1_single-supporting-fact_train.txt is corrupt"):
        babi.load_questions((1,), "1k")
    babi.load_questions.cache_clear()


@needs_babi
def test_real_task_1_splits_and_vocabulary():
    data = babi.load_babi((1,), "1k", 50)
    assert (len(data["train"]), len(data["val"]), len(data["test"])) == (900, 100, 1000)
    assert len(data["vocab"]) == 20  # the null word and 19 words
    assert data["train"].stories.shape == (900, 50, 6) and data["train"].counts.max() <= 50


# --- the model -------------------------------------------------------------------------------


def test_shapes_and_exact_parameter_count():
    model = MemN2N(vocab_size=20, dim=10, hops=3, memory_size=50)
    assert sum(p.numel() for p in model.parameters()) == 4 * 20 * 10 + 4 * 50 * 10
    stories = torch.randint(1, 20, (4, 7, 6))
    times, mask = memory_inputs(torch.tensor([7, 3, 1, 5]), 50, rows=7)
    logits, attention = model.attend(stories, times, mask, torch.randint(1, 20, (4, 5)))
    assert logits.shape == (4, 20) and attention.shape == (4, 3, 7)
    sums = attention.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums))
    assert attention[1, :, 3:].abs().max() == 0  # no attention past the story


def test_position_encoding_sums_match_the_papers_formula():
    torch.manual_seed(0)
    model = MemN2N(vocab_size=15, dim=8, hops=2, memory_size=10).double()
    words = torch.tensor([[3, 4, 5, 0, 0], [7, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
    fast = model._sentences(words, range(3))  # (3 hops, 3 sentences, d)
    for k in range(3):
        l = position_encoding(words, 8).double()  # (3, L, d)
        slow = (l * model.embed[k].weight[words]).sum(1)
        assert torch.allclose(fast[k], slow)
    # hand-computed l_kj for a 2-word sentence, d = 2: (1 - j/2) - (k/2)(1 - j)
    l = position_encoding(torch.tensor([[9, 9]]), 2)[0]
    assert torch.allclose(
        l, torch.tensor([[0.5, 0.5], [0.0, 0.0]]) + torch.tensor([[0, 0], [0.5, 1.0]])
    )


def test_authors_position_encoding_is_twice_the_papers_at_the_longest_sentence():
    torch.manual_seed(0)
    span, d = 6, 8
    model = MemN2N(vocab_size=15, dim=d, hops=2, memory_size=10, spans=(span, 4)).double()
    words = torch.tensor([[3, 4, 5, 0, 0, 0], [7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    l = position_encoding(words, d, span).double()  # (3, L, d)
    fast = model._sentences(words, range(2), span)
    for k in range(2):
        assert torch.allclose(fast[k], (l * model.embed[k].weight[words]).sum(1), atol=1e-6)
    # a full sentence (J = its length = span): exactly twice the paper's weights
    assert torch.allclose(l[2], 2 * position_encoding(words[2:], d)[0].double())
    # and within 3/d + 3/J of the released code's 1 + 4(k - (d+1)/2)(j - (J+1)/2) / (dJ)
    j = torch.arange(1, span + 1, dtype=torch.float64).view(-1, 1)
    k = torch.arange(1, d + 1, dtype=torch.float64).view(1, -1)
    released = 1 + 4 * (k - (d + 1) / 2) * (j - (span + 1) / 2) / (d * span)
    assert (l[2] - released).abs().max() <= 3 / d + 3 / span


def test_one_backward_gives_every_parameter_a_finite_gradient():
    model = MemN2N(vocab_size=20, dim=10, hops=3, memory_size=50)
    stories = torch.randint(1, 20, (4, 7, 6))
    times, mask = memory_inputs(torch.tensor([7, 3, 1, 5]), 50, torch.rand(4, 7) < 0.5, rows=7)
    loss = torch.nn.functional.cross_entropy(
        model(stories, times, mask, torch.randint(1, 20, (4, 5))), torch.randint(1, 20, (4,))
    )
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(e.weight.grad[0].abs().max() == 0 for e in model.embed)  # the null word stays 0


def test_random_noise_shifts_time_indices_by_hand():
    # 3 sentences (oldest first), one empty memory after sentence 0: times 3, 1, 0 and the
    # empty at 2; rows 3 and the empties of unmarked sentences are masked
    noise = torch.tensor([[True, False, False, False]])
    times, mask = memory_inputs(torch.tensor([3]), 50, noise, rows=4)
    assert mask.tolist() == [[True, True, True, False, True, False, False, False]]
    assert times[0, mask[0]].tolist() == [3, 1, 0, 2]
    # a memory of 3: the oldest sentence (time 3) falls out
    times, mask = memory_inputs(torch.tensor([3]), 3, noise, rows=4)
    assert times[0, mask[0]].tolist() == [1, 0, 2]
    times, mask = memory_inputs(torch.tensor([2, 1]), 50)
    assert times[:, :2].tolist() == [[1, 0], [0, -1]] and mask[:, :2].tolist() == [[1, 1], [1, 0]]


def test_linear_start_removes_the_softmax_until_validation_loss_stops_falling():
    model = MemN2N(vocab_size=20, dim=10, hops=2, memory_size=50)
    model.linear.fill_(True)
    stories = torch.randint(1, 20, (2, 4, 3))
    times, mask = memory_inputs(torch.tensor([4, 2]), 50, rows=4)
    _, attention = model.attend(stories, times, mask, torch.randint(1, 20, (2, 3)))
    assert not torch.allclose(attention.sum(-1), torch.ones(2, 2))  # raw scores, no softmax
    assert attention[1, :, 2:].abs().max() == 0
    task = MEMN2N_BABI.task
    config = MemN2NConfig(tasks=(1,), ls_epochs=0, eval_batch_size=2)
    data = {"val": babi.encode(babi.parse(STORY, 1)[0], _vocab(), 50, 6, 3)}
    model = MemN2N(len(_vocab()), 10, 2, 50)
    model.linear.fill_(True)
    task.evaluate(model, data, "val", config, "cpu")
    assert not model.reinsert and torch.isfinite(model.ls_best)
    task.evaluate(model, data, "val", config, "cpu")  # the same loss: not below the best
    assert model.reinsert and model.linear  # reinserted at the next training step
    task.evaluate(model, data, "val", config, "cpu", final=True)
    assert model.linear


def test_empty_attention_lets_unused_slots_share_the_softmax():
    torch.manual_seed(0)
    model = MemN2N(vocab_size=20, dim=10, hops=2, memory_size=6, empty_attention=True)
    stories = torch.randint(1, 20, (2, 4, 3))
    times, mask = memory_inputs(torch.tensor([4, 2]), 6, rows=4)
    queries = torch.randint(1, 20, (2, 3))
    _, p = model.attend(stories, times, mask, queries)
    u = model._sentences(queries, range(1))[0]
    m = model._sentences(stories, range(1))[0] + model.time[0, times.clamp(0, 5)]
    scores = torch.einsum("bsd,bd->bs", m, u).masked_fill(~mask, -torch.inf)
    unused = torch.tensor([2.0, 4.0])  # 6 slots, 4 and 2 of them holding sentences
    expected = scores.exp() / (scores.exp().sum(-1) + unused).unsqueeze(-1)
    assert torch.allclose(p[:, 0], expected, atol=1e-6)
    assert p[1, :, 2:].abs().max() == 0 and (p.sum(-1) < 1).all()
    model.empty_attention = False  # the default: a softmax over the sentences alone
    _, p = model.attend(stories, times, mask, queries)
    assert torch.allclose(p.sum(-1), torch.ones(2, 2))


def test_linear_start_lr_then_the_schedule_starts_over():
    task = MEMN2N_BABI.task
    # ls_epochs 0: ls_lr until the validation asks to reinsert, then lr from that step
    config = MemN2NConfig(ls_epochs=0, ls_lr=0.16, lr=0.32, epochs=60, step_every=15)
    model = MemN2N(vocab_size=20, dim=10, hops=2, memory_size=50)
    model.linear.fill_(True)
    assert task.lr_at(model, 250, 6000, 100, config) == 0.16 and model.linear
    model.reinsert.fill_(True)
    assert task.lr_at(model, 300, 6000, 100, config) == 0.32  # "training recommenced"
    assert not model.linear and not model.reinsert and int(model.ls_end) == 300
    assert task.lr_at(model, 1799, 6000, 100, config) == 0.32
    assert task.lr_at(model, 1800, 6000, 100, config) == 0.16  # 15 epochs after LS ended
    # ls_epochs 30: LS for exactly 30 epochs whatever validation says (the authors' code)
    config = MemN2NConfig(ls_epochs=30, ls_lr=0.16, lr=0.32, epochs=90, step_every=15)
    model = MemN2N(vocab_size=20, dim=10, hops=2, memory_size=50)
    model.linear.fill_(True)
    assert task.lr_at(model, 2999, 9000, 100, config) == 0.16 and model.linear
    assert task.lr_at(model, 3000, 9000, 100, config) == 0.32 and not model.linear
    assert task.lr_at(model, 4500, 9000, 100, config) == 0.16
    assert task.lr_at(model, 8999, 9000, 100, config) == 0.32 * 0.5**3
    with pytest.raises(ConfigError, match="ls_epochs < epochs"):
        MemN2NConfig(ls_epochs=30, epochs=30)
    # weights saved before `ls_end` existed still load
    state = {k: v for k, v in model.state_dict().items() if k != "ls_end"}
    model.load_state_dict(state)
    assert int(model.ls_end) == 0


def _vocab():
    return babi.Vocabulary.of([q for s in babi.parse(STORY, 1) for q in s])


# --- training --------------------------------------------------------------------------------

TINY = MEMN2N_BABI.presets["tiny"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = RunDir.create(tmp_path_factory.mktemp("memn2n") / "run")
    summary = MEMN2N_BABI.task.train(MEMN2N_BABI, TINY, run, "tiny", **QUIET)
    return run, summary


@needs_babi
def test_short_run_on_task_1_learns_it(trained):
    run, summary = trained
    assert summary["value"] < 0.10  # test error on task 1 (12 epochs, 3 s)
    assert set(summary["metrics"]) == {"mean_error", "failed_tasks", "loss", "error_qa1"}
    assert not load_file(str(run / "checkpoint.safetensors"))["model.linear"]  # LS ended


@needs_babi
def test_resume_is_bit_identical(tmp_path, monkeypatch):
    config = dataclasses.replace(TINY, epochs=6, log_every=5)
    straight = RunDir.create(tmp_path / "straight")
    MEMN2N_BABI.task.train(MEMN2N_BABI, config, straight, "tiny", **QUIET)
    killed = RunDir.create(tmp_path / "killed")
    save = RunDir.save_checkpoint

    def save_then_die(self, model, optimizer, state):
        save(self, model, optimizer, state)
        if state["epoch"] == 4:  # linear start ended at this validation: reinsert pending
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        MEMN2N_BABI.task.train(MEMN2N_BABI, config, killed, "tiny", **QUIET)
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    MEMN2N_BABI.task.train(MEMN2N_BABI, config, killed, "tiny", resume=True, **QUIET)
    a = load_file(str(straight / "checkpoint.safetensors"))
    b = load_file(str(killed / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = straight.read_summary(), killed.read_summary()
    assert sa["metrics"] == sb["metrics"] and sa["best_epoch"] == sb["best_epoch"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(straight.read_metrics()) == strip(killed.read_metrics())


@needs_babi
def test_restarts_keep_the_best_on_validation(tmp_path):
    config = dataclasses.replace(TINY, epochs=2, restarts=2)
    run = RunDir.create(tmp_path / "run")
    summary = MEMN2N_BABI.task.train(MEMN2N_BABI, config, run, "tiny", **QUIET)
    vals = summary["restart_val_errors"]
    assert len(vals) == 2 and summary["restart"] == min(range(2), key=lambda r: (vals[r], r))
    kept = RunDir(run.path / f"restart-{summary['restart']}").read_summary()
    assert summary["metrics"] == kept["metrics"]
    assert (run / "best.safetensors").read_bytes() == (
        run.path / f"restart-{summary['restart']}" / "best.safetensors"
    ).read_bytes()
    assert RunDir.open(run.path).read_config()[1].restarts == 2


# --- deepnets answer ---------------------------------------------------------------------------

STORY_TEXT = "Mary moved to the bathroom. John went to the hallway. Mary went to the kitchen."


@needs_babi
def test_cli_runs_then_answers_with_attention(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("run", "memn2n-babi", "--preset", "tiny", "--quiet", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_cli(
        "answer",
        str(run_dir),
        "--story",
        STORY_TEXT,
        "--question",
        "Where is Mary?",
        "--json",
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["answer"] == "kitchen" and len(out["attention"]) == 3
    # empty_attention: the memory's unused slots take the rest of each hop's softmax
    assert all(len(hop) == 3 and 0 < sum(hop) <= 1 + 1e-5 for hop in out["attention"])


def _answer_error(run, capsys, *args) -> str:
    code = main(["answer", str(run.path), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    return err


@needs_babi
def test_answer_prints_the_table(trained, capsys):
    run, _ = trained
    assert (
        main(["answer", str(run.path), "--story", STORY_TEXT, "--question", "Where is Mary?"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("answer: kitchen") and "hop 3" in out


@needs_babi
def test_answer_unknown_words(trained, capsys):
    err = _answer_error(
        trained[0], capsys, "--story", "Mary flew to the moon.", "--question", "Where is Mary?"
    )
    assert "unknown words flew, moon" in err


@needs_babi
def test_answer_empty_story(trained, capsys):
    err = _answer_error(trained[0], capsys, "--story", " . ", "--question", "Where is Mary?")
    assert "the story is empty" in err


@needs_babi
def test_answer_story_longer_than_the_memory(trained, capsys, tmp_path):
    story = tmp_path / "story.txt"
    story.write_text("Mary went to the kitchen.\n" * 51)
    err = _answer_error(
        trained[0], capsys, "--story-file", str(story), "--question", "Where is Mary?"
    )
    assert "51 sentences but the memory holds 50" in err


@needs_babi
def test_answer_sentence_longer_than_any_the_model_read(trained, capsys):
    long = "Mary went to the kitchen " + "to the kitchen " * 10 + "."
    err = _answer_error(trained[0], capsys, "--story", long, "--question", "Where is Mary?")
    assert "sentences of at most" in err


@needs_babi
def test_answer_question_without_question_mark(trained, capsys):
    err = _answer_error(trained[0], capsys, "--story", STORY_TEXT, "--question", "Where is Mary")
    assert "must end with a question mark" in err


@needs_babi
def test_hop_attention_figure(trained, tmp_path):
    from deepnets.figures import FIGURES

    path = FIGURES["fig-memn2n-hops"](run_dir=str(trained[0].path), out=str(tmp_path / "f.png"))
    assert path.stat().st_size > 10_000
    with pytest.raises(DeepnetsError, match="needs a trained memory network"):
        FIGURES["fig-memn2n-hops"]()
