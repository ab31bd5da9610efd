"""Directories whose existence survives a power cut.

``mkdir`` changes the parent directory, and POSIX makes that change durable only
when the parent is fsynced, as for a file's create or rename. A capture file
fsynced into a new directory whose own entry was never fsynced can vanish with
that directory after a power cut, so every directory Ferry creates goes through
``ensure_dir``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.planted import Bug, planted

if TYPE_CHECKING:
    from pathlib import Path

    from actors.ports import FileSystem


def ensure_dir(fs: FileSystem, path: Path) -> None:
    """Creates ``path`` and its missing parents, each fsynced into its parent.

    Costs nothing more than a ``stat`` when ``path`` exists; a directory created
    by another process between the check and the ``mkdir`` is accepted as is.

    Example::

        ensure_dir(fs, capture_dir / "rdk:component:sensor" / "imu" / "Readings")
    """
    for directory in fs.makedirs(path):
        if not planted(Bug.UNSYNCED_DIRS):
            fs.fsync_dir(directory.parent)
