"""BSON value semantics for the MQL evaluator: type order, comparison, equality, grouping.

MongoDB orders values of different types by a fixed *canonical type order*
(null < numbers < strings < objects < arrays < binary < ObjectId < booleans <
dates < timestamps < regexes) and compares values of the same type by value.
:func:`compare` implements that total order over the Python values ``bson``
decodes to, so ``$sort`` is deterministic whatever the data holds, and
``$match`` comparisons can apply MongoDB's *type bracketing* (``$gt: 5`` never
matches a string) by checking :func:`rank` first.

Python-specific pitfalls handled here: ``bool`` is a subclass of ``int`` (but
``true`` is not the number 1 in BSON), naive and aware ``datetime`` values do
not compare (naive ones are taken as UTC, as ``bson`` does), and NaN is equal
to itself and below every other number, as in MongoDB.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from bson.code import Code
from bson.decimal128 import Decimal128
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp


class _Sentinel:
    """A named marker value that is never stored in a document."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


MISSING: Final = _Sentinel("MISSING")
"""The value of a path that does not exist (distinct from an explicit ``null``)."""

EMPTY_ARRAY: Final = _Sentinel("EMPTY_ARRAY")
"""The sort key of an empty array, which MongoDB sorts before ``null``."""

# Canonical type ranks (MongoDB's order; the numbers themselves are arbitrary).
MINKEY = 1
EMPTY = 3
NULL = 5
NUMBER = 10
STRING = 15
OBJECT = 20
ARRAY = 25
BINARY = 30
OBJECTID = 35
BOOL = 40
DATE = 45
TIMESTAMP = 47
REGEX = 50
CODE = 55
OTHER = 90
MAXKEY = 100

Number = int | float | Decimal


def is_number(value: object) -> bool:
    """Whether ``value`` is a BSON number (``bool`` is not)."""
    return isinstance(value, int | float | Decimal128 | Decimal) and not isinstance(value, bool)


