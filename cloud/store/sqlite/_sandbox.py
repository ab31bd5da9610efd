"""Untrusted SQL over the caller's readings: Viam's ``TabularDataBySQL``, sandboxed.

Each query gets a fresh read-only connection (``Database.open_sandbox``), closed
afterwards, prepared in this order:

1. A TEMP VIEW ``readings`` over ``tabular`` + ``contexts`` + ``parts``, already
   restricted to the caller's organization (and part, for a part key), with
   Viam's document columns: ``organization_id``, ``location_id``,
   ``robot_name``, ``robot_id``, ``part_name``, ``part_id``,
   ``component_type``, ``component_name``, ``method_name``, ``tags`` and
   ``method_parameters`` (JSON text), ``time_requested`` and ``time_received``
   (ISO-8601 UTC text such as ``2024-01-02T03:04:05.123456Z``: fixed width, so
   text order is time order; compare with the same form or a prefix of it,
   e.g. ``time_requested >= '2024-01-02T03:04'``), and ``data`` (JSON text).
2. Limits: no attached databases, values of at most 16 MiB, SQL of at most 100 kB.
3. An authorizer that allows only SELECT, recursive CTEs, reading the view
   (the base tables only through it: SQLite names the view in the fourth
   argument), CTEs and subqueries, ``json_each``/``json_tree``, and an
   allow-list of functions.
   Everything else (writes, DDL, ATTACH, PRAGMA, transactions,
   ``load_extension``, schema tables) is denied.
4. A progress handler that aborts after a budget of VM steps, so a runaway
   query (say, an unbounded recursive CTE) ends with a clear error.

Before any of that, the text is checked to start with SELECT, WITH or VALUES
(for a clear message; the authorizer is what enforces), and Viam's qualified
name ``sensorData.readings`` is accepted by deleting the ``sensorData.``
qualifier outside string literals and comments, which needs no ATTACH. Only
one statement may run: Python's ``sqlite3`` refuses trailing statements.

Result columns named ``data``, ``tags`` and ``method_parameters`` holding JSON
text are decoded (``data`` with non-finite numbers restored); columns named
``time_requested``/``time_received`` holding ISO text become aware UTC
``datetime``. Every SQLite error becomes ``InvalidArgument`` with SQLite's message.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, final

from cloud.errors import InvalidArgument
from cloud.store.sqlite._filters import decode_data, decode_json

if TYPE_CHECKING:
    from cloud.model import Document, Principal
    from cloud.store.sqlite._db import Database

DEFAULT_BUDGET_STEPS = 20_000_000  # about half a second of SQLite work
_STEPS_PER_CHECK = 1000
_MAX_VALUE_BYTES = 16 << 20
_MAX_SQL_BYTES = 100_000

# fmt: off
_ALLOWED_FUNCTIONS = frozenset({
    # core scalar functions (not changes, last_insert_rowid, randomblob, zeroblob, load_extension)
    "abs", "char", "coalesce", "format", "glob", "hex", "ifnull", "iif", "instr", "length",
    "like", "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif", "octet_length",
    "printf", "quote", "random", "replace", "round", "rtrim", "sign", "substr", "substring",
    "trim", "typeof", "unhex", "unicode", "unlikely", "upper",
    # dates
    "date", "time", "datetime", "julianday", "strftime", "unixepoch", "timediff",
    # aggregates and window functions
    "avg", "count", "group_concat", "string_agg", "sum", "total", "row_number", "rank",
    "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
    "last_value", "nth_value",
    # math
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
    "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
    "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
    # JSON (the -> and ->> operators are functions too)
    "json", "json_array", "json_array_length", "json_extract", "json_insert", "json_object",
    "json_patch", "json_quote", "json_remove", "json_replace", "json_set", "json_type",
    "json_valid", "json_group_array", "json_group_object", "->", "->>",
})
# fmt: on
_TABLE_FUNCTIONS = frozenset({"json_each", "json_tree"})
_BASE_TABLES = frozenset({"tabular", "contexts", "parts"})
_SCHEMA_TABLES = frozenset(
    {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"}
)
# Names of actions for refusal messages (any action not allowed is denied, named or not).
# fmt: off
_DENIED_ACTIONS = (
    "ALTER_TABLE", "ANALYZE", "ATTACH", "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX",
    "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER", "CREATE_TEMP_VIEW", "CREATE_TRIGGER",
    "CREATE_VIEW", "CREATE_VTABLE", "DELETE", "DETACH", "DROP_INDEX", "DROP_TABLE",
    "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW",
    "DROP_TRIGGER", "DROP_VIEW", "DROP_VTABLE", "INSERT", "PRAGMA", "REINDEX", "SAVEPOINT",
    "TRANSACTION", "UPDATE",
)
# fmt: on
_ACTION_NAMES = {getattr(sqlite3, f"SQLITE_{n}"): n.replace("_", " ") for n in _DENIED_ACTIONS}
_JSON_COLUMNS = frozenset({"tags", "method_parameters"})
_TIME_COLUMNS = frozenset({"time_requested", "time_received"})

# What may precede the first keyword: whitespace, comments, opening parentheses.
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$)|\()*", re.S)
_FIRST_WORD = re.compile(r"[A-Za-z_]+")
_READ_ONLY_STARTS = frozenset({"SELECT", "WITH", "VALUES"})
# Viam's schema qualifier, bare or quoted; string literals, quoted identifiers
# and comments are matched (and kept) first, so only real qualifiers go.
_QUALIFIER = re.compile(
    r"""(?P<keep>'(?:[^']|'')*'?|--[^\n]*|/\*.*?(?:\*/|$))
      | (?:(?<![\w$])sensorData|"sensorData"|`sensorData`|\[sensorData\])\s*\.
      | (?P<ident>"(?:[^"]|"")*"?)""",
    re.S | re.I | re.X,
)
_ISO = (
    "strftime('%Y-%m-%dT%H:%M:%S', {t} / 1000000000, 'unixepoch')"
    " || printf('.%06dZ', ({t} % 1000000000) / 1000)"
)
_VIEW = """CREATE TEMP VIEW readings AS SELECT
    c.org_id AS organization_id, c.location_id AS location_id,
    COALESCE(p.robot_name, '') AS robot_name, COALESCE(p.robot_id, '') AS robot_id,
    COALESCE(p.part_name, '') AS part_name, c.part_id AS part_id,
    c.component_type AS component_type, c.component_name AS component_name,
    c.method_name AS method_name, c.tags AS tags, c.method_parameters AS method_parameters,
    {requested} AS time_requested, {received} AS time_received, t.data AS data
FROM main.tabular t JOIN main.contexts c ON c.context_id = t.context_id
    LEFT JOIN main.parts p ON p.part_id = c.part_id
WHERE {scope}"""


