"""The sync walker: which files are ready to upload, found one directory at a time.

The walk follows Viam's (spec §4.3): ``filepath.Walk`` over the capture dirs and
then the additional sync paths, each in lexical order (names sorted within a
directory, a subdirectory walked where its name sorts), so files are met
oldest-first within one collector directory. Differences, all deliberate:

- memory is O(the directories on the current path), never O(all files): each
  directory is listed only when the walk reaches it, and only while the
  consumer keeps pulling (the actor sends each file into an unbuffered
  channel, rdk #4070);
- a file under two overlapping or nested roots is yielded once, under the
  first root (in config order) whose walk reaches it;
- a directory that vanishes or cannot be listed is skipped with a
  rate-limited warning, never an exception that ends the walk.

Readiness (``file_kind``, ``is_ready``) and path tags (``path_labels``) are
pure functions, testable without a disk. The module imports no Trio: all I/O
goes through the ``FileSystem`` port run by the ``BlockingRunner``, and the
warning throttle reads the injected ``WallClock``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors.codec import CAPTURE_EXT, PROG_EXT, SKIPPED_DIRS
from actors.ports import DirEntry, FileKind, SyncFile
from actors.ratelimit import RateLimitedLog
from actors.recovery import LOCK_NAME

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Container, Iterable, Iterator, Sequence
    from pathlib import Path

    from actors.ports import BlockingRunner, FileSystem, WallClock
    from actors.sync.future_mtimes import FutureMtimes

LOGGER = logging.getLogger("ferry.sync.scan")

REASON_EXT = ".reason"
"""The sidecar ``move_to_failed`` writes next to a parked file."""
TMP_EXT = ".tmp"
"""Atomic-write temporaries (Viam's sequence files, editors, downloaders)."""
TAG_PREFIX = "tag="
DATASET_PREFIX = "dataset="
WARN_INTERVAL_S = 60.0
"""The same listing warning is logged at most once a minute."""


@final
@dataclass(frozen=True, slots=True)
class ScanRules:
    """What the walker looks at and when an arbitrary file counts as finished.

    Args:
        capture_dirs: walked first, in order.
        additional_sync_paths: walked after the capture dirs, in order.
        file_last_modified_ns: an arbitrary file is ready once it has not been
            modified for this long (Viam's ``file_last_modified_millis``).
        tags: the data manager's tags, given to every file found.

    Example::

        ScanRules((Path("/c"),), (Path("/extra"),), 10_000_000_000, ("robot",))
    """

    capture_dirs: tuple[Path, ...]
    additional_sync_paths: tuple[Path, ...] = ()
    file_last_modified_ns: int = 10_000_000_000
    tags: tuple[str, ...] = ()

    @property
    def roots(self) -> tuple[Path, ...]:
        """Every root in walk order: capture dirs, then additional sync paths."""
        return (*self.capture_dirs, *self.additional_sync_paths)


# ----------------------------------------------------------------- pure rules


def file_kind(name: str) -> FileKind | None:
    """What a file named ``name`` is to sync, or None if sync never touches it.

    Never synced: ``.prog`` (still being written, spec §2.7); the capture-dir
    lock ``.ferry.lock``; ``.reason`` sidecars of parked files; names ending in
    ``.tmp`` and dotfiles (``.#x``, ``.x.swp``: editors' and downloaders'
    temporaries, which would otherwise be uploaded half-written). ``.capture`` is
    a capture file; everything else is an arbitrary file (spec §2.2).

    Example::

        file_kind("2026-08-21T15_04_05.123456Z.capture")  # FileKind.CAPTURE
    """
    if name == LOCK_NAME or name.startswith(".") or name.endswith((PROG_EXT, REASON_EXT, TMP_EXT)):
        return None
    if name.endswith(CAPTURE_EXT):
        return FileKind.CAPTURE
    return FileKind.ARBITRARY


def is_ready(
    kind: FileKind, size: int, mtime_ns: int, now_ns: int, file_last_modified_ns: int
) -> bool:
    """Whether a file of ``kind`` may be uploaded now (spec §4.3).

    A capture file is always ready (it is renamed to ``.capture`` only once
    finished). An arbitrary file must be non-empty and unmodified for at least
    ``file_last_modified_ns``; an mtime in the future is not ready.
    """
    if kind is FileKind.CAPTURE:
        return True
    return size > 0 and now_ns - mtime_ns >= file_last_modified_ns


def is_walked_dir(name: str) -> bool:
    """Whether the walker enters a directory named ``name`` (not ``failed``/``datasetUpload``)."""
    return name not in SKIPPED_DIRS


def path_labels(segments: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tags and dataset ids named by directory segments ``tag=<x>`` and ``dataset=<id>``.

    Each list keeps first-seen order without duplicates; an empty value
    (``tag=``) names nothing. Prefixes are case-sensitive, as in Viam.

    Example::

        path_labels(["tag=lab", "dataset=d1", "x", "tag=lab"])  # (("lab",), ("d1",))
    """
    tags: dict[str, None] = {}
    datasets: dict[str, None] = {}
    for segment in segments:
        if segment.startswith(TAG_PREFIX) and len(segment) > len(TAG_PREFIX):
            tags[segment[len(TAG_PREFIX) :]] = None
        elif segment.startswith(DATASET_PREFIX) and len(segment) > len(DATASET_PREFIX):
            datasets[segment[len(DATASET_PREFIX) :]] = None
    return tuple(tags), tuple(datasets)


def merge_tags(*groups: Iterable[str]) -> tuple[str, ...]:
    """The union of tag groups, first-seen order, no duplicates (Viam merges them as sets)."""
    return tuple(dict.fromkeys(tag for group in groups for tag in group))


def ready_file(
    rules: ScanRules,
    root: Path,
    segments: Sequence[str],
    entry: DirEntry,
    path: Path,
    now_ns: int,
    future: FutureMtimes | None = None,
) -> SyncFile | None:
    """The ``SyncFile`` for a listed file, or None if it is not ready.

    ``segments`` are the directories between ``root`` and the file. Capture files
    get the data manager's tags (their header carries their own); arbitrary
    files add the tags and dataset ids their path names (spec §2.6). An
    arbitrary file whose mtime is ahead of ``now_ns`` (the clock stepped back)
    is judged by ``future`` instead, if given.
    """
    kind = file_kind(entry.name)
    if kind is None:
        return None
    threshold = rules.file_last_modified_ns
    if not is_ready(kind, entry.size, entry.mtime_ns, now_ns, threshold) and not (
        future is not None
        and entry.size > 0
        and entry.mtime_ns > now_ns
        and future.ready(path, entry.size, entry.mtime_ns, threshold)
    ):
        return None
    tags = rules.tags
    datasets: tuple[str, ...] = ()
    if kind is FileKind.ARBITRARY:
        seg_tags, datasets = path_labels(segments)
        tags = merge_tags(rules.tags, seg_tags)
    return SyncFile(path, root, kind, entry.size, entry.mtime_ns, tags, datasets)


# ----------------------------------------------------------------- the walk


@dataclass(slots=True)
class _Frame:
    """One listed directory on the walk's path: what remains of its sorted entries."""

    path: Path
    segments: tuple[str, ...]
    entries: Iterator[DirEntry]
    now_ns: int


async def walk_ready(
    rules: ScanRules,
    fs: FileSystem,
    runner: BlockingRunner,
    clock: WallClock,
    *,
    skip: Container[Path] = (),
    log: RateLimitedLog | None = None,
    future: FutureMtimes | None = None,
) -> AsyncGenerator[SyncFile, None]:
    """Yields every file ready to sync, lazily, one directory listing at a time.

    Roots are walked in ``rules.roots`` order, each in lexical order; symlinked
    directories are never followed (the ``FileSystem`` port does not list
    symlinks); directories named ``failed`` or ``datasetUpload`` are never
    entered. A root that the walk of an earlier root reached is not walked again,
    and a later walk does not re-enter an earlier root, so each file is yielded
    once. A file's age is measured against ``clock`` read right after its
    directory is listed.

    Args:
        rules: roots, readiness threshold and tags.
        fs: the file system; only ``list_dir`` is called, through ``runner``.
        runner: runs each listing off the event loop.
        clock: wall time for file ages and for throttling warnings.
        skip: paths in progress elsewhere (checked as each file is yielded).
        log: pass one that outlives the walk to throttle warnings across walks.
        future: pass one that outlives the walk to sync files whose mtime is
            ahead of the clock (``actors.sync.future_mtimes``).

    Example::

        async for file in walk_ready(rules, fs, runner, clock, skip=in_progress):
            await send.send(file)
    """
    log = log if log is not None else RateLimitedLog(LOGGER, WARN_INTERVAL_S)
    roots = rules.roots
    root_set = frozenset(roots)
    done: set[Path] = set()  # roots whose whole tree some walk has entered
    for root in roots:
        if root in done:
            continue
        done.add(root)
        stack: list[_Frame] = []
        await _push(stack, root, (), fs, runner, clock, log)
        while stack:
            frame = stack[-1]
            entry = next(frame.entries, None)
            if entry is None:
                stack.pop()
                continue
            path = frame.path / entry.name
            if entry.is_dir:
                if not is_walked_dir(entry.name) or path in done:
                    continue
                if path in root_set:
                    done.add(path)  # its files are yielded here, under this root
                segments = (*frame.segments, entry.name)
                await _push(stack, path, segments, fs, runner, clock, log)
                continue
            found = ready_file(rules, root, frame.segments, entry, path, frame.now_ns, future)
            if found is not None and path not in skip:
                yield found
    if future is not None:
        future.end_walk()


async def _push(
    stack: list[_Frame],
    path: Path,
    segments: tuple[str, ...],
    fs: FileSystem,
    runner: BlockingRunner,
    clock: WallClock,
    log: RateLimitedLog,
) -> None:
    """Lists ``path`` and pushes its sorted entries; skips it with a warning if unlistable."""
    try:
        entries = await runner.run(fs.list_dir, path)
    except OSError as exc:
        now_s = clock.now_ns() / 1e9
        if not segments and isinstance(exc, FileNotFoundError):
            # A root that does not exist yet (no capture so far) is normal, not news.
            LOGGER.debug("sync walk: %s does not exist", path)
        else:
            log.log(logging.WARNING, now_s, "sync walk: skipped %s: %s", path, _reason(exc))
        return
    entries.sort(key=_name)
    stack.append(_Frame(path, segments, iter(entries), clock.now_ns()))


def _name(entry: DirEntry) -> str:
    return entry.name


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
