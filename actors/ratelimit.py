"""Log a repeating message once per interval, with a count of what was suppressed."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    import logging


@final
class RateLimitedLog:
    """Suppresses identical messages for ``interval`` seconds (time is passed in).

    Example::

        rl = RateLimitedLog(LOGGER, interval=10.0)
        rl.log(logging.ERROR, trio.current_time(), "cam/ReadImage: %s", err)
    """

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, now: float, msg: str, *args: object) -> bool:
        """Logs unless the same text was logged within ``interval``; returns whether it did."""
        text = msg % args if args else msg
        last = self._last.get(text)
        if last is not None and now - last < self._interval:
            self._suppressed[text] = self._suppressed.get(text, 0) + 1
            return False
        suppressed = self._suppressed.pop(text, 0)
        if len(self._last) > 256:
            self._last.clear()
        self._last[text] = now
        suffix = f" ({suppressed} similar suppressed)" if suppressed else ""
        self._logger.log(level, "%s%s", text, suffix)
        return True
