"""``CloudConfigSource``: the actor that keeps a robot on its cloud config.

It watches the part's merged config over the ``ConfigLink`` stream and hands
each new revision to the agent's apply path; an applied one is cached, a
refused one is remembered with the validator's message and not asked for
again. A broken or refused connection is retried with the sync actor's backoff
(200 ms doubling, jitter, capped at one hour); being offline is logged once per
change of state, not per attempt. Reports (what runs, what was refused, the
sync backlog) go to the cloud after every change and every ``report_interval_s``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn, TypeVar, final

import trio

from actors.errors import SyncError
from actors.fleet.ports import ConfigReport
from actors.sync.backoff import backoff_delay

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable

    from actors.codec import JsonObject
    from actors.fleet.cache import ConfigCache
    from actors.fleet.ports import CloudDoc, ConfigLink

LOGGER = logging.getLogger("ferry.config")
P = TypeVar("P")
REPORT_INTERVAL_S = 30.0
INITIAL_TIMEOUT_S = 5.0


@final
class CloudConfigSource:
    """Fetches, watches, applies, caches and reports one part's cloud config.

    ``apply(doc)`` validates and applies a config and returns ``""``, or the
    reason it was refused; ``pending()`` gives the sync backlog (files, bytes).

    Example::

        source = CloudConfigSource(link, "part-1", cache, agent_apply, pending, rng)
        plan = await source.initial(plan_for)  # cloud's config, else the cache's, else none
        await nursery.start(source.run)
    """

    def __init__(
        self,
        link: ConfigLink,
        part_id: str,
        cache: ConfigCache,
        apply: Callable[[CloudDoc], Awaitable[str]],
        pending: Callable[[], Awaitable[tuple[int, int]]],
        rng: random.Random,
        *,
        report_interval_s: float = REPORT_INTERVAL_S,
        initial_timeout_s: float = INITIAL_TIMEOUT_S,
    ) -> None:
        self._link = link
        self.part_id = part_id
        self._cache = cache
        self._apply = apply
        self._pending = pending
        self._rng = rng
        self._report_interval_s = report_interval_s
        self._initial_timeout_s = initial_timeout_s
        self.applied: CloudDoc | None = None
        self.from_cache = False
        self.rejected_revision = ""
        self.error = ""
        self.online: bool | None = None
        self.last_offline_reason = ""
        self.failures = 0
        self.updates = 0
        self._report_now = trio.Event()
        self._watch_scope: trio.CancelScope | None = None
        self._delivered = False

    async def initial(self, plan_for: Callable[[CloudDoc | None], P]) -> P:
        """The plan to start with, from the first config that validates: the cloud's
        (if it answers within the start-up timeout), else the cached one, else none.

        ``plan_for(doc)`` validates and plans (raising on a refused config);
        ``plan_for(None)`` plans the bootstrap alone and its errors propagate.
        """
        fetched = await self._fetch()
        cached = await self._cache.load()
        refused: tuple[CloudDoc, str] | None = None
        for doc, from_cache in ((fetched, False), (cached, True)):
            if doc is None or (from_cache and fetched is not None and doc == fetched):
                continue
            try:
                plan = plan_for(doc)
            except Exception as exc:
                LOGGER.error("cloud config %s (%s) refused:\n%s", doc.revision, doc.label, exc)
                refused = (doc, str(exc))
                self.mark_rejected(*refused)
                continue
            if from_cache:
                LOGGER.warning(
                    "starting from the cached cloud config %s (%s)", doc.revision, doc.label
                )
            else:
                await self._cache.save(doc)
            self.mark_applied(doc, from_cache=from_cache)
            if refused is not None:  # the cloud's config was refused: report it, never retry it
                self.mark_rejected(*refused)
            return plan
        LOGGER.warning(
            "no cloud config for part %s yet: capturing nothing until one arrives", self.part_id
        )
        return plan_for(None)

    async def _fetch(self) -> CloudDoc | None:
        doc = None
        with trio.move_on_after(self._initial_timeout_s) as scope:
            try:
                doc = await self._link.get(self.part_id)
                self._set_online(True, "")
            except SyncError as exc:
                self._set_online(False, str(exc))
        if scope.cancelled_caught:
            self._set_online(False, f"no answer within {self._initial_timeout_s:g} s")
        return doc

    def mark_applied(self, doc: CloudDoc, *, from_cache: bool = False) -> None:
        """Records that ``doc`` runs now (the agent applied it)."""
        self.applied = doc
        self.from_cache = from_cache
        self.rejected_revision = self.error = ""
        self._report_now.set()

    def mark_rejected(self, doc: CloudDoc, error: str) -> None:
        """Records that ``doc`` was refused, and why; it is reported and not applied."""
        self.rejected_revision, self.error = doc.revision, error
        self._report_now.set()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Watches and reports until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._report_loop)
            task_status.started()
            await self._watch_loop()
        raise AssertionError("unreachable")  # pragma: no cover

    async def replace_link(self, link: ConfigLink) -> None:
        """Uses ``link`` from now on (the bootstrap's cloud section changed): the
        current watch is cancelled and made again through the new link."""
        old, self._link = self._link, link
        if self._watch_scope is not None:
            self._watch_scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(2.0):
            await old.close()

    async def close(self) -> None:
        """Closes the link to the cloud (when the agent stops)."""
        await self._link.close()

    def render_status(self) -> JsonObject:
        """The ``config`` block of ``ferry status``."""
        return {
            "source": "cloud",
            "part_id": self.part_id,
            "applied_revision": self.applied.revision if self.applied else "",
            "applied_label": self.applied.label if self.applied else "",
            "from_cache": self.from_cache,
            "rejected_revision": self.rejected_revision,
            "error": self.error,
            "online": self.online is True,
            "offline_reason": self.last_offline_reason,
            "updates": self.updates,
        }

    async def _watch_loop(self) -> NoReturn:
        while True:
            known = self.rejected_revision or (self.applied.revision if self.applied else "")
            self._delivered = False
            with trio.CancelScope() as self._watch_scope:
                try:
                    await self._link.watch(self.part_id, known, self._on_update)
                    if not self._delivered:
                        # Ended at once, saying nothing (a proxy, a stopping server):
                        # back off as after a failure, never reconnect in a tight loop.
                        self.failures += 1
                        await trio.sleep(backoff_delay(self.failures, self._rng.random()))
                except SyncError as exc:
                    self._set_online(False, str(exc))
                    self.failures += 1
                    await trio.sleep(backoff_delay(self.failures, self._rng.random()))

    async def _on_update(self, doc: CloudDoc | None) -> None:
        self._set_online(True, "")
        self.failures = 0
        self._delivered = True
        if doc is None:
            # A heartbeat: the cloud's current revision is the one we asked with.
            if self.applied is not None and not self.rejected_revision:
                self.from_cache = False
            return
        known = self.applied.revision if self.applied else ""
        if doc.revision in (known, self.rejected_revision):
            return
        self.updates += 1
        error = await self._apply(doc)
        if error:
            LOGGER.error("cloud config %s (%s) refused:\n%s", doc.revision, doc.label, error)
            self.mark_rejected(doc, error)
            return
        LOGGER.info("cloud config %s applied (%s)", doc.revision, doc.label)
        self.mark_applied(doc)
        await self._cache.save(doc)

    async def _report_loop(self) -> NoReturn:
        while True:
            with trio.move_on_after(self._report_interval_s):
                await self._report_now.wait()
            self._report_now = trio.Event()
            files, size = await self._pending()
            report = ConfigReport(self.applied, self.rejected_revision, self.error, files, size)
            try:
                await self._link.report(self.part_id, report)
            except SyncError as exc:  # the watch loop logs the connection's state
                LOGGER.debug("config status report failed: %s", exc)

    def _set_online(self, online: bool, reason: str) -> None:
        if online == self.online:
            return
        self.online = online
        if online:
            LOGGER.info("config: connected to the cloud (part %s)", self.part_id)
        else:
            self.last_offline_reason = reason
            LOGGER.warning("config: cloud unreachable, retrying with backoff: %s", reason)
