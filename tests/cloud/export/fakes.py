"""An in-memory ``PageSource`` with hooks, and helpers to run an export against it.

The fake pages lists of records and binary items with cursors like the real
server's: opaque strings, "" on the last page. ``on_page`` runs before every
page is served (raise from it to simulate a failure after N pages);
``max_page_bytes`` makes binary pages over that size fail with ``PageTooLarge``.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cloud.aio_loop import run_asyncio
from cloud.export.progress import Progress
from cloud.export.run import ExportPlan, Outcome, export
from cloud.export.source import (
    BinaryItem,
    BinaryPage,
    FilterSpec,
    Kind,
    PageTooLarge,
    TabularPage,
)

if TYPE_CHECKING:
    import io
    from collections.abc import Callable
    from pathlib import Path


def reading(i: int, component: str = "env") -> dict:
    """A tabular record shaped as ``GrpcPageSource`` returns them."""
    return {
        "time_requested": f"2024-05-01T00:00:{i % 60:02d}.{i:06d}Z",
        "time_received": f"2024-05-01T00:01:{i % 60:02d}.{i:06d}Z",
        "part_id": "part-1",
        "component_type": "rdk:component:sensor",
        "component_name": component,
        "method_name": "Readings",
        "tags": ["a"] if i % 2 else [],
        "data": {"readings": {"i": i, "x": i / 3, "s": f'v,"{i}"\n', "nested": [i, None]}},
    }


def binary(i: int, size: int = 10) -> BinaryItem:
    """A binary item whose bytes depend on ``i``."""
    payload = bytes((i + k) % 256 for k in range(size))
    bid = f"org/loc/file{i:03d}"
    meta = {
        "binary_data_id": bid,
        "size_bytes": size,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return BinaryItem(bid, f"cam{i % 2}", ".jpg", payload, meta)


class Boom(Exception):
    """What ``fail_at`` raises: a failure the driver does not expect."""


@dataclass
class FakeSource:
    """``PageSource`` over lists; records every page request as (kind, cursor, limit)."""

    records: list[dict] = field(default_factory=list)
    items: list[BinaryItem] = field(default_factory=list)
    on_page: Callable[[int], None] | None = None
    max_page_bytes: int | None = None
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    pages_served: int = 0

    async def count(self, kind: Kind) -> int:
        return len(self.records if kind is Kind.TABULAR else self.items)

    def _slice(self, kind: str, last: str, limit: int, size: int) -> tuple[int, int, str]:
        self.requests.append((kind, last, limit))
        if self.on_page is not None:
            self.on_page(self.pages_served)
        start = int(last.removeprefix("c")) if last else 0
        end = min(start + limit, size)
        return start, end, f"c{end}" if end < size else ""

    async def tabular_page(self, last: str, limit: int) -> TabularPage:
        start, end, cursor = self._slice("tabular", last, limit, len(self.records))
        self.pages_served += 1
        return TabularPage(tuple(self.records[start:end]), cursor)

    async def binary_page(self, last: str, limit: int) -> BinaryPage:
        start, end, cursor = self._slice("binary", last, limit, len(self.items))
        page = self.items[start:end]
        size = sum(len(item.payload) for item in page)
        if self.max_page_bytes is not None and size > self.max_page_bytes:
            raise PageTooLarge("BinaryDataByFilter: too many bytes")
        self.pages_served += 1
        return BinaryPage(tuple(page), cursor)


def fail_at(page: int, error: BaseException | None = None) -> Callable[[int], None]:
    """An ``on_page`` hook that raises ``error`` (``Boom``) when asked for page ``page``."""

    def hook(served: int) -> None:
        if served == page:
            raise error if error is not None else Boom(f"failing page {page}")

    return hook


def run_export(
    source: FakeSource,
    out: Path,
    *,
    stream: io.StringIO | None = None,
    spec: FilterSpec | None = None,
    **plan: object,
) -> Outcome:
    """Runs ``export`` on ``source`` under asyncio, as ``ferry export`` does."""
    full = ExportPlan(out=out, spec=spec or FilterSpec(), **plan)  # type: ignore[arg-type]
    progress = Progress(stream if stream is not None else _Sink(), live=False)
    return run_asyncio(export(lambda: contextlib.nullcontext(source), full, progress))


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but the lock) by relative path: outputs to compare."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".export.lock"
    }
