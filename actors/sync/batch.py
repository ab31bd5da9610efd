"""Small files go to the cloud many at a time (``UploadFiles``).

A backlog of small files paid three calls and several fsyncs per file on the
resumable path. A worker that receives a small file instead gathers up to
``MAX_FILES`` of them (as many as arrive within ``LINGER_S``, up to
``batch_budget`` bytes) and sends them whole in one call; it reads the next
batch while one is on the wire (``SyncActor._take``). Then each file continues
through its own state machine (``FileJob`` with ``Prepared``): the call's
answer stands in for the cloud's answer to the file's first OpenUpload. A stored file is
confirmed and deleted. A file the cloud refused, or every file when the call
failed, goes the resumable path at once, as if batching did not exist (the
failed call counts as one retry, and as one offline report when the cloud
could not be reached; the first file's own backoff then paces the rest).
The batch's deletes are made together when its files are done: every file
unlinked, then each directory fsynced once, in one call to the runner.

Tabular and binary capture files go this way (a camera's small frames cost
three calls each otherwise), and so do small arbitrary files, each with the
``UploadMetadata`` its ``OpenUpload`` would carry. A server from before binary
or arbitrary files were taken gets only what it takes (``GrpcUploader`` asks
it first).

Exactly-once holds as on the resumable path: the cloud keys each file by its
identity, so a batch sent again after a lost answer stores nothing twice.
Memory stays O(chunk) per worker: a batch holds at most ``batch_budget`` bytes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, final

import trio

from actors.errors import OfflineError, PermanentError, ResumableUnsupported, SyncError
from actors.planted import Bug, planted
from actors.ports import NO_BINARY, NO_FILES, NO_TAGS, FileIdentity, FileKind, SmallFile
from actors.sync import fsm
from actors.sync.files import (
    CaptureCheck,
    arbitrary_file_metadata,
    delete_synced,
    inspect_capture_bytes,
    read_chunk,
    sync_deletes,
    unlink_synced,
)
from actors.sync.stats import FileProgress
from actors.sync.worker import MIN_BYTES_PER_S, FileJob, Prepared

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from actors.ports import FileSystem, SyncFile
    from actors.sync.worker import WorkerContext

LOGGER = logging.getLogger("ferry.sync")

MAX_FILES = 256
"""Files per UploadFiles call (the cloud takes up to 1,024)."""
LINGER_S = 0.005
"""How long a worker waits for more small files before it sends what it has."""
MAX_BATCH_BYTES = 128 * 1024
"""A batch's bytes cross the gRPC path as several transient copies (message,
frames, socket buffer), and a worker holds two batches (one on the wire, the
next being read). Peak RSS of the 10,000-file backlog over the 100-file one,
with the drain rate (1 worker, two runs each): 128 KiB +2.2 MiB, 10,700-12,200
readings/s; 192 KiB +2.6-2.9 MiB, 12,400-13,200; 256 KiB +4.3 MiB, 13,300. The
smallest keeps the RSS-flat goal (+3 MiB) with a margin."""


def batch_budget(chunk_bytes: int) -> int:
    """The most bytes one batch carries."""
    return min(chunk_bytes, MAX_BATCH_BYTES)


def batchable(file: SyncFile, chunk_bytes: int) -> bool:
    """Whether ``file`` may go in a batch: a small file, and no capture file with dataset ids.

    The walker's tags (the data manager's ``tags``) travel with each file of an
    ``UploadFiles`` call, and an arbitrary file's dataset ids in its metadata.
    The walker gives capture files no dataset ids; one that had them would take
    the resumable path, whose ``OpenUpload`` carries them.
    """
    return 0 < file.size <= batch_budget(chunk_bytes) and (
        file.kind is not FileKind.CAPTURE or not file.dataset_ids
    )


def read_small(
    fs: FileSystem, files: Sequence[SyncFile], part_id: str
) -> list[tuple[CaptureCheck, FileIdentity, bytes] | None]:
    """Each file's check, identity and bytes, or ``None`` if it should not be batched.

    ``None`` for an empty capture file, one that cannot be read or checked, or an
    arbitrary file changed since the walk found it: its own job meets it again
    and deals with it (parks, deletes, retries, waits). An arbitrary file's
    check counts no records, as its job's does.
    """
    out: list[tuple[CaptureCheck, FileIdentity, bytes] | None] = []
    for file in files:
        try:
            if file.kind is FileKind.CAPTURE:
                data = read_chunk(fs, file.path, 0, file.size)
                check = inspect_capture_bytes(file.path, data)
                if check.records == 0:
                    out.append(None)
                    continue
            else:
                check = _UNCOUNTED
                now = fs.stat(file.path)
                if now.size != file.size or now.mtime_ns != file.mtime_ns:
                    out.append(None)
                    continue
                data = read_chunk(fs, file.path, 0, file.size)
        except (OSError, SyncError):
            out.append(None)
            continue
        identity = FileIdentity(part_id, file.relpath, len(data), hashlib.sha256(data).digest())
        out.append((check, identity, data))
    return out


_UNCOUNTED = CaptureCheck(records=0)
"""An arbitrary file's check: no readings to count."""


