"""The thin Trio shell around the sync state machine: runs one file's actions, feeds back events.

Each action of ``actors.sync.fsm`` becomes one await here (an RPC through the
``Uploader`` port, a file operation through the ``FileSystem`` port and the
``BlockingRunner``, or a backoff sleep), and its outcome becomes the next
event. Errors are mapped once, from the ``actors.errors`` classes the adapters
raise, into ``Failed`` events; everything else about retries is the machine's.

While a chunk is on the wire the worker reads the next one (``_ReadAhead``), so
disk reads overlap the round trip instead of adding to it. Memory stays at
most two chunks per worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

import outcome
import trio

from actors.errors import OfflineError, PermanentError, ResumableUnsupported, TransientError
from actors.planted import Bug, planted
from actors.ports import FileKind
from actors.sync import fsm
from actors.sync.files import compute_identity, delete_synced, inspect_capture, park, read_chunk
from actors.sync.stats import FileProgress

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from actors.ports import (
        BlockingRunner,
        FileIdentity,
        FileSystem,
        SyncFile,
        Uploader,
        WholeFileUploader,
        WriteResult,
    )
    from actors.sync.limiter import BandwidthLimiter
    from actors.sync.stats import SyncStatus

LOGGER = logging.getLogger("ferry.sync")

MIN_BYTES_PER_S = 32 * 1024
"""The slowest link a call's bound allows for: its payload at this rate, on top of the timeout."""


@final
@dataclass(frozen=True)
class WorkerContext:
    """What a worker needs, shared by all workers of one generation of the sync actor."""

    part_id: str
    uploader: Uploader
    whole: WholeFileUploader
    fs: FileSystem
    runner: BlockingRunner
    rng: random.Random
    limiter: BandwidthLimiter
    status: SyncStatus
    chunk_bytes: int
    rpc_timeout_s: float = 60.0
    """The adapter's own per-call deadline; the worker bounds each call at twice that."""
    on_point: Callable[[str, SyncFile], None] | None = None
    """Test and simulator hook, called at named points (``"confirmed"`` before the delete)."""
    observe: Callable[[SyncFile, fsm.FileState, fsm.Event, fsm.FileState], None] | None = None
    """Simulator hook: sees every step of every file's machine (the trace; the backoff bound)."""


@final
@dataclass(frozen=True)
class Prepared:
    """What a batch (``actors.sync.batch``) already did for a file before its job runs.

    ``answer`` stands in for the cloud's answer to the file's first OpenUpload:
    ``Batched`` when the batch stored it, or ``None`` to ask the cloud as usual.
    A confirmed file's delete is handed to the batch (``deletions``), which
    unlinks all of them in one go when its files are done and then fsyncs each
    directory once; a crash before that leaves files the cloud already holds.
    The next start sends such a file again (whole, in a batch: the cloud knows its
    identity and stores nothing twice) or finds it FINISHED, and deletes it.
    """

    records: int
    identity: FileIdentity
    answer: fsm.Batched | None
    deletions: list[Path]


