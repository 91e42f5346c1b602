"""Checkpoints with no pickle: weights and optimizer tensors in safetensors, the rest in JSON.

`checkpoint.safetensors` holds the model (`model.*`) and optimizer (`optimizer.*`) tensors and,
in its metadata, the training state as JSON, so weights and state are replaced together by one
atomic rename. `checkpoint.json` is the same state, written after it, for people and tools.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from deepnets import DeepnetsError

CHECKPOINT = "checkpoint.safetensors"
STATE = "checkpoint.json"
BEST = "best.safetensors"


def _replace_atomically(path: Path, write) -> None:
    """Write a temporary file beside `path` with `write(tmp)`, fsync it, rename it over `path`.
    On any failure (a full disk, say) the temporary file is removed and `path` is untouched."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _replace_atomically(path, lambda tmp: Path(tmp).write_text(text))


def _atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    _replace_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as separate CPU tensors: a tensor shared by two names (tied embeddings) is
    stored once under each name, since safetensors refuses shared memory."""
    tensors, seen = {}, set()
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if value.data_ptr() in seen:
            value = value.clone()
        seen.add(value.data_ptr())
        tensors[key] = value
    return tensors


def _optimizer_split(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer state dict into tensors (`optimizer.<param>.<name>`) and JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            elif value is not None:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Write the model, optimizer and training state so that a crash never leaves half a file."""
    tensors = {f"model.{k}": v for k, v in model_tensors(model).items()}
    opt_tensors, opt_meta = _optimizer_split(optimizer)
    tensors.update(opt_tensors)
    full_state = {**state, "optimizer": opt_meta}
    _atomic_save_tensors(run_dir / CHECKPOINT, tensors, {"state": json.dumps(full_state)})
    atomic_write_text(run_dir / STATE, json.dumps(state, indent=2) + "\n")


def load_checkpoint(run_dir: Path) -> tuple[dict, dict, dict]:
    """Return (model state dict, optimizer state dict, training state) of a run folder."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise DeepnetsError(
            f"{run_dir} has no {CHECKPOINT}: it is not a run folder, or it "
            "stopped before its first epoch ended"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensors = load_file(str(path))
        state = json.loads(meta["state"])
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise DeepnetsError(f"{path} cannot be read as a deepnets checkpoint: {err}") from None
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    opt_tensors = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    optimizer_state = _optimizer_join(opt_tensors, state.pop("optimizer"))
    return model_state, optimizer_state, state


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Named tensors and a JSON state in one safetensors file, replaced atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_save_tensors(path, tensors, {"state": json.dumps(state)})


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and JSON state that `save_tensors` wrote."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        return load_file(str(path)), json.loads(meta["state"])
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise DeepnetsError(f"{path} cannot be read as a deepnets checkpoint: {err}") from None


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, str]) -> None:
    _atomic_save_tensors(path, model_tensors(model), metadata)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise DeepnetsError(f"{path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise DeepnetsError(f"{path} cannot be read as safetensors weights: {err}") from None