@final
@dataclass(frozen=True)
class Batch:
    """Small files gathered by a worker and read (``read_small``), ready to send."""

    files: Sequence[SyncFile]
    read: Sequence[tuple[CaptureCheck, FileIdentity, bytes] | None]


async def read_batch(ctx: WorkerContext, files: Sequence[SyncFile]) -> Batch:
    """Checks and reads ``files`` off the event loop (one runner call)."""
    return Batch(files, await ctx.runner.run(read_small, ctx.fs, files, ctx.part_id))


async def run_batch(ctx: WorkerContext, batch: Batch) -> list[fsm.FileState | None]:
    """Uploads a batch in one call where it can; returns each file's last state, in order."""
    files, read = batch.files, batch.read
    small = [(i, r) for i, r in enumerate(read) if r is not None]
    answers: dict[int, fsm.Batched] = {}
    deletions: list[Path] = []
    states: list[fsm.FileState | None] = []
    calling = bool(small) and not ctx.status.batch_unsupported
    shown = _show_in_flight(ctx, files, {i for i, _ in small} if calling else set())
    try:
        if calling:
            if planted(Bug.DELETE_BEFORE_CONFIRM):  # the simulator's planted bug, as in Finish
                for i, _ in small:
                    await ctx.runner.run(delete_synced, ctx.fs, files[i].path)
            answers = await _send(
                ctx, [(i, _small_file(files[i], *got, ctx.part_id)) for i, got in small]
            )
        for i, file in enumerate(files):
            got = read[i]
            prepared = None
            if got is not None:
                prepared = Prepared(got[0].records, got[1], answers.get(i), deletions)
            states.append(await FileJob(ctx, file, prepared).run())
    finally:
        for path, progress in shown.items():  # a job that ran replaced and removed its own
            if ctx.status.files.get(path) is progress:
                del ctx.status.files[path]
        if deletions:  # confirmed files: deleted even if the worker is being cancelled
            with trio.CancelScope(shield=True):
                problems = await ctx.runner.run(delete_all_synced, ctx.fs, deletions)
            for problem in problems:
                LOGGER.warning("sync: %s (the cloud has it; a later pass deletes it)", problem)
    return states


def _small_file(
    file: SyncFile, check: CaptureCheck, identity: FileIdentity, data: bytes, part_id: str
) -> SmallFile:
    """What ``UploadFiles`` carries for one file: an arbitrary file with its metadata."""
    if file.kind is FileKind.CAPTURE:
        return SmallFile(identity, data, file.tags, binary=not check.tabular)
    metadata = bytes(arbitrary_file_metadata(file, part_id))
    return SmallFile(identity, data, kind=file.kind, metadata=metadata)


