"""Ports: the seams between Ferry's logic and the outside world.

Each port is a ``typing.Protocol``. Production adapters live in ``actors/adapters``;
the simulator provides its own (``sim/``) so the same logic runs under simulated
time, disk and faults. The file-system port is synchronous on purpose: the actors
run its calls through one async wrapper (a worker thread in production, inline in
the simulator), which keeps the codec free of Trio and easy to fault-inject.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class WritableFile(Protocol):
    """An open file that is only appended to."""

    def write(self, data: bytes | memoryview) -> int:
        """Writes some prefix of ``data`` and returns its length (may be short)."""
        ...

    def fsync(self) -> None:
        """Makes everything written so far durable."""
        ...

    def close(self) -> None:
        """Closes the file; safe to call twice."""
        ...


@dataclass(frozen=True, slots=True)
class DirEntry:
    """One directory entry: its name, whether it is a directory, and a file's size and mtime."""

    name: str
    is_dir: bool
    size: int = 0
    mtime_ns: int = 0


class FileSystem(Protocol):
    """The file operations Ferry performs, and nothing more.

    Every method may raise ``OSError`` (``ENOSPC``, ``EIO``, …); callers decide
    whether that is transient. Paths are absolute.
    """

    def create_new(self, path: Path) -> WritableFile:
        """Creates ``path`` exclusively (``FileExistsError`` if it exists), mode 0600."""
        ...

    def open_append(self, path: Path) -> WritableFile:
        """Opens an existing file for appending."""
        ...

    def open_read(self, path: Path) -> BinaryIO:
        """Opens a file for buffered binary reading."""
        ...

    def rename(self, src: Path, dst: Path) -> None:
        """Atomically renames ``src`` to ``dst`` within one directory tree."""
        ...

    def fsync_dir(self, path: Path) -> None:
        """Makes the directory entries of ``path`` durable (after create/rename/unlink)."""
        ...

    def truncate(self, path: Path, size: int) -> None:
        """Truncates ``path`` to ``size`` bytes and makes that durable."""
        ...

    def unlink(self, path: Path) -> None:
        """Removes a file."""
        ...

    def makedirs(self, path: Path) -> list[Path]:
        """Creates a directory and its missing parents (mode 0700); no error if it exists.

        Returns the directories it created, outermost first. Their entries are not
        yet durable: ``actors.durable_dirs.ensure_dir`` fsyncs each into its parent.
        """
        ...

    def exists(self, path: Path) -> bool:
        """Whether ``path`` exists."""
        ...

    def size(self, path: Path) -> int:
        """The size of a file in bytes."""
        ...

    def list_dir(self, path: Path) -> list[DirEntry]:
        """The entries of a directory (unsorted; symlinks are not followed)."""
        ...

    def stat(self, path: Path) -> DirEntry:
        """One file's entry (name, size, mtime) without listing its directory."""
        ...


class WallClock(Protocol):
    """Wall-clock time for timestamps and file names, in nanoseconds since the epoch.

    Scheduling never uses it (that is Trio's clock); the simulator drives it from
    Trio's clock so both advance together.
    """

    def now_ns(self) -> int:
        """The current wall-clock time."""
        ...


class BlockingRunner(Protocol):
    """Runs a blocking function without blocking the event loop (or, in sim, inline)."""

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        """Calls ``fn(*args)`` and returns its result.

        The call is never abandoned half-way: cancellation waits for it to end, so
        a file operation either completes or raises, and files stay consistent.
        """
        ...


@dataclass(frozen=True, slots=True)
class DiskStats:
    """Usage of the file system holding a path, in bytes."""

    total: int
    used: int
    free: int

    @property
    def used_fraction(self) -> float:
        """Used share of the whole file system (0-1)."""
        return self.used / self.total if self.total else 0.0


class DiskUsage(Protocol):
    """How full the disk is (psutil in production, simulated in sim)."""

    def usage(self, path: Path) -> DiskStats:
        """Usage of the file system that holds ``path``."""
        ...


# ---------------------------------------------------------------- sync


class FileKind(Enum):
    """What a synced file is: a capture file (Viam's format) or any other file."""

    CAPTURE = "capture"
    ARBITRARY = "arbitrary"


