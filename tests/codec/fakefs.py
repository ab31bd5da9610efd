"""A fake ``FileSystem`` for the codec tests: the real disk, with faults on demand.

It wraps ``OsFileSystem`` (so files are real and can be inspected) and can be
told to fail chosen ``write`` calls with ``ENOSPC``, to make every write short,
to fail chosen directory fsyncs with ``EIO``, and to skip fsyncs altogether where
durability is not what a test checks (it makes exhaustive tests fast). Files
opened for reading record the size of every ``read`` call.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, BinaryIO, final

from actors.adapters.os_fs import OsFileSystem

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from actors.ports import WritableFile


def _error(code: int, path: object = None) -> OSError:
    return OSError(code, os.strerror(code), None if path is None else str(path))


@final
class FaultyFileSystem:
    """``FileSystem`` over the real disk that injects the faults it is told to.

    Args:
        fail_writes: 1-based numbers of ``write`` calls (counted over all files)
            that raise ``OSError(ENOSPC)`` without writing anything.
        max_write: if set, every write stores at most this many bytes and says so
            (a short write, as ``write(2)`` may do).
        fail_fsync_dirs: 1-based numbers of ``fsync_dir`` calls that raise ``EIO``
            (after nothing: the directory entry itself is already in place).
        fail_fsyncs: 1-based numbers of file ``fsync`` calls (counted over all
            files) that raise ``EIO`` as Linux does after a writeback error: the
            bytes written since the file's last good fsync are lost (the file is
            cut back to its size then), and a later fsync succeeds.
        durable: False makes ``fsync``/``fsync_dir`` no-ops and truncation
            unsynced, for tests that check contents rather than durability.
    """

    def __init__(
        self,
        *,
        fail_writes: Iterable[int] = (),
        max_write: int | None = None,
        fail_fsync_dirs: Iterable[int] = (),
        fail_fsyncs: Iterable[int] = (),
        durable: bool = True,
    ) -> None:
        self._os = OsFileSystem()
        self.fail_writes = set(fail_writes)
        self.max_write = max_write
        self.fail_fsync_dirs = set(fail_fsync_dirs)
        self.fail_fsyncs = set(fail_fsyncs)
        self.fsync_calls = 0
        self.synced_sizes: dict[Path, int] = {}
        self.durable = durable
        self.write_calls = 0
        self.fsync_dir_calls = 0
        self.read_sizes: list[int] = []

    def heal(self) -> None:
        """Stops injecting faults (the disk has space again)."""
        self.fail_writes.clear()
        self.fail_fsync_dirs.clear()
        self.fail_fsyncs.clear()
        self.max_write = None

    def create_new(self, path: Path) -> WritableFile:
        return _FaultyFile(self, self._os.create_new(path), path)

    def open_append(self, path: Path) -> WritableFile:
        return _FaultyFile(self, self._os.open_append(path), path)

    def open_read(self, path: Path) -> BinaryIO:
        return _CountingReader(self, self._os.open_read(path))  # type: ignore[return-value] # duck-typed BinaryIO: read/close

    def rename(self, src: Path, dst: Path) -> None:
        self._os.rename(src, dst)

    def fsync_dir(self, path: Path) -> None:
        self.fsync_dir_calls += 1
        if self.fsync_dir_calls in self.fail_fsync_dirs:
            raise _error(errno.EIO, path)
        if self.durable:
            self._os.fsync_dir(path)

    def truncate(self, path: Path, size: int) -> None:
        if self.durable:
            self._os.truncate(path, size)
        else:
            os.truncate(path, size)
        self.synced_sizes[path] = size

    def unlink(self, path: Path) -> None:
        self._os.unlink(path)

    def makedirs(self, path: Path) -> list[Path]:
        return self._os.makedirs(path)

    def exists(self, path: Path) -> bool:
        return self._os.exists(path)

    def size(self, path: Path) -> int:
        return self._os.size(path)

    def stat(self, path: Path):
        return self._os.stat(path)

    def list_dir(self, path: Path):
        return self._os.list_dir(path)


@final
class _FaultyFile:
    def __init__(self, fs: FaultyFileSystem, inner: WritableFile, path: Path) -> None:
        self._fs = fs
        self._inner = inner
        self._path = path

    def write(self, data: bytes | memoryview) -> int:
        fs = self._fs
        fs.write_calls += 1
        if fs.write_calls in fs.fail_writes:
            raise _error(errno.ENOSPC)
        if fs.max_write is not None:
            data = data[: fs.max_write]
        return self._inner.write(data)

    def fsync(self) -> None:
        fs = self._fs
        fs.fsync_calls += 1
        if fs.fsync_calls in fs.fail_fsyncs:
            os.truncate(self._path, fs.synced_sizes.get(self._path, 0))  # the pages are gone
            raise _error(errno.EIO, self._path)
        if fs.durable:
            self._inner.fsync()
        fs.synced_sizes[self._path] = os.path.getsize(self._path)

    def close(self) -> None:
        self._inner.close()


@final
class _CountingReader:
    def __init__(self, fs: FaultyFileSystem, inner: BinaryIO) -> None:
        self._fs = fs
        self._inner = inner

    def read(self, size: int = -1) -> bytes:
        self._fs.read_sizes.append(size)
        return self._inner.read(size)

    def close(self) -> None:
        self._inner.close()
