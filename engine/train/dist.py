"""Distributed training under torchrun: detected from its environment variables.

One process per device; gradients are averaged by DistributedDataParallel.
On CPU the gloo backend runs the same code, which is how it is tested here.
Only rank 0 writes events, previews, metrics and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_environment() -> DistInfo:
    """torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; a plain run has none of them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def resolve_device(requested: str, info: DistInfo) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return torch.device(requested)


def start(info: DistInfo, device: torch.device) -> None:
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)


def wait_for_all(info: DistInfo) -> None:
    """Return when every rank is here: ranks then leave the group together, so none
    tears down its connections while another still uses them (gloo aborts on that)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()


def stop(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_agree(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when any rank says True (e.g. 'stop now', 'loss went NaN')."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
