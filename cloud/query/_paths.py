"""Dotted field paths, resolved the two ways MongoDB does.

Query paths (``$match``, ``$sort``) fan out through arrays: ``data.readings.x``
over ``readings: [{x: 1}, {x: 2}]`` yields both ``1`` and ``2``, and a numeric
component may also index an array (``tags.0``). A query matches when *any*
resolved value does. Expression paths (``"$data.x"`` in ``$project`` and
``$group``) instead produce one value: traversing an array maps over it and
yields an array, and numeric components never index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud.errors import InvalidArgument
from cloud.query._values import MISSING

if TYPE_CHECKING:
    from collections.abc import Sequence


def split_path(path: str, where: str) -> tuple[str, ...]:
    """Splits a dotted field path, rejecting empty components and ``$`` prefixes.

    Raises:
        InvalidArgument: ``path`` is empty, has an empty component (``a..b``), or
            a component starts with ``$`` (operators are not field names).
    """
    parts = tuple(path.split("."))
    if not path or any(not p for p in parts):
        raise InvalidArgument(f"{where}: invalid field path {path!r}")
    if any(p.startswith("$") for p in parts):
        raise InvalidArgument(f"{where}: field path {path!r} has a component starting with '$'")
    return parts


def _index(component: str) -> int | None:
    if component.isdigit() and component.isascii():
        return int(component)
    return None


def query_values(doc: object, parts: Sequence[str]) -> list[object]:
    """Every value a query path reaches in ``doc`` (``[MISSING]`` if none).

    Arrays met before the last component are traversed: each element that is a
    document is searched for the rest of the path, and a numeric component also
    indexes the array. The value at the end of the path is returned as is; the
    caller also tries its elements if it is an array (MongoDB's implicit
    array-contains on the leaf).
    """
    out: list[object] = []
    _collect(doc, parts, 0, out)
    return out or [MISSING]


def _collect(value: object, parts: Sequence[str], i: int, out: list[object]) -> None:
    if i == len(parts):
        out.append(value)
        return
    component = parts[i]
    if isinstance(value, dict):
        if component in value:
            _collect(value[component], parts, i + 1, out)
        else:
            out.append(MISSING)
        return
    if isinstance(value, list | tuple):
        index = _index(component)
        if index is not None and index < len(value):
            _collect(value[index], parts, i + 1, out)
        for element in value:
            if isinstance(element, dict):
                _collect(element, parts, i, out)
        return
    out.append(MISSING)


def expression_value(doc: object, parts: Sequence[str]) -> object:
    """The value of an aggregation field path (``"$a.b"``), or ``MISSING``.

    Through an array the path maps over its elements, producing an array of the
    values found (elements without the field are left out), as MongoDB does.
    """
    value = doc
    for i, component in enumerate(parts):
        if isinstance(value, dict):
            value = value.get(component, MISSING)
        elif isinstance(value, list | tuple):
            return _map_array(value, parts[i:])
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _map_array(values: Sequence[object], parts: Sequence[str]) -> list[object]:
    out: list[object] = []
    for element in values:
        if isinstance(element, dict | list | tuple):
            found = expression_value(element, parts)
            if found is not MISSING:
                out.append(found)
    return out
