"""The sync plan: what the sync actor should be doing, derived from a validated config.

Frozen and comparable, like the capture plan, so a live reconfigure is a diff:
schedule-only changes (interval, ``sync_disabled``, the selective syncer) are
applied to the running actor; anything else restarts its workers, which leaves
every file where it is and resumes each upload at the cloud's committed offset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from pathlib import Path

    from actors.config import CloudSettings


@final
@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Everything sync needs from the config, at effective values.

    ``cloud`` is ``None`` when the config has no ``cloud`` section: nothing is
    uploaded, and status says why.
    """

    capture_dirs: tuple[Path, ...] = ()
    additional_sync_paths: tuple[Path, ...] = ()
    tags: tuple[str, ...] = ()
    cloud: CloudSettings | None = None
    sync_disabled: bool = False
    interval_s: float = 6.0
    file_last_modified_ms: int = 10_000
    threads: int = 1
    chunk_bytes: int = 2_097_152
    max_bytes_per_sec: int = 0
    rpc_timeout_s: float = 60.0
    selective_syncer: str | None = None
    capture_enabled: bool = True

    def workers_key(self) -> SyncPlan:
        """The part of the plan the workers depend on: a change here restarts them."""
        return dataclasses.replace(
            self,
            sync_disabled=False,
            interval_s=0.0,
            selective_syncer=None,
            capture_enabled=True,
        )
