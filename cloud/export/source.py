"""The export's port: what a page source answers, and the errors of an export.

``PageSource`` is the one thing ``run.export`` needs from the network: a count
and keyset-paged pages, already turned into plain records. The gRPC adapter is
``client.GrpcPageSource``; tests page a fake (``tests/cloud/export/fakes.py``),
so the resume logic is exercised without a server.

Example::

    source: PageSource = FakeSource(records)
    page = await source.tabular_page("", 100)
    while page.last:
        page = await source.tabular_page(page.last, 100)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import datetime as dt

    from actors.codec import JsonValue

    Record = dict[str, JsonValue]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class Kind(enum.Enum):
    """What an export downloads: readings or binary files (values name the CLI choices)."""

    TABULAR = "tabular"
    BINARY = "binary"


class ExportError(Exception):
    """An export that cannot go on; ``str(err)`` is the one-line message shown.

    ``exit_status`` is what ``ferry export`` exits with: 1 for failures (server
    unreachable, wrong key, I/O), 2 for usage errors (``UsageError``).
    """

    exit_status = EXIT_FAILURE


class UsageError(ExportError):
    """The command line (or its pairing with ``--out``) is wrong: exit status 2."""

    exit_status = EXIT_USAGE


class PageTooLarge(ExportError):
    """The server refused a page as too large (RESOURCE_EXHAUSTED): ask for fewer items."""


@dataclass(frozen=True)
class FilterSpec:
    """Which data to export: the fields AND together, tags match any listed tag.

    Empty strings, ``None`` and ``()`` mean "no constraint". ``start``/``end``
    are aware datetimes bounding ``time_requested`` (inclusive, as the server does).
    """

    part_id: str = ""
    component_name: str = ""
    component_type: str = ""
    method: str = ""
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        """A canonical JSON form: what the state file records and fingerprints."""
        return {
            "part_id": self.part_id,
            "component_name": self.component_name,
            "component_type": self.component_type,
            "method": self.method,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "tags": sorted(set(self.tags)),
        }


@dataclass(frozen=True)
class BinaryItem:
    """One binary file and its metadata.

    Attributes:
        binary_data_id: the server's id of the item (unique within the cloud).
        component_name: the component that captured it (names its directory).
        file_ext: the extension the server reports (``.jpg``), possibly empty.
        payload: the file's bytes.
        metadata: the JSON object ``binary/index.jsonl`` records for it.
    """

    binary_data_id: str
    component_name: str
    file_ext: str
    payload: bytes
    metadata: Record


@dataclass(frozen=True)
class TabularPage:
    """One page of readings, oldest first; ``last`` is the next cursor ("" = no more)."""

    records: tuple[Record, ...]
    last: str


@dataclass(frozen=True)
class BinaryPage:
    """One page of binary items, oldest first; ``last`` is the next cursor ("" = no more)."""

    items: tuple[BinaryItem, ...]
    last: str


class PageSource(Protocol):
    """Counts and pages of one filter's data, ascending by (time_requested, id).

    A cursor is opaque: pass back the ``last`` of the previous page, or "" for
    the first page. Implementations raise ``ExportError`` (and ``PageTooLarge``
    when a page's bytes exceed what the server sends at once), nothing else.
    """

    async def count(self, kind: Kind) -> int:
        """How many items of ``kind`` match the filter now."""
        ...

    async def tabular_page(self, last: str, limit: int) -> TabularPage:
        """Up to ``limit`` readings after cursor ``last``."""
        ...

    async def binary_page(self, last: str, limit: int) -> BinaryPage:
        """Up to ``limit`` binary items (with their bytes) after cursor ``last``."""
        ...
