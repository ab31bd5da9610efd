"""``fallocate(FALLOC_FL_PUNCH_HOLE)``: free a byte range of a file in place.

Python's ``os`` module has ``posix_fallocate`` but no ``fallocate`` modes, so
this calls the C library through ``ctypes``. Linux only (ext4, XFS, btrfs,
tmpfs support it); elsewhere ``punch_hole`` reports that it could not, and the
caller overwrites the range instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _fallocate() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fn = getattr(libc, "fallocate", None)
    if fn is None:
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    fn.restype = ctypes.c_int
    return fn


_FALLOCATE = _fallocate()


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocates ``length`` bytes at ``offset`` (the file keeps its size).

    Returns:
        ``True`` if the range now reads as zeros, ``False`` if this platform or
        file system cannot punch holes (nothing was changed).

    Raises:
        OSError: any other failure (EIO, EBADF, ...).
    """
    if length <= 0:
        return True
    if _FALLOCATE is None:
        return False
    mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
    if _FALLOCATE(fd, mode, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, f"fallocate(PUNCH_HOLE, {offset}, {length}): {os.strerror(err)}")
