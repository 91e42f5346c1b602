"""The command line end to end, through a subprocess; bad input never ends in a traceback."""

import gzip
import json
import shutil

import pytest
from conftest import MNIST_FILES, needs_mnist, needs_ptb, run_cli, shared_data

from deepnets.cli import main
from deepnets.data import mnist, store
from deepnets.experiments.mnist import CONVNET_DIGITS


def _no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2
    return result.stderr


def test_unknown_experiment_suggests_close_names():
    err = _no_traceback(run_cli("run", "lenet-mnist"))
    assert "unknown experiment 'lenet-mnist'" in err and "lenet5-mnist" in err


def test_bad_override_value_and_unknown_key():
    err = _no_traceback(run_cli("run", "convnet-digits", "--set", "lr=abc"))
    assert "bad value for lr" in err
    err = _no_traceback(run_cli("run", "convnet-digits", "--set", "learning_rate=0.1"))
    assert "unknown config key 'learning_rate'" in err


def test_unknown_preset():
    err = _no_traceback(run_cli("run", "convnet-digits", "--preset", "huge"))
    assert "no preset 'huge'" in err and "tiny" in err


def test_resume_folder_that_is_not_a_run(tmp_path):
    err = _no_traceback(run_cli("run", "--resume", str(tmp_path)))
    assert "not a run folder" in err
    (tmp_path / "config.json").write_text(
        json.dumps({"experiment": "convnet-digits", "config": {}})
    )
    err = _no_traceback(run_cli("run", "--resume", str(tmp_path)))
    assert "config.json cannot be read" in err and "missing" in err and "epochs" in err
    from deepnets.config import config_to_dict
    from deepnets.experiments import get_experiment

    config = config_to_dict(get_experiment("convnet-digits").preset("tiny"))
    (tmp_path / "config.json").write_text(
        json.dumps({"experiment": "convnet-digits", "config": config})
    )
    err = _no_traceback(run_cli("run", "--resume", str(tmp_path)))
    assert "checkpoint.safetensors" in err


def test_missing_mnist_offline_names_files_and_folder(tmp_path):
    err = _no_traceback(
        run_cli(
            "--offline",
            "run",
            "lenet5-mnist",
            "--preset",
            "tiny",
            env={"DEEPNETS_DATA": str(tmp_path)},
        )
    )
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path / "mnist") in err


@needs_mnist
def test_corrupt_mnist_file_is_named(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in MNIST_FILES:
        shutil.copy(shared_data() / "mnist" / name, folder / name)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-5]))
    err = _no_traceback(
        run_cli("run", "lenet5-mnist", "--preset", "tiny", env={"DEEPNETS_DATA": str(tmp_path)})
    )
    assert "t10k-labels-idx1-ubyte.gz is corrupt" in err and "sha256" in err


def test_no_network_names_the_files(tmp_path, monkeypatch, capsys):
    """With no network (here: a closed local port), the error says what to put where."""
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path))
    store.set_offline(False)
    closed = {
        k: store.RemoteFile(r.name, r.sha256, ("http://127.0.0.1:9/" + r.name,))
        for k, r in mnist.FILES.items()
    }
    monkeypatch.setattr(mnist, "FILES", closed)
    try:
        code = main(["run", "lenet5-mnist", "--preset", "tiny", "--run-dir", str(tmp_path / "run")])
    finally:
        store.set_offline(None)
    err = capsys.readouterr().err
    assert code == 2 and "could not download" in err and str(tmp_path / "mnist") in err