@dataclass(frozen=True, slots=True)
class SyncFile:
    """A file the walker found ready to sync.

    ``root`` is the sync root it was found under (a capture dir or an
    additional sync path); ``tags`` and ``dataset_ids`` come from the data
    manager's tags and from ``tag=``/``dataset=`` path segments (arbitrary files).
    """

    path: Path
    root: Path
    kind: FileKind
    size: int
    mtime_ns: int
    tags: tuple[str, ...] = ()
    dataset_ids: tuple[str, ...] = ()

    @property
    def relpath(self) -> str:
        """The path relative to its sync root, with '/' separators (part of the identity).

        Cut from the strings when the path lies under the root's own spelling, the
        usual case (the sync actor and the simulator ask on every step); pathlib
        otherwise, which also raises ``ValueError`` for a path outside the root.
        """
        path, root = str(self.path), str(self.root)
        prefix = root if root.endswith("/") else root + "/"
        if os.sep == "/" and path.startswith(prefix) and len(path) > len(prefix):
            rest = path[len(prefix) :]
            if "//" not in rest and not rest.endswith("/"):
                return rest
        return self.path.relative_to(self.root).as_posix()


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What an upload is keyed by: derived from the file, so it survives restarts."""

    part_id: str
    path: str
    size: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class OpenResult:
    """The cloud's state of an upload: where to continue, or that it is already finished."""

    upload_id: str
    committed_offset: int
    finished: bool
    max_chunk_bytes: int
    file_id: str = ""
    binary_data_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The committed offset after a chunk; ``accepted`` is False when the offset was stale."""

    committed_offset: int
    accepted: bool


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A durable confirmation that the cloud holds all of a file."""

    file_id: str
    binary_data_ids: tuple[str, ...] = ()
    records: int = 0


@dataclass(frozen=True, slots=True)
class SmallFile:
    """A whole small file, for ``Uploader.upload_files``.

    ``tags`` are the walker's (the data manager's ``tags``): the cloud adds them
    to a capture file's header's, as ``OpenUpload``'s metadata adds them.
    ``binary``: a capture file whose header says binary (a camera frame, say).
    An arbitrary file (``kind``) carries the serialized ``UploadMetadata`` its
    ``OpenUpload`` would (``metadata``: name, tags, dataset ids, times).
    """

    identity: FileIdentity
    data: bytes
    tags: tuple[str, ...] = ()
    binary: bool = False
    kind: FileKind = FileKind.CAPTURE
    metadata: bytes = b""


SmallOutcome = Confirmation | str
"""A file's answer in ``upload_files``: stored, or the server's reason it was not taken."""

NO_TAGS = "the cloud does not store tags sent with UploadFiles"
"""The outcome of a tagged file whose server would drop its tags (an older server)."""

NO_BINARY = "the cloud does not take binary capture files in UploadFiles"
"""The outcome of a binary file whose server takes only tabular ones (an older server)."""

NO_FILES = "the cloud does not take arbitrary files in UploadFiles"
"""The outcome of an arbitrary file whose server takes only capture files (an older server)."""


class Uploader(Protocol):
    """What the sync actor needs from the network: resumable, exactly-once uploads.

    Production: ``actors.adapters.grpc_uploader`` (``ferry.sync.v1`` over grpclib);
    the simulator: an in-process network in front of the same cloud logic. Every
    method raises only ``actors.errors`` classes: ``OfflineError`` and
    ``TransientError`` (retry), ``PermanentError`` (park the file),
    ``ResumableUnsupported`` (the server speaks only Viam's RPCs).
    """

    async def open(self, identity: FileIdentity, file: SyncFile) -> OpenResult:
        """Finds or creates the upload of ``identity`` and reports its committed offset."""
        ...

    async def write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        """Sends one chunk at ``offset`` (compare-and-set on the committed offset)."""
        ...

    async def finish(self, upload_id: str, sha256: bytes) -> Confirmation:
        """Verifies the whole file and materializes it; idempotent."""
        ...

    async def upload_files(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        """Stores small capture files whole, in one call and one commit.

        Exactly once per identity, as open + write + finish would. Returns one
        outcome per file, in order: its ``Confirmation``, or the server's reason
        it did not take the file (which then goes the resumable way). A failure
        of the whole call raises as the other methods do; a server without the
        call raises ``ResumableUnsupported``.
        """
        ...


class WholeFileUploader(Protocol):
    """Viam's own RPCs (DataCaptureUpload, StreamingDataCaptureUpload, FileUpload).

    Used when the server has no resumable service: a whole file per attempt, so
    an interruption re-sends the file and a lost acknowledgement duplicates it.
    """

    async def upload(self, file: SyncFile) -> Confirmation:
        """Uploads all of ``file``; raises the ``actors.errors`` classes as ``Uploader``."""
        ...
