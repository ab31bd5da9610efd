"""DataService over a real ``CloudServer`` on loopback: queries, exports, deletes, tenancy.

Data goes in through the real upload RPC (``DataCaptureUpload``) and comes back
through the generated DataService stub, exactly as a Viam client would see it.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import bson
import pytest
from grpclib import GRPCError
from grpclib.const import Cardinality, Status

from cloud.auth import Authenticator
from cloud.errors import ResourceExhausted
from cloud.model import BinaryRecord, CaptureContext, Filter, Principal, TabularRecord
from cloud.rpc import data_service
from cloud.rpc._edge import _CALLER as _edge_caller
from cloud.rpc._edge import Edge
from cloud.store.sqlite import SqliteStore
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.google.protobuf import Struct, Value
from protos.gen.viam.app.data import v1 as data_pb
from tests.cloud.rpc.conftest import (
    SENSOR_API,
    RunningServer,
    at,
    authed_metadata,
    run,
    start_server,
    upload_binary,
    upload_tabular,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from pathlib import Path

ORG_A, LOC_A, PART_A = "org-a", "loc-a", "part-a"
ORG_B, LOC_B, PART_B = "org-b", "loc-b", "part-b"
VALUE_URL = "type.googleapis.com/google.protobuf.Value"

Md = dict[str, str]


async def refused(call: Awaitable[object], status: Status, fragment: str = "") -> str:
    """Awaits ``call`` and checks it fails with ``status`` (and ``fragment`` in the message)."""
    with pytest.raises(GRPCError) as info:
        await call
    assert info.value.status is status, info.value.message
    message = info.value.message or ""
    assert fragment in message
    return message


def sensor_source(**changes: Any) -> dict[str, str]:
    source = {
        "part_id": PART_A,
        "resource_name": "sensor-1",
        "resource_subtype": SENSOR_API,
        "method_name": "Readings",
    }
    source.update(changes)
    return source


def param(value: object) -> PbAny:
    return PbAny(type_url=VALUE_URL, value=bytes(Value.from_dict(value)))


async def tabular_pages(
    stub: data_pb.DataServiceStub, md: Md, limit: int, order: data_pb.Order
) -> tuple[list[data_pb.TabularDataByFilterResponse], list[float]]:
    pages: list[data_pb.TabularDataByFilterResponse] = []
    last = ""
    while True:
        req = data_pb.DataRequest(limit=limit, last=last, sort_order=order)
        page = await stub.tabular_data_by_filter(
            data_pb.TabularDataByFilterRequest(data_request=req), metadata=md
        )
        pages.append(page)
        last = page.last
        if not page.data or not last:  # Viam's SDK loop: stop on an empty page
            break
        assert len(pages) < 50
    xs = [d.data.to_dict()["x"] for p in pages for d in p.data if d.data is not None]
    return pages, xs


def test_tabular_by_filter_pages_with_last(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            # Uploaded out of order, with two capture contexts.
            await upload_tabular(
                srv,
                md,
                part_id=PART_A,
                readings=[(at(i), {"x": i}) for i in (3, 0, 6, 1)],
                tags=["t1"],
            )
            await upload_tabular(
                srv,
                md,
                part_id=PART_A,
                readings=[(at(i), {"x": i}) for i in (2, 5, 4)],
                component_name="sensor-2",
            )
            stub = data_pb.DataServiceStub(srv.channel())

            pages, xs = await tabular_pages(stub, md, 3, data_pb.Order.ASCENDING)
            assert xs == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
            assert [p.count for p in pages if p.data] == [3, 3, 1]
            first = pages[0]
            assert len(first.metadata) == 2  # sensor-1 and sensor-2, once each
            for d in first.data:
                m = first.metadata[d.metadata_index]
                assert d.data is not None
                want = "sensor-2" if d.data.to_dict()["x"] in (2.0, 4.0, 5.0) else "sensor-1"
                assert m.component_name == want
                assert (m.organization_id, m.location_id, m.part_id) == (ORG_A, LOC_A, PART_A)
            assert first.data[0].time_requested == at(0)
            assert first.data[0].time_received == at(0) + timedelta(milliseconds=1)
            assert first.total_size_bytes == 3 * len('{"x":0.0}')

            _pages, xs = await tabular_pages(stub, md, 4, data_pb.Order.UNSPECIFIED)
            assert xs == [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]  # newest first by default

            count = await stub.tabular_data_by_filter(
                data_pb.TabularDataByFilterRequest(count_only=True), metadata=md
            )
            assert (count.count, count.data, count.metadata) == (7, [], [])

            flt = data_pb.Filter(
                component_name="sensor-1",
                interval=data_pb.CaptureInterval(start=at(1), end=at(3)),
                tags_filter=data_pb.TagsFilter(tags=["t1"]),
                location_ids=[LOC_A],
                organization_ids=[ORG_A],
            )
            got = await stub.tabular_data_by_filter(
                data_pb.TabularDataByFilterRequest(
                    data_request=data_pb.DataRequest(filter=flt, sort_order=data_pb.Order.ASCENDING)
                ),
                metadata=md,
            )
            assert [d.data.to_dict()["x"] for d in got.data if d.data] == [1.0, 3.0]

    run(scenario)


def test_invalid_requests_name_the_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            stub = data_pb.DataServiceStub(srv.channel())
            bad_order = data_pb.DataRequest(sort_order=data_pb.Order(9))
            await refused(
                stub.tabular_data_by_filter(
                    data_pb.TabularDataByFilterRequest(data_request=bad_order), metadata=md
                ),
                Status.INVALID_ARGUMENT,
                "data_request.sort_order",
            )
            bad_tags = data_pb.Filter(
                tags_filter=data_pb.TagsFilter(type=data_pb.TagsFilterType(7))
            )
            await refused(
                stub.tags_by_filter(data_pb.TagsByFilterRequest(filter=bad_tags), metadata=md),
                Status.INVALID_ARGUMENT,
                "filter.tags_filter.type",
            )
            await refused(
                stub.binary_data_by_filter(
                    data_pb.BinaryDataByFilterRequest(
                        data_request=data_pb.DataRequest(last="not a cursor")
                    ),
                    metadata=md,
                ),
                Status.INVALID_ARGUMENT,
                "last",
            )
            huge = await stub.tabular_data_by_filter(
                data_pb.TabularDataByFilterRequest(
                    data_request=data_pb.DataRequest(limit=2**64 - 1)
                ),
                metadata=md,
            )
            assert huge.data == []  # capped by the store, not refused
            await refused(
                stub.get_latest_tabular_data(
                    data_pb.GetLatestTabularDataRequest(**sensor_source(part_id="")), metadata=md
                ),
                Status.INVALID_ARGUMENT,
                "part_id",
            )
            await refused(
                stub.binary_data_by_i_ds(data_pb.BinaryDataByIDsRequest(), metadata=md),
                Status.INVALID_ARGUMENT,
                "binary_data_ids",
            )
            backwards = data_pb.CaptureInterval(start=at(5), end=at(1))
            stream = stub.export_tabular_data(
                data_pb.ExportTabularDataRequest(**sensor_source(), interval=backwards),
                metadata=md,
            )
            await refused(_drain(stream), Status.INVALID_ARGUMENT, "interval")

    run(scenario)


async def _drain(stream: Any) -> list[Any]:
    return [item async for item in stream]


def test_sql_returns_bson_rows_of_the_callers_org(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            await upload_tabular(
                srv, md, part_id=PART_A, readings=[(at(i), {"x": i, "ok": True}) for i in range(3)]
            )
            stub = data_pb.DataServiceStub(srv.channel())
            sql = (
                "SELECT component_name, time_requested, data FROM readings ORDER BY time_requested"
            )
            reply = await stub.tabular_data_by_sql(
                data_pb.TabularDataBySqlRequest(organization_id=ORG_A, sql_query=sql), metadata=md
            )
            docs = [bson.decode(raw) for raw in reply.raw_data]
            assert [d["data"] for d in docs] == [{"x": float(i), "ok": True} for i in range(3)]
            assert docs[0]["component_name"] == "sensor-1"
            assert docs[1]["time_requested"] == at(1).replace(tzinfo=None)
            await refused(
                stub.tabular_data_by_sql(
                    data_pb.TabularDataBySqlRequest(
                        organization_id=ORG_A, sql_query="DELETE FROM readings"
                    ),
                    metadata=md,
                ),
                Status.INVALID_ARGUMENT,
            )
            await refused(
                stub.tabular_data_by_sql(
                    data_pb.TabularDataBySqlRequest(organization_id=ORG_A, sql_query=" "),
                    metadata=md,
                ),
                Status.INVALID_ARGUMENT,
                "sql_query",
            )
            await refused(
                stub.tabular_data_by_sql(
                    data_pb.TabularDataBySqlRequest(sql_query=sql), metadata=md
                ),
                Status.INVALID_ARGUMENT,
                "organization_id",
            )

    run(scenario)


def test_mql_pipeline_runs_over_the_callers_readings(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            await upload_tabular(
                srv, md, part_id=PART_A, readings=[(at(i), {"x": i}) for i in range(5)]
            )
            await upload_tabular(srv, md, part_id="part-a2", readings=[(at(9), {"x": 9})])
            stub = data_pb.DataServiceStub(srv.channel())
            stages = [
                {"$match": {"part_id": PART_A, "location_id": LOC_A, "data.x": {"$gte": 2}}},
                {"$sort": {"time_requested": -1}},
                {"$project": {"_id": 0, "x": "$data.x", "component_name": 1}},
                {"$limit": 2},
            ]
            reply = await stub.tabular_data_by_mql(
                data_pb.TabularDataByMqlRequest(
                    organization_id=ORG_A,
                    mql_binary=[bson.encode(s) for s in stages],
                    data_source=data_pb.TabularDataSource(
                        type=data_pb.TabularDataSourceType.STANDARD
                    ),
                ),
                metadata=md,
            )
            docs = [bson.decode(raw) for raw in reply.raw_data]
            assert docs == [
                {"component_name": "sensor-1", "x": 4.0},
                {"component_name": "sensor-1", "x": 3.0},
            ]
            count = await stub.tabular_data_by_mql(
                data_pb.TabularDataByMqlRequest(
                    organization_id=ORG_A, mql_binary=[bson.encode({"$count": "n"})]
                ),
                metadata=md,
            )
            assert [bson.decode(raw) for raw in count.raw_data] == [{"n": 6}]

            for request, fragment in [
                ({"mql_binary": [bson.encode({"$out": "x"})]}, "$out"),
                ({"mql_binary": [b"\x00garbage"]}, "mql_binary[0]"),
                ({"mql_binary": []}, "mql_binary"),
                (
                    {
                        "mql_binary": [bson.encode({"$limit": 1})],
                        "data_source": data_pb.TabularDataSource(
                            type=data_pb.TabularDataSourceType.PIPELINE_SINK
                        ),
                    },
                    "data_source.type",
                ),
                (
                    {"mql_binary": [bson.encode({"$limit": 1})], "query_prefix_name": "q"},
                    "query_prefix_name",
                ),
            ]:
                await refused(
                    stub.tabular_data_by_mql(
                        data_pb.TabularDataByMqlRequest(organization_id=ORG_A, **request),
                        metadata=md,
                    ),
                    Status.INVALID_ARGUMENT,
                    fragment,
                )

    run(scenario)


def test_mql_pushdown_only_narrows_by_equality() -> None:
    flt = data_service.mql_pushdown(
        {"part_id": "p", "method_name": "m", "location_id": "l", "robot_name": "r"}
    )
    assert flt == Filter(part_id="p", method="m", location_ids=("l",), robot_name="r")
    assert data_service.mql_pushdown({}) == Filter()


def test_export_streams_every_reading_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_service, "EXPORT_BATCH", 2)  # several worker calls per stream

    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            order = [4, 0, 6, 2, 5, 1, 3]
            await upload_tabular(
                srv,
                md,
                part_id=PART_A,
                readings=[(at(i), {"x": i}) for i in order],
                tags=["t"],
                method_parameters={"mode": param("fast")},
            )
            await upload_tabular(
                srv,
                md,
                part_id=PART_A,
                readings=[(at(10), {"x": 10})],
                method_parameters={"mode": param("slow")},
            )
            await upload_tabular(
                srv, md, part_id=PART_A, readings=[(at(11), {"x": 11})], component_name="other"
            )
            stub = data_pb.DataServiceStub(srv.channel())
            points = await _drain(
                stub.export_tabular_data(
                    data_pb.ExportTabularDataRequest(**sensor_source()), metadata=md
                )
            )
            assert [p.payload.to_dict()["x"] for p in points] == [0, 1, 2, 3, 4, 5, 6, 10]
            assert [p.time_captured for p in points[:2]] == [at(0), at(1)]
            p0 = points[0]
            assert (p0.part_id, p0.resource_name, p0.resource_subtype, p0.method_name) == (
                PART_A,
                "sensor-1",
                SENSOR_API,
                "Readings",
            )
            assert (p0.organization_id, p0.location_id, p0.tags) == (ORG_A, LOC_A, ["t"])
            assert p0.method_parameters.to_dict() == {"mode": "fast"}

            window = data_pb.CaptureInterval(start=at(2), end=at(4))
            points = await _drain(
                stub.export_tabular_data(
                    data_pb.ExportTabularDataRequest(**sensor_source(), interval=window),
                    metadata=md,
                )
            )
            assert [p.payload.to_dict()["x"] for p in points] == [2, 3, 4]  # inclusive

            slow = Struct.from_dict({"mode": "slow"})
            points = await _drain(
                stub.export_tabular_data(
                    data_pb.ExportTabularDataRequest(**sensor_source(), additional_parameters=slow),
                    metadata=md,
                )
            )
            assert [p.payload.to_dict()["x"] for p in points] == [10]

    run(scenario)


def test_latest_tabular_data(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            await upload_tabular(
                srv,
                md,
                part_id=PART_A,
                readings=[(at(i), {"x": i}) for i in (1, 3, 2)],
                method_parameters={"mode": param("fast")},
            )
            await upload_tabular(
                srv,
                md,
                part_id=PART_A,
                readings=[(at(0), {"x": 0})],
                method_parameters={"mode": param("slow")},
            )
            stub = data_pb.DataServiceStub(srv.channel())
            before = datetime.now(UTC)
            latest = await stub.get_latest_tabular_data(
                data_pb.GetLatestTabularDataRequest(**sensor_source()), metadata=md
            )
            assert latest.payload is not None
            assert latest.payload.to_dict() == {"x": 3.0}
            assert latest.time_captured == at(3)
            assert latest.time_synced is not None
            assert before - timedelta(minutes=1) < latest.time_synced <= datetime.now(UTC)

            slow = await stub.get_latest_tabular_data(
                data_pb.GetLatestTabularDataRequest(
                    **sensor_source(), additional_parameters=Struct.from_dict({"mode": "slow"})
                ),
                metadata=md,
            )
            assert slow.payload is not None
            assert slow.payload.to_dict() == {"x": 0.0}

            for source in (sensor_source(resource_name="nope"), sensor_source(part_id="p9")):
                none = await stub.get_latest_tabular_data(
                    data_pb.GetLatestTabularDataRequest(**source), metadata=md
                )
                assert none.payload is None  # the SDK turns this into None
                assert none.time_captured is None

    run(scenario)


def test_latest_ignores_data_synced_over_a_year_ago(tmp_path: Path) -> None:
    lag_ns = [400 * 86_400 * 10**9]  # the clock runs 400 days late while uploading

    def wall() -> int:
        return time.time_ns() - lag_ns[0]

    async def scenario() -> None:
        async with start_server(tmp_path, wall_ns=wall) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            await upload_tabular(srv, md, part_id=PART_A, readings=[(at(0), {"x": 0})])
            lag_ns[0] = 0
            md = await authed_metadata(srv, ORG_A, LOC_A)  # the old token expired
            stub = data_pb.DataServiceStub(srv.channel())
            latest = await stub.get_latest_tabular_data(
                data_pb.GetLatestTabularDataRequest(**sensor_source()), metadata=md
            )
            assert latest.payload is None
            points = await _drain(
                stub.export_tabular_data(
                    data_pb.ExportTabularDataRequest(**sensor_source()), metadata=md
                )
            )
            assert len(points) == 1  # still stored and exported

    run(scenario)


async def _binary_pages(
    stub: data_pb.DataServiceStub, md: Md, *, include_binary: bool
) -> list[data_pb.BinaryDataByFilterResponse]:
    pages = []
    last = ""
    while True:
        page = await stub.binary_data_by_filter(
            data_pb.BinaryDataByFilterRequest(
                data_request=data_pb.DataRequest(
                    limit=2, last=last, sort_order=data_pb.Order.ASCENDING
                ),
                include_binary=include_binary,
            ),
            metadata=md,
        )
        pages.append(page)
        last = page.last
        if not page.data or not last:
            return pages


def test_binary_by_filter_and_by_ids(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            blobs = [bytes([i]) * (100 + i) for i in range(5)]
            ids = [
                await upload_binary(srv, md, part_id=PART_A, payload=b, when=at(i), tags=[f"t{i}"])
                for i, b in enumerate(blobs)
            ]
            stub = data_pb.DataServiceStub(srv.channel())

            pages = await _binary_pages(stub, md, include_binary=True)
            items = [d for p in pages for d in p.data]
            assert [d.metadata.binary_data_id for d in items] == ids
            assert [d.binary for d in items] == blobs
            assert [p.count for p in pages if p.data] == [2, 2, 1]
            assert pages[0].total_size_bytes == 100 + 101
            meta = items[0].metadata
            assert meta.file_size_bytes == 100
            assert meta.time_requested == at(0)
            assert meta.capture_metadata.tags == ["t0"]
            assert meta.capture_metadata.mime_type == "image/jpeg"

            bare = await _binary_pages(stub, md, include_binary=False)
            assert all(d.binary == b"" for p in bare for d in p.data)

            count = await stub.binary_data_by_filter(
                data_pb.BinaryDataByFilterRequest(count_only=True), metadata=md
            )
            assert (count.count, count.data) == (5, [])

            got = await stub.binary_data_by_i_ds(
                data_pb.BinaryDataByIDsRequest(
                    binary_data_ids=[ids[3], "org-a/loc-a/unknown", ids[1]], include_binary=True
                ),
                metadata=md,
            )
            assert [d.metadata.binary_data_id for d in got.data] == [ids[3], ids[1]]
            assert [d.binary for d in got.data] == [blobs[3], blobs[1]]
            assert got.count == 2

            file_id = ids[2].rsplit("/", 1)[1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                old = data_pb.BinaryDataByIDsRequest(
                    binary_ids=[
                        data_pb.BinaryId(file_id=file_id, organization_id=ORG_A, location_id=LOC_A)
                    ]
                )
                foreign = data_pb.BinaryDataByIDsRequest(
                    binary_ids=[
                        data_pb.BinaryId(file_id=file_id, organization_id=ORG_B, location_id=LOC_A)
                    ]
                )
            got = await stub.binary_data_by_i_ds(old, metadata=md)
            assert [d.metadata.binary_data_id for d in got.data] == [ids[2]]
            assert got.data[0].binary == b""
            await refused(
                stub.binary_data_by_i_ds(foreign, metadata=md),
                Status.PERMISSION_DENIED,
                "binary_ids[0].organization_id",
            )

            tags = await stub.tags_by_filter(data_pb.TagsByFilterRequest(), metadata=md)
            assert tags.tags == ["t0", "t1", "t2", "t3", "t4"]
            one = await stub.tags_by_filter(
                data_pb.TagsByFilterRequest(
                    filter=data_pb.Filter(interval=data_pb.CaptureInterval(start=at(4)))
                ),
                metadata=md,
            )
            assert one.tags == ["t4"]

    run(scenario)


def test_deletes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            now = datetime.now(UTC)
            days_ago = [now - timedelta(days=d) for d in (10, 5, 3, 0.5)]
            await upload_tabular(
                srv, md, part_id=PART_A, readings=[(t, {"x": 1}) for t in days_ago]
            )
            await upload_tabular(
                srv, md, part_id=PART_A, readings=[(now, {"y": 1})], component_name="keep"
            )
            ids = [
                await upload_binary(
                    srv,
                    md,
                    part_id=PART_A,
                    payload=b"img%d" % i,
                    when=at(i),
                    component_name=f"cam-{i % 2}",
                )
                for i in range(4)
            ]
            stub = data_pb.DataServiceStub(srv.channel())

            async def tabular_count() -> int:
                reply = await stub.tabular_data_by_filter(
                    data_pb.TabularDataByFilterRequest(count_only=True), metadata=md
                )
                return reply.count

            nothing = await stub.delete_tabular_data(
                data_pb.DeleteTabularDataRequest(
                    organization_id=ORG_A,
                    filter=data_pb.DeleteTabularFilter(component_name="no-such-sensor"),
                ),
                metadata=md,
            )
            assert nothing.deleted_count == 0
            old = await stub.delete_tabular_data(
                data_pb.DeleteTabularDataRequest(organization_id=ORG_A, delete_older_than_days=4),
                metadata=md,
            )
            assert old.deleted_count == 2  # 10 and 5 days old
            filtered = await stub.delete_tabular_data(
                data_pb.DeleteTabularDataRequest(
                    organization_id=ORG_A,
                    filter=data_pb.DeleteTabularFilter(component_name="sensor-1"),
                ),
                metadata=md,
            )
            assert filtered.deleted_count == 2
            assert await tabular_count() == 1
            everything = await stub.delete_tabular_data(
                data_pb.DeleteTabularDataRequest(organization_id=ORG_A), metadata=md
            )
            assert everything.deleted_count == 1
            assert await tabular_count() == 0

            by_ids = await stub.delete_binary_data_by_i_ds(
                data_pb.DeleteBinaryDataByIDsRequest(binary_data_ids=[ids[0], "org-a/x/y"]),
                metadata=md,
            )
            assert by_ids.deleted_count == 1
            gone = await stub.binary_data_by_i_ds(
                data_pb.BinaryDataByIDsRequest(binary_data_ids=[ids[0]]), metadata=md
            )
            assert gone.data == []
            by_filter = await stub.delete_binary_data_by_filter(
                data_pb.DeleteBinaryDataByFilterRequest(
                    filter=data_pb.Filter(component_name="cam-1")
                ),
                metadata=md,
            )
            assert by_filter.deleted_count == 2
            left = await stub.binary_data_by_filter(
                data_pb.BinaryDataByFilterRequest(include_binary=True), metadata=md
            )
            assert [(d.metadata.binary_data_id, d.binary) for d in left.data] == [(ids[2], b"img2")]
            await refused(
                stub.delete_tabular_data(data_pb.DeleteTabularDataRequest(), metadata=md),
                Status.INVALID_ARGUMENT,
                "organization_id",
            )

    run(scenario)


async def _seed_org_a(srv: RunningServer) -> tuple[Md, str]:
    md_a = await authed_metadata(srv, ORG_A, LOC_A)
    await upload_tabular(srv, md_a, part_id=PART_A, readings=[(at(0), {"x": 0})], tags=["a"])
    bid = await upload_binary(srv, md_a, part_id=PART_A, payload=b"secret", when=at(1))
    return md_a, bid


def test_another_org_sees_and_touches_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md_a, bid = await _seed_org_a(srv)
            md_b = await authed_metadata(srv, ORG_B, LOC_B)
            stub = data_pb.DataServiceStub(srv.channel())

            tab = await stub.tabular_data_by_filter(
                data_pb.TabularDataByFilterRequest(), metadata=md_b
            )
            assert (tab.data, tab.metadata) == ([], [])
            binary = await stub.binary_data_by_filter(
                data_pb.BinaryDataByFilterRequest(include_binary=True), metadata=md_b
            )
            assert binary.data == []
            by_id = await stub.binary_data_by_i_ds(
                data_pb.BinaryDataByIDsRequest(binary_data_ids=[bid], include_binary=True),
                metadata=md_b,
            )
            assert by_id.data == []
            tags = await stub.tags_by_filter(data_pb.TagsByFilterRequest(), metadata=md_b)
            assert tags.tags == []
            latest = await stub.get_latest_tabular_data(
                data_pb.GetLatestTabularDataRequest(**sensor_source()), metadata=md_b
            )
            assert latest.payload is None
            points = await _drain(
                stub.export_tabular_data(
                    data_pb.ExportTabularDataRequest(**sensor_source()), metadata=md_b
                )
            )
            assert points == []
            sql = await stub.tabular_data_by_sql(
                data_pb.TabularDataBySqlRequest(
                    organization_id=ORG_B, sql_query="SELECT * FROM readings"
                ),
                metadata=md_b,
            )
            assert sql.raw_data == []
            mql = await stub.tabular_data_by_mql(
                data_pb.TabularDataByMqlRequest(
                    organization_id=ORG_B, mql_binary=[bson.encode({"$match": {}})]
                ),
                metadata=md_b,
            )
            assert mql.raw_data == []
            deleted = await stub.delete_binary_data_by_i_ds(
                data_pb.DeleteBinaryDataByIDsRequest(binary_data_ids=[bid]), metadata=md_b
            )
            assert deleted.deleted_count == 0
            deleted_f = await stub.delete_binary_data_by_filter(
                data_pb.DeleteBinaryDataByFilterRequest(), metadata=md_b
            )
            assert deleted_f.deleted_count == 0

            denied = Status.PERMISSION_DENIED
            await refused(
                stub.tabular_data_by_sql(
                    data_pb.TabularDataBySqlRequest(
                        organization_id=ORG_A, sql_query="SELECT * FROM readings"
                    ),
                    metadata=md_b,
                ),
                denied,
                "organization_id",
            )
            await refused(
                stub.tabular_data_by_mql(
                    data_pb.TabularDataByMqlRequest(
                        organization_id=ORG_A, mql_binary=[bson.encode({"$match": {}})]
                    ),
                    metadata=md_b,
                ),
                denied,
                "organization_id",
            )
            await refused(
                stub.delete_tabular_data(
                    data_pb.DeleteTabularDataRequest(organization_id=ORG_A), metadata=md_b
                ),
                denied,
                "organization_id",
            )
            foreign_filter = data_pb.DataRequest(filter=data_pb.Filter(organization_ids=[ORG_A]))
            await refused(
                stub.tabular_data_by_filter(
                    data_pb.TabularDataByFilterRequest(data_request=foreign_filter),
                    metadata=md_b,
                ),
                denied,
            )

            # Org A still has everything.
            mine = await stub.binary_data_by_i_ds(
                data_pb.BinaryDataByIDsRequest(binary_data_ids=[bid], include_binary=True),
                metadata=md_a,
            )
            assert [d.binary for d in mine.data] == [b"secret"]
            count = await stub.tabular_data_by_filter(
                data_pb.TabularDataByFilterRequest(count_only=True), metadata=md_a
            )
            assert count.count == 1

    run(scenario)


def test_part_key_sees_only_its_part(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            await upload_tabular(srv, md, part_id=PART_A, readings=[(at(0), {"x": 0})])
            await upload_tabular(srv, md, part_id="part-a2", readings=[(at(1), {"x": 1})])
            md_part = await authed_metadata(srv, ORG_A, LOC_A, part="part-a2")
            stub = data_pb.DataServiceStub(srv.channel())
            got = await stub.tabular_data_by_filter(
                data_pb.TabularDataByFilterRequest(), metadata=md_part
            )
            assert [m.part_id for m in got.metadata] == ["part-a2"]
            assert len(got.data) == 1

    run(scenario)


@pytest.mark.parametrize(
    "metadata",
    [None, {"authorization": "Bearer garbage.token.here"}, {"authorization": "Basic x"}],
)
def test_calls_without_a_valid_token_are_unauthenticated(
    tmp_path: Path, metadata: Md | None
) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            stub = data_pb.DataServiceStub(srv.channel())
            await refused(
                stub.tags_by_filter(data_pb.TagsByFilterRequest(), metadata=metadata),
                Status.UNAUTHENTICATED,
            )
            await refused(
                _drain(
                    stub.export_tabular_data(
                        data_pb.ExportTabularDataRequest(**sensor_source()), metadata=metadata
                    )
                ),
                Status.UNAUTHENTICATED,
            )

    run(scenario)


def test_client_abandoning_an_export_leaves_the_server_healthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_service, "EXPORT_BATCH", 1)

    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            # Well over HTTP/2's 64 KiB window: the server is still sending when we cancel.
            pad = "p" * 2000
            readings = [(at(i), {"x": i, "pad": pad}) for i in range(200)]
            await upload_tabular(srv, md, part_id=PART_A, readings=readings)
            stub = data_pb.DataServiceStub(srv.channel())
            request = data_pb.ExportTabularDataRequest(**sensor_source())
            async with stub.channel.request(
                "/viam.app.data.v1.DataService/ExportTabularData",
                Cardinality.UNARY_STREAM,
                data_pb.ExportTabularDataRequest,
                data_pb.ExportTabularDataResponse,
                metadata=md,
            ) as stream:
                await stream.send_message(request, end=True)
                first = await stream.recv_message()
                assert first is not None
                await stream.cancel()
            for _ in range(50):  # the server notices the reset and finishes the call
                if not srv.server.edge.in_flight:
                    break
                await asyncio.sleep(0.01)
            assert srv.server.edge.in_flight == 0
            points = await _drain(stub.export_tabular_data(request, metadata=md))
            assert len(points) == 200

    run(scenario)


def test_response_size_limits(tmp_path: Path) -> None:
    """Over-large binary pages and MQL results are refused (RESOURCE_EXHAUSTED)."""
    store = SqliteStore(tmp_path / "store")
    edge = Edge(Authenticator(store, wall_ns=time.time_ns), workers=2)
    service = data_service.DataService(edge, store, max_binary_bytes=10, max_mql_docs=2)
    who = Principal(key_id="k", org_id=ORG_A, location_id=LOC_A)
    part = store.resolve_part(who, PART_A)
    ctx = CaptureContext("rdk:component:camera", "cam", "ReadImage")
    for i in range(3):
        record = BinaryRecord(f"{ORG_A}/{LOC_A}/f{i}", store.put_blob(b"12345%d" % i), i + 1)
        store.commit_binary(part, ctx, record, file_id=f"f{i}")
    store.commit_tabular(
        part, ctx, [TabularRecord(i + 1, i + 1, {"x": i}) for i in range(3)], file_id="t"
    )

    async def scenario() -> None:
        _edge_caller.set(who)
        page = data_pb.DataRequest(limit=2)
        small = await service.binary_data_by_filter(
            data_pb.BinaryDataByFilterRequest(data_request=page, include_binary=False)
        )
        assert len(small.data) == 2
        with pytest.raises(ResourceExhausted, match=r"data_request\.limit"):
            await service.binary_data_by_filter(
                data_pb.BinaryDataByFilterRequest(data_request=page, include_binary=True)
            )
        one = await service.binary_data_by_i_ds(
            data_pb.BinaryDataByIDsRequest(
                binary_data_ids=[f"{ORG_A}/{LOC_A}/f0"], include_binary=True
            )
        )
        assert one.data[0].binary == b"123450"
        tiny = data_service.DataService(edge, store, max_binary_bytes=1)
        alone = await tiny.binary_data_by_filter(
            data_pb.BinaryDataByFilterRequest(
                data_request=data_pb.DataRequest(limit=1), include_binary=True
            )
        )
        assert len(alone.data[0].binary) == 6  # a single item is served whatever its size
        with pytest.raises(ResourceExhausted, match="binary_data_ids"):
            await service.binary_data_by_i_ds(
                data_pb.BinaryDataByIDsRequest(
                    binary_data_ids=[f"{ORG_A}/{LOC_A}/f0", f"{ORG_A}/{LOC_A}/f1"],
                    include_binary=True,
                )
            )
        limited = await service.tabular_data_by_mql(
            data_pb.TabularDataByMqlRequest(
                organization_id=ORG_A, mql_binary=[bson.encode({"$limit": 2})]
            )
        )
        assert len(limited.raw_data) == 2
        with pytest.raises(ResourceExhausted, match=r"\$limit"):
            await service.tabular_data_by_mql(
                data_pb.TabularDataByMqlRequest(
                    organization_id=ORG_A, mql_binary=[bson.encode({"$match": {}})]
                )
            )

    try:
        run(scenario)
    finally:
        edge.shutdown()
        store.close()


class _RawBytes:
    """A message "type" whose encoding is the bytes it holds (to send malformed requests)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # grpclib's codec calls these two
        return self.data

    @classmethod
    def FromString(cls, data: bytes) -> _RawBytes:
        return cls(data)


