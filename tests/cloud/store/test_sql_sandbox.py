"""The SQL sandbox: what untrusted SQL may do (read ``readings``) and everything it may not."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from cloud.errors import InvalidArgument
from cloud.model import Filter, TabularRecord
from tests.cloud.store.conftest import make_ctx, make_principal

if TYPE_CHECKING:
    from cloud.store.sqlite import SqliteStore

WHO = make_principal()
OTHER = make_principal(org_id="org-2", location_id="loc-9")
T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def readings(store: SqliteStore) -> SqliteStore:
    """Org 1: three sensor-1 readings (x = 1, 2, 3) on part-1 and one arm reading on part-2;
    org 2: one reading (x = 99)."""
    part1 = store.resolve_part(WHO, "part-1")
    ctx = make_ctx(tags=("b", "a"), method_parameters={"p": b"\x01"})
    records = [
        TabularRecord(
            T0 + i * 1_000_000_000, T0 + i * 1_000_000_000 + 500, {"readings": {"x": float(i + 1)}}
        )
        for i in range(3)
    ]
    store.commit_tabular(part1, ctx, records, file_id="f-1")
    part2 = store.resolve_part(WHO, "part-2")
    arm = TabularRecord(T0, T0, {"readings": {"x": 10.0, "bad": math.nan}})
    store.commit_tabular(
        part2, make_ctx("arm-1", "rdk:component:arm", "EndPosition"), [arm], file_id="f-2"
    )
    theirs = store.resolve_part(OTHER, "part-x")
    store.commit_tabular(
        theirs, make_ctx(), [TabularRecord(T0, T0, {"readings": {"x": 99.0}})], file_id="f-3"
    )
    return store


def query(store: SqliteStore, sql: str, *, max_rows: int = 100) -> list[dict[str, object]]:
    return store.sql_query(WHO, sql, max_rows=max_rows)


# -- refused -----------------------------------------------------------------------------

FORBIDDEN = [
    (
        "insert",
        "INSERT INTO tabular (org_id) VALUES ('x')",
        "only SELECT statements are allowed, not INSERT",
    ),
    ("update", "UPDATE tabular SET data = '{}'", "only SELECT statements are allowed, not UPDATE"),
    ("delete", "DELETE FROM tabular", "only SELECT statements are allowed, not DELETE"),
    ("drop", "DROP TABLE tabular", "only SELECT statements are allowed, not DROP"),
    ("create", "CREATE TABLE t (a)", "only SELECT statements are allowed, not CREATE"),
    (
        "attach",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "only SELECT statements are allowed, not ATTACH",
    ),
    ("pragma", "PRAGMA table_info(tabular)", "only SELECT statements are allowed, not PRAGMA"),
    ("vacuum into", "VACUUM INTO '/tmp/copy.db'", "only SELECT statements are allowed, not VACUUM"),
    ("transaction", "BEGIN", "only SELECT statements are allowed, not BEGIN"),
    ("comment-hidden", "/* SELECT */ -- x\n DELETE FROM tabular", "not DELETE"),
    ("empty", "  ", "not an empty query"),
    (
        "cte delete",
        "WITH x AS (SELECT 1) DELETE FROM tabular",
        "DELETE is not allowed: only SELECT over readings",
    ),
    (
        "cte insert",
        "WITH x AS (SELECT 1) INSERT INTO parts SELECT * FROM parts",
        "INSERT is not allowed",
    ),
    ("two statements", "SELECT 1; DROP TABLE tabular", "only one statement is allowed"),
    ("two selects", "SELECT 1; SELECT 2", "only one statement is allowed"),
    ("base table", "SELECT * FROM tabular", "only the readings table may be read, not 'tabular'"),
    ("qualified base table", "SELECT data FROM main.tabular", "not 'tabular'"),
    ("contexts", "SELECT tags FROM contexts", "not 'contexts'"),
    ("api keys", "SELECT secret_hash FROM api_keys", "not 'api_keys'"),
    ("schema", "SELECT sql FROM sqlite_master", "not 'sqlite_master'"),
    ("temp schema", "SELECT sql FROM sqlite_temp_master", "not 'sqlite_temp_master'"),
    (
        "base table in subquery",
        "SELECT (SELECT count(*) FROM uploads) FROM readings",
        "not 'uploads'",
    ),
    ("count another table", "SELECT count(*) FROM uploads", "not 'uploads'"),
    ("probe another table", "SELECT EXISTS (SELECT 1 FROM API_KEYS) AS e", "not 'API_KEYS'"),
    ("virtual table module", "SELECT count(*) FROM dbstat", "schema is off limits"),
    ("pragma function", "SELECT * FROM pragma_table_info('tabular')", "schema is off limits"),
    (
        "load_extension",
        "SELECT load_extension('/tmp/evil.so')",
        "function load_extension() is not allowed",
    ),
    ("randomblob", "SELECT randomblob(1000000000)", "function randomblob() is not allowed"),
    ("sqlite_version", "SELECT sqlite_version()", "function sqlite_version() is not allowed"),
    ("unknown table", "SELECT * FROM nosuch", "no such table: nosuch"),
    ("syntax", "SELECT FROM WHERE", 'near "FROM": syntax error'),
    ("other schema", "SELECT * FROM otherDb.readings", "no such table: otherDb.readings"),
]


@pytest.mark.parametrize(
    ("sql", "message"), [c[1:] for c in FORBIDDEN], ids=[c[0] for c in FORBIDDEN]
)
def test_forbidden_sql_is_invalid_argument(readings: SqliteStore, sql: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^sql_query: ") as caught:
        query(readings, sql)
    assert message in str(caught.value)
    assert readings.count_tabular(WHO, Filter()) == 4  # nothing changed


def test_recursive_cte_bomb_exceeds_the_budget(readings: SqliteStore) -> None:
    readings._sql_budget_steps = 200_000
    bomb = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"
    with pytest.raises(InvalidArgument, match=r"^sql_query: query exceeded its budget$"):
        query(readings, bomb)


def test_the_default_budget_also_ends_a_runaway_query(readings: SqliteStore) -> None:
    thousand = (
        "(WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k LIMIT 1000) "
        "SELECT n FROM k)"
    )
    cross = f"SELECT count(*) FROM readings a, readings b, {thousand} x, {thousand} y, {thousand} z"
    with pytest.raises(InvalidArgument, match="query exceeded its budget"):
        query(readings, cross)


def test_too_many_rows_asks_for_a_limit(readings: SqliteStore) -> None:
    with pytest.raises(InvalidArgument, match="more than 2 rows; add a LIMIT"):
        query(readings, "SELECT * FROM readings", max_rows=2)
    assert len(query(readings, "SELECT * FROM readings LIMIT 2", max_rows=2)) == 2


def test_the_connection_is_closed_after_each_query(
    readings: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[sqlite3.Connection] = []
    real_open = readings._db.open_sandbox

    def spy() -> sqlite3.Connection:
        opened.append(real_open())
        return opened[-1]

    monkeypatch.setattr(readings._db, "open_sandbox", spy)
    query(readings, "SELECT 1 AS one")
    with pytest.raises(InvalidArgument):
        query(readings, "SELECT * FROM tabular")
    assert len(opened) == 2
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")


# -- allowed -----------------------------------------------------------------------------


def test_json_extract_with_order_by(readings: SqliteStore) -> None:
    rows = query(
        readings,
        "SELECT json_extract(data, '$.readings.x') AS x FROM readings "
        "WHERE component_name = 'sensor-1' ORDER BY x DESC",
    )
    assert rows == [{"x": 3.0}, {"x": 2.0}, {"x": 1.0}]


def test_group_by_and_aggregates(readings: SqliteStore) -> None:
    rows = query(
        readings,
        "SELECT component_name, count(*) AS n, max(data ->> '$.readings.x') AS top "
        "FROM readings GROUP BY component_name ORDER BY component_name",
    )
    assert rows == [
        {"component_name": "arm-1", "n": 1, "top": 10.0},
        {"component_name": "sensor-1", "n": 3, "top": 3.0},
    ]


def test_qualified_viam_name_and_whole_documents(readings: SqliteStore) -> None:
    rows = query(
        readings,
        "SELECT * FROM sensorData.readings WHERE part_id = 'part-1' "
        "ORDER BY time_requested DESC LIMIT 1",
    )
    assert rows == [
        {
            "organization_id": "org-1",
            "location_id": "loc-1",
            "robot_name": "",
            "robot_id": "",
            "part_name": "part-1",
            "part_id": "part-1",
            "component_type": "rdk:component:sensor",
            "component_name": "sensor-1",
            "method_name": "Readings",
            "tags": ["a", "b"],
            "method_parameters": {"p": {"type_url": "type.googleapis.com/test.p", "value": "AQ=="}},
            "time_requested": datetime(2023, 11, 14, 22, 13, 22, tzinfo=UTC),
            "time_received": datetime(2023, 11, 14, 22, 13, 22, 0, tzinfo=UTC),
            "data": {"readings": {"x": 3.0}},
        }
    ]


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT count(*) AS n FROM "sensorData"."readings"',
        "SELECT count(*) AS n FROM sensordata . readings",
        "SELECT count(*) AS n FROM `sensorData`.readings r WHERE r.part_id <> ''",
        "SELECT count(*) AS n FROM [sensorData].readings",
    ],
)
def test_qualifier_spellings(readings: SqliteStore, sql: str) -> None:
    assert query(readings, sql) == [{"n": 4}]


def test_qualifier_inside_strings_and_comments_is_kept(readings: SqliteStore) -> None:
    rows = query(
        readings, "SELECT 'sensorData.readings' AS s /* sensorData. */ FROM readings LIMIT 1"
    )
    assert rows == [{"s": "sensorData.readings"}]


def test_time_columns_compare_as_iso_text(readings: SqliteStore) -> None:
    rows = query(
        readings,
        "SELECT time_requested FROM readings WHERE time_requested >= '2023-11-14T22:13:21' "
        "AND component_name = 'sensor-1' ORDER BY time_requested",
    )
    assert rows == [
        {"time_requested": datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC)},
        {"time_requested": datetime(2023, 11, 14, 22, 13, 22, tzinfo=UTC)},
    ]
    (raw,) = query(
        readings, "SELECT time_received || '' AS t FROM readings ORDER BY t DESC LIMIT 1"
    )
    assert raw == {"t": "2023-11-14T22:13:22.000000Z"}


def test_data_restores_non_finite_numbers(readings: SqliteStore) -> None:
    (row,) = query(readings, "SELECT data FROM readings WHERE component_name = 'arm-1'")
    data = row["data"]
    assert isinstance(data, dict)
    assert math.isnan(data["readings"]["bad"])


def test_json_each_window_functions_and_ctes(readings: SqliteStore) -> None:
    keys = query(
        readings,
        "SELECT DISTINCT j.key FROM readings, json_each(readings.data, '$.readings') j ORDER BY 1",
    )
    assert keys == [{"key": "bad"}, {"key": "x"}]
    ranked = query(
        readings,
        "WITH s AS (SELECT data ->> '$.readings.x' AS x FROM readings "
        "WHERE component_name = 'sensor-1') "
        "SELECT x, row_number() OVER (ORDER BY x DESC) AS r FROM s ORDER BY r LIMIT 2",
    )
    assert ranked == [{"x": 3.0, "r": 1}, {"x": 2.0, "r": 2}]
    counted = query(
        readings,
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 5) "
        "SELECT sum(n) AS s FROM c",
    )
    assert counted == [{"s": 15}]


def test_tags_are_searchable_as_json(readings: SqliteStore) -> None:
    rows = query(
        readings,
        "SELECT count(*) AS n FROM readings "
        "WHERE EXISTS (SELECT 1 FROM json_each(tags) WHERE value = 'a')",
    )
    assert rows == [{"n": 3}]


def test_tenancy_other_org_and_part_key(readings: SqliteStore) -> None:
    theirs = readings.sql_query(OTHER, "SELECT organization_id, data FROM readings", max_rows=10)
    assert theirs == [{"organization_id": "org-2", "data": {"readings": {"x": 99.0}}}]
    part_key = make_principal(part_id="part-2")
    assert readings.sql_query(part_key, "SELECT component_name FROM readings", max_rows=10) == [
        {"component_name": "arm-1"}
    ]
    org_ids = query(readings, "SELECT DISTINCT organization_id FROM readings")
    assert org_ids == [{"organization_id": "org-1"}]


def test_quotes_in_the_scope_cannot_escape_the_view(store: SqliteStore) -> None:
    tricky = make_principal(org_id="o' OR '1'='1", location_id="l")
    part = store.resolve_part(make_principal(), "part-1")
    store.commit_tabular(part, make_ctx(), [TabularRecord(1, 1, {"x": 1.0})], file_id="f")
    assert store.sql_query(tricky, "SELECT count(*) AS n FROM readings", max_rows=1) == [{"n": 0}]
