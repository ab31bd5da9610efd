"""Filter semantics of the SQLite store: each field, cursors, and a brute-force model.

The table-driven tests query one shared, read-only world (built once per
module); the Hypothesis property builds a small random world per example and
checks ``tabular_by_filter`` (order and paging included) against a plain
Python filter over the inserted records.
"""

from __future__ import annotations

import base64
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.errors import InvalidArgument, PermissionDenied
from cloud.model import (
    BinaryRecord,
    Filter,
    PageRequest,
    Principal,
    SortOrder,
    TabularRecord,
    TagsMode,
)
from cloud.store.sqlite import SqliteStore
from cloud.store.sqlite._filters import (
    Kind,
    decode_cursor,
    decode_data,
    encode_cursor,
    page_limit,
)
from tests.cloud.store.conftest import make_ctx, make_principal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cloud.model import CaptureContext

ORG1, ORG2 = "org-1", "org-2"
ALL = PageRequest(limit=10_000)


def name_robot(store: SqliteStore, part_id: str, robot_id: str, robot_name: str, name: str) -> None:
    """Names a part's robot (the port has no call for it: robots come from app config)."""
    with store._db.write() as conn:
        conn.execute(
            "UPDATE parts SET robot_id = ?, robot_name = ?, part_name = ? WHERE part_id = ?",
            (robot_id, robot_name, name, part_id),
        )


def add_tabular(
    store: SqliteStore, who: Principal, part_id: str, ctx: CaptureContext, label: str, t: int
) -> None:
    part = store.resolve_part(who, part_id)
    record = TabularRecord(time_requested_ns=t, time_received_ns=t + 1, data={"label": label})
    store.commit_tabular(part, ctx, [record], file_id=f"file-{label}")


