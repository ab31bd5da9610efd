"""Disk usage through psutil: the production ``DiskUsage``."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import psutil

from actors.ports import DiskStats

if TYPE_CHECKING:
    from pathlib import Path


@final
class PsutilDiskUsage:
    """``DiskUsage`` of the real file system (``statvfs`` via psutil)."""

    def usage(self, path: Path) -> DiskStats:
        u = psutil.disk_usage(str(path))
        return DiskStats(total=u.total, used=u.used, free=u.free)
