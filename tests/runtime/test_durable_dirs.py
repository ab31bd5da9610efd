"""Directories Ferry creates are durable: each new entry is fsynced into its parent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.adapters.os_fs import OsFileSystem
from actors.durable_dirs import ensure_dir

if TYPE_CHECKING:
    from pathlib import Path


class _Recording:
    """The real file system, remembering which directories were fsynced, in order."""

    def __init__(self) -> None:
        self._os = OsFileSystem()
        self.synced: list[Path] = []

    def makedirs(self, path: Path) -> list[Path]:
        return self._os.makedirs(path)

    def fsync_dir(self, path: Path) -> None:
        self._os.fsync_dir(path)
        self.synced.append(path)


def test_makedirs_returns_the_directories_it_created_outermost_first(tmp_path: Path) -> None:
    fs = OsFileSystem()
    leaf = tmp_path / "a" / "b" / "c"
    assert fs.makedirs(leaf) == [tmp_path / "a", tmp_path / "a" / "b", leaf]
    assert leaf.is_dir()
    assert (leaf.stat().st_mode & 0o777) == 0o700
    assert fs.makedirs(leaf) == []  # already there: no error, nothing created
    assert fs.makedirs(tmp_path / "a" / "d") == [tmp_path / "a" / "d"]


def test_makedirs_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        OsFileSystem().makedirs(tmp_path / "f" / "sub")


def test_ensure_dir_fsyncs_the_parent_of_every_new_directory(tmp_path: Path) -> None:
    """A power cut cannot take a new directory's entry, so files fsynced inside it stay."""
    fs = _Recording()
    leaf = tmp_path / "capture" / "rdk_component_sensor" / "imu"
    ensure_dir(fs, leaf)  # type: ignore[arg-type] # the two calls ensure_dir makes
    assert fs.synced == [
        tmp_path,
        tmp_path / "capture",
        tmp_path / "capture" / "rdk_component_sensor",
    ]
    fs.synced.clear()
    ensure_dir(fs, leaf)  # type: ignore[arg-type]
    assert fs.synced == []  # an existing directory costs no fsync