@final
class FileJob:
    """Takes one file from found to deleted, parked in failed/, or left for the next pass.

    Example::

        await FileJob(ctx, file).run()
    """

    def __init__(
        self, ctx: WorkerContext, file: SyncFile, prepared: Prepared | None = None
    ) -> None:
        self._ctx = ctx
        self._file = file
        self._prepared = prepared
        self._answer = prepared.answer if prepared is not None else None
        self._identity: FileIdentity | None = prepared.identity if prepared is not None else None
        self._records = 0
        self._ahead = _ReadAhead(ctx, file)
        state = fsm.initial(file.size, ctx.chunk_bytes, compat=ctx.status.compat)
        self.progress = FileProgress(file, state, trio.Event())

    async def run(self) -> fsm.FileState:
        """Runs the file's life to a terminal phase; returns the last state.

        Cancellation leaves the file where it is (phase CANCELLED); the next
        pass picks it up and resumes at the cloud's committed offset.
        """
        ctx, file = self._ctx, self._file
        ctx.status.files[file.path] = self.progress
        try:
            event: fsm.Event | None = await self._precheck()
            if event is None:
                return self.progress.state
            while event is not None:
                event = await self._apply(event)
            return self.progress.state
        except BaseException as exc:
            # A cancel that lands while a chunk's read-ahead runs leaves its nursery
            # as a group of Cancelled: that is a cancellation too.
            if _is_cancellation(exc):
                self.progress.state, _ = fsm.step(self.progress.state, fsm.Cancel())
            raise
        finally:
            ctx.status.files.pop(file.path, None)

    async def _apply(self, event: fsm.Event) -> fsm.Event | None:
        """One machine step and the action it asks for; returns the action's outcome."""
        before = self.progress.state
        state, actions = fsm.step(before, event)
        self.progress.state = state
        if self._ctx.observe is not None:
            self._ctx.observe(self._file, before, event, state)
        self._count(before, state)
        if not actions:
            return None
        (action,) = actions  # the machine emits one action per step
        return await self._execute(action)

    async def _precheck(self) -> fsm.Event | None:
        """Capture files: an unreadable header parks the file; no readings deletes it."""
        ctx, file = self._ctx, self._file
        if self._prepared is not None:  # the batch checked it
            self._records = self._prepared.records
            return fsm.Start()
        if file.kind is not FileKind.CAPTURE:
            return fsm.Start()
        try:
            check = await ctx.runner.run(inspect_capture, ctx.fs, file.path)
        except PermanentError as exc:
            # Into OPENING first, so parking is an ordinary transition of the machine.
            self.progress.state, _ = fsm.step(self.progress.state, fsm.Start())
            return self._failed(fsm.Failure.PERMANENT, str(exc))
        except (FileNotFoundError, TransientError) as exc:
            LOGGER.info("%s: not synced this pass: %s", file.path, exc)
            return None
        if check.records == 0:
            LOGGER.warning("%s: capture file has no readings; deleted without upload", file.path)
            await ctx.runner.run(delete_synced, ctx.fs, file.path)
            ctx.status.counters.empty_files_deleted += 1
            return None
        self._records = check.records
        return fsm.Start()

    async def _execute(self, action: fsm.Action) -> fsm.Event | None:
        try:
            return await self._dispatch(action)
        except ResumableUnsupported:
            if not self._ctx.status.compat:
                self._ctx.status.compat = True
                LOGGER.warning(
                    "the cloud has no resumable upload service: using Viam's upload RPCs "
                    "(whole-file retries; exactly-once does not hold in this mode)"
                )
            return fsm.Unsupported()
        except FileNotFoundError:
            LOGGER.warning("%s: vanished before it was synced", self._file.path)
            self.progress.state, _ = fsm.step(self.progress.state, fsm.Cancel())
            return None
        except OfflineError as exc:
            self._ctx.status.reach.failed(trio.current_time(), str(exc))
            return self._failed(fsm.Failure.OFFLINE, str(exc))
        except (TransientError, PermanentError, OSError) as exc:
            if await self._changed_since_found():
                # An arbitrary file edited after the walk found it (the cloud's hash
                # check fails, or hashing saw a new size): give it back, so the next
                # pass finds it anew once it is unmodified for file_last_modified_millis.
                LOGGER.info(
                    "%s: changed while syncing; the next pass takes it: %s", self._file.path, exc
                )
                self.progress.state, _ = fsm.step(self.progress.state, fsm.Cancel())
                return None
            kind = (
                fsm.Failure.PERMANENT if isinstance(exc, PermanentError) else fsm.Failure.TRANSIENT
            )
            return self._failed(kind, _describe(exc))

    async def _dispatch(self, action: fsm.Action) -> fsm.Event | None:
        ctx, file = self._ctx, self._file
        match action:
            case fsm.Open() if self._answer is not None:
                answer, self._answer = self._answer, None  # only the first Open
                ctx.status.counters.bytes_sent += file.size
                return answer
            case fsm.Open():
                identity = await self._require_identity()
                if planted(Bug.IDENTITY_PER_ATTEMPT):
                    identity = dataclasses.replace(
                        identity, path=f"{identity.path}#{ctx.rng.getrandbits(32):08x}"
                    )
                with self._bounded("OpenUpload", 0):
                    opened = await ctx.uploader.open(identity, file)
                self._reached()
                committed = opened.committed_offset
                if planted(Bug.IGNORE_COMMITTED_OFFSET) and not opened.finished:
                    committed = 0
                return fsm.Opened(
                    opened.upload_id,
                    committed,
                    opened.finished,
                    opened.max_chunk_bytes,
                )
            case fsm.SendChunk(upload_id, offset, length):
                await ctx.limiter.acquire(length)
                data = await self._ahead.take(offset, length)
                async with trio.open_nursery() as nursery:
                    self._ahead.start_next(nursery, offset + length, length)
                    # Captured, so the call's errors come out as themselves, not
                    # wrapped in the nursery's group.
                    result = await outcome.acapture(self._write, upload_id, offset, data)
                written = result.unwrap()
                self._reached()
                if written.accepted:
                    ctx.status.counters.bytes_sent += written.committed_offset - offset
                elif planted(Bug.IGNORE_COMMITTED_OFFSET) and written.committed_offset > offset:
                    return fsm.ChunkWritten(offset + length, True)
                return fsm.ChunkWritten(written.committed_offset, written.accepted)
            case fsm.Finish(upload_id):
                sha256 = (await self._require_identity()).sha256
                if planted(Bug.DELETE_BEFORE_CONFIRM):
                    await ctx.runner.run(delete_synced, ctx.fs, file.path)
                with self._bounded("FinishUpload", file.size):
                    confirmation = await ctx.uploader.finish(upload_id, sha256)
                self._reached()
                return fsm.Finished(confirmation.file_id)
            case fsm.UploadWhole():
                with self._bounded("Viam upload", file.size):
                    confirmation = await ctx.whole.upload(file)
                self._reached()
                return fsm.WholeUploaded(confirmation.file_id)
            case fsm.Delete():
                if ctx.on_point is not None:
                    ctx.on_point("confirmed", file)
                if self._prepared is not None:
                    self._prepared.deletions.append(file.path)  # the batch deletes it
                else:
                    await ctx.runner.run(delete_synced, ctx.fs, file.path)
                return fsm.Deleted()
            case fsm.MoveToFailed(reason):
                try:
                    target = await ctx.runner.run(park, ctx.fs, file, reason)
                except OSError as exc:
                    # A full disk cannot take the .reason note: leave the file where
                    # it is (the next pass meets the same error) rather than crash.
                    LOGGER.error("%s: %s; could not move it to failed/: %s", file.path, reason, exc)
                    return None
                LOGGER.error("%s: moved to %s: %s", file.path, target, reason)
                return None
            case fsm.Wait(delay_s):
                return await self._wait(delay_s)
            case _:  # pragma: no cover - the Action union is exhaustive
                raise AssertionError(f"unknown action {action!r}")

    async def _write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        with self._bounded("WriteChunk", len(data)):
            return await self._ctx.uploader.write(upload_id, offset, data)

    @contextlib.contextmanager
    def _bounded(self, call: str, payload_bytes: int) -> Iterator[None]:
        """The worker's own deadline on one cloud call (callers own timeouts, STYLE §7).

        The adapter has a deadline too; this one is the backstop for a call that
        would hang anyway (an HTTP/2 flow-control wait behind a stalled connection,
        seen in the fault-proxy test), so one stuck call can never stall a worker.
        """
        limit = 2 * (self._ctx.rpc_timeout_s + payload_bytes / MIN_BYTES_PER_S)
        with trio.move_on_after(limit) as scope:
            yield
        if scope.cancelled_caught:
            raise OfflineError(f"no answer within {limit:.1f} s", where=call)

    async def _wait(self, delay_s: float) -> fsm.Event:
        progress = self.progress
        progress.kick = trio.Event()
        progress.next_attempt_at = trio.current_time() + delay_s
        try:
            with trio.move_on_after(delay_s):
                await progress.kick.wait()
                return fsm.Kick()
            return fsm.TimerFired()
        finally:
            progress.next_attempt_at = None

    def _failed(self, kind: fsm.Failure, message: str) -> fsm.Failed:
        self.progress.last_error = message
        if kind is not fsm.Failure.PERMANENT:
            self._ctx.status.counters.retries += 1
            LOGGER.debug("%s: attempt failed (%s): %s", self._file.path, kind.value, message)
        return fsm.Failed(kind, message, self._ctx.rng.random())

    def _reached(self) -> None:
        self._ctx.status.reach.reached(trio.current_time())

    async def _require_identity(self) -> FileIdentity:
        if self._identity is None:
            ctx = self._ctx
            self._identity = await ctx.runner.run(compute_identity, ctx.fs, self._file, ctx.part_id)
        return self._identity

    async def _changed_since_found(self) -> bool:
        """Whether an arbitrary file was modified after the walker found it."""
        file = self._file
        if file.kind is not FileKind.ARBITRARY:
            return False
        try:
            now = await self._ctx.runner.run(self._ctx.fs.stat, file.path)
        except OSError:
            return False
        return now.size != file.size or now.mtime_ns != file.mtime_ns

    def _count(self, before: fsm.FileState, after: fsm.FileState) -> None:
        """Turns one transition into counter increments (each counted exactly once)."""
        c = self._ctx.status.counters
        c.bytes_resent += after.resent_bytes - before.resent_bytes
        c.interruptions += after.interruptions - before.interruptions
        if after.phase is fsm.Phase.CONFIRMED and before.phase is not fsm.Phase.BACKOFF:
            if before.phase is fsm.Phase.OPENING and after.sent_upto == 0:
                c.files_already_in_cloud += 1  # finished by an earlier run of the agent
            else:
                c.files_uploaded += 1
                c.records_uploaded += self._records
        elif after.phase is fsm.Phase.DELETED:
            c.files_deleted += 1
        elif after.phase is fsm.Phase.FAILED:
            c.files_failed += 1


