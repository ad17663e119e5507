"""The C heap of a picking or training process: freed blocks kept for the next micrograph.

glibc serves large blocks (from 128 kB, rising to 32 MB as it sees them freed) by ``mmap`` and
gives them back by ``munmap``: every forward pass of the network then touches fresh pages,
which the kernel faults in and zeroes, for each of its full-resolution tensors (19 MB each at
768² and 8 channels), and every micrograph does it again. Kept on the heap instead, they are
reused. Blocks above :data:`MMAP_ABOVE` (a super-resolution micrograph) are still mapped and
returned at once; the heap keeps at most :data:`TRIM_ABOVE` free at its top. Measured with
``benchmarks/bench_heap.py`` (4096² micrographs, 2 cores, 6 runs each way, alternating): 0.42 s
a micrograph against 0.48 s with glibc's own thresholds, at most 773-843 MB against 689 MB, flat
in the number of micrographs; 64 MB for both gained less (0.43 s against 0.47), a 512 MB trim
grew (915-1034 MB). Elsewhere than glibc (macOS, musl) nothing changes.
"""

from __future__ import annotations

import ctypes

MMAP_ABOVE = 256 << 20
TRIM_ABOVE = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process; True where they were set."""
    try:
        # the process's own symbols: no library search (a subprocess on some systems) at the
        # start of every command
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_ABOVE)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_ABOVE)
    )
