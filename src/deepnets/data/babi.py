"""The bAbI question-answering tasks 1-20, v1.2, English (Weston et al. 2015, "Towards AI-Complete
Question Answering: A Set of Prerequisite Toy Tasks", arXiv:1502.05698): 1k and 10k training
questions per task, 1,000 test questions per task.

A file holds numbered lines; a line numbered 1 starts a new story. A story line is a sentence;
a question line is `id question<TAB>answer<TAB>supporting line ids`. Each question is answered
from the story's sentences before it (earlier questions are not part of the story). Words are
lowercased with the final "." or "?" dropped; an answer is one token even when it is a list
("apple,milk", task 8) or a path ("n,w", task 19), as in Sukhbaatar et al. 2015.

The validation split is the last 10% of each task's training stories (Sukhbaatar et al. 2015 hold
out 10% of the training set; which 10% they do not say). Every file is checked against its
sha256. The 10k training file of task 3 is absent from this project's data copy (see
`babi/README.md`); asking for it is an error that says so.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deepnets import DeepnetsError
from deepnets.data.store import RemoteFile, fetch, read_text_file

DATASET = "babi"
FOLDER = "tasks_1-20_v1-2"
_SOURCE = (
    "https://raw.githubusercontent.com/ethancaballero/Improved-Dynamic-Memory-Networks-DMN-plus/"
    "406d0f033686cc06151493cba111706b6d03d43f/data/tasks_1-20_v1-2/"
)
NULL = "<null>"  # id 0: the padding word, whose embedding is held at zero

# task -> (file stem, sha256 of en/ train, of the test file (en/ and en-10k/ are identical),
# of en-10k/ train or None where this project's copy lacks it)
TASKS: dict[int, tuple[str, str, str, str | None]] = {
    1: (
        "qa1_single-supporting-fact",
        "c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05",
        "55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b",
        "749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d",
    ),
    2: (
        "qa2_two-supporting-facts",
        "a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860",
        "eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6",
        "d4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3",
    ),
    3: (
        "qa3_three-supporting-facts",
        "a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60",
        "17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f",
        None,
    ),
    4: (
        "qa4_two-arg-relations",
        "c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa",
        "07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e",
        "5d11b821d35234988ab907866aa7ce718e6b6d751acf63bdef52262afb59f12c",
    ),
    5: (
        "qa5_three-arg-relations",
        "086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0",
        "ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97",
        "2506910935b701bac64fc8b1d7ff12bd8d0f47ceefca183454282bec784c12a5",
    ),
    6: (
        "qa6_yes-no-questions",
        "5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a",
        "b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3",
        "602f379184bf3cb59660d0f7769d9c94ccdc1fc4d82dfe90bd460d985b1ff0c5",
    ),
    7: (
        "qa7_counting",
        "dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c",
        "a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27",
        "4a2508733bef9b38cfce4b3108a91b83cdee378de4a7370e4d32fea2dacd3b7d",
    ),
    8: (
        "qa8_lists-sets",
        "058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06",
        "362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a",
        "9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a",
    ),
    9: (
        "qa9_simple-negation",
        "0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f",
        "63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f",
        "5f8949f6ef7d64516fc4dd5732b12b5932d057b1a614e8ac94e795fb020d4ff0",
    ),
    10: (
        "qa10_indefinite-knowledge",
        "0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3",
        "fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7",
        "c5c0788b0446095c07a0442784cad2b59c1d58e875ebe8ad852f5e3f628613f4",
    ),
    11: (
        "qa11_basic-coreference",
        "9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138",
        "46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f",
        "edfcd97fecd4a5045af25e1790cf1408856ae362c39521b1b69cd32b88ec0ced",
    ),
    12: (
        "qa12_conjunction",
        "45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25",
        "6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1",
        "39d58df3564916c66cebc98befb65d605c032181e51208730fd8837a77bc166a",
    ),
    13: (
        "qa13_compound-coreference",
        "533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9",
        "76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990",
        "c530fdf122d26617a8a03ba5cdbacee87c22624ba7f50d1f07f9658c900e22d8",
    ),
    14: (
        "qa14_time-reasoning",
        "b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8",
        "e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2",
        "c322e0814eef71f088af1aa1334e7ae4b1ee6ca18f2ee94c05e2189226964ed6",
    ),
    15: (
        "qa15_basic-deduction",
        "e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d",
        "32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94",
        "0a86673f7fafa484f8ee394048f03de19405bdc40b58f21086969efad2862010",
    ),
    16: (
        "qa16_basic-induction",
        "20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28",
        "4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf",
        "27fef347ce0b25dd148efea2b15f154926e0e9069d4ea6ab9cfca3add492ab35",
    ),
    17: (
        "qa17_positional-reasoning",
        "20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277",
        "9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac",
        "8a383651e009db50d6c9effed5778b8646c28c55fadb1592b5f4d8d3a187bbce",
    ),
    18: (
        "qa18_size-reasoning",
        "18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d",
        "d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef",
        "9e7c15107067d2070170ef12579a8bfe34dfc35a7ac9ebd13f2001dc1a7488f9",
    ),
    19: (
        "qa19_path-finding",
        "dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a",
        "023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5",
        "6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e",
    ),
    20: (
        "qa20_agents-motivations",
        "29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398",
        "bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729",
        "36f20f3baf6bad2297d5b9fd877e633550c36106fe78bc10ddfb7b1eede62573",
    ),
}
MISSING_10K = tuple(t for t, (*_, sha) in TASKS.items() if sha is None)  # (3,)


def _remote(task: int, size: str, split: str) -> RemoteFile:
    stem, train_1k, test, train_10k = TASKS[task]
    folder = "en" if size == "1k" else "en-10k"
    sha = {"train": train_1k if size == "1k" else train_10k, "test": test}[split]
    if sha is None:
        raise DeepnetsError(
            f"bAbI task {task} has no {size} training file here ({folder}/{stem}_train.txt is "
            f"missing from the data copy; see {DATASET}/README.md); leave task {task} out of "
            f"`tasks` (the 10k tasks with data: "
            f"{','.join(str(t) for t in TASKS if t not in MISSING_10K)})"
        )
    name = f"{stem}_{split}.txt"
    return RemoteFile(name, sha, (_SOURCE + f"{folder}/{name}",))


@dataclass(frozen=True)
class Question:
    """One question with the story it is asked about."""

    story: tuple[tuple[str, ...], ...]  # the sentences before the question, oldest first
    question: tuple[str, ...]  # its words, without the "?"
    answer: str  # one token (a word, a list "a,b" or a path "n,w")
    support: tuple[int, ...]  # indices into `story` of the supporting sentences
    task: int  # 1-20


def tokenize(text: str) -> list[str]:
    """Lowercased words; "." "?" "," and "!" are dropped."""
    return re.sub(r"[.?!,]", " ", text.lower()).split()


def parse(text: str, task: int, source: str = "<text>") -> list[list[Question]]:
    """A bAbI file's stories, each the list of its questions. A malformed line is an error
    naming the file and line."""
    stories: list[list[Question]] = []
    sentences: list[tuple[str, ...]] = []
    line_to_index: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, _, rest = line.partition(" ")
        if not head.isdigit() or not rest:
            raise DeepnetsError(f"{source}, line {number}: expected 'ID TEXT', got {line!r}")
        line_id = int(head)
        if line_id == 1:
            stories.append([])
            sentences, line_to_index = [], {}
        elif not stories:
            raise DeepnetsError(f"{source}, line {number}: the first story does not start at 1")
        if "\t" in rest:
            parts = rest.split("\t")
            if len(parts) < 2 or not parts[1].strip():
                raise DeepnetsError(f"{source}, line {number}: a question without an answer")
            ids = parts[2].split() if len(parts) > 2 else []
            try:
                support = tuple(line_to_index[int(i)] for i in ids)
            except (KeyError, ValueError):
                raise DeepnetsError(
                    f"{source}, line {number}: supporting facts {ids} are not earlier sentences"
                ) from None
            stories[-1].append(
                Question(
                    tuple(sentences),
                    tuple(tokenize(parts[0])),
                    parts[1].strip().lower(),
                    support,
                    task,
                )
            )
        else:
            line_to_index[line_id] = len(sentences)
            sentences.append(tuple(tokenize(rest)))
    return stories


def _read(task: int, size: str, split: str) -> list[list[Question]]:
    remote = _remote(task, size, split)
    folder = f"{DATASET}/{FOLDER}/{'en' if size == '1k' else 'en-10k'}"
    path = fetch(folder, [remote])[remote.name]
    return parse(read_text_file(path), task, str(path))


@functools.cache
def load_questions(
    tasks: tuple[int, ...], size: str = "1k", val_fraction: float = 0.1
) -> dict[str, list[Question]]:
    """train / val / test questions of the given tasks; val is the last `val_fraction` of each
    task's training stories."""
    if size not in ("1k", "10k"):
        raise DeepnetsError(f"bAbI size must be 1k or 10k, not {size!r}")
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise DeepnetsError(f"bAbI has tasks 1-20, not {bad}")
    splits: dict[str, list[Question]] = {"train": [], "val": [], "test": []}
    for task in tasks:
        stories = _read(task, size, "train")
        n_val = round(val_fraction * len(stories))
        cut = len(stories) - n_val
        splits["train"] += [q for story in stories[:cut] for q in story]
        splits["val"] += [q for story in stories[cut:] for q in story]
        splits["test"] += [q for story in _read(task, size, "test") for q in story]
    return splits


