"""``viam.app.data.v1.DataService``: Viam's query, export and delete RPCs.

Every handler reads the caller's ``Principal`` and passes it to the store, which
sees only that organization (and only that part, for a part key). Store calls,
blob reads and the conversion of rows to messages run on the edge's worker
threads, so a large page never stalls the event loop; a server stream
(``ExportTabularData``) pulls its rows in bounded batches, one worker call each.

Where Viam's semantics need a choice (spec §3.3), this module documents it:
``count`` is the number of rows in the page unless ``count_only``; limits above
the store's maximum page are capped, not refused; ``additional_parameters`` is
an extra equality on the stored method parameters (absent: no constraint);
``include_internal_data`` is accepted and ignored (there is no internal data).

Message parts become domain values in ``_data_convert``; the request checks that
need the caller or serve several handlers (organization, source, parameters,
by-ids lists) are in ``_data_request``. This module holds the handlers and the
helpers that read the store for them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, final

from cloud.errors import InvalidArgument, ResourceExhausted
from cloud.model import Filter, PageRequest, SortOrder
from cloud.query.bsonio import decode_stages, encode_documents
from cloud.query.mql import compile_pipeline
from cloud.rpc import _data_convert as conv
from cloud.rpc import _data_request as req
from cloud.rpc._data_request import MAX_IDS as MAX_IDS
from cloud.rpc._edge import caller
from protos.gen.viam.app.data import v1 as data_pb

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    from actors.codec import JsonValue
    from cloud.model import BinaryRow, Document, Principal, TabularRow
    from cloud.query.mql import Pipeline
    from cloud.rpc._edge import Edge
    from cloud.store.port import Store

_NS_PER_DAY = 86_400 * 1_000_000_000
# Viam answers GetLatestTabularData only for data synced within the last year.
LATEST_MAX_AGE_NS = 365 * _NS_PER_DAY
EXPORT_BATCH = 500  # export rows pulled per worker-thread call
_SCAN_PAGE = 500  # rows per page when scanning for matching method parameters
_SOURCE_TYPES = frozenset(int(t) for t in data_pb.TabularDataSourceType)


def _close_quietly(rows: Iterator[TabularRow]) -> None:
    """Closes a store stream early; never raises (it may still run on a worker)."""
    if isinstance(rows, Generator):
        # ValueError: still executing on a worker thread; the GC closes it later.
        with contextlib.suppress(ValueError):
            rows.close()


def _export_batch(
    rows: Iterator[TabularRow], wanted: dict[str, JsonValue] | None, size: int
) -> tuple[list[data_pb.ExportTabularDataResponse], bool]:
    """Up to ``size`` export messages from ``rows``, and whether ``rows`` is done."""
    out: list[data_pb.ExportTabularDataResponse] = []
    for row in rows:
        if req.params_match(row, wanted):
            out.append(conv.export_point(row))
            if len(out) >= size:
                return out, False
    return out, True


def _bounded(docs: Iterator[Document], limit: int) -> Iterator[Document]:
    for count, doc in enumerate(docs, 1):
        if count > limit:
            raise ResourceExhausted(
                f"mql_binary: the pipeline returns more than {limit} documents; add a $limit stage"
            )
        yield doc


@final
class DataService(data_pb.DataServiceBase):
    """Serves Viam's DataService over the store, scoped to each caller.

    Example::

        handlers = [DataService(edge, store, max_sql_rows=10_000)]
    """

    def __init__(
        self,
        edge: Edge,
        store: Store,
        *,
        max_sql_rows: int = 100_000,
        max_mql_docs: int = 1_000_000,
        max_binary_bytes: int = 64 << 20,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        """Wires the service.

        Args:
            edge: runs blocking calls on worker threads.
            store: where data lives.
            max_sql_rows: the most rows one SQL query may return.
            max_mql_docs: the most documents an MQL pipeline may hold (blocking
                stages) or return.
            max_binary_bytes: the most blob bytes one response of several items
                may carry (``include_binary``); such a page is refused, so ask for
                fewer. A single item is always served, whatever its size.
            wall_ns: the wall clock (``delete_older_than_days``, latest-data age).
        """
        self._edge = edge
        self._store = store
        self._max_sql_rows = max_sql_rows
        self._max_mql_docs = max_mql_docs
        self._max_binary_bytes = max_binary_bytes
        self._wall_ns = wall_ns

    # -- tabular -------------------------------------------------------------------

    async def tabular_data_by_filter(
        self, message: data_pb.TabularDataByFilterRequest
    ) -> data_pb.TabularDataByFilterResponse:
        """One page of readings with de-duplicated metadata, or only their count."""
        who = caller()
        flt, page = conv.data_request(message.data_request)
        if message.count_only:
            count = await self._edge.blocking(self._store.count_tabular, who, flt)
            return data_pb.TabularDataByFilterResponse(count=count)
        return await self._edge.blocking(self._tabular_page, who, flt, page)

    def _tabular_page(
        self, who: Principal, flt: Filter, page: PageRequest
    ) -> data_pb.TabularDataByFilterResponse:
        got = self._store.tabular_by_filter(who, flt, page)
        return conv.tabular_page(got.rows, got.last)

    async def tabular_data_by_sql(
        self, message: data_pb.TabularDataBySqlRequest
    ) -> data_pb.TabularDataBySqlResponse:
        """Read-only SQL over the caller's ``readings``; one BSON document per row."""
        who = caller()
        req.check_org(message.organization_id, who)
        if not message.sql_query.strip():
            raise InvalidArgument("sql_query: required")
        raw = await self._edge.blocking(self._sql, who, message.sql_query)
        return data_pb.TabularDataBySqlResponse(raw_data=raw)

    def _sql(self, who: Principal, sql: str) -> list[bytes]:
        return encode_documents(self._store.sql_query(who, sql, max_rows=self._max_sql_rows))

    async def tabular_data_by_mql(
        self, message: data_pb.TabularDataByMqlRequest
    ) -> data_pb.TabularDataByMqlResponse:
        """An aggregation pipeline over the caller's readings; one BSON document per result.

        The pipeline is validated before any data is read; equalities of its
        leading ``$match`` on well-known fields narrow the store's scan.
        """
        who = caller()
        req.check_org(message.organization_id, who)
        source = message.data_source
        if source is not None:
            kind = int(source.type)
            if kind not in _SOURCE_TYPES:
                raise InvalidArgument(f"data_source.type: unknown TabularDataSourceType {kind}")
            if kind == data_pb.TabularDataSourceType.PIPELINE_SINK:
                raise InvalidArgument("data_source.type: data pipelines are not supported")
            # STANDARD and HOT_STORAGE read the same store: all data here is "recent".
        if message.query_prefix_name:
            raise InvalidArgument("query_prefix_name: saved queries are not supported")
        if not message.mql_binary:
            raise InvalidArgument("mql_binary: at least one stage is required")
        pipeline = compile_pipeline(decode_stages(message.mql_binary))
        raw = await self._edge.blocking(self._mql, who, pipeline)
        return data_pb.TabularDataByMqlResponse(raw_data=raw)

    def _mql(self, who: Principal, pipeline: Pipeline) -> list[bytes]:
        flt = mql_pushdown(pipeline.leading_filter())
        docs = self._store.iter_reading_documents(who, flt)
        results = pipeline.run(docs, max_docs=self._max_mql_docs)
        return encode_documents(_bounded(results, self._max_mql_docs))

    async def export_tabular_data(
        self, message: data_pb.ExportTabularDataRequest
    ) -> AsyncIterator[data_pb.ExportTabularDataResponse]:
        """Every reading of one source, oldest first, one message each."""
        who = caller()
        part_id, name, subtype, method = req.source(
            message.part_id, message.resource_name, message.resource_subtype, message.method_name
        )
        start_ns, end_ns = conv.interval_ns(message.interval, "interval")
        wanted = req.wanted_params(message.additional_parameters)
        rows = await self._edge.blocking(
            self._store.export_tabular, who, part_id, name, subtype, method, start_ns, end_ns
        )
        try:
            done = False
            while not done:
                batch, done = await self._edge.blocking(_export_batch, rows, wanted, EXPORT_BATCH)
                for point in batch:
                    yield point
        finally:
            _close_quietly(rows)

    async def get_latest_tabular_data(
        self, message: data_pb.GetLatestTabularDataRequest
    ) -> data_pb.GetLatestTabularDataResponse:
        """The newest reading of one source; empty (no payload) when there is none.

        As in Viam, only data synced within the last year counts.
        """
        who = caller()
        source = req.source(
            message.part_id, message.resource_name, message.resource_subtype, message.method_name
        )
        wanted = req.wanted_params(message.additional_parameters)
        row = await self._edge.blocking(self._latest, who, source, wanted)
        if row is not None and row.time_synced_ns < self._wall_ns() - LATEST_MAX_AGE_NS:
            row = None
        return conv.latest_reading(row)

    def _latest(
        self,
        who: Principal,
        source: tuple[str, str, str, str],
        wanted: dict[str, JsonValue] | None,
    ) -> TabularRow | None:
        if wanted is None:
            return self._store.latest_tabular(who, *source)
        part_id, name, subtype, method = source
        flt = Filter(part_id=part_id, component_name=name, component_type=subtype, method=method)
        page = PageRequest(limit=_SCAN_PAGE, order=SortOrder.DESCENDING)
        while True:
            got = self._store.tabular_by_filter(who, flt, page)
            for row in got.rows:
                if req.params_match(row, wanted):
                    return row
            if not got.rows or not got.last:
                return None
            page = PageRequest(limit=_SCAN_PAGE, last=got.last, order=SortOrder.DESCENDING)

    async def delete_tabular_data(
        self, message: data_pb.DeleteTabularDataRequest
    ) -> data_pb.DeleteTabularDataResponse:
        """Deletes the organization's readings captured over N days ago (0: all)."""
        who = caller()
        req.check_org(message.organization_id, who)
        flt = conv.delete_filter(message.filter)
        days = message.delete_older_than_days
        cutoff_ns = self._wall_ns() - days * _NS_PER_DAY if days else 0
        count = await self._edge.blocking(self._store.delete_tabular, who, cutoff_ns, flt)
        return data_pb.DeleteTabularDataResponse(deleted_count=count)

    # -- binary --------------------------------------------------------------------

    async def binary_data_by_filter(
        self, message: data_pb.BinaryDataByFilterRequest
    ) -> data_pb.BinaryDataByFilterResponse:
        """One page of binary items (with their bytes if ``include_binary``), or a count."""
        who = caller()
        flt, page = conv.data_request(message.data_request)
        if message.count_only:
            count = await self._edge.blocking(self._store.count_binary, who, flt)
            return data_pb.BinaryDataByFilterResponse(count=count)
        return await self._edge.blocking(self._binary_page, who, flt, page, message.include_binary)

    def _binary_page(
        self, who: Principal, flt: Filter, page: PageRequest, include_binary: bool
    ) -> data_pb.BinaryDataByFilterResponse:
        got = self._store.binary_by_filter(who, flt, page)
        data = self._binary_items(got.rows, include_binary, "data_request.limit")
        return data_pb.BinaryDataByFilterResponse(
            data=data, count=len(data), last=got.last, total_size_bytes=got.total_size_bytes
        )

    def _binary_items(
        self, rows: Sequence[BinaryRow], include_binary: bool, what: str
    ) -> list[data_pb.BinaryData]:
        if not include_binary:
            return [conv.binary_data(row) for row in rows]
        total = sum(row.blob.size for row in rows)
        if total > self._max_binary_bytes and len(rows) > 1:  # one item is always served
            raise ResourceExhausted(
                f"{what}: these {len(rows)} items hold {total} bytes, over this server's "
                f"{self._max_binary_bytes}-byte response limit; ask for fewer at a time"
            )
        return [conv.binary_data(row, b"".join(self._store.open_blob(row.blob))) for row in rows]

    async def binary_data_by_i_ds(
        self, message: data_pb.BinaryDataByIDsRequest
    ) -> data_pb.BinaryDataByIDsResponse:
        """The items with these ids in scope, in the order asked; unknown ids are skipped."""
        who = caller()
        ids = req.requested_ids(message.binary_data_ids, message.binary_ids, who)
        data = await self._edge.blocking(self._by_ids, who, ids, message.include_binary)
        return data_pb.BinaryDataByIDsResponse(data=data, count=len(data))

    def _by_ids(
        self, who: Principal, ids: list[str], include_binary: bool
    ) -> list[data_pb.BinaryData]:
        rows = self._store.binary_by_ids(who, ids)
        return self._binary_items(rows, include_binary, "binary_data_ids")

    async def delete_binary_data_by_filter(
        self, message: data_pb.DeleteBinaryDataByFilterRequest
    ) -> data_pb.DeleteBinaryDataByFilterResponse:
        """Deletes the matching items in scope (no filter: all of them)."""
        who = caller()
        flt = conv.to_filter(message.filter)
        count = await self._edge.blocking(self._store.delete_binary_by_filter, who, flt)
        return data_pb.DeleteBinaryDataByFilterResponse(deleted_count=count)

    async def delete_binary_data_by_i_ds(
        self, message: data_pb.DeleteBinaryDataByIDsRequest
    ) -> data_pb.DeleteBinaryDataByIDsResponse:
        """Deletes these items in scope; ids that match nothing are not counted."""
        who = caller()
        ids = req.requested_ids(message.binary_data_ids, message.binary_ids, who)
        count = await self._edge.blocking(self._store.delete_binary_by_ids, who, ids)
        return data_pb.DeleteBinaryDataByIDsResponse(deleted_count=count)

    # -- tags ----------------------------------------------------------------------

    async def tags_by_filter(
        self, message: data_pb.TagsByFilterRequest
    ) -> data_pb.TagsByFilterResponse:
        """The distinct tags of the matching tabular and binary data, sorted."""
        who = caller()
        flt = conv.to_filter(message.filter)
        tags = await self._edge.blocking(self._store.tags_by_filter, who, flt)
        return data_pb.TagsByFilterResponse(tags=tags)


def mql_pushdown(equalities: dict[str, str]) -> Filter:
    """The store filter for a pipeline's leading ``$match`` equalities.

    Only narrows by exact equality on fields the store filters on; the pipeline
    still applies every ``$match``, so results never change.
    """
    location = equalities.get("location_id", "")
    return Filter(
        part_id=equalities.get("part_id", ""),
        component_name=equalities.get("component_name", ""),
        component_type=equalities.get("component_type", ""),
        method=equalities.get("method_name", ""),
        robot_id=equalities.get("robot_id", ""),
        robot_name=equalities.get("robot_name", ""),
        part_name=equalities.get("part_name", ""),
        location_ids=(location,) if location else (),
    )