def run_sql(
    db: Database,
    who: Principal,
    sql: str,
    *,
    max_rows: int,
    budget_steps: int = DEFAULT_BUDGET_STEPS,
) -> list[Document]:
    """Runs one read-only SELECT over the caller's ``readings`` view.

    Args:
        db: the store's database (a fresh sandbox connection is opened from it).
        who: the caller; the view holds only its organization's (or part's) rows.
        sql: the untrusted query; ``sensorData.readings`` names the view too.
        max_rows: the most rows a result may have.
        budget_steps: SQLite VM steps the query may take before it is aborted.

    Returns:
        One document per result row, keyed by column name.

    Raises:
        InvalidArgument: the SQL is not a single read-only SELECT over
            ``readings``, fails to compile or run, exceeds its budget, or
            returns more than ``max_rows`` rows.

    Example::

        run_sql(db, who, "SELECT count(*) AS n FROM readings", max_rows=1000)  # [{'n': 3}]
    """
    text = _prepare(sql)
    guard = _Guard(budget_steps)
    conn = db.open_sandbox()
    try:
        _lock_down(conn, who, guard)
        return _run(conn, text, max_rows, guard)
    finally:
        conn.close()


def _prepare(sql: str) -> str:
    if len(sql.encode()) > _MAX_SQL_BYTES:
        raise InvalidArgument(f"sql_query: the query is longer than {_MAX_SQL_BYTES} bytes")
    start = _LEADING.match(sql)
    word = _FIRST_WORD.match(sql, start.end() if start else 0)
    first = word.group().upper() if word else ""
    if first not in _READ_ONLY_STARTS:
        raise InvalidArgument(
            f"sql_query: only SELECT statements are allowed, not {first or 'an empty query'}"
        )
    return _QUALIFIER.sub(lambda m: m.group("keep") or m.group("ident") or "", sql)


