"""Device choice and data-parallel set-up: one process per device under `torchrun` (DDP).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process.
The backend is gloo on CPU and nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deepnets import DeepnetsError


@dataclass(frozen=True)
class Context:
    rank: int  # this process's index among all processes
    world_size: int  # number of processes
    device: torch.device  # where this process trains

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeepnetsError("--device cuda was asked for, but torch sees no CUDA device")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "cpu":
        return torch.device("cpu")
    raise DeepnetsError(f"unknown device {name!r}; use auto, cpu or cuda")


def launch() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) for a plain process."""
    env = os.environ
    return (
        int(env.get("RANK", "0")),
        int(env.get("WORLD_SIZE", "1")),
        int(env.get("LOCAL_RANK", "0")),
    )


def is_main_process() -> bool:
    """Whether this process writes files and prints (rank 0, or no torchrun at all)."""
    return launch()[0] == 0


def setup(device_name: str) -> Context:
    """Start the process group when launched by torchrun; return this process's context."""
    rank, world_size, local_rank = launch()
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world_size, device)


def barrier(ctx: Context) -> None:
    if ctx.world_size > 1:
        dist.barrier()


def mean_over_ranks(ctx: Context, value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over all ranks, so that every rank takes the same decision on it."""
    if ctx.world_size == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / ctx.world_size


def agree(ctx: Context, flag: bool) -> bool:
    """Rank 0's decision (to stop, say), given to every rank."""
    if ctx.world_size == 1:
        return flag
    value = torch.tensor([int(flag)], device=ctx.device)
    dist.broadcast(value, 0)
    return bool(value.item())


def teardown(ctx: Context) -> None:
    if ctx.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
