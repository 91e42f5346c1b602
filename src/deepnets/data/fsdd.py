"""The Free Spoken Digit Dataset (Jakobovski et al.): 3,000 recordings of the digits 0-9, 8 kHz.

Six speakers each say each digit 50 times: `recordings/{digit}_{speaker}_{index}.wav`. The
official split puts repetitions 0-4 in the test set and 5-49 in the training set; our validation
split is carved from the training repetitions only (the lowest indices first), never from test.

Two data sets are built here from the same recordings:

- single digits (`load_fsdd_digits`): log-mel frames padded or cropped to a fixed length, for
  the time-delay network `tdnn-fsdd`;
- spoken digit strings (`load_digit_strings`): 3 to 7 recordings of one speaker joined with short
  random silences and random gains, for the CTC recogniser `ctc-digits`. Training strings use
  training recordings only, validation strings validation recordings, test strings test ones.

The features are computed here with numpy: a 25 ms Hann window every 10 ms, the power spectrum,
triangular filters equally spaced on the mel scale (mel = 2595 log10(1 + f / 700)) and a log.
The files are not downloaded automatically (3,000 small files): a missing folder is an error
naming it and the canonical source. Every file is checked against `SHA256SUMS` where that file
is present, and a WAV that cannot be parsed is an error naming it.
"""

from __future__ import annotations

import re
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.data.store import data_root, sha256_of

SOURCE = "https://github.com/Jakobovski/free-spoken-digit-dataset"
SAMPLE_RATE = 8000
TEST_INDICES = range(5)  # the official split: repetitions 0-4 of each speaker and digit are test
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class Recording:
    digit: int  # the spoken digit, 0-9
    speaker: str  # who said it
    index: int  # repetition number, 0-49
    audio: np.ndarray  # float32 samples in [-1, 1] at 8 kHz, (S,)


# --- reading and checking the files ----------------------------------------------------------


def _missing(folder: Path, what: str) -> DeepnetsError:
    return DeepnetsError(
        f"fsdd: {what}. Put the 3,000 WAV files of the Free Spoken Digit Dataset in "
        f"{folder / 'recordings'} (the folder `recordings/` of {SOURCE}, e.g. `git clone "
        f"{SOURCE}`), or set DEEPNETS_DATA to a folder holding fsdd/recordings/"
    )


def read_wav(path) -> np.ndarray:
    """A mono 16-bit 8 kHz WAV (a path or a file object) as float32 samples in [-1, 1];
    anything else is an error naming the file (not a WAV, a truncated data chunk, another
    format)."""
    try:
        with wave.open(str(path) if isinstance(path, (str, Path)) else path, "rb") as handle:
            channels, width = handle.getnchannels(), handle.getsampwidth()
            rate, frames = handle.getframerate(), handle.getnframes()
            raw = handle.readframes(frames)
    except (wave.Error, EOFError, OSError) as err:
        raise DeepnetsError(f"{path} cannot be read as a WAV file: {err}") from None
    if (channels, width, rate) != (1, 2, SAMPLE_RATE):
        raise DeepnetsError(
            f"{path}: {channels} channel(s), {8 * width}-bit, {rate} Hz; expected mono 16-bit "
            f"{SAMPLE_RATE} Hz like every FSDD recording"
        )
    if len(raw) != frames * width or frames == 0:
        raise DeepnetsError(
            f"{path} is truncated: its header promises {frames} samples, it holds "
            f"{len(raw) // width}"
        )
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _checked_names(folder: Path) -> list[str]:
    """The recording file names: those SHA256SUMS lists, each checked, else those present."""
    recordings = folder / "recordings"
    if not recordings.is_dir():
        raise _missing(folder, f"{recordings} does not exist")
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        names = sorted(p.name for p in recordings.glob("*.wav"))
        if not names:
            raise _missing(folder, f"{recordings} holds no .wav files")
        return names
    expected = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if name.startswith("recordings/") and name.endswith(".wav"):
            expected[name[len("recordings/") :]] = digest
    absent = sorted(n for n in expected if not (recordings / n).is_file())
    if absent:
        shown = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise _missing(folder, f"{len(absent)} of the files SHA256SUMS lists are missing ({shown})")
    for name, digest in expected.items():
        actual = sha256_of(recordings / name)
        if actual != digest:
            raise DeepnetsError(
                f"{recordings / name} is corrupt: its sha256 is {actual}, expected {digest} "
                f"(SHA256SUMS). Copy it again from {SOURCE}"
            )
    return sorted(expected)


