"""Abandoned uploads: open uploads no chunk has reached for long are expired.

A robot that is scrapped, reflashed or loses its capture dir mid-upload never
finishes its upload, and the staging file would hold its bytes forever. Like an
object store's rule for incomplete multipart uploads, the server expires an
open upload after ``idle_s`` without a committed chunk (``ferry cloud serve
--expire-uploads-after-days``, 30 by default). Nothing captured is lost: a
robot that does come back gets NOT_FOUND (transient) on its next call, opens
the same file again and uploads it from offset 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, final

from cloud.defaults import DEFAULT_UPLOAD_IDLE_S

if TYPE_CHECKING:
    from cloud.store.port import Store

LOGGER = logging.getLogger("ferry.cloud")

CHECK_EVERY_S = 3_600.0
"""How often the server looks for idle uploads (and once at start)."""


@final
class UploadExpiry:
    """Expires idle uploads at start and every ``every_s``, off the event loop.

    ``stop`` lets a pass in progress finish (it runs in a thread and uses the
    store, which the server closes next), then ends ``run``. A failed pass (a
    storage error) is logged and tried again at the next one.
    """

    def __init__(
        self, store: Store, idle_s: float = DEFAULT_UPLOAD_IDLE_S, every_s: float = CHECK_EVERY_S
    ) -> None:
        self._store = store
        self._idle_s = idle_s
        self._every_s = every_s
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Passes until ``stop``."""
        idle_ns = int(self._idle_s * 1e9)
        while not self._stopped.is_set():
            try:
                expired = await asyncio.to_thread(self._store.expire_idle_uploads, idle_ns)
            except Exception:
                LOGGER.exception(
                    "expiring idle uploads failed; trying again in %.0f s", self._every_s
                )
            else:
                if expired:
                    LOGGER.info(
                        "expired %d uploads with no chunk for %.1f days (their bytes are "
                        "freed; a robot that comes back uploads the file again): %s",
                        len(expired),
                        self._idle_s / 86_400,
                        ", ".join(expired[:5]) + (" ..." if len(expired) > 5 else ""),
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._every_s)

    def stop(self) -> None:
        """Ends ``run`` after the pass in progress, if any."""
        self._stopped.set()