def test_run_eval_list_and_bench_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "run",
        "convnet-digits",
        "--preset",
        "tiny",
        "--run-dir",
        str(run_dir),
        "--json",
        "--quiet",
        "--set",
        "epochs=5",
        "--set",
        "lr=0.1",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["experiment"] == "convnet-digits" and summary["value"] > 0.8
    again = run_cli("run", "convnet-digits", "--preset", "tiny", "--run-dir", str(run_dir))
    assert "already holds a run" in _no_traceback(again)
    evaluated = run_cli("eval", str(run_dir))
    assert evaluated.returncode == 0
    assert f"accuracy {summary['value']:.4f}" in evaluated.stdout

    root = tmp_path / "root"
    (root / "results").mkdir(parents=True)
    env = {"DEEPNETS_RESULTS": str(root)}
    bench = run_cli(
        "bench",
        "convnet-digits",
        "--preset",
        "tiny",
        "--seeds",
        "2",
        "--quiet",
        env=env,
        cwd=tmp_path,
    )
    assert bench.returncode == 0, bench.stderr
    rows = (root / "results" / "convnet-digits.csv").read_text().splitlines()
    assert rows[0].startswith("experiment,preset,metric,mean,std,seeds,published,epochs")
    assert rows[1].startswith("convnet-digits,tiny,accuracy,") and ",2,0.97," in rows[1]
    assert "convnet-digits" in (root / "RESULTS.md").read_text()
    listing = run_cli("list", env=env)  # headline presets only: the tiny row is not one
    assert listing.returncode == 0 and "convnet-digits       tiny" not in listing.stdout
    assert "lenet5-mnist" in listing.stdout and "0.95% error" in listing.stdout
    assert "3.00% error (target, deepnets)" in listing.stdout  # a target, never "published"
    assert max(map(len, listing.stdout.splitlines())) < 120
    every = run_cli("list", "--all", env=env)
    tiny = [
        line for line in every.stdout.splitlines() if line.startswith("convnet-digits       tiny")
    ]
    assert len(tiny) == 1 and " 2  cpu " in tiny[0], every.stdout  # 2 seeds, on the CPU

    # the same row again, gathered from the bench's finished runs instead of training
    seeds = sorted((tmp_path / "runs" / "bench" / "convnet-digits").iterdir())
    assert [p.name[-2:] for p in seeds] == ["s0", "s1"]
    gathered = run_cli("bench", "convnet-digits", "--from-runs", *map(str, seeds), env=env)
    assert gathered.returncode == 0, gathered.stderr
    rows = (root / "results" / "convnet-digits.csv").read_text().splitlines()
    assert rows[2].split(",")[:6] == rows[1].split(",")[:6]  # label, metric, mean, std, seeds
    # the overridden run is labelled with what differs from its preset; mixing it is refused
    alone = run_cli("bench", "convnet-digits", "--from-runs", str(run_dir), env=env)
    assert alone.returncode == 0, alone.stderr
    label = (root / "results" / "convnet-digits.csv").read_text().splitlines()[3].split('"')[1]
    assert label == "tiny+epochs=5,lr=0.1"
    mixed = run_cli("bench", "convnet-digits", "--from-runs", str(run_dir), str(seeds[1]), env=env)
    assert "differ in more than their seed" in _no_traceback(mixed)
    twice = run_cli("bench", "convnet-digits", "--from-runs", str(seeds[0]), str(seeds[0]), env=env)
    assert "repeat a seed" in _no_traceback(twice)
    other = run_cli("bench", "mlp-mnist", "--from-runs", str(seeds[0]), env=env)
    assert "is a convnet-digits run" in _no_traceback(other)
    # scored again another way (eval fields only): the same weights, the same accuracy
    again = run_cli(
        "bench", "convnet-digits", "--from-runs", *map(str, seeds), "--set", "eval_batch_size=7",
        env=env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    row = (root / "results" / "convnet-digits.csv").read_text().splitlines()[4].split(",")
    assert row[1] == "tiny+eval_batch_size=7" and row[3:6] == rows[1].split(",")[3:6]
    preset_value = f"eval_batch_size={CONVNET_DIGITS.preset('tiny').eval_batch_size}"
    same = run_cli(
        "bench", "convnet-digits", "--from-runs", str(seeds[0]), "--set", preset_value, env=env
    )
    assert same.returncode == 0, same.stderr  # scored as the preset says: the preset's label
    row = (root / "results" / "convnet-digits.csv").read_text().splitlines()[5].split(",")
    assert row[1] == "tiny"
    retrain = run_cli(
        "bench", "convnet-digits", "--from-runs", str(seeds[0]), "--set", "lr=1", env=env
    )
    assert "only how the trained model decodes and is scored" in _no_traceback(retrain)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(seeds[0], unfinished)
    (unfinished / "summary.json").unlink()
    assert "has not finished" in _no_traceback(
        run_cli("bench", "convnet-digits", "--from-runs", str(unfinished), env=env)
    )


def test_figure_fig1_writes_a_png(tmp_path):
    out = tmp_path / "fig1.png"
    result = run_cli("figure", "fig1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    assert "unknown figure" in _no_traceback(run_cli("figure", "fig9"))


def test_demo_reaches_97_percent(tmp_path):
    result = run_cli("demo", "--run-dir", str(tmp_path / "demo"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["value"] >= 0.97


@needs_mnist
@pytest.mark.parametrize("experiment, floor", [("mlp-mnist", 0.85), ("lenet5-mnist", 0.85)])
def test_mnist_experiments_run_end_to_end(experiment, floor, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "run", experiment, "--preset", "tiny", "--run-dir", str(run_dir), "--json", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiment"] == experiment and summary["value"] >= floor, summary
    assert summary["epochs"] == 2 and summary["metric"] == "accuracy"


@needs_ptb
def test_kneser_ney_runs_end_to_end_through_the_counting_loop(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("run", "kn5-ptb", "--preset", "tiny", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric"] == "perplexity" and 146 < summary["value"] < 151  # measured 148.28
    assert "nothing to resume" in _no_traceback(run_cli("run", "--resume", str(run_dir)))


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    from deepnets.run import RunDir

    first = RunDir.claim(tmp_path / "runs", "20261126-120000-small-s0").path
    second = RunDir.claim(tmp_path / "runs", "20261126-120000-small-s0").path
    assert first.is_dir() and second.is_dir() and first != second
    assert second.name == "20261126-120000-small-s0-2"


def test_resume_with_a_new_learning_rate_is_refused_without_a_traceback(tmp_path):
    run_dir = tmp_path / "run"
    done = run_cli(
        "run",
        "convnet-digits",
        "--preset",
        "tiny",
        "--set",
        "epochs=1",
        "--run-dir",
        str(run_dir),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    err = _no_traceback(run_cli("run", "--resume", str(run_dir), "--set", "lr=0.5"))
    assert "can only be lengthened" in err and "lr" in err
    err = _no_traceback(run_cli("run", "--resume", str(run_dir), "--set", "epochs=0"))
    assert "epochs=0 is not allowed" in err