@lru_cache(maxsize=2)
def _load_recordings(folder: str) -> tuple[Recording, ...]:
    folder_path = Path(folder)
    out = []
    for name in _checked_names(folder_path):
        match = _NAME.match(name)
        if match is None:
            raise DeepnetsError(
                f"{folder_path / 'recordings' / name}: not a name of the form "
                "{digit}_{speaker}_{index}.wav"
            )
        audio = read_wav(folder_path / "recordings" / name)
        out.append(Recording(int(match[1]), match[2], int(match[3]), audio))
    return tuple(sorted(out, key=lambda r: (r.index, r.speaker, r.digit)))


def load_recordings(folder: Path | None = None) -> list[Recording]:
    """Every recording, checked and parsed, sorted by (index, speaker, digit)."""
    return list(_load_recordings(str(folder or data_root() / "fsdd")))


def split_recordings(recordings: list[Recording], val_size: int) -> dict[str, list[Recording]]:
    """The official test split (indices 0-4), and validation carved from the training
    recordings: the `val_size` with the lowest indices (300: repetitions 5-9 of everyone)."""
    test = [r for r in recordings if r.index in TEST_INDICES]
    train = [r for r in recordings if r.index not in TEST_INDICES]  # sorted by index first
    if not 0 <= val_size < len(train):
        raise DeepnetsError(f"val_size must be in [0, {len(train)}), got {val_size}")
    return {"train": train[val_size:], "val": train[:val_size], "test": test}


