"""The SQLite store's query half: paging, tenancy, latest, export, deletes and blob GC."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from cloud.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from cloud.model import (
    AnyValue,
    BinaryRecord,
    Filter,
    PageRequest,
    SortOrder,
    TabularRecord,
)
from cloud.store.sqlite import _query
from tests.cloud.store.conftest import (
    WALL0_NS,
    make_ctx,
    make_principal,
    make_record,
)

if TYPE_CHECKING:
    from cloud.model import BlobRef, CaptureContext, Principal
    from cloud.store.sqlite import SqliteStore

WHO = make_principal()
OTHER = make_principal(org_id="org-2", location_id="loc-9")
SENSOR = make_ctx()  # sensor-1, rdk:component:sensor, Readings


def insert(
    store: SqliteStore,
    times: list[int],
    *,
    who: Principal = WHO,
    part_id: str = "part-1",
    ctx: CaptureContext = SENSOR,
) -> None:
    """One reading per time, in one commit; data {"i": index} in insertion order."""
    part = store.resolve_part(who, part_id)
    records = [make_record(t, {"i": i}) for i, t in enumerate(times)]
    store.commit_tabular(part, ctx, records, file_id="file-1")


def put_binary(
    store: SqliteStore,
    binary_id: str,
    content: bytes,
    t: int = 100,
    *,
    who: Principal = WHO,
    part_id: str = "part-1",
    ctx: CaptureContext | None = None,
) -> BlobRef:
    part = store.resolve_part(who, part_id)
    ref = store.put_blob(content)
    record = BinaryRecord(binary_id, ref, t, t + 1, "image/jpeg", file_name=f"{binary_id}.jpg")
    store.commit_binary(part, ctx or make_ctx("cam-1"), record, file_id=f"file-{binary_id}")
    return ref


def walk_tabular(store: SqliteStore, who: Principal, order: SortOrder, limit: int) -> list[str]:
    ids: list[str] = []
    page = PageRequest(limit=limit, order=order)
    while True:
        got = store.tabular_by_filter(who, Filter(), page)
        ids += [row.id for row in got.rows]
        if not got.last:
            return ids
        page = PageRequest(limit=limit, last=got.last, order=order)


# -- paging ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 7, 50])
@pytest.mark.parametrize("order", [SortOrder.ASCENDING, SortOrder.DESCENDING])
def test_pages_partition_the_result_with_equal_timestamps(
    store: SqliteStore, order: SortOrder, limit: int
) -> None:
    insert(store, [300, 100, 200, 200, 200, 100, 300, 200, 200, 100, 400])
    everything = store.tabular_by_filter(WHO, Filter(), PageRequest(limit=100, order=order))
    walked = walk_tabular(store, WHO, order, limit)
    assert walked == [row.id for row in everything.rows]
    assert len(set(walked)) == 11
    keys = [(row.time_requested_ns, int(row.id)) for row in everything.rows]
    assert keys == sorted(keys, reverse=order is not SortOrder.ASCENDING)


def test_unspecified_order_is_descending(store: SqliteStore) -> None:
    insert(store, [100, 300, 200])
    got = store.tabular_by_filter(WHO, Filter(), PageRequest(order=SortOrder.UNSPECIFIED))
    assert [row.time_requested_ns for row in got.rows] == [300, 200, 100]


def test_paging_ends_with_an_empty_page_and_limit_zero_means_fifty(store: SqliteStore) -> None:
    """Viam's SDK loop passes `last` back until a page comes back empty."""
    insert(store, list(range(1, 53)))
    first = store.tabular_by_filter(WHO, Filter(), PageRequest(limit=0))
    assert len(first.rows) == 50
    assert first.last
    rest = store.tabular_by_filter(WHO, Filter(), PageRequest(limit=0, last=first.last))
    assert [row.time_requested_ns for row in rest.rows] == [2, 1]
    assert rest.last
    end = store.tabular_by_filter(WHO, Filter(), PageRequest(limit=0, last=rest.last))
    assert (end.rows, end.last) == ((), "")


def test_rows_inserted_between_pages_are_neither_repeated_nor_lost(store: SqliteStore) -> None:
    insert(store, [100, 200, 300, 400])
    page = PageRequest(limit=2, order=SortOrder.ASCENDING)
    first = store.tabular_by_filter(WHO, Filter(), page)
    insert(store, [150, 500])  # one behind the cursor, one ahead of it
    second = store.tabular_by_filter(
        WHO, Filter(), PageRequest(limit=10, last=first.last, order=page.order)
    )
    times = [row.time_requested_ns for row in (*first.rows, *second.rows)]
    assert times == [100, 200, 300, 400, 500]


