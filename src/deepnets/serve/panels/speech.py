"""Upload a spoken digit (or a string of them) as a WAV: the recognised digits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepnets import DeepnetsError
from deepnets.serve.inputs import MAX_WAV_SECONDS, Inputs
from deepnets.serve.panels import Action, Panel


@dataclass(frozen=True)
class Recogniser:
    experiment: Any
    config: Any
    model: torch.nn.Module
    mean: np.ndarray  # (n_mels,) the training statistics the features are standardised with
    std: np.ndarray


def load(path: Path) -> Recogniser:
    from deepnets.data.fsdd import training_statistics
    from deepnets.run import load_model

    experiment, config, model = load_model(path, device="cpu")
    if experiment.id == "tdnn-fsdd":
        if config.normalise == "global":
            mean, std = training_statistics(config.val_size, config.n_mels)
        else:
            mean, std = np.zeros(config.n_mels), np.ones(config.n_mels)
    else:  # ctc-digits: the statistics of its training strings
        train = experiment.load_data(config)["train"]
        mean, std = train.mean, train.std
    return Recogniser(experiment, config, model, mean, std)


@torch.no_grad()
def recognise(loaded: Recogniser, inputs: Inputs) -> dict:
    from deepnets.data.fsdd import SAMPLE_RATE, fix_length, log_mel, read_wav

    audio = read_wav(inputs.file("WAV recording"))
    if len(audio) > MAX_WAV_SECONDS * SAMPLE_RATE:
        raise DeepnetsError(f"the recording is longer than {MAX_WAV_SECONDS:g} s")
    config = loaded.config
    features = log_mel(audio, config.n_mels)  # (T, n_mels)
    if loaded.experiment.id == "tdnn-fsdd":
        if config.normalise == "utterance":
            features = (features - features.mean(0)) / (features.std(0) + 1e-5)
        else:
            features = (features - loaded.mean) / loaded.std
        x = torch.from_numpy(fix_length(features, config.frames, 0.0).astype(np.float32))
        probs = loaded.model(x[None]).float().softmax(-1)[0]  # (10,)
        order = probs.argsort(descending=True).tolist()
        return {"digits": str(order[0]), "classes": [[str(i), float(probs[i])] for i in order]}
    from deepnets.models.ctc import prefix_beam_search

    x = torch.from_numpy(((features - loaded.mean) / loaded.std).astype(np.float32))
    log_probs, lengths = loaded.model(x[None], torch.tensor([len(x)]))  # (1, T', 11), (1,)
    labels = prefix_beam_search(log_probs[0, : int(lengths[0])], max(1, config.beam_width))
    return {"digits": "".join(str(label - 1) for label in labels)}  # label d + 1 is digit d


PANEL = Panel(
    name="speech",
    title="Recognise spoken digits",
    experiments=("tdnn-fsdd", "ctc-digits"),
    load=load,
    actions={"recognise": Action(recognise, body="upload")},
)
