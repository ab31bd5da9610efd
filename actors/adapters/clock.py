"""The production wall clock: the system's real-time clock."""

from __future__ import annotations

import time
from typing import final


@final
class SystemWallClock:
    """``WallClock`` from ``time.time_ns()``; the only place Ferry reads the real clock."""

    def now_ns(self) -> int:
        return time.time_ns()
