"""The simulated cloud: the real store and resumable-ingest logic on a temp dir, minus gRPC.

A cloud crash closes the store and answers nothing until the restart, which
opens the store again from its files, as ``ferry cloud serve`` would. Every
acknowledged write was committed (and fsynced) before its answer, so a crash
loses only requests in flight; the checker holds the store to that.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING, final

from cloud.ingest.ids import IdSource
from cloud.ingest.resumable import ResumableIngest, ResumableLimits
from cloud.model import Filter, PageRequest, Principal
from cloud.store.sqlite import SqliteStore
from sim.uploader import InProcessUploader

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sim.trace import Trace

PART_ID = "sim-part"
PRINCIPAL = Principal("sim-key", "sim-org", "sim-location")
_PAGE = 1000


@final
class SimCloud:
    """One cloud process over a data dir, crashable and restartable."""

    def __init__(
        self, data_dir: Path, wall_ns: Callable[[], int], rng: random.Random, trace: Trace
    ) -> None:
        self._dir = data_dir
        self._wall_ns = wall_ns
        self._rng = rng
        self._trace = trace
        self.up = True
        self.epoch = 0
        self.crashes = 0
        self._open()

    def _open(self) -> None:
        self.store = SqliteStore(self._dir, wall_ns=self._wall_ns)
        spool = self._dir / "spool"
        spool.mkdir(exist_ok=True)
        ids = IdSource(random.Random(self._rng.getrandbits(64)))
        self.ingest = ResumableIngest(self.store, ids, spool, ResumableLimits())
        self.uploader = InProcessUploader(self.ingest, PRINCIPAL)

    def crash(self) -> None:
        """The process dies: answers in flight are lost and nothing is served."""
        if not self.up:
            return
        self.up = False
        self.epoch += 1
        self.crashes += 1
        self.store.close()
        self._trace.event("cloud", "crash")

    def restart(self) -> None:
        """The process starts again from what its store committed."""
        if self.up:
            return
        self._open()
        self.up = True
        self._trace.event("cloud", "restart")

    def inventory(self) -> Counter[str]:
        """How often each reading key (``component#seq``) is stored, tabular and binary."""
        found: Counter[str] = Counter()
        for doc in self.store.iter_reading_documents(PRINCIPAL, Filter()):
            data = doc.get("data")
            readings = data.get("readings") if isinstance(data, dict) else None
            if isinstance(readings, dict):
                found[f"{readings.get('src')}#{readings.get('seq')}"] += 1
        last = ""
        while True:
            page = self.store.binary_by_filter(
                PRINCIPAL, Filter(), PageRequest(limit=_PAGE, last=last)
            )
            for row in page.rows:
                head = next(iter(self.store.open_blob(row.blob)), b"")
                found[head.split(b"\n", 1)[0].decode(errors="replace")] += 1
            if not page.rows or not page.last:
                break
            last = page.last
        return found

    def close(self) -> None:
        """Closes the store at the end of the run."""
        if self.up:
            self.store.close()
