"""Shards of a folder: ``pick --shard K/N`` takes the micrographs whose root hashes to K.

A micrograph belongs to shard ``sha1(root) mod N``: the share is fixed by the micrograph's own
name, not by its place in a listing, so N processes (a SLURM array, one process a GPU) split a
folder with no coordination, and a micrograph that appears later joins one shard without
moving any other. Every micrograph is in exactly one shard for any N; shards are even to within
chance (N=16 over 50,000 micrographs: about 3,125 each, ± 2 %), less so on a few micrographs.
The root (the name without its extension) decides, so ``a.mrc`` and ``a.tif``, which share the
pick file ``a_<suffix>.star``, are never picked by two processes at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from boxnet_tui.errors import UserError


def shard_of(root: str, count: int) -> int:
    """The shard (0 to ``count`` - 1) of the micrograph ``root``."""
    digest = hashlib.sha1(root.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based, as ``$SLURM_ARRAY_TASK_ID`` of ``--array=0-N``)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UserError(
                f"shard {self.index}/{self.count}: K/N needs N >= 1 and 0 <= K < N "
                "(shards count from 0: a SLURM array --array=0-15 with N=16)"
            )

    @property
    def whole(self) -> bool:
        """True for ``0/1``: the whole folder."""
        return self.count == 1

    @property
    def tag(self) -> str:
        """``3-of-16``: for file names; ``all`` for the whole folder."""
        return "all" if self.whole else f"{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, root: str) -> bool:
        return self.whole or shard_of(root, self.count) == self.index

    def select(self, paths: Iterable[Path]) -> list[Path]:
        """The micrographs of ``paths`` in this shard, in their order."""
        return [path for path in paths if self.owns(path.stem)]


def parse_shard(text: str) -> Shard:
    """``K/N`` -> Shard(K, N).

    Raises:
        UserError: not two whole numbers ``K/N`` with 0 <= K < N.
    """
    index, slash, count = text.strip().partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise UserError(
            f"--shard {text!r}: give K/N, two whole numbers, e.g. 3/16 "
            "(in a SLURM array: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
        )
    return Shard(int(index), int(count))
