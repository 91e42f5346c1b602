"""Multi30k task 1 (Elliott et al. 2016): English descriptions of Flickr30k images and their
professional German translations; train 29,000, val 1,014, test_2016_flickr 1,000 pairs.

The gzip files of `multi30k/dataset` (data/task1/raw) are fetched through the data store and
checked against their sha256. Line i of X.en.gz is the translation of line i of X.de.gz.

Subwords: one SentencePiece unigram model per language (Kudo & Richardson 2018), trained on the
training split only, single-threaded and unshuffled so the same text always gives the same model.
It is cached under the cache folder (`$XDG_CACHE_HOME/deepnets/sentencepiece`, default
`~/.cache/...`), named by the vocabulary size and the sha256 of the text it was trained on.
Ids: 0 padding, 1 unknown, 2 start of sentence, 3 end of sentence. Decoding the ids of a
translation gives detokenised text, which is what sacrebleu scores.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from deepnets import DeepnetsError
from deepnets.data.store import RemoteFile, fetch

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}  # our name -> file stem
LANGUAGES = ("en", "de")

_SOURCE = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/"
_SHA256 = {
    "train.de": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "val.de": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "test_2016_flickr.de": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
}
FILES = {
    stem: RemoteFile(f"task1/raw/{stem}.gz", sha, (_SOURCE + f"{stem}.gz",))
    for stem, sha in _SHA256.items()
}


def read_gzip_lines(path: Path) -> list[str]:
    """The lines of a gzip-compressed UTF-8 file; anything else is an error naming the file."""
    try:
        with gzip.open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DeepnetsError(f"{path} is not a readable gzip file: {err}") from None
    except UnicodeDecodeError as err:
        raise DeepnetsError(f"{path} cannot be decoded as UTF-8 text: {err}") from None
    return text.rstrip("\n").split("\n")


def load_multi30k() -> dict[str, dict[str, list[str]]]:
    """{"train", "val", "test"} -> {"en", "de"} -> sentences, aligned line by line."""
    paths = fetch("multi30k", list(FILES.values()))
    out: dict[str, dict[str, list[str]]] = {}
    for split, stem in SPLITS.items():
        out[split] = {
            lang: read_gzip_lines(paths[FILES[f"{stem}.{lang}"].name]) for lang in LANGUAGES
        }
        n_en, n_de = len(out[split]["en"]), len(out[split]["de"])
        if n_en != n_de:
            raise DeepnetsError(f"multi30k {stem}: {n_en} English lines but {n_de} German ones")
    return out


def cache_folder() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "deepnets" / "sentencepiece"


@dataclass
class Tokenizer:
    """A trained SentencePiece model: text <-> subword ids (see the module docstring)."""

    model: object  # sentencepiece.SentencePieceProcessor
    path: Path  # where the model file is cached

    def __len__(self) -> int:
        return self.model.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.model.encode(text)

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.model.id_to_piece(int(i)) for i in ids]

    def decode(self, ids: list[int]) -> str:
        return self.model.decode([int(i) for i in ids if int(i) > EOS])


def train_tokenizer(sentences: list[str], vocab_size: int, folder: Path | None = None) -> Tokenizer:
    """A unigram SentencePiece model of `vocab_size` pieces trained on `sentences`, loaded from
    the cache when the same text and size were trained before."""
    import sentencepiece as spm

    text = "\n".join(sentences)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    folder = folder or cache_folder()
    path = folder / f"unigram-{vocab_size}-{digest}.model"
    if not path.is_file():
        written = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=written,
                vocab_size=vocab_size,
                model_type="unigram",
                character_coverage=1.0,
                pad_id=PAD,
                unk_id=UNK,
                bos_id=BOS,
                eos_id=EOS,
                num_threads=1,
                shuffle_input_sentence=False,
                input_sentence_size=0,
                minloglevel=2,
                hard_vocab_limit=False,
            )
        except RuntimeError as err:
            raise DeepnetsError(
                f"sentencepiece could not train a {vocab_size}-piece model: {err}"
            ) from None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(written.getvalue())
            os.replace(tmp, path)
        except OSError as err:
            raise DeepnetsError(f"cannot write the tokenizer cache {path}: {err}") from None
    processor = spm.SentencePieceProcessor()
    try:
        processor.load(str(path))
    except (OSError, RuntimeError) as err:
        raise DeepnetsError(f"{path} is not a sentencepiece model ({err}); delete it") from None
    return Tokenizer(processor, path)
