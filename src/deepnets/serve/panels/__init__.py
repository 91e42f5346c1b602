"""The "try a model" panels: one small module each plus its page fragment.

A panel is a `Panel` record: the experiments whose runs it serves, how a run is loaded for it
(`load`, cached by the server) and its actions. An action takes the loaded run and the request's
`Inputs` and returns a JSON-able dict, or an iterator of dicts that the server streams as
newline-delimited JSON. The page fragment `static/panels/<name>.js` registers
`DeepnetsPanels[name] = (element, run, api) => ...` and draws the panel into `element`.

To add a panel for a new system: write `panels/<name>.py` with its `PANEL`, the fragment
`static/panels/<name>.js`, and add the record to `PANELS` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from deepnets.serve.inputs import Inputs


@dataclass(frozen=True)
class Action:
    run: Callable[[Any, Inputs], Any]  # (loaded run, inputs) -> dict, or an iterator of dicts
    body: Literal["json", "upload"] = "json"  # what the request carries


@dataclass(frozen=True)
class Panel:
    name: str  # also its page fragment's name, static/panels/<name>.js
    title: str
    experiments: tuple[str, ...]  # the experiment ids whose runs it serves
    load: Callable[[Path], Any]  # a run folder -> what the actions use (cached)
    actions: dict[str, Action]


def _panels() -> tuple[Panel, ...]:
    from deepnets.serve.panels import (
        algorithmic,
        caption,
        digits,
        dqn,
        glimpses,
        language,
        memory,
        photo,
        speech,
        translation,
        words,
    )

    return (
        digits.PANEL,
        photo.PANEL,
        language.PANEL,
        words.PANEL,
        speech.PANEL,
        translation.PANEL,
        caption.PANEL,
        memory.PANEL,
        algorithmic.PANEL,
        glimpses.PANEL,
        dqn.PANEL,
    )


PANELS: tuple[Panel, ...] = _panels()


def panels_for(experiment_id: str) -> list[Panel]:
    return [p for p in PANELS if experiment_id in p.experiments]
