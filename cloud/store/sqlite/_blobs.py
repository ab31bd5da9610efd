"""A content-addressed blob directory: binary data stored once per SHA-256.

A blob lives at ``root/ab/cdef…`` (lowercase hex SHA-256, two-character
fan-out so no directory grows past a few thousand entries). Writes go to a
``.tmp-*`` file in the blob's fan-out directory, are fsynced, renamed into
place and the directory is fsynced, so a blob path either does not exist or
holds the whole, durable content: a crash leaves at most a temp file, which
``sweep`` removes when the store opens. Because the name is the content's hash,
storing the same bytes twice is a no-op (idempotent ``put``).

A ``BlobRef`` names a byte range of a blob (``offset``, ``size``): ``open``
reads only that range, and ``punch`` frees a range no row needs any more
while other ranges of the same blob are still referenced.

Synchronous on purpose: the store runs on worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, BinaryIO, final

from actors.adapters.os_fs import OsFileSystem
from actors.durable_dirs import ensure_dir
from cloud.errors import InvalidArgument, NotFound
from cloud.model import BlobRef
from cloud.store.sqlite._punch import punch_hole

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

CHUNK_SIZE = 1 << 20  # at most 1 MiB per chunk yielded by ``open``
_TMP_PREFIX = ".tmp-"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def fsync_dir(path: Path) -> None:
    """Makes the directory's entries (a create, rename or unlink) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_sha(sha256_hex: str) -> str:
    if not _SHA256_HEX.fullmatch(sha256_hex):
        raise InvalidArgument(f"blob hash {sha256_hex!r} is not a lowercase hex SHA-256")
    return sha256_hex


