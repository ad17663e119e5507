"""One writer at a time: an exclusive lock on a sidecar file beside the file being changed.

Two app windows (two processes) on one folder each read a file, change it and rename the new
version into place. Without a lock, both can read the same version and the second rename
drops the first window's change. Each read-change-write holds ``locked(path)``; readers take
no lock (every write is an atomic rename, so a reader sees one whole version or the other).

The lock is ``flock`` on ``.<name>.lock`` beside the file: it is released by the kernel when
the process dies (kill -9 leaves no stale lock), and the sidecar is opened for writing so
that NFS, where flock is emulated with byte-range locks, grants it as well. The sidecar is
never removed: removing it while another process waits on it would let a third one lock a
new file of the same name at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar lock file of ``path``: ``.<name>.lock`` in the same folder."""
    target = Path(path)
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the exclusive write lock of ``path`` (waiting for another holder to finish).

    Creates the folder and the sidecar when missing.

    Raises:
        OSError: the sidecar cannot be created or locked (a read-only folder, say).
    """
    sidecar = lock_path(path)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(sidecar, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
