"""torch.distributed helpers for DDP trials: world, init from the environment, reductions that every rank agrees on."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env() -> tuple[int, int]:
    """Join the process group from RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT (nccl on CUDA, else gloo)."""
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_device())
        dist.init_process_group("nccl" if cuda else "gloo")
    return world()


def local_device() -> torch.device:
    """The CUDA device of this rank on its node (LOCAL_RANK, modulo the visible GPUs)."""
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % max(1, torch.cuda.device_count()))


def all_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of `x` over all ranks (a new tensor; `x` itself when not distributed)."""
    if world()[1] == 1:
        return x
    out = x.detach().clone()
    dist.all_reduce(out)
    return out


def broadcast_object(obj=None, src: int = 0):
    """Rank `src`'s `obj` on every rank."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def sync_buffers(*modules: torch.nn.Module | None) -> None:
    """Copy rank 0's buffers (BatchNorm statistics, ...) to every rank, so evaluation and checkpoints agree."""
    if world()[1] == 1:
        return
    for m in modules:
        for b in m.buffers() if m is not None else ():
            dist.broadcast(b, 0)


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if world()[1] > 1:
        dist.barrier()
