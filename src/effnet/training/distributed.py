"""torch.distributed from torchrun's environment, a rank-sharded sampler, rank-0-only output.

``torchrun --nproc_per_node N -m effnet train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous variables; without them everything runs as a single process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from effnet.training.data import sample_seed


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
        return torch.device("cuda", local_rank) if requested == "cuda" else torch.device(requested)
    return torch.device(requested)


def setup_distributed(requested_device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's variables (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=pick_device(requested_device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank, device)


def match_grad_layout(model: torch.nn.Module) -> torch.nn.Module:
    """Lay out depthwise conv weights ``(C, 1, k, k)`` the way their gradients come back, before DDP wraps them.

    A size-1 dimension makes a tensor contiguous under any stride for it, and the conv backward returns
    the depthwise weight gradient with channels-last strides ``(k*k, 1, k, 1)`` while the parameter was made
    with ``(k*k, k*k, k, 1)``. DDP's bucket views copy the parameter's strides, so every step it warned
    "Grad strides do not match bucket view strides" and copied each such gradient once more. Same values,
    new strides (``.contiguous(memory_format=...)`` would return the tensor itself: it already counts as both).
    """
    for param in model.parameters():
        if param.dim() == 4 and param.shape[1] == 1:
            channels_last = torch.empty_strided(param.shape, _channels_last_strides(param.shape),
                                                dtype=param.dtype, device=param.device)
            param.data = channels_last.copy_(param.data)
    return model


def _channels_last_strides(shape: torch.Size) -> tuple[int, int, int, int]:
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class ShardedEpochSampler(Sampler):
    """DistributedSampler's sharding, plus per-sample augmentation seeds and mid-epoch resume.

    Each epoch is a permutation drawn from ``(seed, epoch)``; rank ``r`` takes positions
    ``r, r + world, ...``, so global batch ``i`` (the union over ranks of their batch ``i``) is
    the same set of images for any world size. Yields ``(index, augmentation_seed)`` pairs;
    ``start`` skips the first samples of this rank's shard (a resumed epoch).
    """

    def __init__(self, size: int, info: DistInfo, seed: int, shuffle: bool = True, pad: bool = True) -> None:
        self.size, self.info, self.seed, self.shuffle, self.pad = size, info, seed, shuffle, pad
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _positions(self) -> list[int]:
        world = self.info.world_size
        if self.pad:  # DistributedSampler's padding: every rank gets the same count
            total = -(-self.size // world) * world
            return list(range(self.info.rank, total, world))
        return list(range(self.info.rank, self.size, world))

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self._order()
        for pos in self._positions()[self.start:]:
            yield order[pos % self.size], sample_seed(self.seed, self.epoch, pos)

    def __len__(self) -> int:
        return max(0, len(self._positions()) - self.start)


def print0(info: DistInfo, *args: object, **kwargs: object) -> None:
    if info.is_main:
        print(*args, **kwargs)