def _show_in_flight(
    ctx: WorkerContext, files: Sequence[SyncFile], sent: set[int]
) -> dict[Path, FileProgress]:
    """Puts the batch's files in the status until their own jobs take over.

    A file in the ``UploadFiles`` call is OPENING (the call stands in for its
    OpenUpload), by the machine's own ``Start`` step; the others are PENDING.
    """
    shown: dict[Path, FileProgress] = {}
    for i, file in enumerate(files):
        state = fsm.initial(file.size, ctx.chunk_bytes, compat=ctx.status.compat)
        if i in sent:
            state, _ = fsm.step(state, fsm.Start())
        shown[file.path] = ctx.status.files[file.path] = FileProgress(file, state, trio.Event())
    return shown


async def _send(ctx: WorkerContext, batch: list[tuple[int, SmallFile]]) -> dict[int, fsm.Batched]:
    """One UploadFiles call; each file's answer to stand in for its first OpenUpload."""
    files = [file for _, file in batch]
    if planted(Bug.IDENTITY_PER_ATTEMPT):
        files = [
            replace(
                f,
                identity=FileIdentity(
                    f.identity.part_id,
                    f"{f.identity.path}#{ctx.rng.getrandbits(32):08x}",
                    f.identity.size,
                    f.identity.sha256,
                ),
            )
            for f in files
        ]
    total = sum(len(f.data) for f in files)
    await ctx.limiter.acquire(total)  # sync_max_bytes_per_sec covers batches too
    limit = 2 * (ctx.rpc_timeout_s + total / MIN_BYTES_PER_S)  # the worker's backstop
    try:
        with trio.move_on_after(limit) as scope:
            outcomes = await ctx.uploader.upload_files(files)
        if scope.cancelled_caught:
            raise OfflineError(f"no answer within {limit:.1f} s", where="UploadFiles")
    except ResumableUnsupported:
        ctx.status.batch_unsupported = True
        LOGGER.info("the cloud has no UploadFiles: small files go one by one")
        return {}
    except PermanentError as exc:  # the call itself was refused: a bug, not the files
        LOGGER.warning("UploadFiles refused a batch of %d files: %s", len(files), exc)
        return {}
    except SyncError as exc:  # offline or transient: the files go alone
        ctx.status.counters.retries += 1
        if isinstance(exc, OfflineError):
            ctx.status.reach.failed(trio.current_time(), str(exc))
        LOGGER.debug("UploadFiles of %d files failed: %s", len(files), exc)
        return {}
    ctx.status.reach.reached(trio.current_time())
    answers: dict[int, fsm.Batched] = {}
    for (i, file), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, str):
            said = outcome in (NO_TAGS, NO_BINARY, NO_FILES)  # the uploader logged why, once
            LOGGER.log(
                logging.DEBUG if said else logging.INFO,
                "%s: not taken in a batch (%s); uploading it alone",
                file.identity.path,
                outcome,
            )
        else:
            answers[i] = fsm.Batched(outcome.file_id)
    return answers


def delete_all_synced(fs: FileSystem, paths: Sequence[Path]) -> list[str]:
    """Deletes uploaded files, then fsyncs each of their directories once.

    Returns what went wrong, one line each, instead of raising: every file here
    is in the cloud, so a disk error must not crash the sync actor. A file left
    behind is found by the next pass and deleted without being sent (the cloud
    knows it); a delete whose directory fsync failed may be undone by a power
    cut, with the same outcome.
    """
    problems: list[str] = []
    for path in paths:
        try:
            unlink_synced(fs, path)
        except OSError as exc:
            problems.append(f"{path}: not deleted: {exc}")
    for directory in sorted({path.parent for path in paths}):
        try:
            sync_deletes(fs, directory)
        except OSError as exc:
            problems.append(f"{directory}: its deletes are not durable yet: {exc}")
    return problems
