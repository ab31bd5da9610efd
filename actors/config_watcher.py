"""The config watcher: notices a changed config file (or SIGHUP) and hands it on.

Polls the file (once a second by default) and compares its bytes with the last
seen; ``kick()`` (wired to SIGHUP) checks at once. The callback validates and
applies; the watcher only notices. Reading the file goes through the runner.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, NoReturn, final

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from actors.ports import BlockingRunner

LOGGER = logging.getLogger("ferry.config")


def _digest(path: Path) -> tuple[bytes, str] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return hashlib.sha256(data).digest(), data.decode("utf-8", errors="replace")


@final
class ConfigWatcher:
    """Calls ``on_change(text)`` whenever the config file's content changes.

    Example::

        watcher = ConfigWatcher(path, runner, agent.reconfigure, initial=text)
        await nursery.start(watcher.run)
        watcher.kick()  # on SIGHUP
    """

    def __init__(
        self,
        path: Path,
        runner: BlockingRunner,
        on_change: Callable[[str], Awaitable[None]],
        *,
        initial: str,
        poll_s: float = 1.0,
    ) -> None:
        self._path = path
        self._runner = runner
        self._on_change = on_change
        self._last = hashlib.sha256(initial.encode()).digest()
        self._poll_s = poll_s
        self._kicked = trio.Event()
        self._missing_logged = False

    def kick(self) -> None:
        """Checks the file now instead of at the next poll."""
        self._kicked.set()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Watches until cancelled."""
        task_status.started()
        while True:
            with trio.move_on_after(self._poll_s):
                await self._kicked.wait()
            self._kicked = trio.Event()
            found = await self._runner.run(_digest, self._path)
            if found is None:
                if not self._missing_logged:
                    LOGGER.error(
                        "config file %s cannot be read; keeping the running config", self._path
                    )
                    self._missing_logged = True
                continue
            self._missing_logged = False
            digest, text = found
            if digest != self._last:
                self._last = digest
                LOGGER.info("config file %s changed; reconfiguring", self._path)
                await self._on_change(text)