@final
class BlobDir:
    """The blob store under ``root`` (created, mode 0700, if missing).

    Example::

        blobs = BlobDir(data_dir / "blobs")
        ref = blobs.put(b"jpeg bytes")
        data = b"".join(blobs.open(ref))
    """

    def __init__(self, root: Path) -> None:
        ensure_dir(OsFileSystem(), root)  # durable, as each blob's own entry is
        self.root = root

    def path_for(self, sha256_hex: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists).

        Raises:
            InvalidArgument: ``sha256_hex`` is not 64 lowercase hex digits (so a
                hash can never name a path outside ``root``).
        """
        sha = _check_sha(sha256_hex)
        return self.root / sha[:2] / sha[2:]

    def put(self, data: bytes | memoryview) -> BlobRef:
        """Stores ``data`` durably and returns its reference; idempotent.

        Args:
            data: the blob's bytes.

        Returns:
            The content's SHA-256 and size.
        """
        return self.put_many([data])[0]

    def put_many(self, datas: Sequence[bytes | memoryview]) -> list[BlobRef]:
        """Stores each of ``datas`` durably, as ``put`` would; returns their references.

        The steps run over all of them at once: every temp file is written, then
        each is fsynced, renamed into place, and each fan-out directory fsynced
        once. Small blobs cost about half the CPU and wall time this way
        (``docs/performance.md``): an ``UploadFiles`` call stores a blob per
        camera frame or arbitrary file. A blob already stored, or twice in
        ``datas``, is written once.
        """
        refs = [BlobRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data)) for data in datas]
        pending: list[tuple[int, str, Path]] = []  # fd, temp name, final path
        writing: set[str] = set()
        closed = renamed = 0
        try:
            for data, ref in zip(datas, refs, strict=True):
                final_path = self.path_for(ref.sha256)
                if ref.sha256 in writing or _has_size(final_path, ref.size):
                    continue
                writing.add(ref.sha256)
                fd, tmp_name = _mkstemp(self._fan_out_dir(final_path))
                pending.append((fd, tmp_name, final_path))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            for fd, _, _ in pending:
                os.fsync(fd)
            for fd, _, _ in pending:
                os.close(fd)
                closed += 1
            for _, tmp_name, final_path in pending:
                os.replace(tmp_name, final_path)
                renamed += 1
        except BaseException:
            for fd, _, _ in pending[closed:]:
                os.close(fd)
            for _, tmp_name, _ in pending[renamed:]:
                _unlink(tmp_name)
            raise
        for fan_out in sorted({final_path.parent for _, _, final_path in pending}):
            fsync_dir(fan_out)
        return refs

    def adopt(self, path: Path, sha256_hex: str, size: int) -> BlobRef:
        """Moves a file whose hash the caller verified into the store.

        The file is fsynced, then renamed into place (``path`` must be on the
        same file system as ``root``, as the store's staging directory is). If
        the blob already exists the file is deleted instead. The content's hash
        is not recomputed: the caller has just verified it while reading it.

        Args:
            path: the file to adopt; it no longer exists when this returns.
            sha256_hex: its content's lowercase hex SHA-256.
            size: its expected size in bytes.

        Raises:
            InvalidArgument: the file's size is not ``size``, or the hash is malformed.
        """
        final_path = self.path_for(sha256_hex)
        actual = path.stat().st_size
        if actual != size:
            raise InvalidArgument(
                f"cannot store {path.name} as blob {sha256_hex}: it has {actual} bytes, "
                f"expected {size}"
            )
        ref = BlobRef(sha256=sha256_hex, size=size)
        if _has_size(final_path, size):
            path.unlink()
        else:
            fan_out = self._fan_out_dir(final_path)
            _fsync_file(path)
            os.replace(path, final_path)
            fsync_dir(fan_out)
        fsync_dir(path.parent)
        return ref

    def open(self, ref: BlobRef) -> Iterator[bytes]:
        """The ``ref.size`` bytes at ``ref.offset`` of the blob, in chunks of at most 1 MiB.

        The file is opened before this returns, so a missing blob fails here,
        not on the first iteration; the file is closed when the iterator is
        exhausted or closed.

        Raises:
            NotFound: no blob has this hash (e.g. it was deleted meanwhile).
        """
        try:
            f = self.path_for(ref.sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {ref.sha256} does not exist") from None
        return _chunks(f, ref.offset, ref.size)

    def exists(self, ref: BlobRef) -> bool:
        """Whether the blob is stored and holds the whole range ``ref`` names."""
        if ref.offset == 0:
            return _has_size(self.path_for(ref.sha256), ref.size)
        try:
            return self.path_for(ref.sha256).stat().st_size >= ref.offset + ref.size
        except FileNotFoundError:
            return False

    def punch(self, ref: BlobRef) -> None:
        """Frees the bytes of ``ref``'s range (they read as zeros afterwards), durably.

        Deleting one image of a capture file must not leave its bytes on disk
        while the file's other images are kept. The range is deallocated with
        ``fallocate(PUNCH_HOLE)``; a file system without it gets zeros written
        instead. A missing blob is fine. The caller must know that no row
        references any byte of the range.
        """
        try:
            fd = os.open(self.path_for(ref.sha256), os.O_WRONLY)
        except FileNotFoundError:
            return
        try:
            if not punch_hole(fd, ref.offset, ref.size):
                zeros = bytes(min(CHUNK_SIZE, ref.size))
                position, end = ref.offset, ref.offset + ref.size
                while position < end:
                    position += os.pwrite(fd, zeros[: end - position], position)
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, sha256_hex: str) -> None:
        """Deletes the blob durably; a missing blob is fine.

        The caller must know that no row references the blob any more (see
        the store's deletion rules).
        """
        path = self.path_for(sha256_hex)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def sweep(self, referenced: Callable[[str], bool] | None = None) -> int:
        """Removes what a crash can leave behind: temp files, and optionally orphans.

        Call it only while no ``put`` or ``adopt`` runs (at store open): a temp
        file being written looks exactly like one left by a crash.

        Args:
            referenced: if given, every stored blob whose hash it maps to
                ``False`` is removed too (blobs put whose rows never committed).

        Returns:
            How many files were removed.
        """
        removed = 0
        for fan_out in self.root.iterdir():
            if not fan_out.is_dir() or len(fan_out.name) != 2:
                continue
            removed_here = 0
            for entry in fan_out.iterdir():
                is_tmp = entry.name.startswith(_TMP_PREFIX)
                sha = fan_out.name + entry.name
                orphan = (
                    not is_tmp
                    and referenced is not None
                    and _SHA256_HEX.fullmatch(sha) is not None
                    and not referenced(sha)
                )
                if is_tmp or orphan:
                    _unlink(entry)
                    removed_here += 1
            if removed_here:
                fsync_dir(fan_out)
            removed += removed_here
        return removed

    def _fan_out_dir(self, final_path: Path) -> Path:
        fan_out = final_path.parent
        if not fan_out.is_dir():
            fan_out.mkdir(mode=0o700, exist_ok=True)
            fsync_dir(self.root)
        return fan_out


def copy_durably(src: Path, dst: Path) -> None:
    """Copies ``src`` over ``dst`` and fsyncs both the file and its directory."""
    shutil.copyfile(src, dst)
    _fsync_file(dst)
    fsync_dir(dst.parent)


def _chunks(f: BinaryIO, offset: int, size: int) -> Iterator[bytes]:
    with f:
        f.seek(offset)
        remaining = size
        while remaining and (chunk := f.read(min(CHUNK_SIZE, remaining))):
            remaining -= len(chunk)
            yield chunk


def _has_size(path: Path, size: int) -> bool:
    # A blob path only ever holds a whole, fsynced file (temp, fsync, rename); the
    # size check guards against a file truncated behind the store's back.
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _mkstemp(directory: Path) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=_TMP_PREFIX, dir=directory)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