def add_binary(
    store: SqliteStore,
    who: Principal,
    part_id: str,
    ctx: CaptureContext,
    label: str,
    t: int,
    *,
    mime: str = "image/jpeg",
    bbox: tuple[str, ...] = (),
) -> None:
    part = store.resolve_part(who, part_id)
    ref = store.put_blob(label.encode())
    annotations = {"bboxes": [{"label": b} for b in bbox]} if bbox else None
    record = BinaryRecord(label, ref, t, t + 1, mime, annotations=annotations)
    store.commit_binary(part, ctx, record, file_id=f"file-{label}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    """Org 1: parts 1 and 2 in loc-1 (robots rover, digger), part 3 in loc-2; org 2: part x."""
    store = SqliteStore(tmp_path_factory.mktemp("world") / "data")
    loc1, loc2 = make_principal(), make_principal(location_id="loc-2")
    other = make_principal(org_id=ORG2, location_id="loc-9")
    sensor = make_ctx("sensor-1", "rdk:component:sensor", "Readings")
    add_tabular(store, loc1, "part-1", make_ctx(tags=("x",)), "t1", 100)
    add_tabular(store, loc1, "part-1", sensor, "t2", 200)
    camera = make_ctx("cam-1", "rdk:component:camera", "NextPointCloud", tags=("y",))
    add_tabular(store, loc1, "part-1", camera, "t3", 300)
    add_tabular(store, loc1, "part-2", make_ctx(tags=("x", "y")), "t4", 400)
    motor = make_ctx("motor-1", "rdk:component:motor", "Position", mime_type="text/plain")
    add_tabular(store, loc2, "part-3", motor, "t5", 500)
    add_tabular(store, other, "part-x", make_ctx(tags=("x",)), "o2", 150)
    image = make_ctx(
        "cam-1", "rdk:component:camera", "ReadImage", tags=("x",), dataset_ids=("ds-1",)
    )
    add_binary(store, loc1, "part-1", image, "b1", 100, bbox=("cat",))
    add_binary(store, loc1, "part-2", make_ctx("cam-1"), "b2", 200, mime="image/png", bbox=("dog",))
    add_binary(store, loc2, "part-3", make_ctx("cam-2", dataset_ids=("ds-1", "ds-2")), "b3", 300)
    add_binary(store, other, "part-x", make_ctx("cam-1"), "bo2", 100, bbox=("cat",))
    name_robot(store, "part-1", "r-1", "rover", "arm-1")
    name_robot(store, "part-2", "r-2", "digger", "arm-2")
    yield store
    store.close()


WHO = make_principal()
OR, TAGGED, UNTAGGED = TagsMode.MATCH_BY_OR, TagsMode.TAGGED, TagsMode.UNTAGGED

TABULAR_CASES = [
    ("no constraint", Filter(), "t1 t2 t3 t4 t5"),
    ("component_name", Filter(component_name="sensor-1"), "t1 t2 t4"),
    ("component_type", Filter(component_type="rdk:component:camera"), "t3"),
    ("method", Filter(method="Readings"), "t1 t2 t4"),
    ("robot_name", Filter(robot_name="rover"), "t1 t2 t3"),
    ("robot_id", Filter(robot_id="r-2"), "t4"),
    ("part_name", Filter(part_name="arm-2"), "t4"),
    ("part_id", Filter(part_id="part-3"), "t5"),
    ("one location", Filter(location_ids=("loc-2",)), "t5"),
    ("any location", Filter(location_ids=("loc-1", "loc-2")), "t1 t2 t3 t4 t5"),
    ("own organization", Filter(organization_ids=(ORG1,)), "t1 t2 t3 t4 t5"),
    ("mime type", Filter(mime_types=("text/plain", "image/png")), "t5"),
    ("start inclusive", Filter(start_ns=200), "t2 t3 t4 t5"),
    ("end inclusive", Filter(end_ns=300), "t1 t2 t3"),
    ("interval", Filter(start_ns=200, end_ns=300), "t2 t3"),
    ("tags or", Filter(tags_mode=OR, tags=("y",)), "t3 t4"),
    ("tags unspecified", Filter(tags=("x",)), "t1 t4"),
    ("tags any of two", Filter(tags=("x", "y")), "t1 t3 t4"),
    ("tags or, none given", Filter(tags_mode=OR), "t1 t2 t3 t4 t5"),
    ("tagged", Filter(tags_mode=TAGGED), "t1 t3 t4"),
    ("untagged", Filter(tags_mode=UNTAGGED), "t2 t5"),
    ("bbox labels: binary only", Filter(bbox_labels=("cat",)), ""),
    ("dataset: binary only", Filter(dataset_id="ds-1"), ""),
    ("fields AND", Filter(component_name="sensor-1", tags=("y",)), "t4"),
    ("nothing matches", Filter(component_name="sensor-1", part_id="part-3"), ""),
]

BINARY_CASES = [
    ("no constraint", Filter(), "b1 b2 b3"),
    ("mime type", Filter(mime_types=("image/jpeg",)), "b1 b3"),
    ("bbox label", Filter(bbox_labels=("cat",)), "b1"),
    ("bbox labels or", Filter(bbox_labels=("cat", "dog")), "b1 b2"),
    ("bbox label absent", Filter(bbox_labels=("bird",)), ""),
    ("dataset", Filter(dataset_id="ds-1"), "b1 b3"),
    ("second dataset", Filter(dataset_id="ds-2"), "b3"),
    ("tags", Filter(tags=("x",)), "b1"),
    ("untagged", Filter(tags_mode=UNTAGGED), "b2 b3"),
    ("location", Filter(location_ids=("loc-2",)), "b3"),
    ("robot_name", Filter(robot_name="rover"), "b1"),
    ("component and interval", Filter(component_name="cam-1", start_ns=150), "b2"),
]


@pytest.mark.parametrize(
    ("flt", "expected"), [c[1:] for c in TABULAR_CASES], ids=[c[0] for c in TABULAR_CASES]
)
def test_tabular_filter_field(world: SqliteStore, flt: Filter, expected: str) -> None:
    rows = world.tabular_by_filter(WHO, flt, ALL).rows
    assert sorted(str(r.data["label"]) for r in rows) == expected.split()
    assert world.count_tabular(WHO, flt) == len(expected.split())


@pytest.mark.parametrize(
    ("flt", "expected"), [c[1:] for c in BINARY_CASES], ids=[c[0] for c in BINARY_CASES]
)
def test_binary_filter_field(world: SqliteStore, flt: Filter, expected: str) -> None:
    rows = world.binary_by_filter(WHO, flt, ALL).rows
    assert sorted(r.binary_data_id for r in rows) == expected.split()
    assert world.count_binary(WHO, flt) == len(expected.split())


def test_other_organization_sees_only_its_own(world: SqliteStore) -> None:
    who = make_principal(org_id=ORG2, location_id="loc-9")
    assert [r.data["label"] for r in world.tabular_by_filter(who, Filter(), ALL).rows] == ["o2"]
    assert [r.binary_data_id for r in world.binary_by_filter(who, Filter(), ALL).rows] == ["bo2"]


def test_part_key_sees_only_its_part(world: SqliteStore) -> None:
    who = make_principal(part_id="part-2")
    assert [r.data["label"] for r in world.tabular_by_filter(who, Filter(), ALL).rows] == ["t4"]
    assert world.count_tabular(who, Filter(part_id="part-1")) == 0
    assert [r.binary_data_id for r in world.binary_by_filter(who, Filter(), ALL).rows] == ["b2"]


@pytest.mark.parametrize("orgs", [(ORG2,), (ORG1, ORG2)])
def test_naming_another_organization_is_denied(world: SqliteStore, orgs: tuple[str, ...]) -> None:
    flt = Filter(organization_ids=orgs)
    with pytest.raises(PermissionDenied, match="'org-2'"):
        world.tabular_by_filter(WHO, flt, ALL)
    with pytest.raises(PermissionDenied, match="'org-2'"):
        world.count_binary(WHO, flt)


# -- cursors, limits, stored JSON ----------------------------------------------------


@pytest.mark.parametrize(("kind", "key"), [(Kind.TABULAR, 42), (Kind.BINARY, "bin-é/1")])
def test_cursor_round_trips(kind: Kind, key: int | str) -> None:
    cursor = encode_cursor(1_700_000_000_000_000_000, key)
    assert cursor.isascii()
    assert decode_cursor(cursor, kind) == (1_700_000_000_000_000_000, key)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


MALFORMED = [
    ("not base64", "%%%", Kind.TABULAR),
    ("bad padding", b64("[1,2]").rstrip("="), Kind.TABULAR),
    ("not JSON", b64("not json"), Kind.TABULAR),
    ("not a list", b64('{"t":1}'), Kind.TABULAR),
    ("not a pair", b64("[1,2,3]"), Kind.TABULAR),
    ("binary key for tabular", encode_cursor(1, "b1"), Kind.TABULAR),
    ("tabular key for binary", encode_cursor(1, 7), Kind.BINARY),
    ("boolean time", b64("[true,1]"), Kind.TABULAR),
    ("float time", b64("[1.5,1]"), Kind.TABULAR),
    ("non-ASCII", "WzEsMV0é", Kind.TABULAR),
]


@pytest.mark.parametrize(
    ("cursor", "kind"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_cursor_is_invalid_argument(cursor: str, kind: Kind) -> None:
    with pytest.raises(InvalidArgument, match=r"^last: malformed paging cursor$"):
        decode_cursor(cursor, kind)


def test_malformed_cursor_through_the_store(world: SqliteStore) -> None:
    with pytest.raises(InvalidArgument, match="last: malformed paging cursor"):
        world.tabular_by_filter(WHO, Filter(), PageRequest(last="garbage!"))
    binary_cursor = world.binary_by_filter(WHO, Filter(), PageRequest(limit=1)).last
    with pytest.raises(InvalidArgument, match="last: malformed paging cursor"):
        world.tabular_by_filter(WHO, Filter(), PageRequest(last=binary_cursor))


@pytest.mark.parametrize(
    ("limit", "effective"), [(0, 50), (1, 1), (10_000, 10_000), (10**9, 10_000)]
)
def test_page_limit(limit: int, effective: int) -> None:
    assert page_limit(PageRequest(limit=limit)) == effective


def test_negative_limit_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        page_limit(PageRequest(limit=-1))


def test_decode_data_restores_non_finite_numbers_at_any_depth() -> None:
    got = decode_data('{"a":"NaN","b":["Infinity",{"c":"-Infinity"}],"d":"nan","e":1.5}')
    nan = got["a"]
    assert isinstance(nan, float)
    assert math.isnan(nan)
    assert got["b"] == [math.inf, {"c": -math.inf}]
    assert got["d"] == "nan"  # only the three exact spellings
    assert got["e"] == 1.5


# -- the brute-force model -------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """One inserted reading and everything a filter can look at."""

    seq: int  # insertion order = the store's id order
    org: str
    location: str
    part: str
    robot: str
    component: str
    method: str
    tags: tuple[str, ...]
    time: int


PARTS = {  # part -> (org, location, robot name)
    "p1": (ORG1, "l1", "rover"),
    "p2": (ORG1, "l1", "digger"),
    "p3": (ORG1, "l2", "rover"),
    "q1": (ORG2, "l1", "rover"),
}
TAGS = ("a", "b", "c")
TIMES = st.integers(1, 6).map(lambda n: n * 100)  # few values: many equal timestamps

readings = st.tuples(
    st.sampled_from(sorted(PARTS)),
    st.sampled_from(["s1", "s2"]),
    st.sampled_from(["Readings", "Other"]),
    st.lists(st.sampled_from(TAGS), max_size=2, unique=True).map(lambda t: tuple(sorted(t))),
    TIMES,
)
filters = st.builds(
    Filter,
    component_name=st.sampled_from(["", "s1", "s2"]),
    method=st.sampled_from(["", "Readings"]),
    robot_name=st.sampled_from(["", "rover"]),
    part_id=st.sampled_from(["", "p1", "p3"]),
    location_ids=st.lists(st.sampled_from(["l1", "l2"]), max_size=2, unique=True).map(tuple),
    organization_ids=st.sampled_from([(), (ORG1,)]),
    start_ns=st.sampled_from([0, 200, 400]),
    end_ns=st.sampled_from([0, 300, 600]),
    tags_mode=st.sampled_from(TagsMode),
    tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True).map(tuple),
)
principals = st.sampled_from(
    [make_principal(location_id="l1"), make_principal(location_id="l1", part_id="p2")]
)


def model_matches(who: Principal, flt: Filter, r: Placed) -> bool:
    tags_ok = {
        TagsMode.TAGGED: bool(r.tags),
        TagsMode.UNTAGGED: not r.tags,
    }.get(flt.tags_mode, not flt.tags or bool(set(flt.tags) & set(r.tags)))
    return (
        r.org == who.org_id
        and who.part_id in (None, r.part)
        and flt.component_name in ("", r.component)
        and flt.method in ("", r.method)
        and flt.robot_name in ("", r.robot)
        and flt.part_id in ("", r.part)
        and (not flt.location_ids or r.location in flt.location_ids)
        and (not flt.start_ns or r.time >= flt.start_ns)
        and (not flt.end_ns or r.time <= flt.end_ns)
        and tags_ok
    )


def insert_all(
    store: SqliteStore, specs: list[tuple[str, str, str, tuple[str, ...], int]]
) -> list[Placed]:
    placed: list[Placed] = []
    for seq, (part_id, component, method, tags, t) in enumerate(specs):
        org, location, robot = PARTS[part_id]
        who = make_principal(org_id=org, location_id=location)
        part = store.resolve_part(who, part_id)
        record = TabularRecord(time_requested_ns=t, time_received_ns=t, data={"seq": seq})
        store.commit_tabular(
            part, make_ctx(component, method_name=method, tags=tags), [record], file_id="f"
        )
        placed.append(Placed(seq, org, location, part_id, robot, component, method, tags, t))
    for part_id, (_, _, robot) in PARTS.items():
        name_robot(store, part_id, f"id-{part_id}", robot, part_id)
    return placed


def walk(
    store: SqliteStore, who: Principal, flt: Filter, limit: int, order: SortOrder
) -> list[object]:
    seen: list[object] = []
    page = PageRequest(limit=limit, order=order)
    for _ in range(100):
        got = store.tabular_by_filter(who, flt, page)
        assert len(got.rows) <= limit
        seen += [r.data["seq"] for r in got.rows]
        if not got.last:
            return seen
        page = PageRequest(limit=limit, last=got.last, order=order)
    raise AssertionError("paging did not end")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(readings, min_size=0, max_size=12),
    queries=st.lists(st.tuples(principals, filters, st.integers(1, 4)), min_size=1, max_size=4),
)
def test_tabular_by_filter_matches_brute_force(
    specs: list[tuple[str, str, str, tuple[str, ...], int]],
    queries: list[tuple[Principal, Filter, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "data")
        try:
            placed = insert_all(store, specs)
            for who, flt, limit in queries:
                hits = [r for r in placed if model_matches(who, flt, r)]
                newest_first = [
                    r.seq for r in sorted(hits, key=lambda r: (r.time, r.seq), reverse=True)
                ]
                got = store.tabular_by_filter(who, flt, ALL).rows
                assert [r.data["seq"] for r in got] == newest_first
                assert store.count_tabular(who, flt) == len(hits)
                assert walk(store, who, flt, limit, SortOrder.DESCENDING) == newest_first
                assert walk(store, who, flt, limit, SortOrder.ASCENDING) == newest_first[::-1]
        finally:
            store.close()