@final
class _ReadAhead:
    """The next chunk of one file, read while the current one is uploaded."""

    def __init__(self, ctx: WorkerContext, file: SyncFile) -> None:
        self._ctx = ctx
        self._file = file
        self._next: tuple[int, int, bytes] | None = None

    async def take(self, offset: int, length: int) -> bytes:
        """The chunk at ``offset``: the one read ahead if it matches, else read now."""
        ahead, self._next = self._next, None
        if ahead is not None and ahead[:2] == (offset, length):
            return ahead[2]
        ctx = self._ctx
        return await ctx.runner.run(read_chunk, ctx.fs, self._file.path, offset, length)

    def start_next(self, nursery: trio.Nursery, offset: int, length: int) -> None:
        """Reads the chunk after this one in ``nursery``, unless this one is the last."""
        length = min(length, self._file.size - offset)
        if length > 0:
            nursery.start_soon(self._read, offset, length)

    async def _read(self, offset: int, length: int) -> None:
        ctx = self._ctx
        try:
            data = await ctx.runner.run(read_chunk, ctx.fs, self._file.path, offset, length)
        except Exception:  # ``take`` reads again and meets the error there
            return
        self._next = (offset, length, data)


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.split(trio.Cancelled)[1]
        return rest is None
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return str(exc)
