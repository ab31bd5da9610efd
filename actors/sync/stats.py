"""What sync has done and is doing: counters, per-file progress, and the cloud's reachability.

Owned by the sync actor and read by ``ferry status``; the counters outlive a
reconfigure (the workers restart, the numbers keep counting).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from pathlib import Path

    import trio

    from actors.codec import JsonObject
    from actors.ports import SyncFile
    from actors.sync.fsm import FileState

LOGGER = logging.getLogger("ferry.sync")


@final
@dataclass
class SyncCounters:
    """Totals since the agent started. Exact: the simulator reconciles them with the cloud."""

    files_uploaded: int = 0
    """Files the cloud confirmed after this agent sent their bytes."""
    files_already_in_cloud: int = 0
    """Files the cloud already had (a crash between confirmation and delete): deleted, not sent."""
    files_deleted: int = 0
    """Local files deleted after a confirmation."""
    empty_files_deleted: int = 0
    """Capture files with no readings, deleted without an upload (as Viam does)."""
    files_failed: int = 0
    """Files moved to failed/ (terminal errors)."""
    records_uploaded: int = 0
    """Readings in the capture files the cloud confirmed."""
    bytes_sent: int = 0
    """Chunk bytes the cloud accepted."""
    bytes_resent: int = 0
    """Bytes sent again after an interruption (at most one chunk each)."""
    interruptions: int = 0
    """Uploads interrupted mid-file (then resumed at the committed offset)."""
    retries: int = 0
    """Failed attempts that were retried after a backoff."""
    passes: int = 0
    """Walks of the sync paths (scheduled and manual)."""
    skipped_ticks: int = 0
    """Scheduled passes skipped (sync disabled, selective syncer said no, no cloud)."""


@final
@dataclass
class FileProgress:
    """One file a worker holds: its machine state and when it tries next."""

    file: SyncFile
    state: FileState
    kick: trio.Event
    next_attempt_at: float | None = None
    last_error: str = ""


@final
@dataclass
class Reachability:
    """Whether the cloud answers; each change is logged once, never per attempt."""

    offline: bool = False
    since: float = 0.0
    last_error: str = ""
    changes: int = 0

    def failed(self, now: float, error: str) -> None:
        """An attempt found the cloud unreachable."""
        self.last_error = error
        if not self.offline:
            self.offline, self.since, self.changes = True, now, self.changes + 1
            LOGGER.warning("cloud unreachable, uploads retry with backoff: %s", error)

    def reached(self, now: float) -> None:
        """An attempt got an answer from the cloud."""
        if self.offline:
            LOGGER.info("cloud reachable again after %.1f s offline", now - self.since)
            self.offline, self.since, self.changes = False, now, self.changes + 1


@final
@dataclass
class SyncStatus:
    """Everything the sync actor reports."""

    counters: SyncCounters = field(default_factory=SyncCounters)
    reach: Reachability = field(default_factory=Reachability)
    files: dict[Path, FileProgress] = field(default_factory=dict)
    compat: bool = False
    batch_unsupported: bool = False
    """The cloud answered UNIMPLEMENTED to UploadFiles: small files go one by one."""
    error: str = ""
    selective: str = ""
    last_pass_wall_ns: int = 0
    next_pass_at: float | None = None

    def render(self, now: float) -> JsonObject:
        """JSON-like status for ``ferry status`` (``now`` is Trio time)."""
        c = self.counters
        files: list[JsonObject] = [
            {
                "path": str(path),
                "kind": p.file.kind.value,
                "phase": p.state.phase.value,
                "size": p.state.size,
                "bytes_confirmed": p.state.offset,
                "attempt": p.state.attempt,
                "backoff_s": p.state.delay_s,
                "next_attempt_in_s": max(0.0, p.next_attempt_at - now)
                if p.next_attempt_at is not None
                else 0.0,
                "last_error": p.last_error,
            }
            for path, p in sorted(self.files.items())
        ]
        return {
            "mode": "viam-compatible" if self.compat else "resumable",
            "exactly_once": not self.compat,
            "online": not self.reach.offline,
            "offline_error": self.reach.last_error if self.reach.offline else "",
            "error": self.error,
            "selective_syncer": self.selective,
            "next_pass_in_s": max(0.0, self.next_pass_at - now)
            if self.next_pass_at is not None
            else 0.0,
            "last_pass_wall_ns": self.last_pass_wall_ns,
            "counters": {name: int(value) for name, value in vars(c).items()},
            "files": list(files),
        }
