"""Processes, told apart by more than their pid: liveness, identity, lock holders, signals.

A pid alone names a process only while it lives: after a kill -9 the kernel hands the number
to the next process started. A process is therefore named by its :class:`Identity`, the pid
with its start time (clock ticks since boot, field 22 of ``/proc/<pid>/stat``), and nothing
is signalled unless the process alive under that pid started at that time. Linux only where
``/proc`` is needed; elsewhere the start time is unknown (None).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Identity:
    """A process: its pid, its start time (None: unknown) and the host it runs on."""

    pid: int
    start: int | None
    host: str | None = None

    @classmethod
    def of(cls, pid: int) -> Identity:
        """The identity of live process ``pid`` on this host."""
        return cls(pid, process_start(pid), socket.gethostname())

    def to_text(self) -> str:
        return f"{self.pid} {'-' if self.start is None else self.start} {self.host or '-'}\n"

    @classmethod
    def from_text(cls, text: str) -> Identity | None:
        """From :meth:`to_text`'s line; None for anything else (an empty or damaged file)."""
        parts = text.split()
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        start = None if parts[1] == "-" else parts[1]
        if start is not None and not start.isdigit():
            return None
        pid = int(parts[0])
        if not 0 < pid < 2**31:
            return None
        host = None if parts[2] == "-" else parts[2]
        return cls(pid, None if start is None else int(start), host)

    def is_local(self) -> bool:
        return self.host is None or self.host == socket.gethostname()

    def matches(self) -> bool:
        """Whether this very process is alive here: the pid lives, and (where /proc tells)
        it started at the recorded time. A start time unknown where /proc tells it never
        matches: the pid may have been reused."""
        if not is_alive(self.pid):
            return False
        actual = process_start(self.pid)
        if actual is None:
            return self.start is None and not Path("/proc/self/stat").exists()
        return self.start == actual


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def is_alive(pid: int | None, start: int | None = None) -> bool:
    """Whether process ``pid`` exists (and is no zombie; started at ``start`` if given)."""
    if not pid or pid <= 0:
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child that has exited: reap it
        if reaped == pid:
            return False
    except OSError:  # ChildProcessError: not ours
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if is_zombie(pid):
        return False
    if start is not None:
        actual = process_start(pid)
        if actual is not None and actual != start:
            return False  # the pid was reused by another process
    return True


def flock_holders(path: str | os.PathLike[str]) -> set[int] | None:
    """The pids holding a flock on file ``path`` as ``/proc/locks`` lists them; None where
    it cannot be told (no /proc/locks, no such file, or the file's inode is not listed, as
    on file systems that show another inode than ``stat`` does)."""
    try:
        inode = os.stat(path).st_ino
        with open("/proc/locks") as handle:
            lines = handle.readlines()
    except OSError:
        return None
    holders = set()
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->" or parts[1] != "FLOCK":
            continue  # a waiter ("->"), or a POSIX or OFD lock
        device_inode = parts[5].rsplit(":", 1)
        if len(device_inode) == 2 and device_inode[1] == str(inode) and parts[4].isdigit():
            holders.add(int(parts[4]))
    return holders or None


def signal_group(pid: int, signum: int) -> None:
    """Signal ``pid``'s process group where it leads its own (a job does), else ``pid``."""
    try:
        if os.getpgid(pid) == pid and pid != os.getpgrp():
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass
