"""The last good cloud config, on disk, so a robot starts and captures with no network.

One JSON file per part (``<dir>/<part_id>.json``: revision, label, config
text), replaced atomically: written to ``.prog``, fsynced, renamed, and the
directory fsynced, through the file-system seam. A cache that cannot be read
or parsed is reported and ignored, never fatal: the robot then waits for the
cloud.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, final

from actors.durable_dirs import ensure_dir
from actors.fleet.ports import CloudDoc

if TYPE_CHECKING:
    from pathlib import Path

    from actors.ports import BlockingRunner, FileSystem

LOGGER = logging.getLogger("ferry.config")


@final
class ConfigCache:
    """Loads and saves one part's cached cloud config.

    Example::

        cache = ConfigCache(home / "config-cache", "part-1", fs, runner)
        doc = await cache.load()  # None when there is none (or it is unreadable)
        await cache.save(doc)
    """

    def __init__(
        self, directory: Path, part_id: str, fs: FileSystem, runner: BlockingRunner
    ) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in part_id)
        self.path = directory / f"{safe}.json"
        self._fs = fs
        self._runner = runner

    async def load(self) -> CloudDoc | None:
        """The cached config, or ``None`` (missing, or unreadable: logged with the reason)."""
        return await self._runner.run(self._load)

    async def save(self, doc: CloudDoc) -> None:
        """Replaces the cache with ``doc``, durably; a failure is logged, not raised."""
        try:
            await self._runner.run(self._save, doc)
        except OSError as exc:
            LOGGER.error("cannot cache the cloud config in %s: %s", self.path, exc)

    def _load(self) -> CloudDoc | None:
        if not self._fs.exists(self.path):
            return None
        try:
            with self._fs.open_read(self.path) as file:
                data = json.loads(file.read())
            doc = CloudDoc(str(data["revision"]), str(data["label"]), str(data["config"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            LOGGER.error("ignoring the cached cloud config %s: %s", self.path, exc)
            return None
        return doc

    def _save(self, doc: CloudDoc) -> None:
        data = {"revision": doc.revision, "label": doc.label, "config": doc.text}
        payload = json.dumps(data, indent=1).encode()
        ensure_dir(self._fs, self.path.parent)
        tmp = self.path.with_name(self.path.name + ".prog")
        if self._fs.exists(tmp):
            self._fs.unlink(tmp)
        file = self._fs.create_new(tmp)
        try:
            view = memoryview(payload)
            while view:
                view = view[file.write(view) :]
            file.fsync()
        finally:
            file.close()
        self._fs.rename(tmp, self.path)
        self._fs.fsync_dir(self.path.parent)