def test_binary_pages_and_total_size(store: SqliteStore) -> None:
    for i, size in enumerate([3, 5, 7]):
        put_binary(store, f"bin-{i}", bytes([i]) * size, t=100)  # equal times: id breaks ties
    first = store.binary_by_filter(WHO, Filter(), PageRequest(limit=2))
    assert [row.binary_data_id for row in first.rows] == ["bin-2", "bin-1"]
    assert first.total_size_bytes == 12
    second = store.binary_by_filter(WHO, Filter(), PageRequest(limit=2, last=first.last))
    assert [row.binary_data_id for row in second.rows] == ["bin-0"]
    assert second.total_size_bytes == 3
    third = store.binary_by_filter(WHO, Filter(), PageRequest(limit=2, last=second.last))
    assert (third.rows, third.last) == ((), "")


# -- stored values round-trip ------------------------------------------------------------


def test_tabular_row_round_trips_values_and_metadata(store: SqliteStore) -> None:
    data = {"readings": {"x": 1.5, "nan": math.nan, "up": [math.inf, -math.inf, None, True, "s"]}}
    ctx = make_ctx(tags=("b", "a", "b"), method_parameters={"p": b"\x00\xff"}, mime_type="text/x")
    part = store.resolve_part(WHO, "part-1")
    store.commit_tabular(part, ctx, [TabularRecord(5, 6, data)], file_id="f")
    (row,) = store.tabular_by_filter(WHO, Filter(), PageRequest()).rows
    readings = row.data["readings"]
    assert isinstance(readings, dict)
    assert math.isnan(readings.pop("nan"))
    assert readings == {"x": 1.5, "up": [math.inf, -math.inf, None, True, "s"]}
    assert (row.time_requested_ns, row.time_received_ns, row.time_synced_ns) == (5, 6, WALL0_NS)
    meta = row.metadata
    assert (meta.organization_id, meta.location_id, meta.part_id) == ("org-1", "loc-1", "part-1")
    assert (meta.part_name, meta.robot_name, meta.robot_id) == ("part-1", "", "")
    assert (meta.component_name, meta.component_type, meta.method_name) == (
        "sensor-1",
        "rdk:component:sensor",
        "Readings",
    )
    assert meta.tags == ("a", "b")
    assert meta.mime_type == "text/x"
    assert meta.method_parameters == (("p", AnyValue("type.googleapis.com/test.p", b"\x00\xff")),)


def test_binary_row_round_trips(store: SqliteStore) -> None:
    part = store.resolve_part(WHO, "part-1")
    ref = store.put_blob(b"jpeg")
    annotations = {"bboxes": [{"label": "cat", "x_min_normalized": 0.25}]}
    record = BinaryRecord("bin-1", ref, 10, 11, "image/jpeg", "a.jpg", ".jpg", annotations)
    store.commit_binary(
        part, make_ctx("cam-1", dataset_ids=("ds-2", "ds-1")), record, file_id="f-1"
    )
    (row,) = store.binary_by_ids(WHO, ["bin-1"])
    assert row.blob == ref
    assert (row.time_requested_ns, row.time_received_ns) == (10, 11)
    assert (row.file_name, row.file_ext, row.file_id) == ("a.jpg", ".jpg", "f-1")
    assert row.dataset_ids == ("ds-1", "ds-2")
    assert row.annotations == annotations
    assert row.metadata.mime_type == "image/jpeg"
    assert row.metadata.component_name == "cam-1"


# -- tenancy -----------------------------------------------------------------------------


def test_another_organization_sees_and_deletes_nothing(store: SqliteStore) -> None:
    insert(store, [100, 200])
    ref = put_binary(store, "bin-1", b"secret")
    assert store.tabular_by_filter(OTHER, Filter(), PageRequest()).rows == ()
    assert store.count_tabular(OTHER, Filter()) == 0
    assert store.binary_by_filter(OTHER, Filter(), PageRequest()).rows == ()
    assert store.count_binary(OTHER, Filter()) == 0
    assert store.binary_by_ids(OTHER, ["bin-1"]) == []
    assert store.tags_by_filter(OTHER, Filter()) == []
    assert (
        store.latest_tabular(OTHER, "part-1", "sensor-1", "rdk:component:sensor", "Readings")
        is None
    )
    assert list(store.export_tabular(OTHER, "part-1", "sensor-1", "", "", 0, 0)) == []
    assert list(store.iter_reading_documents(OTHER, Filter())) == []
    assert store.delete_tabular(OTHER, 0, Filter()) == 0
    assert store.delete_binary_by_ids(OTHER, ["bin-1"]) == 0
    assert store.delete_binary_by_filter(OTHER, Filter()) == 0
    assert store.count_tabular(WHO, Filter()) == 2
    assert store._blobs.exists(ref)


