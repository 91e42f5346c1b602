"""Tiny Shakespeare: Karpathy's char-rnn corpus, 1,115,394 characters of plain ASCII text.

The one canonical file (`input.txt`) is fetched through the data store and read here. The
vocabulary is every distinct character of the file, sorted (65 of them), as in char-rnn and
nanoGPT; the character stream is split as they split it: the first 90% for training, the last 10%
for validation (1,003,854 and 111,540 characters).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from deepnets import DeepnetsError
from deepnets.data.store import RemoteFile, fetch, read_text_file

FILE = RemoteFile(
    "input.txt",
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
)
TRAIN_FRACTION = 0.9  # the first 90% of the stream trains, the rest validates


class CharVocabulary:
    """Characters <-> ids. Ids follow the sorted order of the distinct characters."""

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = list(chars)  # id -> character
        self.ids: dict[str, int] = {ch: i for i, ch in enumerate(self.chars)}  # character -> id
        if len(self.ids) != len(self.chars) or any(len(ch) != 1 for ch in self.chars):
            raise DeepnetsError("a character vocabulary holds distinct single characters")

    @classmethod
    def from_text(cls, text: str) -> CharVocabulary:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self.ids

    def encode(self, text: str) -> torch.Tensor:
        """A string as a LongTensor of ids, shape (len(text),)."""
        try:
            return torch.tensor([self.ids[ch] for ch in text], dtype=torch.long)
        except KeyError as err:
            raise DeepnetsError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def prompt_ids(self, text: str) -> list[int]:
        """A user's prompt as ids (a new line if it is empty, so there is something to read)."""
        return self.encode(text or "\n").tolist()

    def render(self, ids: Iterable[int] | torch.Tensor) -> str:
        return self.decode(ids)

    def piece(self, token: int) -> str:
        """One generated id as the text that follows the characters before it."""
        return self.decode([token])

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()  # far faster to iterate than the tensor itself
        try:
            return "".join(self.chars[int(i)] for i in ids)
        except IndexError:
            raise DeepnetsError(
                f"an id is outside the vocabulary of {len(self)} characters"
            ) from None


def load_tinyshakespeare() -> str:
    """The whole corpus as one string."""
    return read_text_file(fetch("tinyshakespeare", [FILE])[FILE.name])


def split_stream(
    ids: torch.Tensor, train_fraction: float = TRAIN_FRACTION
) -> dict[str, torch.Tensor]:
    """{"train": the first int(fraction * N) ids, "valid": the rest}, both views of (N,)."""
    cut = int(train_fraction * ids.numel())
    return {"train": ids[:cut], "valid": ids[cut:]}


def load_tinyshakespeare_ids() -> tuple[CharVocabulary, dict[str, torch.Tensor]]:
    """The character vocabulary and {"train", "valid"}, each one flat LongTensor (characters,)."""
    text = load_tinyshakespeare()
    vocab = CharVocabulary.from_text(text)
    return vocab, split_stream(vocab.encode(text))
