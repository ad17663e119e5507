"""Atomic writes: a reader (or a kill -9) never sees a half-written file.

Each write goes to a temporary file beside the target, is fsynced, renamed over the target,
and the folder is fsynced so that the rename is on disk too before the call returns. Within
:func:`folder_syncs_together`, the folder fsyncs of several writes become one at its end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    The temporary file keeps the target's suffix so that writers which choose a format from
    the extension (tifffile, mrcfile) still work. On any error the target is left untouched.
    With ``replace`` False the file is linked into place instead, which fails with
    FileExistsError when ``path`` exists, even one made a moment before by another process.
    """
    target = Path(path)
    fd, tmp = _temporary(target)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if replace:
            _commit(tmp, target)
        else:
            _commit_new(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    target = Path(path)
    fd, tmp = _temporary(target)
    try:
        # written and fsynced through the descriptor mkstemp opened: no second open
        with open(fd, "wb", closefd=True) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _commit(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` to produce the file, then move it into place atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


_pending = threading.local()  # .folders: the folders whose fsync waits for the block's end


@contextlib.contextmanager
def folder_syncs_together() -> Iterator[None]:
    """Atomic writes in this block (this thread) fsync their folders once, at its end.

    One edit that writes two files of one folder (picks and false positives) pays one folder
    fsync instead of two. Every file is still fsynced before its rename, so a crash leaves
    each file whole, old or new; the block only ends (and the edit returns) once the renames
    are on disk. Nested blocks sync at the end of the outermost.
    """
    if getattr(_pending, "folders", None) is not None:
        yield
        return
    _pending.folders = folders = {}
    try:
        yield
    finally:
        _pending.folders = None
        for folder in folders:
            _fsync_dir(folder)


def _temporary(target: Path) -> tuple[int, Path]:
    """An open, empty temporary file beside ``target``, with the mode ``target`` will have.

    It keeps the target's suffix so that writers which choose a format from the extension
    (tifffile, mrcfile) still work.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    try:
        # mkstemp makes 0600 files; a replaced file keeps its mode, a new one follows the umask
        os.fchmod(fd, _mode_for(target))
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, Path(name)


def _commit(tmp: Path, target: Path) -> None:
    """Rename the fsynced ``tmp`` over ``target``; the folder's fsync makes the rename durable
    (now, or at the end of a :func:`folder_syncs_together` block)."""
    os.replace(tmp, target)
    folders = getattr(_pending, "folders", None)
    if folders is None:
        _fsync_dir(target.parent)
    else:
        folders[target.parent] = None  # a dict: ordered, each folder once


def _commit_new(tmp: Path, target: Path) -> None:
    """Put the fsynced ``tmp`` at ``target`` only if no file is there: FileExistsError else.

    A hard link claims the name and fills it in one step. Where the file system has none
    (FAT, exFAT, some network mounts) the name is claimed empty with O_EXCL, then the file
    renamed over it: a reader may see it empty for that moment, never half written."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
            raise
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _mode_for(target)))
        os.replace(tmp, target)
    _fsync_dir(target.parent)


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports it without changing it; os.umask() must set it to read it, which is racy
    # with other threads creating files.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk too.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
