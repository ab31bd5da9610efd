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
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from cloud.model import BinaryRow
    from sim.trace import Trace

PART_ID = "sim-part"
PRINCIPAL = Principal("sim-key", "sim-org", "sim-location")
_PAGE = 1000
# Each stored reading's key, counted in SQL: ``src#seq`` of its ``readings`` object.
_TABULAR_KEYS = (
    "SELECT ifnull(data ->> '$.readings.src', 'None') || '#' || "
    "ifnull(data ->> '$.readings.seq', 'None') AS k FROM readings "
    "WHERE json_type(data, '$.readings') = 'object'"
)
_MAX_KEYS = 100_000_000
_SQL_BUDGET_STEPS = 10**12  # the checker's own query: no budget to speak of


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
        self.store = SqliteStore(
            self._dir, wall_ns=self._wall_ns, sql_budget_steps=_SQL_BUDGET_STEPS
        )
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
        """How often each reading key (``component#seq``) is stored, tabular and binary.

        Tabular keys are made by SQL in the store (``sql_query``): decoding
        every stored reading in Python took 6 % of a simulated day. They are
        counted here: nearly every key is stored once, so a ``GROUP BY`` only
        sorted them (0.9 of the query's 2.2 s for 240,000 readings). A reading
        whose ``readings`` is not an object is not counted (the components always
        write one); a missing ``src`` or ``seq`` reads ``None``, as in Python.
        """
        rows = self.store.sql_query(PRINCIPAL, _TABULAR_KEYS, max_rows=_MAX_KEYS)
        found: Counter[str] = Counter(doc["k"] for doc in rows if isinstance(doc["k"], str))
        for row in self._binary_rows():
            found[self._blob_key(row)] += 1
        return found

    def untagged(self, tag: str) -> list[str]:
        """The keys of stored readings and items without ``tag`` (an identifier-like tag).

        The robot's data manager gives every file it syncs one tag
        (``sim.robot.ROBOT_TAG``), so each of these is a tag lost on the way.
        """
        if not tag.replace("-", "").isalnum():
            raise ValueError(f"tag {tag!r}: letters, digits and '-' only (it goes in SQL)")
        query = (
            "SELECT ifnull(data ->> '$.readings.src', 'None') || '#' || "
            "ifnull(data ->> '$.readings.seq', 'None') AS k FROM readings "
            f"WHERE instr(tags, '\"{tag}\"') = 0"
        )
        keys = [str(doc["k"]) for doc in self.store.sql_query(PRINCIPAL, query, max_rows=_MAX_KEYS)]
        keys += [self._blob_key(row) for row in self._binary_rows() if tag not in row.metadata.tags]
        return keys

    def _binary_rows(self) -> Iterator[BinaryRow]:
        """Every stored binary item, page by page."""
        last = ""
        while True:
            page = self.store.binary_by_filter(
                PRINCIPAL, Filter(), PageRequest(limit=_PAGE, last=last)
            )
            yield from page.rows
            if not page.rows or not page.last:
                return
            last = page.last

    def _blob_key(self, row: BinaryRow) -> str:
        """A binary item's key: the first line of its bytes (``component#seq`` or ``file:...``)."""
        head = next(iter(self.store.open_blob(row.blob)), b"")
        return head.split(b"\n", 1)[0].decode(errors="replace")

    def close(self) -> None:
        """Closes the store at the end of the run."""
        if self.up:
            self.store.close()