@pytest.mark.parametrize(
    ("method", "raw", "fragment"),
    [
        ("TagsByFilter", b"\x08\x05", "filter"),
        ("TabularDataByFilter", b"\x0a\x02\x08\x05", "data_request.filter"),
        ("TabularDataBySQL", b"\x0a\x05org-a\x10\x05", "sql_query"),
        ("BinaryDataByIDs", b"\x1a\x02\x08\x01", "binary_ids[0].file_id"),
        ("DeleteTabularData", b"\x18\x01", "filter"),
        ("ExportTabularData", b"\x2a\x02\x08\x05", "interval.start"),
    ],
)
def test_fields_sent_with_the_wrong_wire_type_are_invalid_not_internal(
    tmp_path: Path, method: str, raw: bytes, fragment: str
) -> None:
    async def scenario() -> None:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, ORG_A, LOC_A)
            streaming = method == "ExportTabularData"
            cardinality = Cardinality.UNARY_STREAM if streaming else Cardinality.UNARY_UNARY

            async def call() -> None:
                async with srv.channel().request(
                    f"/viam.app.data.v1.DataService/{method}",
                    cardinality,
                    _RawBytes,
                    _RawBytes,
                    metadata=md,
                ) as stream:
                    await stream.send_message(_RawBytes(raw), end=True)
                    while await stream.recv_message() is not None:
                        pass

            await refused(call(), Status.INVALID_ARGUMENT, f"{fragment}: malformed")

    run(scenario)
