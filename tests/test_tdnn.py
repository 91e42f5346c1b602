"""tdnn-fsdd: log-mel features, the FSDD loader and its errors, the time-delay network, a tiny
preset learning, and the CLI on the real recordings."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import needs_fsdd, run_cli, tone_fsdd, write_wav

from deepnets import DeepnetsError
from deepnets.cli import main
from deepnets.data.augment import random_time_shift
from deepnets.data.fsdd import (
    fix_length,
    hz_to_mel,
    load_fsdd_digits,
    load_recordings,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    read_wav,
    split_recordings,
)
from deepnets.experiments.speech import TDNN_FSDD, build_tdnn
from deepnets.models.tdnn import TDNN
from deepnets.train import train_and_evaluate

QUIET = dict(progress=False, log=lambda s: None)


# --- features -----------------------------------------------------------------------------------


def test_mel_scale_is_htk_and_inverts():
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.02)  # 2595 log10(1 + 1000/700)
    f = np.array([0.0, 250.0, 1000.0, 3999.0])
    assert np.allclose(mel_to_hz(hz_to_mel(f)), f)


def test_filterbank_triangles_cover_every_band():
    bank = mel_filterbank(40, 256)
    assert bank.shape == (40, 129)
    assert (bank >= 0).all() and (bank <= 1).all()
    assert (bank.sum(1) > 0).all()  # no empty filter at the low end
    peaks = bank.argmax(1)
    assert (np.diff(peaks) >= 0).all()  # centres rise with the band number


def test_log_mel_shape_and_pure_tone_lands_in_its_band():
    t = np.arange(8000) / 8000  # one second at 8 kHz
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    feats = log_mel(tone, 40)
    assert feats.shape == (1 + (8000 - 200) // 80, 40)  # 25 ms windows every 10 ms
    centres = mel_to_hz(np.linspace(0, hz_to_mel(4000), 42))[1:-1]
    assert feats.mean(0).argmax() == np.abs(centres - 1000).argmin()
    # twice the amplitude is four times the energy: log 4 more in the tone's band
    louder = log_mel(2 * tone, 40)
    band = feats.mean(0).argmax()
    assert np.allclose(louder[:, band] - feats[:, band], np.log(4), atol=1e-3)
    assert np.allclose(log_mel(np.zeros(800, np.float32)), np.log(1e-6))  # silence: the floor


def test_log_mel_matches_torch_stft():
    audio = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)
    # torch centres the 200-sample window in each 256-sample frame: pad 28 zeros each side so
    # that its frame t covers the same samples, audio[80 t : 80 t + 200]
    padded = torch.from_numpy(np.pad(audio, 28)).double()
    spectrum = torch.stft(
        padded, 256, 80, 200, torch.hann_window(200, dtype=torch.float64), center=False,
        return_complex=True,
    )  # fmt: skip
    power = spectrum.abs().T ** 2  # (T, 129)
    expected = (power @ torch.tensor(mel_filterbank(40, 256).T, dtype=torch.float64) + 1e-6).log()
    assert np.allclose(log_mel(audio, 40), expected.numpy(), atol=1e-4)


def test_fix_length_centres_crops_and_pads():
    f = np.arange(10, dtype=np.float32)[:, None]  # (10, 1)
    assert fix_length(f, 4, 0).ravel().tolist() == [3, 4, 5, 6]
    assert fix_length(f, 14, -1).ravel().tolist() == [-1, -1] + list(range(10)) + [-1, -1]


def test_random_time_shift_moves_whole_utterances():
    x = torch.arange(1.0, 9.0).view(1, 8, 1).repeat(16, 1, 3)  # (16, 8, 3)
    shifted = random_time_shift(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    for row in shifted[:, :, 0]:
        values = row[row > 0]
        assert (values.diff() == 1).all()  # contiguous content, zero fill only at the ends
        assert len(values) >= 6
    assert torch.equal(random_time_shift(x, 0, torch.Generator()), x)


# --- the loader and its errors -------------------------------------------------------------------


def test_tone_fsdd_splits_by_repetition(tmp_path):
    folder = tone_fsdd(tmp_path, sums=True) / "fsdd"
    splits = split_recordings(load_recordings(folder), val_size=20)
    assert {r.index for r in splits["test"]} == {0, 1, 2, 3, 4}
    assert {r.index for r in splits["val"]} == {5}  # the lowest training repetitions
    assert min(r.index for r in splits["train"]) >= 6
    assert [len(splits[k]) for k in ("train", "val", "test")] == [120, 20, 100]
    data = load_fsdd_digits(20, frames=40, folder=folder)
    assert data["train"][0].shape == (120, 40, 40)
    assert data["test"][1].bincount().tolist() == [10] * 10


def test_missing_folder_names_it_and_the_source(tmp_path):
    with pytest.raises(DeepnetsError, match="Jakobovski/free-spoken-digit-dataset") as err:
        load_recordings(tmp_path / "fsdd")
    assert str(tmp_path / "fsdd" / "recordings") in str(err.value)
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    with pytest.raises(DeepnetsError, match="holds no .wav files"):
        load_recordings(tmp_path / "fsdd")


def test_truncated_and_unreadable_wavs_are_errors_naming_the_file(tmp_path):
    good = tmp_path / "good.wav"
    write_wav(good, np.zeros(800))
    assert read_wav(good).shape == (800,)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(DeepnetsError, match="truncated.wav is truncated"):
        read_wav(truncated)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav at all" * 10)
    with pytest.raises(DeepnetsError, match="garbage.wav cannot be read as a WAV"):
        read_wav(garbage)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(DeepnetsError, match="empty.wav cannot be read"):
        read_wav(empty)
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, np.zeros(800), rate=44100)
    with pytest.raises(DeepnetsError, match="stereo.wav: 1 channel.*44100 Hz"):
        read_wav(stereo)


def test_a_truncated_recording_in_the_data_set_is_named(tmp_path):
    folder = tone_fsdd(tmp_path) / "fsdd"  # no SHA256SUMS: the WAV parser catches it
    path = folder / "recordings" / "3_bob_7.wav"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DeepnetsError, match="3_bob_7.wav is truncated"):
        load_recordings(folder)


def test_checksums_catch_changed_and_missing_files(tmp_path):
    folder = tone_fsdd(tmp_path, sums=True) / "fsdd"
    path = folder / "recordings" / "4_alice_2.wav"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DeepnetsError, match="4_alice_2.wav is corrupt"):
        load_recordings(folder)
    path.unlink()
    with pytest.raises(DeepnetsError, match="1 of the files SHA256SUMS lists are missing"):
        load_recordings(folder)


# --- the model ---------------------------------------------------------------------------------


def test_shapes_and_exact_parameter_count():
    model = build_tdnn(TDNN_FSDD.preset("small"))
    assert model.features(torch.zeros(3, 100, 40)).shape == (3, 128, 25)  # pooled twice
    assert model(torch.zeros(3, 100, 40)).shape == (3, 10)
    # convs without bias (BN has it): 40*64*5 + 64*128*3 + 128*128*3; BN 2*(64+128+128);
    # output (2*128)*10 + 10
    expected = 40 * 64 * 5 + 64 * 128 * 3 + 128 * 128 * 3 + 2 * (64 + 128 + 128) + 256 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == expected
    with pytest.raises(ValueError):
        TDNN(40, (8, 8), (3,))


def test_one_backward_pass_gives_every_parameter_a_finite_gradient():
    torch.manual_seed(0)
    model = TDNN(40, (8, 16), (5, 3))
    logits = model(torch.randn(4, 50, 40))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_tiny_preset_learns_tones_in_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_DATA", str(tone_fsdd(tmp_path / "data")))
    config = dataclasses.replace(
        TDNN_FSDD.preset("tiny"), val_size=20, frames=40, train_subset=0, epochs=6, batch_size=20
    )
    summary = train_and_evaluate(TDNN_FSDD, config, tmp_path / "run", **QUIET)
    assert summary["value"] >= 0.9, summary


# --- the real recordings -----------------------------------------------------------------------


@needs_fsdd
def test_real_fsdd_official_split():
    data = load_fsdd_digits()
    assert [len(data[k][1]) for k in ("train", "val", "test")] == [2400, 300, 300]
    assert data["train"][0].shape[1:] == (100, 40)
    assert data["test"][1].bincount().tolist() == [30] * 10
    assert abs(data["train"][0].mean()) < 0.05


@needs_fsdd
def test_cli_tiny_preset_on_real_fsdd_then_eval(tmp_path, capsys):
    run_dir = tmp_path / "run"
    ran = run_cli("run", "tdnn-fsdd", "--preset", "tiny", "--run-dir", str(run_dir), "--quiet")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["value"] >= 0.6, summary  # 3 short epochs on 600 recordings
    assert main(["eval", str(run_dir)]) == 0  # in this process: the recordings are cached
    assert f"accuracy {summary['value']:.4f}" in capsys.readouterr().out


def test_cli_missing_data_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path / "empty"))
    assert main(["run", "tdnn-fsdd", "--preset", "tiny", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepnets: error: fsdd:") and "Traceback" not in err
    assert "Jakobovski/free-spoken-digit-dataset" in err
