"""Multi-process training with torch.distributed, when launched by torchrun.

torchrun starts one process per GPU (or per CPU worker) and sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``. With ``WORLD_SIZE`` > 1 the process group is joined (NCCL on CUDA, gloo on
the CPU), rank r trains on ``cuda:LOCAL_RANK``, the network is wrapped in
DistributedDataParallel and each rank draws its own share of every batch from its own random
stream. Only rank 0 writes files; the others wait for it at barriers.

Without torchrun (no ``WORLD_SIZE`` or 1) every helper here is a no-op, and single-process
behaviour is unchanged.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import distributed as dist

# Rank 0 calibrates, saves and checks the held-out micrograph while the others wait at a
# barrier; the default timeouts (10 min NCCL, 30 min gloo) are too short for a slow disk.
TIMEOUT = dt.timedelta(hours=2)

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """Where this process stands among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment (one process without torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    rank = int(os.environ.get("RANK", "0"))
    return World(rank, size, int(os.environ.get("LOCAL_RANK", str(rank))))


def current_world() -> World:
    """The world of the joined process group, or one process when none is joined."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        rank = dist.get_rank()
        return World(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", str(rank))))
    return World()


def setup(device: torch.device | str) -> tuple[World, torch.device]:
    """Join the process group if torchrun asks for more than one process (idempotent).

    Returns:
        The world and this rank's device: ``cuda:LOCAL_RANK`` for CUDA, else ``device``.
    """
    device = torch.device(device)
    world = world_from_env()
    if not world.distributed:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
        atexit.register(shutdown)
    return current_world(), device


def shutdown() -> None:
    """Leave the process group (no-op when none is joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """Where collective tensors must live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank if ``flag`` is true on any (a stop request reaches all ranks)."""
    if not world.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(values: list[float], world: World) -> list[float]:
    """Each value averaged over the ranks (NaN where a rank has no value is skipped)."""
    if not world.distributed:
        return values
    data = torch.tensor(
        [[0.0 if v != v else v, 0.0 if v != v else 1.0] for v in values],
        dtype=torch.float64,
        device=_collective_device(),
    )
    dist.all_reduce(data)
    sums, counts = data[:, 0].tolist(), data[:, 1].tolist()
    return [s / c if c else float("nan") for s, c in zip(sums, counts, strict=True)]


def gather(value: T, world: World) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not world.distributed:
        return [value]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def broadcast(value: T, world: World) -> T:
    """Rank 0's ``value`` on every rank."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class RankFailed(RuntimeError):
    """Another rank's step failed (``kind``: its exception's class name)."""

    def __init__(self, rank: int, kind: str, message: str) -> None:
        super().__init__(f"rank {rank}: {message}" if message else f"rank {rank}: {kind}")
        self.rank, self.kind = rank, kind


def together(action: Callable[[], T], world: World) -> T:
    """Run ``action`` on every rank; if it fails on one, fail on all, so that no rank is left
    waiting at the next collective for a rank that has gone.

    Raises:
        The rank's own exception; on a rank whose action succeeded, :class:`RankFailed` for
        the first rank that failed.
    """
    result: Any = None
    error: BaseException | None = None
    try:
        result = action()
    except Exception as exc:
        error = exc
    if world.distributed:
        failure = None if error is None else (type(error).__name__, str(error))
        failures = gather(failure, world)
        if error is None:
            for rank, other in enumerate(failures):
                if other is not None:
                    raise RankFailed(rank, *other)
    if error is not None:
        raise error
    return result


def batch_share(batch_size: int, world: World, minimum: int = 1) -> int:
    """This rank's share of a batch of ``batch_size`` (the first ranks take the remainder);
    at least ``minimum``, so with more ranks than examples the effective batch grows."""
    share = batch_size // world.size + (1 if world.rank < batch_size % world.size else 0)
    return max(minimum, share)


def wrap(network: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module:
    """The network wrapped in DistributedDataParallel (itself with one process)."""
    if not world.distributed:
        return network
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=ids, output_device=ids[0] if ids else None)
