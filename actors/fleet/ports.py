"""What the cloud-config source needs from the network: the ``ConfigLink`` port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


@final
@dataclass(frozen=True, slots=True)
class CloudDoc:
    """A merged config from the cloud: its revision (content hash), label and JSON text."""

    revision: str
    label: str
    text: str


@final
@dataclass(frozen=True, slots=True)
class ConfigReport:
    """What the robot tells the cloud: the config it runs, one it refused, its backlog."""

    applied: CloudDoc | None
    rejected_revision: str = ""
    error: str = ""
    pending_files: int = 0
    pending_bytes: int = 0


class ConfigLink(Protocol):
    """The cloud's config service, as the robot uses it.

    Every method raises ``actors.errors.SyncError`` subclasses on failure
    (``OfflineError`` when the cloud cannot be reached), like the uploaders.
    """

    async def get(self, part_id: str) -> CloudDoc | None:
        """The part's merged config now, or ``None`` when the cloud has none for it."""
        ...

    async def watch(
        self,
        part_id: str,
        known_revision: str,
        on_update: Callable[[CloudDoc | None], Awaitable[None]],
    ) -> None:
        """Calls ``on_update`` with each new config (``None``: a heartbeat) until the
        server ends the stream (returns) or the connection fails (raises)."""
        ...

    async def report(self, part_id: str, report: ConfigReport) -> None:
        """Sends a status report."""
        ...

    async def close(self) -> None:
        """Closes the connection."""
        ...
