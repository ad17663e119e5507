"""The C heap of a picking or training process: freed blocks kept for the next micrograph.

glibc serves large blocks (from 128 kB, rising to 32 MB as it sees them freed) by ``mmap`` and
gives them back by ``munmap``: every forward pass of the network then touches fresh pages,
which the kernel faults in and zeroes, for each of its full-resolution tensors (19 MB each at
768² and 8 channels), and every micrograph does it again. Kept on the heap instead, they are
reused. Blocks above :data:`MMAP_ABOVE` (a super-resolution micrograph) are still mapped and
returned at once; the heap keeps at most :data:`TRIM_ABOVE` free at its top. Measured on the
three 4096² micrographs of ``benchmarks/bench_pick.py`` (2 cores, medians of 3 runs each,
alternating): glibc's own thresholds 0.47 s a micrograph and 689 MB at most; these 0.39 s and
772-832 MB, flat from the first micrograph to the fourth; 64 MB each 0.43 s; a 512 MB trim
0.40 s but 915-1034 MB, growing. Elsewhere than glibc (macOS, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_ABOVE = 256 << 20
TRIM_ABOVE = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process; True where they were set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_ABOVE)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_ABOVE)
    )