def _lock_down(conn: sqlite3.Connection, who: Principal, guard: _Guard) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, _MAX_SQL_BYTES)
    scope = f"t.org_id = {_literal(who.org_id)}"
    if who.part_id is not None:
        scope += f" AND c.part_id = {_literal(who.part_id)}"
    requested = _ISO.format(t="t.time_requested")
    received = _ISO.format(t="t.time_received")
    conn.execute(_VIEW.format(requested=requested, received=received, scope=scope))
    # Instantiate the table-valued functions now: their first use reads the
    # schema table, which the authorizer would (rightly) refuse a query.
    conn.execute("SELECT * FROM json_each('[]'), json_tree('[]')").fetchall()
    guard.protected = _protected_names(conn)
    conn.set_authorizer(guard.authorize)
    conn.set_progress_handler(guard.progress, _STEPS_PER_CHECK)


def _run(conn: sqlite3.Connection, sql: str, max_rows: int, guard: _Guard) -> list[Document]:
    try:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(max_rows + 1)
    except sqlite3.Error as err:
        raise InvalidArgument(guard.explain(err)) from None
    if len(rows) > max_rows:
        raise InvalidArgument(f"sql_query: the result has more than {max_rows} rows; add a LIMIT")
    return [
        {name: _value(name, value) for name, value in zip(names, row, strict=True)} for row in rows
    ]


@final
class _Guard:
    """The authorizer and progress handler of one query, remembering why it stopped."""

    def __init__(self, budget_steps: int) -> None:
        self.protected: frozenset[str] = frozenset()  # set before the authorizer runs
        self.checks_left = max(1, budget_steps // _STEPS_PER_CHECK)
        self.exhausted = False
        self.denied = ""

    def authorize(
        self,
        action: int,
        arg1: str | None,
        arg2: str | None,
        db_name: str | None,
        view: str | None,
    ) -> int:
        reason = _refusal(action, arg1, arg2, db_name, view, self.protected)
        if reason is None:
            return sqlite3.SQLITE_OK
        self.denied = self.denied or reason
        return sqlite3.SQLITE_DENY

    def progress(self) -> int:
        self.checks_left -= 1
        if self.checks_left > 0:
            return 0
        self.exhausted = True
        return 1  # non-zero interrupts the statement

    def explain(self, err: sqlite3.Error) -> str:
        if self.exhausted:
            return "sql_query: query exceeded its budget"
        if self.denied:
            return f"sql_query: {self.denied}"
        if "one statement at a time" in str(err):
            return "sql_query: only one statement is allowed"
        return f"sql_query: {err}"


def _refusal(
    action: int,
    arg1: str | None,
    arg2: str | None,
    db_name: str | None,
    view: str | None,
    protected: frozenset[str],
) -> str | None:
    """Why the authorizer refuses an action, or ``None`` to allow it."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
        return None
    if action == sqlite3.SQLITE_READ:
        table = arg1 or ""
        return (
            None
            if _readable(table, db_name, view, protected)
            else (f"only the readings table may be read, not {table!r}")
        )
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        return None if name in _ALLOWED_FUNCTIONS else f"function {name}() is not allowed"
    if arg1 in _SCHEMA_TABLES:  # e.g. a table-valued pragma function setting itself up
        return "the database schema is off limits: only SELECT over readings is allowed"
    what = _ACTION_NAMES.get(action, f"action {action}")
    return f"{what} is not allowed: only SELECT over readings is"


def _readable(table: str, db_name: str | None, view: str | None, protected: frozenset[str]) -> bool:
    if table in _TABLE_FUNCTIONS or (table == "readings" and db_name in ("temp", None)):
        return True
    if view == "readings" and table in _BASE_TABLES:
        return db_name in ("main", None)  # None: the view reads no column (count(*))
    # SQLite reports a table none of whose columns is read (``SELECT count(*)
    # FROM t``) with no schema, exactly like a CTE or subquery: tell them apart
    # by name. A CTE named like a table is refused too, which is harmless.
    return db_name is None and table.lower() not in protected


def _protected_names(conn: sqlite3.Connection) -> frozenset[str]:
    """Every name that is not a CTE: tables, views, indexes and virtual table modules."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master UNION SELECT name FROM sqlite_temp_master "
        "UNION SELECT name FROM pragma_module_list"
    ).fetchall()
    return frozenset(str(name).lower() for (name,) in rows) | _SCHEMA_TABLES


def _value(name: str, value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        if name == "data":
            return decode_data(value)
        if name in _JSON_COLUMNS:
            return decode_json(value)
        if name in _TIME_COLUMNS:
            when = datetime.fromisoformat(value)
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    except ValueError:  # not what the view makes (a computed column so named): keep it
        return value
    return value


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
