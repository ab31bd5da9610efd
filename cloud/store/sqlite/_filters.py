"""The SQL the store's queries share: filter conditions, paging cursors, stored JSON.

Every query of the embedded store reads one row table joined to its capture
context and part::

    FROM tabular t JOIN contexts c ON c.context_id = t.context_id
                   LEFT JOIN parts p ON p.part_id = c.part_id

(``binary b`` in place of ``tabular t`` for binary data). ``where`` turns the
filter into one WHERE clause over those aliases, always restricted to the
caller's organization (and part, for a part key). Semantics, after Viam's
``Filter`` (spec §3.3): fields combine with AND; tags, bounding-box labels,
location ids and MIME types match any listed value; the interval is inclusive
on ``time_requested`` (``0`` = open). Empty values mean "no constraint",
including MATCH_BY_OR with no tags. ``bbox_labels`` and ``dataset_id`` exist
only on binary data, so a tabular query naming them matches nothing.

Paging is keyset paging on ``(time_requested, id)``: the cursor names the last
row returned, so pages never skip or repeat a row, even among equal timestamps
or while rows are inserted.

Stored JSON follows the ingest side's convention: JSON text cannot hold NaN or
infinities, so a non-finite number in a reading is stored as the string
``"NaN"``, ``"Infinity"`` or ``"-Infinity"``. ``decode_data`` reverses it:
every string equal to one of those three, at any depth, reads back as the
float. The price is that a reading holding such a *string* reads back as a
float too; Struct numbers are doubles, so no other value changes type.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from cloud.errors import InvalidArgument, PermissionDenied
from cloud.model import Filter, PageRequest, Principal, SortOrder, TagsMode

if TYPE_CHECKING:
    from actors.codec import JsonValue

DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
_MALFORMED = "last: malformed paging cursor"


class Kind(enum.Enum):
    """Which row table a query reads: its SQL alias and the key that breaks time ties."""

    TABULAR = ("tabular", "t", "id")
    BINARY = ("binary", "b", "binary_data_id")

    def __init__(self, table: str, alias: str, key: str) -> None:
        self.table = table
        self.alias = alias
        self.key = key

    @property
    def source(self) -> str:
        """The FROM clause every filter condition is written against."""
        a = self.alias
        return (
            f"{self.table} {a} JOIN contexts c ON c.context_id = {a}.context_id "
            "LEFT JOIN parts p ON p.part_id = c.part_id"
        )

    @property
    def mime(self) -> str:
        """The row's MIME type: a binary item's own (ingest defaults it to the context's)."""
        return "b.mime_type" if self is Kind.BINARY else "c.mime_type"


@dataclass(frozen=True)
class Where:
    """A SQL condition and its positional parameters."""

    sql: str
    params: tuple[object, ...]


def check_orgs(who: Principal, flt: Filter) -> None:
    """Refuses a filter that names an organization other than the caller's.

    Raises:
        PermissionDenied: ``flt.organization_ids`` names another organization.
    """
    for org in flt.organization_ids:
        if org != who.org_id:
            raise PermissionDenied(
                f"filter.organization_ids: organization {org!r} is outside this key's "
                f"organization {who.org_id!r}"
            )


def where(who: Principal, flt: Filter, kind: Kind) -> Where:
    """The WHERE condition selecting the rows of ``kind`` that ``flt`` matches in scope.

    Args:
        who: the caller; rows outside its organization (and part) never match.
        flt: the filter to translate.
        kind: which row table the query reads (see ``Kind.source``).

    Returns:
        A condition over the aliases of ``kind.source``.

    Raises:
        PermissionDenied: the filter names another organization.

    Example::

        w = where(who, Filter(component_name="cam"), Kind.TABULAR)
        conn.execute(f"SELECT count(*) FROM {Kind.TABULAR.source} WHERE {w.sql}", w.params)
    """
    check_orgs(who, flt)
    a = kind.alias
    conds: list[str] = [f"{a}.org_id = ?"]
    params: list[object] = [who.org_id]
    if who.part_id is not None:
        conds.append("c.part_id = ?")
        params.append(who.part_id)
    for column, value in (
        ("c.component_name", flt.component_name),
        ("c.component_type", flt.component_type),
        ("c.method_name", flt.method),
        ("p.robot_name", flt.robot_name),
        ("p.robot_id", flt.robot_id),
        ("p.part_name", flt.part_name),
        ("c.part_id", flt.part_id),
    ):
        if value:
            conds.append(f"{column} = ?")
            params.append(value)
    for column, values in (("c.location_id", flt.location_ids), (kind.mime, flt.mime_types)):
        if values:
            conds.append(f"{column} IN ({_marks(values)})")
            params.extend(values)
    if flt.start_ns:
        conds.append(f"{a}.time_requested >= ?")
        params.append(flt.start_ns)
    if flt.end_ns:
        conds.append(f"{a}.time_requested <= ?")
        params.append(flt.end_ns)
    _tags(flt, conds, params)
    _binary_only(flt, kind, conds, params)
    return Where(" AND ".join(conds), tuple(params))


def _tags(flt: Filter, conds: list[str], params: list[object]) -> None:
    mode = flt.tags_mode
    if mode is TagsMode.TAGGED:
        conds.append("json_array_length(c.tags) > 0")
    elif mode is TagsMode.UNTAGGED:
        conds.append("json_array_length(c.tags) = 0")
    elif flt.tags:  # MATCH_BY_OR, or UNSPECIFIED with tags: any listed tag
        conds.append(
            f"EXISTS (SELECT 1 FROM json_each(c.tags) WHERE value IN ({_marks(flt.tags)}))"
        )
        params.extend(flt.tags)


def _binary_only(flt: Filter, kind: Kind, conds: list[str], params: list[object]) -> None:
    if not (flt.bbox_labels or flt.dataset_id):
        return
    if kind is not Kind.BINARY:
        conds.append("0")  # tabular rows have neither annotations nor datasets
        return
    if flt.bbox_labels:
        conds.append(
            "EXISTS (SELECT 1 FROM json_each(b.annotations, '$.bboxes') "
            f"WHERE json_extract(value, '$.label') IN ({_marks(flt.bbox_labels)}))"
        )
        params.extend(flt.bbox_labels)
    if flt.dataset_id:
        conds.append("EXISTS (SELECT 1 FROM json_each(b.dataset_ids) WHERE value = ?)")
        params.append(flt.dataset_id)


def _marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" * len(values))


# -- paging ----------------------------------------------------------------------


def descending(page: PageRequest) -> bool:
    """Whether results run newest first (UNSPECIFIED is DESCENDING, as in Viam)."""
    return page.order is not SortOrder.ASCENDING


def page_limit(page: PageRequest) -> int:
    """The page size: ``0`` means the default (50); anything above 10,000 is capped.

    Raises:
        InvalidArgument: the limit is negative.
    """
    if page.limit < 0:
        raise InvalidArgument(f"limit: must not be negative, got {page.limit}")
    return min(page.limit or DEFAULT_LIMIT, MAX_LIMIT)


def order_by(kind: Kind, page: PageRequest) -> str:
    """The ORDER BY clause (without the keywords) for ``page``'s direction."""
    d = "DESC" if descending(page) else "ASC"
    return f"{kind.alias}.time_requested {d}, {kind.alias}.{kind.key} {d}"


def after(kind: Kind, page: PageRequest) -> Where | None:
    """The condition selecting rows past ``page.last`` in its direction, if any.

    Raises:
        InvalidArgument: ``page.last`` is not a cursor this store made for ``kind``.
    """
    if not page.last:
        return None
    time_ns, key = decode_cursor(page.last, kind)
    op = "<" if descending(page) else ">"
    a = kind.alias
    return Where(f"({a}.time_requested, {a}.{kind.key}) {op} (?, ?)", (time_ns, key))


def encode_cursor(time_ns: int, key: int | str) -> str:
    """The opaque cursor naming a row: URL-safe base64 of JSON ``[time_requested, key]``.

    Example::

        encode_cursor(1700000000000000000, 42)  # 'WzE3MDAwMDAwMDAwMDAwMDAwMDAsNDJd'
    """
    raw = json.dumps([time_ns, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str, kind: Kind) -> tuple[int, int | str]:
    """The ``(time_requested, key)`` a cursor names (an integer key for tabular rows).

    Raises:
        InvalidArgument: the cursor is not one ``encode_cursor`` made for ``kind``.
    """
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        value = json.loads(raw)
    except (UnicodeError, binascii.Error, ValueError):
        raise InvalidArgument(_MALFORMED) from None
    if not (isinstance(value, list) and len(value) == 2):
        raise InvalidArgument(_MALFORMED)
    time_ns, key = value
    key_type = int if kind is Kind.TABULAR else str
    if type(time_ns) is not int or type(key) is not key_type:  # bool is no int here
        raise InvalidArgument(_MALFORMED)
    return time_ns, key


# -- stored JSON -----------------------------------------------------------------

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_NON_FINITE_TEXT = tuple(f'"{name}"' for name in _NON_FINITE)


def decode_json(text: str) -> JsonValue:
    """Stored JSON text as Python values (non-finite strings stay strings)."""
    return cast("JsonValue", json.loads(text))


def decode_data(text: str) -> dict[str, JsonValue]:
    """A stored reading (a Struct) with its non-finite numbers restored.

    Example::

        decode_data('{"x": "NaN", "y": [1.5, "-Infinity"]}')  # {'x': nan, 'y': [1.5, -inf]}
    """
    value = json.loads(text)
    if any(marker in text for marker in _NON_FINITE_TEXT):
        value = _restore(value)
    return cast("dict[str, JsonValue]", value)


def _restore(value: object) -> object:
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_restore(item) for item in value]
    if isinstance(value, dict):
        return {key: _restore(item) for key, item in value.items()}
    return value
