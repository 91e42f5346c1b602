"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4): the review's claim that
LSTMs remember over long delays where plain recurrent nets fail. `adding-rnn` is a plain tanh
RNN, `adding-lstm` an LSTM; both see the same data, the same optimiser and the same budget at
every lag, and differ in the recurrent cell and its learning rate (`CELL_LR`, chosen per cell
by short probes; see NOTES).

Each experiment has a preset `lag-T` for every T in `ADDING_LAGS` (sequences of T steps; the
two marked values sit one in each half, so the first must be held for T/2 to T steps), `small`
(= lag-50) and `tiny` (tests). A lag is solved when the test mean squared error is below 0.01;
predicting the constant 1 scores 0.167.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn

from deepnets.config import TrainConfig, check
from deepnets.data.adding import AddingBatch, adding_batch, fixed_adding_set
from deepnets.experiments.base import Experiment, Metric, Published
from deepnets.train.regress_sequence import CLOSE, METRIC, TOLERANCE, RegressSequenceTask

ADDING_LAGS = (10, 25, 50, 100, 200)  # sequence lengths T with a `lag-T` preset
CELL_LR = {"rnn": 3e-3, "lstm": 1e-2}  # Adam step size of each cell (see NOTES)
SOLVED_MSE = 0.01  # a lag is solved when the test MSE is below this


@dataclass(frozen=True)
class AddingConfig(TrainConfig):
    cell: Literal["rnn", "lstm"] = "lstm"  # plain tanh RNN, or LSTM
    length: int = check(50, ge=2)  # T: steps per sequence (one marker in each half)
    hidden: int = check(128, ge=1)  # recurrent units
    forget_bias: float = check(1.0, ge=-10, le=10)  # LSTM: initial forget-gate bias (RNN: unused)
    sequences_per_epoch: int = check(10_000, ge=1)  # training sequences between validations
    val_size: int = check(1000, ge=1)  # fixed validation sequences (selection, early stop)
    test_size: int = check(2000, ge=1)  # fixed test sequences
    data_seed: int = check(1234, ge=0)  # seeds the fixed validation and test sets
    optimizer: Literal["sgd", "adam"] = "adam"  # Adam for both cells
    lr: float = check(1e-2, gt=0)  # Adam's step size, constant (per cell: CELL_LR)
    weight_decay: float = check(0.0, ge=0)  # no L2 penalty
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "constant"  # lr over steps
    warmup: float = check(0.0, ge=0, lt=1)  # no warm-up
    clip_grad_norm: float = check(1.0, ge=0)  # clip the global gradient norm at 1
    batch_size: int = check(50, ge=1)  # sequences per training step
    epochs: int = check(25, ge=1)  # validations: epochs x sequences_per_epoch sequences at most
    eval_batch_size: int = check(1000, ge=1)  # unused: the fixed sets come in batches of 1000
    log_every: int = check(50, ge=1)  # steps between metrics.jsonl lines
    stop_at: float = check(0.002, ge=0)  # stop once the validation MSE is at most this


def draw_adding(config: AddingConfig, generator: torch.Generator, size: int) -> AddingBatch:
    """One training batch of the config's length."""
    return adding_batch(size, config.length, generator)


def load_adding(config: AddingConfig) -> dict:
    """The fixed validation and test sets."""
    return {
        "val": fixed_adding_set(config.val_size, config.length, config.data_seed),
        "test": fixed_adding_set(config.test_size, config.length, config.data_seed + 1),
    }


