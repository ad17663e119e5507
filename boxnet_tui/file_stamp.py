"""A file's stamp: whether it changed since it was last looked at, without reading it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple


class FileStamp(NamedTuple):
    mtime_ns: int
    size: int
    inode: int  # a rename over the file (every atomic write) gives it a new one


NEVER = FileStamp(-1, -1, -1)  # matches no file: for "failed as it was", where it was gone


def file_stamp(path: Path, *, unreadable_is_gone: bool = False) -> FileStamp | None:
    """The stamp of ``path``, or None when it does not exist.

    ``unreadable_is_gone``: any OSError (permissions, a vanished mount) counts as gone, as a
    folder listing wants; otherwise only a missing file does and the rest is raised, as an
    editor that must not mistake an unreadable file for a deleted one wants.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError:
        if unreadable_is_gone:
            return None
        raise
    return stamp_of(stat)


def stamp_of(stat: os.stat_result) -> FileStamp:
    """The stamp of a stat already made (``os.DirEntry.stat()`` in a listing)."""
    return FileStamp(stat.st_mtime_ns, stat.st_size, stat.st_ino)
