"""The language-model experiments: `kn5-ptb` (the Kneser-Ney 5-gram baseline, fitted by counting)
and the neural models on a token stream, `nplm-ptb`, `rnn-ptb`, `lstm-ptb` (Penn Treebank) and
`charlstm-shakespeare` (Tiny Shakespeare), with their configs, data glue and model builders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from deepnets.config import Config, Device, Range, TrainConfig, check, strictly_increasing
from deepnets.experiments.base import LOSS, Experiment, Metric, Published
from deepnets.train.count import Count
from deepnets.train.language_model import LanguageModel

PERPLEXITY = Metric("perplexity", False, "perplexity")

# --- kn5-ptb: the N-gram baseline ------------------------------------------------------------


@dataclass(frozen=True)
class NGramConfig(Config):
    order: int = check(5, ge=1)  # N: the longest n-gram counted
    seed: int = check(0, ge=0)  # unused (counting is deterministic); kept so every config has one
    device: Device = "cpu"  # unused (counting runs on the CPU); kept for a uniform CLI


def _ptb_sentences(config: NGramConfig) -> dict:
    from deepnets.data.ptb import load_ptb

    return load_ptb()


def _kneser_ney(config: NGramConfig):
    from deepnets.models.kneser_ney import KneserNey

    return KneserNey(config.order)


KN5_PTB = Experiment(
    id="kn5-ptb",
    title="Interpolated modified Kneser-Ney 5-gram (the N-gram baseline)",
    presets={"tiny": NGramConfig(order=3), "small": NGramConfig(order=5)},
    load_data=_ptb_sentences,
    build_model=_kneser_ney,
    published=Published(141.2, "141.2 test perplexity", "Mikolov et al. 2011"),
    task=Count(),
    metrics=(PERPLEXITY,),
    notes=("Fitted by counting in one pass (no epochs); the `small` preset is the paper's KN5.",),
)


# --- language models on a token stream: nplm-ptb, rnn-ptb, lstm-ptb, charlstm-shakespeare -------


@dataclass(frozen=True)
class StreamConfig(TrainConfig):
    """What every stream language model shares: (B, T) batches of a token stream."""

    bptt: int = check(35, ge=1)  # T: steps of truncated backpropagation through time per batch
    batch_size: int = 20  # B: parallel rows of the stream
    eval_batch_size: int = 10  # rows of the validation and test streams
    weight_decay: float = 0.0
    log_every: int = 100


@dataclass(frozen=True)
class RNNLMConfig(StreamConfig):
    RULES = ((("cutoffs",), strictly_increasing, "must be strictly increasing"),)

    cell: Literal["elman", "lstm"] = "lstm"  # recurrent unit
    n_layers: int = check(2, ge=1)  # stacked recurrent layers
    hidden_size: int = check(200, ge=1)  # units per layer
    embedding_size: int = check(0, ge=0)  # input word vector size (0: hidden_size)
    dropout: float = check(0.0, ge=0, lt=1)  # on non-recurrent connections (Zaremba et al. 2014)
    tie_weights: bool = False  # output weights = input embeddings
    softmax: Literal["full", "adaptive"] = "full"  # output layer over the vocabulary
    cutoffs: tuple[int, ...] = check(
        (2000,), items=Range(ge=1), min_len=1
    )  # adaptive softmax: where the tail clusters start
    init_range: float = check(0.1, ge=0)  # every weight uniform in [-r, r] (0: PyTorch's defaults)


@dataclass(frozen=True)
class NPLMConfig(StreamConfig):
    RULES = ((("cutoffs",), strictly_increasing, "must be strictly increasing"),)

    context: int = check(5, ge=1)  # n - 1 previous words
    embedding_size: int = check(100, ge=1)  # m: word feature vector size
    hidden_size: int = check(500, ge=1)  # tanh hidden units
    direct: bool = False  # direct connections from the features to the output
    dropout: float = check(0.0, ge=0, lt=1)  # on the features and the hidden layer
    softmax: Literal["full", "adaptive"] = "full"  # output layer over the vocabulary
    cutoffs: tuple[int, ...] = check(
        (2000,), items=Range(ge=1), min_len=1
    )  # adaptive softmax: where the tail clusters start


def _ptb_stream(config: TrainConfig) -> dict:
    from deepnets.data.ptb import load_ptb_ids

    vocab, splits = load_ptb_ids()
    return {"vocab": vocab, **splits}


def _shakespeare_stream(config: TrainConfig) -> dict:
    from deepnets.data.tinyshakespeare import load_tinyshakespeare_ids

    vocab, splits = load_tinyshakespeare_ids()
    return {"vocab": vocab, **splits}


_TINY_STREAM = dict(epochs=1, train_subset=20_000, log_every=10)  # tests: seconds
PTB_VOCAB_SIZE = 10_000  # Mikolov's Penn Treebank
SHAKESPEARE_VOCAB_SIZE = 65  # distinct characters of Tiny Shakespeare


def build_rnnlm(config: RNNLMConfig, vocab_size: int) -> nn.Module:
    from deepnets.models.rnn_lm import RNNLM

    return RNNLM(
        vocab_size,
        config.cell,
        config.n_layers,
        config.hidden_size,
        config.embedding_size or None,
        config.dropout,
        config.tie_weights,
        use_builtin=True,
        init_range=config.init_range or None,
        softmax=config.softmax,
        cutoffs=config.cutoffs,
    )


def _nplm(config: NPLMConfig) -> nn.Module:
    from deepnets.models.nplm import NPLM

    return NPLM(
        PTB_VOCAB_SIZE,
        config.context,
        config.embedding_size,
        config.hidden_size,
        config.direct,
        config.dropout,
        config.softmax,
        config.cutoffs,
    )


_PTB_NOTE = (
    "Perplexity on the test split of Mikolov's Penn Treebank (82,430 tokens with <eos>), the "
    "state carried through the stream in 10 rows."
)

NPLM_PTB = Experiment(
    id="nplm-ptb",
    title="Neural probabilistic language model (Bengio et al. 2003, ref 71)",
    presets={
        "tiny": NPLMConfig(
            **_TINY_STREAM,
            context=2,
            embedding_size=16,
            hidden_size=32,
            optimizer="adam",
            lr=1e-2,
            schedule="constant",
        ),
        "small": NPLMConfig(
            context=6,
            embedding_size=128,
            hidden_size=512,
            dropout=0.35,
            softmax="adaptive",
            epochs=10,
            batch_size=64,
            bptt=32,
            optimizer="adam",
            lr=2e-3,
            schedule="cosine",
            warmup=0.01,
            clip_grad_norm=1.0,
        ),
    },
    load_data=_ptb_stream,
    build_model=_nplm,
    published=Published(
        141.2,
        "below the KN5 baseline (the paper, on Brown: 252 against 312)",
        "target: KN5, Mikolov et al. 2011",
    ),
    task=LanguageModel(),
    metrics=(PERPLEXITY, LOSS),
    notes=(
        _PTB_NOTE,
        "The paper reports Brown and AP News, not PTB; the published column holds the KN5 "
        "perplexity the neural model must beat on PTB.",
        "`small`: 6 previous words, 128-dimensional word vectors, 512 tanh units, dropout 0.35, "
        "the exact adaptive softmax, 10 epochs of Adam on a cosine schedule.",
    ),
)

RNN_PTB = Experiment(
    id="rnn-ptb",
    title="Elman recurrent net language model, truncated BPTT (Fig. 5)",
    presets={
        "tiny": RNNLMConfig(
            **_TINY_STREAM,
            cell="elman",
            n_layers=1,
            hidden_size=32,
            lr=1.0,
            clip_grad_norm=0.25,
        ),
        "small": RNNLMConfig(
            cell="elman",
            n_layers=1,
            hidden_size=512,
            dropout=0.4,
            softmax="adaptive",
            epochs=12,
            batch_size=32,
            bptt=35,
            optimizer="adam",
            lr=1e-3,
            schedule="cosine",
            warmup=0.01,
            clip_grad_norm=0.5,
        ),
    },
    load_data=_ptb_stream,
    build_model=lambda config: build_rnnlm(config, PTB_VOCAB_SIZE),
    published=Published(124.7, "124.7 test perplexity (RNNLM)", "Mikolov et al. 2011"),
    task=LanguageModel(),
    metrics=(PERPLEXITY, LOSS),
    notes=(
        _PTB_NOTE,
        "`small`: one Elman layer of 512 tanh units, dropout 0.4, the exact adaptive softmax, "
        "12 epochs of Adam at 1e-3 on a cosine schedule, BPTT 35, batch 32.",
    ),
)

# Zaremba et al. 2014: SGD without momentum, gradient norm clipped to 5, batch 20, BPTT 35 for
# medium (20 for small), weights uniform in [-0.1, 0.1] (medium: 0.05), lr 1 halved (small) or
# multiplied by 1/1.2 (medium) every epoch after the first 4 (medium: 6). Their loss is summed
# over the T steps of a batch and averaged over its rows; ours is the mean over all B*T tokens,
# so the same steps take lr T and a clipping norm of 5 / T.


def _zaremba(bptt: int) -> dict:
    return dict(
        optimizer="sgd",
        momentum=0.0,
        nesterov=False,
        lr=1.0 * bptt,
        schedule="step",
        step_every=1,
        warmup=0.0,
        clip_grad_norm=5.0 / bptt,
        batch_size=20,
        bptt=bptt,
    )


LSTM_PTB = Experiment(
    id="lstm-ptb",
    title="Multi-layer LSTM language model with dropout (Zaremba et al. 2014, ref 79)",
    presets={
        "tiny": RNNLMConfig(
            **_TINY_STREAM,
            hidden_size=32,
            lr=1.0,
            clip_grad_norm=0.25,
        ),
        # Zaremba's small size (2 x 200) with the method changed: input and output word
        # vectors tied (Press & Wolf 2017) in an exact adaptive softmax (the 2,000 most frequent
        # words in the head: 13% of the training tokens fall in the tail), dropout, BPTT 35 and
        # a cosine learning-rate decay.
        "small": RNNLMConfig(
            n_layers=2,
            hidden_size=200,
            dropout=0.25,
            tie_weights=True,
            softmax="adaptive",
            cutoffs=(2000,),
            epochs=6,
            batch_size=20,
            bptt=35,
            optimizer="sgd",
            momentum=0.0,
            nesterov=False,
            lr=20.0,
            schedule="cosine",
            warmup=0.0,
            clip_grad_norm=0.25,
        ),
        "paper-small": RNNLMConfig(
            **_zaremba(20), hidden_size=200, epochs=13, decay_start=4, step_gamma=0.5
        ),
        # The medium net (2 x 650, dropout 0.5) with small's method: tied vectors, SGD at lr 20
        # clipped to 0.25, a cosine decay over 20 epochs instead of the paper's 39.
        "medium-tied": RNNLMConfig(
            n_layers=2,
            hidden_size=650,
            dropout=0.5,
            tie_weights=True,
            init_range=0.05,
            epochs=20,
            batch_size=20,
            bptt=35,
            optimizer="sgd",
            momentum=0.0,
            nesterov=False,
            lr=20.0,
            schedule="cosine",
            warmup=0.0,
            clip_grad_norm=0.25,
        ),
        "medium": RNNLMConfig(
            **_zaremba(35),
            hidden_size=650,
            dropout=0.5,
            init_range=0.05,
            epochs=39,
            decay_start=6,
            step_gamma=1 / 1.2,
        ),
    },
    load_data=_ptb_stream,
    build_model=lambda config: build_rnnlm(config, PTB_VOCAB_SIZE),
    published=Published(114.5, "114.5 test perplexity (small, 2x200)", "Zaremba et al. 2014"),
    published_by_preset={
        name: Published(82.7, "82.7 test perplexity (medium, 2x650)", "Zaremba et al. 2014")
        for name in ("medium", "medium-tied")
    },
    task=LanguageModel(),
    metrics=(PERPLEXITY, LOSS),
    headline=("small", "medium-tied"),
    notes=(
        _PTB_NOTE,
        "`small` keeps the paper's small net (2 x 200 LSTM) and changes the method: tied input "
        "and output word vectors in an exact adaptive softmax (head: the 2,000 most frequent "
        "words), dropout 0.25, BPTT 35, 6 epochs of SGD at lr 20 decayed on a "
        "cosine. `paper-small` and `medium` are the paper's settings (13 epochs of lr 1 halved "
        "after the 4th; 2 x 650 with dropout 0.5 for 39 epochs), their lr and clipping scaled "
        "to a loss averaged over tokens.",
        "`medium-tied` is the medium net with small's method (tied vectors, SGD at lr 20 clipped "
        "to 0.25, cosine decay) over 20 epochs; its row is from a GPU.",
    ),
)

CHARLSTM_SHAKESPEARE = Experiment(
    id="charlstm-shakespeare",
    title="Character-level LSTM on Tiny Shakespeare (next-character prediction, ref 83)",
    presets={
        "tiny": RNNLMConfig(
            **_TINY_STREAM,
            hidden_size=32,
            lr=1e-2,
            optimizer="adam",
            schedule="constant",
            bptt=50,
        ),
        "small": RNNLMConfig(
            n_layers=2,
            hidden_size=512,
            embedding_size=64,
            dropout=0.2,
            epochs=5,
            batch_size=32,
            bptt=100,
            optimizer="adam",
            lr=2e-3,
            schedule="cosine",
            warmup=0.02,
            clip_grad_norm=1.0,
            select="last",
        ),
    },
    load_data=_shakespeare_stream,
    build_model=lambda config: build_rnnlm(config, SHAKESPEARE_VOCAB_SIZE),
    published=Published(1.47, "~1.47 nats/char validation loss", "char-rnn (Karpathy 2015)"),
    task=LanguageModel(),
    metrics=(Metric("loss", False, "nats/char", digits=3), PERPLEXITY),
    notes=(
        "Tiny Shakespeare has no test split: the number is the validation loss (the last 10% of "
        "the text) in nats per character, of the last weights (no selection on it).",
    ),
)
