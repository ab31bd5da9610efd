"""Which capture files to delete when the disk fills or a retention cap is exceeded (issue 6).

A pure core (STYLE.md §1, §11): no Trio, no asyncio, no I/O. The retention actor
lists the capture dir, reads the disk through the ``DiskUsage`` port, asks the
sync actor which files it is uploading, and calls ``decide`` every 30 s while
capture is enabled; it then unlinks what the decision names and logs each
deletion with its ``Reason``.

Three rules, applied in this order to one candidate list:

1. **Age cap** (Ferry, opt-in ``retention_max_age_hours``): every candidate
   older than the cap, oldest first.
2. **Size cap** (Ferry, opt-in ``retention_max_capture_dir_bytes``): the oldest
   remaining candidates until the capture dir is no larger than the cap.
3. **Disk full** (Viam's data manager, spec §5): when the disk is at least
   ``disk_usage_deletion_threshold`` used *and* the capture dir holds at least
   ``capture_dir_deletion_threshold`` of the **used** space, the remaining
   candidates at indices 0, N, 2N, … in time order (``index % N == 0``: the 1st,
   6th, 11th … file for N = 5). Below the capture-dir share, a warning and
   nothing deleted.

Where Ferry differs from Viam's code (spec §5, §8), on purpose:

- The capture-dir share is divided by the disk's *used* bytes, as Viam's docs
  say; Viam's code divides by the file system's *total* size, so there the
  capture dir must fill half of the whole disk.
- The order is capture time (then path), not the lexical order of the walk, so
  "every Nth" is over the timeline even across collectors.
- Only finished ``.capture`` files are candidates (Viam matches names that
  *contain* ``.capture``). Files under a ``failed/`` (or ``datasetUpload/``)
  directory are never deleted: Viam's walk deletes from ``failed/``, but those
  are files a human must look at. The set is exactly what the sync walker
  would upload.
- In-progress files (the ones the sync actor is uploading) are removed from the
  candidate list *before* indexing, so the stride runs over deletable files and
  an upload does not shift which files are chosen.
- The disk-full rule is judged on the usage left after the caps' deletions in
  the same pass (bytes of a planned deletion count as freed), so a pass never
  thins unsynced data that a cap has already made room for.

Unsynced data is deleted only by these rules: the caps, which the user opted
into, and the disk-full rule; every ``Deletion`` carries which one chose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    from pathlib import Path

    from actors.ports import DiskStats

# Copies of ``actors.codec._layout.CAPTURE_EXT``/``SKIPPED_DIRS``: importing the
# codec pulls in the generated protos and with them grpclib and asyncio, which a
# pure core must not load (STYLE.md §1). tests/retention checks they agree.
CAPTURE_EXT = ".capture"
"""Finished capture files end in this (``.prog`` files are still being written)."""
KEPT_DIRS = frozenset({"failed", "datasetUpload"})
"""Directories (at any depth under the capture dir) whose files are never deleted."""

NS_PER_HOUR = 3_600 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class CaptureFileInfo:
    """One finished capture file the retention actor found.

    ``time_ns`` is the capture time from the file's name (``stem_time_ns``), or
    its mtime when the name carries none.

    Example::

        CaptureFileInfo(Path("/c/api/cam/ReadImage/2026-01-01T00_00_00.000000Z.capture"),
                        size=4096, time_ns=1_767_225_600_000_000_000)
    """

    path: Path
    size: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """The retention knobs, from the data manager's config (spec §1.1 plus Ferry's keys).

    ``None`` caps and a ``min_free_bytes`` of 0 are off.

    Example::

        RetentionSettings(Path("/data/capture"), max_age_ns=age_ns_from_hours(72))

    Raises:
        ValueError: a threshold outside (0, 1], ``every_nth`` < 1, or a negative
            cap or floor; the message names the config key.
    """

    capture_dir: Path
    disk_usage_threshold: float = 0.9
    capture_dir_threshold: float = 0.5
    every_nth: int = 5
    max_capture_dir_bytes: int | None = None
    max_age_ns: int | None = None
    min_free_bytes: int = 0

    def __post_init__(self) -> None:
        for key, value in (
            ("disk_usage_deletion_threshold", self.disk_usage_threshold),
            ("capture_dir_deletion_threshold", self.capture_dir_threshold),
        ):
            # `not (0 < x <= 1)` also rejects NaN.
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{key} must be in (0, 1], got {value!r}")
        if self.every_nth < 1:
            raise ValueError(f"delete_every_nth_when_disk_full must be >= 1, got {self.every_nth}")
        for key, limit in (
            ("retention_max_capture_dir_bytes", self.max_capture_dir_bytes),
            ("retention_max_age_hours", self.max_age_ns),
            ("min_free_bytes", self.min_free_bytes),
        ):
            if limit is not None and limit < 0:
                raise ValueError(f"{key} must be >= 0, got {limit}")


class Reason(Enum):
    """Which rule chose a deletion (logged with it, so unsynced-data loss is attributable)."""

    DISK_FULL = "disk_full"
    SIZE_CAP = "size_cap"
    AGE_CAP = "age_cap"


@dataclass(frozen=True, slots=True)
class Deletion:
    """One file to delete and the rule that chose it."""

    file: CaptureFileInfo
    reason: Reason

    def describe(self) -> str:
        """A log line for this deletion.

        Example::

            Deletion(info, Reason.AGE_CAP).describe()
            # "retention deletes unsynced capture file /c/x.capture (4096 bytes): age_cap"
        """
        return (
            f"retention deletes unsynced capture file {self.file.path} "
            f"({self.file.size} bytes): {self.reason.value}"
        )


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    """What one retention pass should do.

    ``deletions`` are in the order chosen (age cap, size cap, disk full; each in
    time order). ``warning`` is ``""`` or a message for the log.
    ``pause_capture`` says free space would still be below ``min_free_bytes``
    after the deletions. ``disk_full`` says the disk-full rule fired.
    """

    deletions: tuple[Deletion, ...]
    warning: str
    pause_capture: bool
    disk_full: bool

    @property
    def freed_bytes(self) -> int:
        """The bytes the deletions free."""
        return sum(d.file.size for d in self.deletions)


def age_ns_from_hours(hours: float | None) -> int | None:
    """``retention_max_age_hours`` in nanoseconds (``None``, or 0 from the config, is no cap).

    Example::

        age_ns_from_hours(1.5) == 5_400_000_000_000
    """
    if not hours:
        return None
    return round(hours * NS_PER_HOUR)


def is_deletable(path: Path, capture_dir: Path) -> bool:
    """Whether retention may ever delete ``path``: a ``.capture`` file inside ``capture_dir``.

    Lexical only (no I/O): a path with a ``..`` component, or with a
    ``failed``/``datasetUpload`` directory between ``capture_dir`` and the file,
    is not deletable.

    Example::

        is_deletable(Path("/c/a/x.capture"), Path("/c"))          # True
        is_deletable(Path("/c/failed/a/x.capture"), Path("/c"))   # False
    """
    # On strings, not PurePath.relative_to: this runs for every file at every check,
    # and pathlib's version dominated a check of a large backlog (sim profile).
    root = str(capture_dir)
    prefix = root if root.endswith("/") else root + "/"
    text = str(path)
    if not text.startswith(prefix):
        return False
    parts = text[len(prefix) :].split("/")
    if not parts[-1] or ".." in parts:
        return False
    return parts[-1].endswith(CAPTURE_EXT) and not KEPT_DIRS.intersection(parts[:-1])


def deletion_candidates(
    capture_dir: Path, files: Iterable[CaptureFileInfo], in_progress: Collection[Path]
) -> list[CaptureFileInfo]:
    """The files retention may delete now, in time order (then path), one entry per path.

    In-progress files are dropped here, before any rule indexes the list.

    Example::

        deletion_candidates(Path("/c"), files, in_progress=set())
    """
    busy = frozenset(in_progress)
    # The full key makes duplicates of one path resolve the same way in any input order.
    ordered = sorted(files, key=lambda f: (f.time_ns, f.path, f.size))
    seen: set[Path] = set()
    out: list[CaptureFileInfo] = []
    for f in ordered:
        if f.path in seen or f.path in busy or not is_deletable(f.path, capture_dir):
            continue
        seen.add(f.path)
        out.append(f)
    return out


def needs_listing(settings: RetentionSettings, usage: DiskStats) -> bool:
    """Whether a check must list the capture dir, or ``decide`` with no files is the answer.

    Without an age or size cap and with the disk under its threshold, no rule can
    delete anything, and the pause depends only on the free bytes. Skipping the
    listing then keeps a check O(1), whatever the backlog (the listing is
    O(files)): this is almost every check on a healthy robot.
    """
    return (
        settings.max_age_ns is not None
        or settings.max_capture_dir_bytes is not None
        or usage.used_fraction >= settings.disk_usage_threshold
    )


def decide(
    settings: RetentionSettings,
    usage: DiskStats,
    files: Sequence[CaptureFileInfo],
    capture_dir_bytes: int,
    in_progress: Collection[Path],
    now_ns: int,
) -> RetentionDecision:
    """One retention pass: which capture files to delete, and whether to pause capture.

    Args:
        settings: the retention knobs.
        usage: the disk holding the capture dir, from the ``DiskUsage`` port.
        files: the finished capture files found, in any order; entries outside
            the capture dir, under ``failed/`` or not ``.capture`` are ignored.
        capture_dir_bytes: all bytes under the capture dir (every file, including
            ``.prog`` and ``failed/``), as the capture-dir share counts them.
        in_progress: paths the sync actor is uploading; never deleted.
        now_ns: wall-clock time (``WallClock.now_ns``), for the age cap.

    Returns:
        The deletions with their reasons, a warning, and the pause and disk-full flags.

    Raises:
        ValueError: ``capture_dir_bytes`` is negative.

    Example::

        decide(RetentionSettings(Path("/c")), DiskStats(100, 95, 5), files,
               capture_dir_bytes=60, in_progress=(), now_ns=clock.now_ns())
    """
    if capture_dir_bytes < 0:
        raise ValueError(f"capture_dir_bytes must be >= 0, got {capture_dir_bytes}")
    remaining = deletion_candidates(settings.capture_dir, files, in_progress)
    warnings: list[str] = []

    aged, remaining = _over_age(remaining, settings.max_age_ns, now_ns)
    capped, remaining = _over_size(
        remaining, settings.max_capture_dir_bytes, capture_dir_bytes - _bytes(aged)
    )
    deletions = [Deletion(f, Reason.AGE_CAP) for f in aged]
    deletions += [Deletion(f, Reason.SIZE_CAP) for f in capped]
    cap_freed = _bytes(aged) + _bytes(capped)
    if settings.max_capture_dir_bytes is not None:
        left = capture_dir_bytes - cap_freed
        if left > settings.max_capture_dir_bytes:
            warnings.append(
                f"capture dir holds {left} bytes, over retention_max_capture_dir_bytes "
                f"{settings.max_capture_dir_bytes}, with no finished capture file left to "
                "delete (the rest is in progress, failed or not capture files)"
            )

    fired, note = _disk_full(settings, usage, capture_dir_bytes, cap_freed)
    if note:
        warnings.append(note)
    if fired:
        thinned = remaining[:: settings.every_nth]
        deletions += [Deletion(f, Reason.DISK_FULL) for f in thinned]
        if not thinned:
            warnings.append(
                "disk full, but no finished capture file can be deleted "
                "(all are in progress, failed or not capture files)"
            )

    freed = sum(d.file.size for d in deletions)
    return RetentionDecision(
        deletions=tuple(deletions),
        warning="; ".join(warnings),
        pause_capture=settings.min_free_bytes > 0 and usage.free + freed < settings.min_free_bytes,
        disk_full=fired,
    )


def _bytes(files: Iterable[CaptureFileInfo]) -> int:
    return sum(f.size for f in files)


def _over_age(
    candidates: list[CaptureFileInfo], max_age_ns: int | None, now_ns: int
) -> tuple[list[CaptureFileInfo], list[CaptureFileInfo]]:
    """Splits time-ordered ``candidates`` into (older than the cap, the rest)."""
    if max_age_ns is None:
        return [], candidates
    old = [f for f in candidates if now_ns - f.time_ns > max_age_ns]
    return old, [f for f in candidates if now_ns - f.time_ns <= max_age_ns]


def _over_size(
    candidates: list[CaptureFileInfo], max_bytes: int | None, dir_bytes: int
) -> tuple[list[CaptureFileInfo], list[CaptureFileInfo]]:
    """Splits off the oldest ``candidates`` until ``dir_bytes`` is within ``max_bytes``."""
    if max_bytes is None:
        return [], candidates
    count = 0
    while count < len(candidates) and dir_bytes > max_bytes:
        dir_bytes -= candidates[count].size
        count += 1
    return candidates[:count], candidates[count:]


def _disk_full(
    settings: RetentionSettings, usage: DiskStats, capture_dir_bytes: int, freed: int
) -> tuple[bool, str]:
    """Whether the disk-full rule fires once ``freed`` bytes are gone, and a warning if not."""
    used = max(0, usage.used - freed)
    used_fraction = used / usage.total if usage.total else 0.0
    if used_fraction < settings.disk_usage_threshold:
        return False, ""
    share = max(0, capture_dir_bytes - freed) / used if used else 0.0
    if share >= settings.capture_dir_threshold:
        return True, ""
    return False, (
        f"disk {_pct(used_fraction)} used (disk_usage_deletion_threshold "
        f"{_pct(settings.disk_usage_threshold)}) but the capture dir holds only "
        f"{_pct(share)} of the used space (capture_dir_deletion_threshold "
        f"{_pct(settings.capture_dir_threshold)}): nothing deleted"
    )


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f} %"
