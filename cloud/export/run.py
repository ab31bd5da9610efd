"""The export driver: page a ``PageSource`` into the writers, checkpointing after each page.

For each kind the loop is: fetch the page after the cursor, append it, fsync,
then save the state with the new cursor and the output's new length. A crash
or Ctrl-C anywhere leaves a state that points at durable output; the next run
cuts the output back to that length and fetches from that cursor, so the
result is byte-for-byte what an uninterrupted run writes (see ``state``).

A page the server refuses as too large (binary pages carry the files) is
fetched again with half the limit, down to one item.

Example::

    plan = ExportPlan(out=Path("out"), spec=FilterSpec(component_name="cam"))
    outcome = await export(lambda: open_source(...), plan, Progress(sys.stderr, live=False))
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

from cloud.export.source import ExportError, Kind, PageTooLarge, UsageError
from cloud.export.state import STATE_NAME, ExportState, load_state, save_state
from cloud.export.writers import INDEX_NAME, BinaryWriter, CsvWriter, JsonlWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from actors.codec import JsonValue
    from cloud.export.progress import Progress
    from cloud.export.source import FilterSpec, PageSource

DEFAULT_PAGE_SIZE = {Kind.TABULAR: 1000, Kind.BINARY: 50}
LOCK_NAME = ".export.lock"
FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class ExportPlan:
    """What to export and where (the parsed command line).

    Attributes:
        out: the output directory (created if missing).
        spec: the filter.
        kinds: what to export, in this order.
        fmt: ``jsonl`` or ``csv``, for readings.
        page_size: items per request; ``None`` uses ``DEFAULT_PAGE_SIZE``.
        restart: discard an existing export in ``out`` first.
    """

    out: Path
    spec: FilterSpec
    kinds: tuple[Kind, ...] = (Kind.TABULAR, Kind.BINARY)
    fmt: str = "jsonl"
    page_size: int | None = None
    restart: bool = False

    def query(self) -> dict[str, JsonValue]:
        """What the state fingerprints: a different query cannot resume this export."""
        fmt = self.fmt if Kind.TABULAR in self.kinds else None
        return {
            "filter": self.spec.to_json(),
            "kinds": [k.value for k in self.kinds],
            "format": fmt,
        }

    def output(self, kind: Kind) -> Path:
        """The file (tabular) or directory (binary) ``kind`` is written to."""
        return self.out / (f"tabular.{self.fmt}" if kind is Kind.TABULAR else "binary")


@dataclass(frozen=True)
class Outcome:
    """How an export ended: its final state, and whether it was complete before this run."""

    state: ExportState
    already_complete: bool


async def export(
    connect: Callable[[], AbstractAsyncContextManager[PageSource]],
    plan: ExportPlan,
    progress: Progress,
) -> Outcome:
    """Exports (or resumes exporting) ``plan`` from the source ``connect()`` opens.

    The output directory is locked and its state checked before connecting, so
    a mismatched ``--out`` or a finished export never touches the network; with
    ``restart``, the old export is discarded only once connected, so a server
    that is down never costs a finished export.

    Returns:
        The final state; ``already_complete`` if nothing was left to do.

    Raises:
        UsageError: ``plan.out`` holds a different export (or data without
            state), and ``plan.restart`` is not set.
        ExportError: the source failed, or a file could not be written; the
            state still allows a later run to resume.
    """
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
        with _locked(plan.out):
            state = None if plan.restart else _prepare(plan)
            if state is not None and state.complete:
                return Outcome(state, already_complete=True)
            async with connect() as source:
                state = state or _prepare(plan)
                for kind in plan.kinds:
                    state = await _export_kind(source, plan, state, kind, progress)
            state = state.completed()
            save_state(plan.out / STATE_NAME, state)
            return Outcome(state, already_complete=False)
    except OSError as exc:
        raise ExportError(f"cannot write to {plan.out}: {exc}") from None


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``out``: two exports into one directory would interleave."""
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportError(f"another ferry export is writing to {out}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _outputs(plan: ExportPlan) -> list[Path]:
    tabular = [plan.out / f"tabular.{fmt}" for fmt in FORMATS]
    return [*tabular, plan.out / "binary" / INDEX_NAME]


def _prepare(plan: ExportPlan) -> ExportState:
    """The state to continue from: loaded, or new (after ``--restart``, or the first run)."""
    path = plan.out / STATE_NAME
    query = plan.query()
    state = None if plan.restart else load_state(path)
    if state is not None and state.query == query:
        return state
    if state is not None and state.started:
        raise UsageError(
            f"{plan.out} holds an export of a different query ({_difference(state.query, query)}); "
            "use a new --out, or --restart to replace it"
        )
    if plan.restart or state is not None:  # (a state with nothing saved protects nothing)
        _discard(plan)
    else:
        found = [p for p in _outputs(plan) if p.exists()]
        if found:
            raise UsageError(
                f"{found[0]} exists but {plan.out} has no export state; "
                "use a new --out, or --restart to replace it"
            )
    state = ExportState.new(query, plan.kinds)
    save_state(path, state)  # before any output: output without state is never ours
    return state


def _discard(plan: ExportPlan) -> None:
    """Deletes the state and every output of an export in ``plan.out``."""
    (plan.out / STATE_NAME).unlink(missing_ok=True)
    for output in _outputs(plan)[: len(FORMATS)]:
        output.unlink(missing_ok=True)
    shutil.rmtree(plan.out / "binary", ignore_errors=True)


def _difference(old: dict[str, JsonValue], new: dict[str, JsonValue]) -> str:
    """The first field that differs, as ``name: old -> new`` (filter fields by name)."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    for key in sorted(flat_old.keys() | flat_new.keys()):
        if flat_old.get(key) != flat_new.get(key):
            return f"{key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r}"
    return "same fields"  # pragma: no cover - only called when the queries differ


def _flatten(query: dict[str, JsonValue]) -> dict[str, JsonValue]:
    flat = dict(query)
    inner = flat.pop("filter", None)
    if isinstance(inner, dict):
        flat.update(inner)
    return flat


class _Lane(Protocol):
    """One kind's fetch-and-write step over its writer."""

    async def step(self, cursor: str, limit: int) -> tuple[str, int, int]:
        """Fetches and appends the page after ``cursor``: returns (next cursor, items, bytes)."""
        ...

    def sync(self) -> int: ...

    def close(self) -> None: ...


@final
class _TabularLane:
    def __init__(self, source: PageSource, writer: JsonlWriter | CsvWriter) -> None:
        self._source, self._writer = source, writer

    async def step(self, cursor: str, limit: int) -> tuple[str, int, int]:
        page = await self._source.tabular_page(cursor, limit)
        return page.last, len(page.records), self._writer.write(page.records)

    def sync(self) -> int:
        return self._writer.sync()

    def close(self) -> None:
        self._writer.close()


@final
class _BinaryLane:
    def __init__(self, source: PageSource, writer: BinaryWriter) -> None:
        self._source, self._writer = source, writer

    async def step(self, cursor: str, limit: int) -> tuple[str, int, int]:
        page = await self._source.binary_page(cursor, limit)
        return page.last, len(page.items), self._writer.write(page.items)

    def sync(self) -> int:
        return self._writer.sync()

    def close(self) -> None:
        self._writer.remove_leftovers()
        self._writer.close()


def _lane(source: PageSource, plan: ExportPlan, kind: Kind, offset: int) -> _Lane:
    path = plan.output(kind)
    if kind is Kind.BINARY:
        return _BinaryLane(source, BinaryWriter(path, offset))
    writer = CsvWriter(path, offset) if plan.fmt == "csv" else JsonlWriter(path, offset)
    return _TabularLane(source, writer)


async def _export_kind(
    source: PageSource, plan: ExportPlan, state: ExportState, kind: Kind, progress: Progress
) -> ExportState:
    done = state.of(kind)
    if done.done:
        return state
    total = await source.count(kind)
    lane = _lane(source, plan, kind, done.offset)
    progress.begin(kind.value, total=total, items=done.items, nbytes=done.nbytes)
    cursor, limit = done.cursor, plan.page_size or DEFAULT_PAGE_SIZE[kind]
    try:
        while True:
            last, items, nbytes, limit = await _step(lane, cursor, limit)
            if last and last == cursor:
                raise ExportError(f"the server returned cursor {last!r} twice; cannot page on")
            state = state.advanced(
                kind, cursor=last, offset=lane.sync(), items=items, nbytes=nbytes
            )
            save_state(plan.out / STATE_NAME, state)
            progress.advance(items, nbytes)
            if not last:
                return state
            cursor = last
    finally:
        lane.close()
        progress.end()


async def _step(lane: _Lane, cursor: str, limit: int) -> tuple[str, int, int, int]:
    """``lane.step``, halving the limit while the server says the page is too large."""
    while True:
        try:
            last, items, nbytes = await lane.step(cursor, limit)
        except PageTooLarge:
            if limit == 1:
                raise
            limit = max(1, limit // 2)
            continue
        return last, items, nbytes, limit
