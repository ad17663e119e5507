"""A cap on this process's memory for the span of a ``with``: to prove that a reader of an
untrusted file refuses a header's claim before allocating it, rather than trying.

Under the cap an allocation beyond it fails at once with MemoryError (instead of taking
gigabytes, or the machine); the cap is lifted again on leaving. Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

MiB = 1 << 20


def _address_space() -> int:
    """The bytes of address space this process maps now (VmSize)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def limited_memory(extra: int = 512 * MiB) -> Iterator[None]:
    """Allow at most ``extra`` bytes of address space beyond what is mapped on entry."""
    try:
        current = _address_space()
    except OSError:
        pytest.skip("no /proc/self/status: cannot cap the memory here")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