class Vocabulary:
    """Words <-> ids; id 0 is the null (padding) word. Answers are words too: the model scores
    every word of the vocabulary as the answer (Sukhbaatar et al. 2015)."""

    def __init__(self, words: list[str]):
        self.words = [NULL, *words]
        self.ids = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def of(cls, questions: list[Question]) -> Vocabulary:
        words = set()
        for q in questions:
            words.update(w for s in q.story for w in s)
            words.update(q.question)
            words.add(q.answer)
        return cls(sorted(words))

    def __len__(self) -> int:
        return len(self.words)

    def unknown(self, words: list[str]) -> list[str]:
        return [w for w in words if w not in self.ids]

    def encode(self, words: tuple[str, ...] | list[str]) -> list[int]:
        return [self.ids[w] for w in words]


@dataclass
class Encoded:
    """One split as padded tensors: the last `memory_size` sentences of each story, oldest
    first and left-aligned (row i of a story is its i-th kept sentence)."""

    stories: torch.Tensor  # (N, M, L) word ids, 0 = null
    counts: torch.Tensor  # (N,) sentences kept (the rest of the M rows are empty)
    queries: torch.Tensor  # (N, Lq) word ids
    answers: torch.Tensor  # (N,) word id of the answer
    tasks: torch.Tensor  # (N,) 1-20
    questions: list[Question] = field(repr=False, default_factory=list)

    def __len__(self) -> int:
        return len(self.answers)


def encode(
    questions: list[Question],
    vocab: Vocabulary,
    memory_size: int,
    sentence_len: int,
    query_len: int,
) -> Encoded:
    """Pad a split to tensors; a story longer than the memory keeps its most recent sentences
    (Sukhbaatar et al. 2015: the memory holds the last 50)."""
    n = len(questions)
    stories = torch.zeros(n, memory_size, sentence_len, dtype=torch.long)
    queries = torch.zeros(n, query_len, dtype=torch.long)
    counts = torch.zeros(n, dtype=torch.long)
    for i, q in enumerate(questions):
        kept = q.story[-memory_size:]
        counts[i] = len(kept)
        for j, sentence in enumerate(kept):
            ids = vocab.encode(sentence[:sentence_len])
            stories[i, j, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        ids = vocab.encode(q.question[:query_len])
        queries[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    answers = torch.tensor([vocab.ids[q.answer] for q in questions], dtype=torch.long)
    tasks = torch.tensor([q.task for q in questions], dtype=torch.long)
    return Encoded(stories, counts, queries, answers, tasks, questions)


def longest(questions: list[Question]) -> tuple[int, int]:
    """The most words in a story sentence and in a question."""
    sentence = max((len(s) for q in questions for s in q.story), default=1)
    return max(1, sentence), max(1, max((len(q.question) for q in questions), default=1))


def load_babi(
    tasks: tuple[int, ...], size: str, memory_size: int, val_fraction: float = 0.1
) -> dict:
    """train / val / test as `Encoded` tensors, with the vocabulary (of every split of these
    tasks, as the paper's) and the padded lengths."""
    splits = load_questions(tuple(tasks), size, val_fraction)
    everything = [q for qs in splits.values() for q in qs]
    vocab = Vocabulary.of(everything)
    sentence_len, query_len = longest(everything)
    data: dict = {
        name: encode(qs, vocab, memory_size, sentence_len, query_len) for name, qs in splits.items()
    }
    data["vocab"] = vocab
    return data


def data_path(name: str) -> Path:
    """Where a bAbI file sits under the data root (for messages and tests)."""
    from deepnets.data.store import data_root

    return data_root() / DATASET / name