def as_number(value: object) -> Number:
    """A BSON number as a Python number Python compares exactly across types."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    assert isinstance(value, int | float | Decimal)
    return value


def as_float(value: object) -> int | float:
    """A BSON number for arithmetic: ints stay exact, decimals become floats."""
    number = as_number(value)
    return float(number) if isinstance(number, Decimal) else number


def _is_nan(number: Number) -> bool:
    if isinstance(number, Decimal):
        return number.is_nan()
    return isinstance(number, float) and math.isnan(number)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC, as ``bson`` encodes them)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def rank(value: object) -> int:
    """The canonical BSON type rank of ``value`` (lower sorts first)."""
    if value is None or value is MISSING:
        return NULL
    if value is EMPTY_ARRAY:
        return EMPTY
    if isinstance(value, bool):
        return BOOL
    if is_number(value):
        return NUMBER
    if isinstance(value, Code):  # a str subclass: check first
        return CODE
    if isinstance(value, str):
        return STRING
    if isinstance(value, dict):
        return OBJECT
    if isinstance(value, list | tuple):
        return ARRAY
    return _OTHER_RANKS.get(type(value), OTHER) if not isinstance(value, bytes) else BINARY


_OTHER_RANKS: Final[dict[type, int]] = {
    MinKey: MINKEY,
    MaxKey: MAXKEY,
    ObjectId: OBJECTID,
    datetime: DATE,
    Timestamp: TIMESTAMP,
    Regex: REGEX,
    re.Pattern: REGEX,
}


def _sign(less: bool, greater: bool) -> int:
    return -1 if less else (1 if greater else 0)


def _compare_numbers(a: Number, b: Number) -> int:
    a_nan, b_nan = _is_nan(a), _is_nan(b)
    if a_nan or b_nan:
        return _sign(a_nan and not b_nan, b_nan and not a_nan)
    return _sign(a < b, a > b)


def _compare_sequences(
    a: list[object] | tuple[object, ...], b: list[object] | tuple[object, ...]
) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare(x, y)
        if c:
            return c
    return _sign(len(a) < len(b), len(a) > len(b))


def _compare_objects(a: dict[object, object], b: dict[object, object]) -> int:
    # MongoDB compares field by field, in order: type of value, then name, then value.
    for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=False):
        ra, rb = rank(va), rank(vb)
        if ra != rb:
            return _sign(ra < rb, ra > rb)
        c = compare(str(ka), str(kb)) or compare(va, vb)
        if c:
            return c
    return _sign(len(a) < len(b), len(a) > len(b))


def _binary_key(value: bytes) -> tuple[int, int, bytes]:
    # BinData sorts by length, then subtype, then bytes.
    return (len(value), int(getattr(value, "subtype", 0)), bytes(value))


def _same_rank(r: int, a: object, b: object) -> int:
    if r == NUMBER:
        return _compare_numbers(as_number(a), as_number(b))
    if r in (STRING, CODE):
        sa, sb = str(a), str(b)  # code point order == UTF-8 byte order, MongoDB's
        return _sign(sa < sb, sa > sb)
    if isinstance(a, dict) and isinstance(b, dict):
        return _compare_objects(a, b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return _compare_sequences(a, b)
    if isinstance(a, bytes) and isinstance(b, bytes):
        ka, kb = _binary_key(a), _binary_key(b)
        return _sign(ka < kb, ka > kb)
    if isinstance(a, ObjectId) and isinstance(b, ObjectId):
        return _sign(a.binary < b.binary, a.binary > b.binary)
    if isinstance(a, bool) and isinstance(b, bool):
        return _sign(a < b, a > b)
    if isinstance(a, datetime) and isinstance(b, datetime):
        da, db = as_utc(a), as_utc(b)
        return _sign(da < db, da > db)
    if isinstance(a, Timestamp) and isinstance(b, Timestamp):
        return _sign(a < b, a > b)
    if r == REGEX:
        pa, pb = _regex_key(a), _regex_key(b)
        return _sign(pa < pb, pa > pb)
    if r == OTHER:  # unknown types: deterministic, not meaningful
        oa, ob = (type(a).__qualname__, repr(a)), (type(b).__qualname__, repr(b))
        return _sign(oa < ob, oa > ob)
    return 0  # null/missing, MinKey, MaxKey, empty array: all equal within the type


def _regex_key(value: object) -> tuple[str, int]:
    pattern = getattr(value, "pattern", "")
    return (str(pattern), int(getattr(value, "flags", 0)))


def compare(a: object, b: object) -> int:
    """Compares two BSON values in MongoDB's total order: -1, 0 or 1.

    Values of different canonical types order by type rank; ``MISSING`` compares
    equal to ``null``, as in MongoDB's sort.
    """
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return _sign(ra < rb, ra > rb)
    return _same_rank(ra, a, b)


def equal(a: object, b: object) -> bool:
    """BSON equality: same canonical type and equal value (``1 == 1.0``, ``true != 1``)."""
    return compare(a, b) == 0


def group_key(value: object) -> object:
    """A hashable key such that values MongoDB's ``$group`` merges have equal keys.

    Numbers of different types but equal value share a key (Python hashes ``1``,
    ``1.0`` and ``Decimal(1)`` alike); a missing value groups with ``null``.
    """
    r = rank(value)
    if r == NULL:
        return (NULL,)
    if r == NUMBER:
        number = as_number(value)
        return (NUMBER, "NaN") if _is_nan(number) else (NUMBER, number)
    if isinstance(value, dict):
        return (OBJECT, tuple((str(k), group_key(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (ARRAY, tuple(group_key(v) for v in value))
    if isinstance(value, datetime):
        return (DATE, as_utc(value))
    if isinstance(value, bytes):
        return (BINARY, _binary_key(value))
    if r == REGEX:
        return (REGEX, _regex_key(value))
    try:
        hash(value)
    except TypeError:
        return (r, type(value).__qualname__, repr(value))
    return (r, value)
