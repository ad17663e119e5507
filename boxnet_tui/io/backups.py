"""Backups of the curated files a pick replaced, restorable byte for byte.

A pick told to overwrite a curated micrograph first copies what it replaces:
``matching/.backup/<root>_<suffix>.<stamp>.star`` and ``mask/.backup/<root>.<stamp>.tif``
(``<stamp>`` is the local time, ``20250131-142501``, with ``-2``, ``-3`` ... on a clash).
Restoring copies a backup back over the file, and keeps the file it replaces as a backup too
(``<stamp>.before-restore``), so a restore is undone by restoring again.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.io.atomic import atomic_write_bytes

STAMP = "%Y%m%d-%H%M%S"
BEFORE_RESTORE = "before-restore"
_NAME = re.compile(
    rf"^(?P<stem>.+)\.(?P<stamp>\d{{8}}-\d{{6}})(?:-(?P<n>\d+))?(?P<tag>\.{BEFORE_RESTORE})?$"
)


@dataclass(frozen=True)
class Backup:
    """One backup: its file, the file it restores, and when it was made."""

    path: Path
    original: Path
    stamp: str
    n: int = 1
    before_restore: bool = False  # what a restore replaced (not a curated file)

    @property
    def when(self) -> str:
        """``2025-01-31 14:25:01``."""
        return dt.datetime.strptime(self.stamp, STAMP).strftime("%Y-%m-%d %H:%M:%S")


def back_up(path: str | os.PathLike[str], *, before_restore: bool = False) -> Path:
    """Copy ``path`` into ``<its folder>/.backup/`` (atomically) and return the copy.

    Raises:
        OSError: it cannot be read or the copy cannot be written.
    """
    path = Path(path)
    data = path.read_bytes()
    directory = layout.backup_dir(path.parent)
    stamp = dt.datetime.now().strftime(STAMP)
    tag = f".{BEFORE_RESTORE}" if before_restore else ""
    target, n = directory / f"{path.stem}.{stamp}{tag}{path.suffix}", 1
    while target.exists():
        n += 1
        target = directory / f"{path.stem}.{stamp}-{n}{tag}{path.suffix}"
    atomic_write_bytes(target, data)
    return target


def _parse(path: Path) -> Backup | None:
    match = _NAME.match(path.stem)
    if match is None:
        return None
    original = path.parent.parent / f"{match['stem']}{path.suffix}"
    return Backup(path, original, match["stamp"], int(match["n"] or 1), bool(match["tag"]))


def list_backups(folder: str | os.PathLike[str]) -> list[Backup]:
    """Every backup of the folder's picks and masks, newest first."""
    found = []
    for directory in (layout.matching_dir(folder), layout.mask_dir(folder)):
        backups = layout.backup_dir(directory)
        if not backups.is_dir():
            continue
        for path in backups.iterdir():
            backup = _parse(path) if path.is_file() else None
            if backup is not None:
                found.append(backup)
    return sorted(found, key=lambda b: (b.stamp, b.n, b.path.name), reverse=True)


def find_backup(folder: str | os.PathLike[str], name: str | os.PathLike[str]) -> Backup:
    """The backup ``name`` is (a backup's path or file name), or the newest backup of the
    file named ``name`` (``mic1_BoxNet.star``, ``mic1.tif``).

    Raises:
        UserError: there is none.
    """
    backups = list_backups(folder)
    wanted = Path(name)
    for backup in backups:
        if backup.path.name == wanted.name and (
            wanted.parent == Path(".") or backup.path.resolve() == wanted.resolve()
        ):
            return backup
    for backup in backups:
        if backup.original.name == wanted.name:
            return backup
    raise UserError(
        f"no backup of {wanted.name} in {Path(folder)}; `boxnet-tui restore FOLDER` lists them"
    )


def restore_backup(folder: str | os.PathLike[str], name: str | os.PathLike[str]) -> Backup:
    """Copy a backup (see :func:`find_backup`) back over its file, atomically; the file it
    replaces is backed up first.

    Raises:
        UserError: no such backup.
        OSError: it cannot be read or written.
    """
    backup = find_backup(folder, name)
    data = backup.path.read_bytes()
    if backup.original.exists():
        back_up(backup.original, before_restore=True)
    atomic_write_bytes(backup.original, data)
    return backup


def backup_root(folder: str | os.PathLike[str], backup: Backup) -> str | None:
    """The micrograph root whose picks or mask ``backup`` restores (None if none is here)."""
    from boxnet_tui.io.micrographs import scan_folder

    roots = frozenset(path.stem for path in scan_folder(folder))
    if backup.original.parent.name == layout.MASK:
        return backup.original.stem if backup.original.stem in roots else None
    return layout.longest_root(backup.original.stem, roots)