def test_part_key_is_confined_to_its_part(store: SqliteStore) -> None:
    insert(store, [100], part_id="part-1")
    insert(store, [200], part_id="part-2")
    put_binary(store, "bin-1", b"one", part_id="part-1")
    put_binary(store, "bin-2", b"two", part_id="part-2")
    key = make_principal(part_id="part-2")
    assert [
        r.time_requested_ns for r in store.tabular_by_filter(key, Filter(), PageRequest()).rows
    ] == [200]
    assert [r.binary_data_id for r in store.binary_by_ids(key, ["bin-1", "bin-2"])] == ["bin-2"]
    assert (
        store.latest_tabular(key, "part-1", "sensor-1", "rdk:component:sensor", "Readings") is None
    )
    assert store.delete_tabular(key, 0, Filter()) == 1
    assert store.count_tabular(WHO, Filter()) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda s, f: s.tabular_by_filter(WHO, f, PageRequest()),
        lambda s, f: s.count_tabular(WHO, f),
        lambda s, f: s.binary_by_filter(WHO, f, PageRequest()),
        lambda s, f: s.count_binary(WHO, f),
        lambda s, f: s.tags_by_filter(WHO, f),
        lambda s, f: s.delete_tabular(WHO, 0, f),
        lambda s, f: s.delete_binary_by_filter(WHO, f),
        lambda s, f: s.iter_reading_documents(WHO, f),  # raises before the first next()
    ],
    ids=[
        "tabular",
        "count_tabular",
        "binary",
        "count_binary",
        "tags",
        "delete_tabular",
        "delete_binary",
        "documents",
    ],
)
def test_naming_another_organization_is_permission_denied(store: SqliteStore, call) -> None:
    insert(store, [100])
    with pytest.raises(PermissionDenied, match="organization 'org-2'"):
        call(store, Filter(organization_ids=("org-1", "org-2")))
    assert store.count_tabular(WHO, Filter()) == 1


# -- latest and export -------------------------------------------------------------------


def test_latest_is_by_time_requested_per_part_resource_and_method(store: SqliteStore) -> None:
    insert(store, [200, 500, 300])  # stored order differs from time order
    insert(store, [900], ctx=make_ctx(method_name="Other"))
    insert(store, [800], part_id="part-2")
    latest = store.latest_tabular(WHO, "part-1", "sensor-1", "rdk:component:sensor", "Readings")
    assert latest is not None
    assert (latest.time_requested_ns, latest.data) == (500, {"i": 1})
    assert (
        store.latest_tabular(WHO, "part-1", "sensor-9", "rdk:component:sensor", "Readings") is None
    )


def test_export_is_ascending_inclusive_and_scoped_to_the_resource(store: SqliteStore) -> None:
    insert(store, [400, 100, 300, 200, 500])
    insert(store, [250], ctx=make_ctx("sensor-2"))
    rows = list(
        store.export_tabular(
            WHO, "part-1", "sensor-1", "rdk:component:sensor", "Readings", 200, 400
        )
    )
    assert [row.time_requested_ns for row in rows] == [200, 300, 400]
    everything = store.export_tabular(
        WHO, "part-1", "sensor-1", "rdk:component:sensor", "Readings", 0, 0
    )
    assert [row.time_requested_ns for row in everything] == [100, 200, 300, 400, 500]


def test_export_streams_in_batches_without_holding_a_read_transaction(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_query, "STREAM_BATCH", 3)
    insert(store, [100] * 4 + [200] * 4)  # batches end inside runs of equal times
    stream = store.export_tabular(WHO, "part-1", "sensor-1", "", "", 0, 0)
    first = next(stream)
    assert not store._db._local.conn.in_transaction  # the batch's transaction is over
    insert(store, [300])  # a write while the export is suspended
    rest = list(stream)
    assert [int(row.id) for row in (first, *rest)] == list(range(1, 10))


def test_reading_documents_are_viam_shaped(store: SqliteStore) -> None:
    t = 1_700_000_000_123_456_789
    insert(store, [t + 1000, t], ctx=make_ctx(tags=("x",)))
    docs = list(store.iter_reading_documents(WHO, Filter()))
    assert [doc["data"] for doc in docs] == [{"i": 1}, {"i": 0}]  # ascending by time
    doc = docs[0]
    assert doc == {
        "_id": "2",
        "organization_id": "org-1",
        "location_id": "loc-1",
        "robot_name": "",
        "robot_id": "",
        "part_name": "part-1",
        "part_id": "part-1",
        "component_type": "rdk:component:sensor",
        "component_name": "sensor-1",
        "method_name": "Readings",
        "tags": ["x"],
        "time_requested": datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC),
        "time_received": datetime(2023, 11, 14, 22, 13, 20, 123457, tzinfo=UTC),
        "data": {"i": 1},
    }


