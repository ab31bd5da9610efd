"""Keeps megabyte-sized buffers on the heap instead of fresh ``mmap`` pages each time.

Uploads move data in 1 MiB chunks, and each chunk passes through several
buffers of about that size on each end (the slice read from the file, the
protobuf message, the gRPC frame, the h2 frames). glibc serves an allocation
that large with its own ``mmap`` and returns it with ``munmap`` when freed, and
trims the heap top above 128 KiB, so every chunk faults in and zeroes hundreds of
fresh pages. On this project's virtual machine that doubled the CPU of the
upload client and cost the cloud a tenth of its own (docs/performance.md,
"Binary ingest"). Raising the ``mmap`` threshold to 4 MiB and the trim threshold
to 8 MiB lets freed chunks be reused: the process keeps at most 8 MiB of freed
heap, and buffers of 4 MiB and more (whole files) still go back to the system.

Only glibc has ``mallopt``; elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

LOGGER = logging.getLogger("ferry.memory")

# glibc's malloc.h parameter numbers.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 4 << 20
TRIM_THRESHOLD_BYTES = 8 << 20


def tune_malloc(
    mmap_threshold: int = MMAP_THRESHOLD_BYTES, trim_threshold: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Sets glibc's ``mmap`` and trim thresholds; returns whether both took effect.

    Setting them turns off glibc's own adjustment of the ``mmap`` threshold,
    which is why both are set together: the trim threshold alone would leave
    every 1 MiB buffer to ``mmap``.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc, or no C library found
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
    if not ok:
        LOGGER.debug("mallopt refused the thresholds; allocator defaults stay")
    return ok
