"""Which results row the README and `deepnets list` show for a preset: one that measured the
preset as it stands, never a row measured before the preset changed."""

import dataclasses

from deepnets.experiments.mnist import CONVNET_DIGITS
from deepnets.results import bench_row, headline_rows, is_headline, recipe


def _summary(value: float, seed: int, epochs: int) -> dict:
    return {
        "value": value,
        "seed": seed,
        "epochs": epochs,
        "wall_seconds": 1.0,
        "device": "cpu",
        "torch": "x",
        "commit": "c",
        "selected": "best_val",
    }


def _with_small(**changes):
    small = dataclasses.replace(CONVNET_DIGITS.preset("small"), **changes)
    return dataclasses.replace(CONVNET_DIGITS, presets={**CONVNET_DIGITS.presets, "small": small})


def test_a_row_stops_being_the_headline_when_its_preset_changes():
    epochs = CONVNET_DIGITS.preset("small").epochs
    row = bench_row(CONVNET_DIGITS, "small", [_summary(0.9, 0, epochs), _summary(0.92, 1, epochs)])
    assert row["recipe"] and is_headline(CONVNET_DIGITS, row, "small")
    longer = _with_small(epochs=2 * epochs)
    assert not is_headline(longer, row, "small")  # measured 'small' before it was lengthened
    assert not is_headline(_with_small(lr=0.5), row, "small")  # any other field too
    assert headline_rows(longer, [row]) == [("small", None)]
    # a row measured with the new preset is its headline; the old row stays in RESULTS.md only
    new = bench_row(longer, "small", [_summary(0.95, 0, 2 * epochs)])
    assert headline_rows(longer, [row, new]) == [("small", new)]
    # run flags do not change the recipe
    assert recipe(_with_small(eval_batch_size=7).preset("small")) == row["recipe"]


def test_a_row_older_than_fingerprints_is_checked_by_its_epochs():
    epochs = CONVNET_DIGITS.preset("small").epochs
    row = bench_row(CONVNET_DIGITS, "small", [_summary(0.9, 0, epochs)]) | {"recipe": ""}
    assert is_headline(CONVNET_DIGITS, row, "small")
    assert not is_headline(_with_small(epochs=2 * epochs), row, "small")
    # a config that may stop early can end before its epochs: not held against the row
    early = _with_small(epochs=2 * epochs, stop_at=0.99)
    assert is_headline(early, row, "small")