# -- tags and ids ------------------------------------------------------------------------


def test_tags_by_filter_unions_tabular_and_binary(store: SqliteStore) -> None:
    insert(store, [100], ctx=make_ctx(tags=("b", "a")))
    insert(store, [100], ctx=make_ctx("sensor-2", tags=("z",)))
    put_binary(store, "bin-1", b"x", ctx=make_ctx("cam-1", tags=("c", "a")))
    insert(store, [100], who=OTHER, part_id="part-x", ctx=make_ctx(tags=("secret",)))
    assert store.tags_by_filter(WHO, Filter()) == ["a", "b", "c", "z"]
    assert store.tags_by_filter(WHO, Filter(component_name="sensor-1")) == ["a", "b"]
    assert store.tags_by_filter(WHO, Filter(start_ns=200)) == []


def test_binary_by_ids_keeps_the_order_asked_and_skips_unknown(store: SqliteStore) -> None:
    for name in ("a", "b", "c"):
        put_binary(store, name, name.encode())
    put_binary(store, "theirs", b"t", who=OTHER, part_id="part-x")
    asked = ["c", "nope", "a", "theirs", "c"] + [f"missing-{i}" for i in range(600)] + ["b"]
    assert [row.binary_data_id for row in store.binary_by_ids(WHO, asked)] == ["c", "a", "b"]


# -- deletes -----------------------------------------------------------------------------


def test_delete_tabular_before_a_cutoff(store: SqliteStore) -> None:
    insert(store, [100, 200, 300])
    insert(store, [100], ctx=make_ctx("sensor-2"))
    assert store.delete_tabular(WHO, 200, Filter(component_name="sensor-1")) == 1  # strictly before
    assert store.count_tabular(WHO, Filter()) == 3
    assert store.delete_tabular(WHO, 0, Filter()) == 3  # 0 = everything
    assert store.count_tabular(WHO, Filter()) == 0


def test_shared_blob_is_kept_while_referenced(store: SqliteStore) -> None:
    ref = put_binary(store, "one", b"same bytes")
    assert put_binary(store, "two", b"same bytes") == ref
    other = put_binary(store, "three", b"other bytes")
    assert store.delete_binary_by_ids(WHO, ["one", "unknown"]) == 1
    assert store._blobs.exists(ref)
    assert store.delete_binary_by_ids(WHO, ["two"]) == 1
    assert not store._blobs.exists(ref)
    assert store._blobs.exists(other)
    assert [
        row.binary_data_id for row in store.binary_by_filter(WHO, Filter(), PageRequest()).rows
    ] == ["three"]


def test_blob_shared_across_organizations_is_kept(store: SqliteStore) -> None:
    ref = put_binary(store, "mine", b"same")
    put_binary(store, "theirs", b"same", who=OTHER, part_id="part-x")
    assert store.delete_binary_by_filter(WHO, Filter()) == 1
    assert store._blobs.exists(ref)
    assert [
        b"".join(store.open_blob(row.blob)) for row in store.binary_by_ids(OTHER, ["theirs"])
    ] == [b"same"]


def test_delete_binary_by_filter(store: SqliteStore) -> None:
    cat = put_binary(store, "cat", b"cat", t=100)
    dog = put_binary(store, "dog", b"dog", t=300)
    assert store.delete_binary_by_filter(WHO, Filter(end_ns=200)) == 1
    assert not store._blobs.exists(cat)
    assert store._blobs.exists(dog)
    assert store.count_binary(WHO, Filter()) == 1


def test_deleted_blob_cannot_be_committed_again_without_storing_it(store: SqliteStore) -> None:
    ref = put_binary(store, "one", b"bytes")
    store.delete_binary_by_ids(WHO, ["one"])
    part = store.resolve_part(WHO, "part-1")
    record = BinaryRecord("again", ref, 1, 2, "image/jpeg")
    with pytest.raises(FailedPrecondition, match="not stored"):
        store.commit_binary(part, make_ctx(), record, file_id="f")


def test_negative_limit_is_invalid(store: SqliteStore) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        store.tabular_by_filter(WHO, Filter(), PageRequest(limit=-5))
