"""The retention actor: keeps a full disk from stopping the robot (issue 6).

Every ``interval_s`` (30 s, as in Viam) while capture is enabled, for each
capture directory: measure the disk through the ``DiskUsage`` seam, list the
finished capture files, ask the pure policy (``actors.retention_policy``) what
to delete, and delete it. Each deletion is logged with the file, its readings
and bytes, and counted by reason, exactly: the simulator reconciles these
counts with what the cloud received. Files the sync actor holds are never
touched. Below ``min_free_bytes`` the writer is paused (readings are dropped
and counted) until space returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.codec import CAPTURE_EXT, FAILED_DIR, stem_time_ns
from actors.errors import PermanentError
from actors.planted import Bug, planted
from actors.retention_policy import (
    CaptureFileInfo,
    Reason,
    RetentionSettings,
    decide,
    needs_listing,
)
from actors.sync.files import inspect_capture, sync_deletes, unlink_synced

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from pathlib import Path

    from actors.codec import JsonObject, JsonValue
    from actors.ports import BlockingRunner, DiskStats, DiskUsage, FileSystem, WallClock
    from actors.retention_policy import RetentionDecision

LOGGER = logging.getLogger("ferry.retention")

CHECK_INTERVAL_S = 30.0
"""How often the disk is checked (Viam's CheckDeleteExcessFilesInterval)."""


@final
@dataclass(frozen=True)
class RetentionPlan:
    """What retention enforces: one settings object per capture directory."""

    dirs: tuple[RetentionSettings, ...] = ()
    capture_enabled: bool = True
    interval_s: float = CHECK_INTERVAL_S


@final
@dataclass
class RetentionSeams:
    """The injected world: real disk and files on a robot, simulated ones in ``sim/``."""

    fs: FileSystem
    runner: BlockingRunner
    clock: WallClock
    disk: DiskUsage
    in_progress: Callable[[], Collection[Path]] = frozenset
    pause_capture: Callable[[bool], None] | None = None


@final
@dataclass
class ReasonCount:
    """Files, readings and bytes deleted for one reason."""

    files: int = 0
    readings: int = 0
    bytes: int = 0


@final
@dataclass
class RetentionStats:
    """Totals since the agent started, by reason, and the last check's outcome."""

    deleted: dict[Reason, ReasonCount] = field(
        default_factory=lambda: {reason: ReasonCount() for reason in Reason}
    )
    checks: int = 0
    warning: str = ""
    capture_paused: bool = False
    errors: int = 0
    last_error: str = ""


@final
class RetentionActor:
    """Checks the disk periodically and deletes what the policy says, never a syncing file.

    Example::

        actor = RetentionActor(plan, seams)
        await nursery.start(actor.run)
    """

    def __init__(self, plan: RetentionPlan, seams: RetentionSeams) -> None:
        self._plan = plan
        self._seams = seams
        self.stats = RetentionStats()
        self._wake = trio.Event()

    async def apply(self, plan: RetentionPlan) -> None:
        """Follows a new plan from the next check on (which runs now)."""
        self._plan = plan
        self._wake.set()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Checks now, then every interval, until cancelled; a failed check is logged, not fatal."""
        task_status.started()
        while True:
            if self._plan.capture_enabled:
                try:
                    await self.check()
                except OSError as exc:
                    # A full or failing disk must not crash-loop this actor: next check.
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    LOGGER.error("retention check failed: %s", exc)
            self._wake = trio.Event()
            with trio.move_on_after(self._plan.interval_s):
                await self._wake.wait()

    async def check(self) -> list[RetentionDecision]:
        """One check of every capture directory; returns the decisions it carried out."""
        decisions = []
        pause = False
        warnings: list[str] = []
        for settings in self._plan.dirs:
            decision = await self._check_dir(settings)
            decisions.append(decision)
            pause = pause or decision.pause_capture
            if decision.warning:
                warnings.append(decision.warning)
        self.stats.checks += 1
        self._set_warning("; ".join(warnings))
        if pause != self.stats.capture_paused and self._seams.pause_capture is not None:
            self._seams.pause_capture(pause)
        self.stats.capture_paused = pause
        return decisions

    def render_status(self) -> JsonObject:
        """The retention section of ``ferry status``."""
        deleted: dict[str, JsonValue] = {
            reason.value: {"files": c.files, "readings": c.readings, "bytes": c.bytes}
            for reason, c in self.stats.deleted.items()
        }
        return {
            "checks": self.stats.checks,
            "warning": self.stats.warning,
            "capture_paused": self.stats.capture_paused,
            "errors": self.stats.errors,
            "last_error": self.stats.last_error,
            "deleted": deleted,
        }

    async def _check_dir(self, settings: RetentionSettings) -> RetentionDecision:
        seams = self._seams
        usage = await self._usage(settings)
        files: list[CaptureFileInfo] = []
        total = 0
        if needs_listing(settings, usage):
            files, total = await seams.runner.run(
                _list_capture_files, seams.fs, settings.capture_dir
            )
        decision = decide(settings, usage, files, total, seams.in_progress(), seams.clock.now_ns())
        for deletion in decision.deletions:
            await self._delete(deletion.file, deletion.reason)
        return decision

    async def _usage(self, settings: RetentionSettings) -> DiskStats:
        return await self._seams.runner.run(self._seams.disk.usage, settings.capture_dir)

    async def _delete(self, file: CaptureFileInfo, reason: Reason) -> None:
        seams = self._seams
        if file.path in seams.in_progress():
            return  # sync took it since the listing: it is being uploaded, keep it
        try:
            readings = (await seams.runner.run(inspect_capture, seams.fs, file.path)).records
        except PermanentError:
            readings = 0  # unreadable: nothing in it can be counted as a reading
        except FileNotFoundError:
            return  # synced and deleted since the listing
        try:
            await seams.runner.run(unlink_synced, seams.fs, file.path)
        except OSError as exc:
            LOGGER.error("retention: could not delete %s (%s): %s", file.path, reason.value, exc)
            return  # still there: the next check may take it
        # Deleted: counted and logged even if the directory fsync below fails (the
        # simulator found the count skipped when it raised). A power cut may then
        # bring the file back, to be synced or deleted again.
        unsynced: OSError | None = None
        try:
            await seams.runner.run(sync_deletes, seams.fs, file.path.parent)
        except OSError as exc:
            unsynced = exc
        if planted(Bug.UNCOUNTED_RETENTION):
            return
        count = self.stats.deleted[reason]
        count.files += 1
        count.readings += readings
        count.bytes += file.size
        LOGGER.warning(
            "retention (%s): deleted %s: %d readings, %d bytes", reason.value, file.path,
            readings, file.size,
        )  # fmt: skip
        if unsynced is not None:
            LOGGER.warning(
                "retention: the delete of %s is not durable yet: %s", file.path, unsynced
            )

    def _set_warning(self, warning: str) -> None:
        if warning and warning != self.stats.warning:
            LOGGER.warning("retention: %s", warning)
        self.stats.warning = warning


def _list_capture_files(fs: FileSystem, root: Path) -> tuple[list[CaptureFileInfo], int]:
    """Finished capture files under ``root`` (not in failed/) and the bytes of every file there."""
    files: list[CaptureFileInfo] = []
    total = 0
    # Each directory carries whether it is under failed/ (no per-file path arithmetic:
    # this listing runs at every check, over the whole backlog).
    stack = [(root, False)]
    while stack:
        directory, in_failed = stack.pop()
        try:
            entries = fs.list_dir(directory)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir:
                stack.append((directory / entry.name, in_failed or entry.name == FAILED_DIR))
                continue
            total += entry.size
            if entry.name.endswith(CAPTURE_EXT) and not in_failed:
                path = directory / entry.name
                time_ns = stem_time_ns(entry.name.removesuffix(CAPTURE_EXT))
                files.append(
                    CaptureFileInfo(path, entry.size, time_ns if time_ns else entry.mtime_ns)
                )
    return files, total
