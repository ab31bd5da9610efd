"""``ConfigHub``: wakes the config watchers of an organization when its configs change.

Configs change through ``ferry cloud config``/``fragment`` — another process
writing the same store — so the hub polls the store's per-organization change
counters (one small read, only while someone watches) and sets that
organization's event. Watchers then re-merge their part's config and send it
if its revision moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from cloud.fleet.port import FleetStore
    from cloud.rpc._edge import Edge

LOGGER = logging.getLogger("ferry.cloud.fleet")
DEFAULT_POLL_S = 0.25


@final
class ConfigHub:
    """Change notifications per organization, and the signal that streams should end.

    Example::

        hub = ConfigHub(store, edge)
        task = asyncio.create_task(hub.run())
        changed = await hub.wait_change("org", timeout_s=10)  # False on timeout
        hub.close()  # streams end; run() returns
    """

    def __init__(self, store: FleetStore, edge: Edge, *, poll_s: float = DEFAULT_POLL_S) -> None:
        self._store = store
        self._edge = edge
        self._poll_s = poll_s
        self._events: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, int] = {}
        self._revisions: dict[str, int] = {}
        self.closing = asyncio.Event()

    def close(self) -> None:
        """Ends every watch (the server is stopping); robots watch again elsewhere or later."""
        self.closing.set()
        for event in self._events.values():
            event.set()

    async def run(self) -> None:
        """Polls the change counters until ``close()``."""
        while not self.closing.is_set():
            if self._watchers:
                try:
                    revisions = await self._edge.blocking(self._store.config_revisions)
                except Exception:  # a storage fault: log it, keep serving, try again
                    LOGGER.exception("reading config revisions failed")
                    revisions = self._revisions
                for org, revision in revisions.items():
                    if self._revisions.get(org) != revision:
                        self._wake(org)
                self._revisions = revisions
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self.closing.wait()

    async def wait_change(self, org_id: str, *, timeout_s: float) -> bool:
        """Waits until ``org_id``'s configs change (True), the timeout passes or the hub closes."""
        event = self._events.setdefault(org_id, asyncio.Event())
        self._watchers[org_id] = self._watchers.get(org_id, 0) + 1
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            self._watchers[org_id] -= 1
            if not self._watchers[org_id]:
                del self._watchers[org_id]
        return not self.closing.is_set()

    def _wake(self, org_id: str) -> None:
        event = self._events.pop(org_id, None)
        if event is not None:
            event.set()