# --- log-mel features --------------------------------------------------------------------------


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular filters (n_mels, n_fft // 2 + 1): filter m rises from the centre of m - 1 to
    its own centre and falls to the centre of m + 1; centres equally spaced in mel, 0 to
    sample_rate / 2."""
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))  # (n_mels + 2,)
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # FFT bin frequencies
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    bank.flags.writeable = False  # shared by every call (cached)
    return bank


def log_mel(
    audio: np.ndarray,
    n_mels: int = 40,
    sample_rate: int = SAMPLE_RATE,
    window_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int = 256,
    floor: float = 1e-6,
) -> np.ndarray:
    """Log mel-band energies (T, n_mels): log(sum_k H_m(k) |FFT(w * frame)(k)|^2 + floor)."""
    win, hop = int(sample_rate * window_ms / 1000), int(sample_rate * hop_ms / 1000)
    if len(audio) < win:
        audio = np.pad(audio, (0, win - len(audio)))
    n_frames = 1 + (len(audio) - win) // hop
    index = hop * np.arange(n_frames)[:, None] + np.arange(win)[None, :]  # (T, win)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann window
    power = np.abs(np.fft.rfft(audio[index] * hann, n_fft)) ** 2  # (T, n_fft // 2 + 1)
    energies = power @ mel_filterbank(n_mels, n_fft, sample_rate).T  # (T, n_mels)
    return np.log(energies + floor).astype(np.float32)


def band_statistics(features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation (+1e-5) over every frame of `features` [(T, F)]."""
    stacked = np.concatenate(features)  # (sum T, F)
    return stacked.mean(0), stacked.std(0) + 1e-5


def training_statistics(
    val_size: int = 300, n_mels: int = 40, folder: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The per-band statistics `load_fsdd_digits(normalise="global")` standardises with."""
    splits = split_recordings(load_recordings(folder), val_size)
    return band_statistics([log_mel(r.audio, n_mels) for r in splits["train"]])


def fix_length(features: np.ndarray, frames: int, pad_value: float) -> np.ndarray:
    """Centre `features` (T, F) in exactly `frames` frames: crop the middle or pad both ends."""
    t = len(features)
    if t >= frames:
        start = (t - frames) // 2
        return features[start : start + frames]
    before = (frames - t) // 2
    out = np.full((frames, features.shape[1]), pad_value, dtype=features.dtype)
    out[before : before + t] = features
    return out


# --- single digits: tdnn-fsdd --------------------------------------------------------------------


def load_fsdd_digits(
    val_size: int = 300,
    n_mels: int = 40,
    frames: int = 100,
    normalise: str = "global",
    folder: Path | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train", "val", "test"}: (log-mel frames (N, frames, n_mels), digits (N,)).

    `normalise`: "global" subtracts the training frames' mean and divides by their standard
    deviation, per mel band; "utterance" does so with each recording's own statistics. Either
    way the padding is 0, the normalised mean.
    """
    splits = split_recordings(load_recordings(folder), val_size)
    feats = {k: [log_mel(r.audio, n_mels) for r in v] for k, v in splits.items()}
    if normalise == "global":
        mean, std = band_statistics(feats["train"])
        norm = {k: [(f - mean) / std for f in v] for k, v in feats.items()}
    elif normalise == "utterance":
        norm = {k: [(f - f.mean(0)) / (f.std(0) + 1e-5) for f in v] for k, v in feats.items()}
    else:
        raise DeepnetsError(f"normalise must be global or utterance, got {normalise!r}")
    out = {}
    for key, recordings in splits.items():
        x = np.stack([fix_length(f, frames, 0.0) for f in norm[key]]) if recordings else None
        x = np.zeros((0, frames, n_mels), np.float32) if x is None else x
        y = torch.tensor([r.digit for r in recordings], dtype=torch.long)
        out[key] = (torch.from_numpy(x.astype(np.float32)), y)
    return out


# --- spoken digit strings: ctc-digits ----------------------------------------------------------


@dataclass(frozen=True)
class DigitStrings:
    """Variable-length utterances: features[i] (T_i, n_mels) and digits[i] (L_i,), with the
    per-band training statistics the features were standardised with."""

    features: list[torch.Tensor]
    digits: list[torch.Tensor]
    mean: np.ndarray | None = None  # (n_mels,)
    std: np.ndarray | None = None  # (n_mels,)

    def __len__(self) -> int:
        return len(self.digits)


def join_recordings(
    pool: list[Recording],
    count: int,
    rng: np.random.Generator,
    lengths: tuple[int, int] = (3, 7),
    gap_ms: tuple[float, float] = (50.0, 300.0),
    gain_db: float = 6.0,
    noise: float = 3e-4,
) -> list[tuple[np.ndarray, list[int]]]:
    """`count` (audio, digits) strings: a speaker drawn at random says `lengths[0]` to
    `lengths[1]` random digits, each one of that speaker's recordings in `pool`, scaled by a
    random gain of +-gain_db decibels, with random silences of gap_ms between them and at both
    ends, and a faint white noise (std `noise`) under the whole string."""
    by_voice: dict[tuple[str, int], list[Recording]] = {}
    for r in pool:
        by_voice.setdefault((r.speaker, r.digit), []).append(r)
    speakers = sorted({s for s, _ in by_voice})
    out = []
    for _ in range(count):
        speaker = speakers[rng.integers(len(speakers))]
        digits = rng.integers(0, 10, size=rng.integers(lengths[0], lengths[1] + 1)).tolist()
        pieces = []
        for d in digits:
            gap = rng.uniform(*gap_ms) * SAMPLE_RATE / 1000
            choices = by_voice[(speaker, d)]
            gain = 10 ** (rng.uniform(-gain_db, gain_db) / 20)
            pieces += [
                np.zeros(int(gap), np.float32),
                choices[rng.integers(len(choices))].audio * gain,
            ]
        pieces.append(np.zeros(int(rng.uniform(*gap_ms) * SAMPLE_RATE / 1000), np.float32))
        audio = np.concatenate(pieces)
        audio = np.clip(audio + rng.normal(0, noise, len(audio)), -1, 1).astype(np.float32)
        out.append((audio, digits))
    return out


def load_digit_strings(
    counts: tuple[int, int, int] = (4000, 300, 500),
    seed: int = 0,
    val_size: int = 300,
    n_mels: int = 40,
    lengths: tuple[int, int] = (3, 7),
    gap_ms: tuple[float, float] = (50.0, 300.0),
    gain_db: float = 6.0,
    folder: Path | None = None,
) -> dict[str, DigitStrings]:
    """{"train", "val", "test"}: `counts` spoken digit strings made from the training,
    validation and test recordings respectively, the same for the same arguments (`seed`).
    Features are log-mel frames normalised per band with the training strings' statistics."""
    if counts[0] < 1 or min(counts) < 0 or not 1 <= lengths[0] <= lengths[1]:
        raise DeepnetsError(
            f"digit strings need at least one training string and 1 <= fewest <= most digits; "
            f"got counts {counts}, lengths {lengths}"
        )
    where = str(folder or data_root() / "fsdd")
    return _digit_strings(counts, seed, val_size, n_mels, lengths, gap_ms, gain_db, where)


@lru_cache(maxsize=2)  # a run and its evaluation in one process build the strings once
def _digit_strings(counts, seed, val_size, n_mels, lengths, gap_ms, gain_db, folder):
    pools = split_recordings(load_recordings(Path(folder)), val_size)
    feats, labels = {}, {}
    for k, (split, count) in enumerate(zip(("train", "val", "test"), counts)):
        if count and not pools[split]:
            raise DeepnetsError(f"fsdd: no {split} recordings to make digit strings from")
        rng = np.random.default_rng([seed, k])  # each split its own stream of draws
        strings = join_recordings(pools[split], count, rng, lengths, gap_ms, gain_db)
        feats[split] = [log_mel(audio, n_mels) for audio, _ in strings]
        labels[split] = [torch.tensor(digits, dtype=torch.long) for _, digits in strings]
    mean, std = band_statistics(feats["train"])
    return {
        split: DigitStrings(
            [torch.from_numpy((f - mean) / std) for f in feats[split]], labels[split], mean, std
        )
        for split in feats
    }
