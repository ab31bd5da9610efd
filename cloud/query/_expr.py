"""Aggregation expressions: the small part ``$project`` and ``$group`` need.

Supported: field paths (``"$data.x"``), the ``$$ROOT``/``$$CURRENT`` variables,
``{"$literal": v}``, object expressions (``{"a": "$x", "b": 1}``), array
expressions (``["$x", 1]``) and plain literals. Operator expressions such as
``$add`` or ``$dateToString`` are not supported and are rejected when the
pipeline is compiled, naming the operator.

A compiled expression is a function from the root document to a value, which
is ``MISSING`` when a field path does not resolve (the caller then leaves the
output field out, as MongoDB does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud.errors import InvalidArgument
from cloud.query._paths import expression_value, split_path
from cloud.query._values import MISSING

if TYPE_CHECKING:
    from collections.abc import Callable

    from cloud.model import Document

SUPPORTED_EXPRESSION_OPERATORS = ("$literal",)


def compile_expression(spec: object, where: str) -> Callable[[Document], object]:
    """Compiles an aggregation expression into a function of the root document.

    Raises:
        InvalidArgument: unsupported operator or variable, or a malformed path.
    """
    if isinstance(spec, str) and spec.startswith("$$"):
        name = spec[2:].split(".", 1)
        if name[0] not in ("ROOT", "CURRENT"):
            raise InvalidArgument(
                f"{where}: unsupported variable {spec!r}; supported: $$ROOT, $$CURRENT"
            )
        if len(name) == 1:
            return _root
        parts = split_path(name[1], where)
        return lambda doc: expression_value(doc, parts)
    if isinstance(spec, str) and spec.startswith("$"):
        parts = split_path(spec[1:], where)
        return lambda doc: expression_value(doc, parts)
    if isinstance(spec, dict):
        return _compile_object(spec, where)
    if isinstance(spec, list | tuple):
        items = [compile_expression(item, where) for item in spec]
        return lambda doc: [_null_if_missing(item(doc)) for item in items]
    return lambda _doc: spec


def _root(doc: Document) -> object:
    return doc


def _null_if_missing(value: object) -> object:
    return None if value is MISSING else value


def _compile_object(spec: dict[str, object], where: str) -> Callable[[Document], object]:
    operators = [k for k in spec if k.startswith("$")]
    if operators:
        if len(spec) != 1:
            raise InvalidArgument(
                f"{where}: an expression object must have exactly one '$' operator "
                f"and no other fields, got {sorted(spec)}"
            )
        op = operators[0]
        if op != "$literal":
            raise InvalidArgument(
                f"{where}: unsupported expression operator {op}; supported: "
                f"{', '.join(SUPPORTED_EXPRESSION_OPERATORS)}, field paths and literals"
            )
        value = spec[op]
        return lambda _doc: value
    fields: list[tuple[str, Callable[[Document], object]]] = []
    for name, sub in spec.items():
        if not name or "." in name:
            raise InvalidArgument(f"{where}: invalid field name {name!r} in an expression object")
        fields.append((name, compile_expression(sub, where)))

    def build(doc: Document) -> object:
        out: dict[str, object] = {}
        for name, item in fields:
            value = item(doc)
            if value is not MISSING:
                out[name] = value
        return out

    return build