class LastStepRegressor(nn.Module):
    """One recurrent layer and a linear read-out of its last state:

        h_t = tanh(W x_t + U h_{t-1} + b)            (cell "rnn")
        h_t, c_t = LSTM(x_t, h_{t-1}, c_{t-1})       (cell "lstm", torch.nn.LSTM's gates)
        y = w . h_T + b_y                            (the predicted sum)

    Both use PyTorch's default initialisation (uniform in +-1/sqrt(hidden)); the LSTM's forget
    gate bias starts at `forget_bias` (Gers et al. 2000; Jozefowicz et al. 2015).
    """

    def __init__(self, cell: str, n_in: int, hidden: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        if cell == "lstm":
            self.rnn: nn.Module = nn.LSTM(n_in, hidden, batch_first=True)
            with torch.no_grad():  # gates ordered i, f, g, o; b_ih + b_hh is the forget bias
                self.rnn.bias_ih_l0[hidden : 2 * hidden].fill_(forget_bias)
                self.rnn.bias_hh_l0[hidden : 2 * hidden].zero_()
        elif cell == "rnn":
            self.rnn = nn.RNN(n_in, hidden, batch_first=True, nonlinearity="tanh")
        else:
            raise ValueError(f"unknown cell {cell!r}")
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(x)  # (B, T, hidden)
        return self.readout(states[:, -1])  # (B, 1): y = w . h_T + b_y


def build_adding(config: AddingConfig) -> nn.Module:
    return LastStepRegressor(config.cell, 2, config.hidden, config.forget_bias)


MSE = Metric(METRIC, False, "MSE", digits=4)
CLOSE_METRIC = Metric(CLOSE, True, f"of sequences within {TOLERANCE}", percent=True, digits=1)
PUBLISHED = Published(
    SOLVED_MSE,
    "solved: test MSE below 0.01 (the constant guess 1 scores 0.167); no paper number for this "
    "exact setting. Hochreiter & Schmidhuber 1997 (exp. 4) solve the adding problem with LSTM "
    "at minimal lags of 100, 500 and 1000 steps",
    "Hochreiter & Schmidhuber 1997",
    target=True,
)

TINY = AddingConfig(
    length=10,
    hidden=16,
    sequences_per_epoch=640,
    val_size=200,
    test_size=200,
    epochs=2,
    log_every=4,
)
LAGS = {f"lag-{t}": AddingConfig(length=t) for t in ADDING_LAGS}  # 5,000 steps at most each

NOTES = (
    "Adding problem (Hochreiter & Schmidhuber 1997, exp. 4, in the form of Le et al. 2015 and "
    "Arjovsky et al. 2016): T steps of (value ~ U(0,1), marker); one marked step drawn "
    "uniformly in each half of the sequence; the target is the sum of the two marked values, "
    "predicted from the last step. Mean squared error on 2,000 fixed test sequences; 0.167 is "
    "the constant guess, below 0.01 is solved.",
    "Both cells: one layer of 128 units (RNN 17,025 weights, LSTM 67,713; forget-gate bias 1) "
    "and a linear read-out of the last state; Adam at a constant rate, gradient norm clipped "
    "at 1, batches of 50, at most 5,000 steps (250,000 sequences) at every lag, validated on "
    "1,000 fixed sequences every 200 steps and stopped once the validation MSE reaches 0.002; "
    "the tested weights are the best on validation.",
    "The learning rate is set per cell, from short probes (seed 0): the RNN at 1e-2 stays at "
    "the constant guess even at T = 10 while 1e-3 and 3e-3 solve it (3e-3 faster), so the RNN "
    "uses 3e-3; the LSTM at 1e-3 was still at the constant guess after 3,800 steps at T = 200 "
    "while 1e-2 solved it in 2,200, so the LSTM uses 1e-2.",
    "The RNN's rate was chosen at T = 10 only; the rows `lag-T+lr=0.001` rerun the RNN at 1e-3 "
    "with the same budget: it does better at T = 25 (MSE 0.013, just short of solved) and on "
    "one seed of three at T = 50 (0.057), and stays at the constant guess at T = 100 and 200.",
)


def _experiment(id_: str, title: str, cell: str) -> Experiment:
    presets = {"tiny": TINY, "small": LAGS["lag-50"], **LAGS}
    return Experiment(
        id=id_,
        title=title,
        presets={n: replace(c, cell=cell, lr=CELL_LR[cell]) for n, c in presets.items()},
        load_data=load_adding,
        build_model=build_adding,
        task=RegressSequenceTask(draw_adding),
        published=PUBLISHED,
        metrics=(MSE, CLOSE_METRIC),
        headline=tuple(LAGS),
        notes=NOTES,
    )


ADDING_RNN = _experiment("adding-rnn", "Plain tanh RNN: the adding problem over long lags", "rnn")
ADDING_LSTM = _experiment("adding-lstm", "LSTM: the adding problem over long lags (ref 79)", "lstm")
