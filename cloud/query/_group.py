"""``$group``: aggregate documents by a key with accumulators.

``_id`` is any supported expression (:mod:`cloud.query._expr`): ``null`` or a
constant for one group over everything, ``"$path"``, or a document of paths
for a compound key. Keys are compared with BSON equality (``1`` and ``1.0``
are the same group; a missing key groups with ``null``). Groups are emitted in
order of first appearance (MongoDB leaves the order unspecified).

``$group`` is blocking: it holds one accumulator set per group, and refuses to
hold more than ``max_docs`` groups. Accumulators (MongoDB's ``$group``
semantics): ``$sum`` and ``$avg`` add the numeric values and ignore others
(``{"$sum": 1}`` counts), ``$min``/``$max`` ignore null and missing values,
``$first``/``$last`` take the value of the first/last document (``null`` if
missing), ``{"$count": {}}`` counts documents.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from cloud.errors import InvalidArgument
from cloud.query._expr import compile_expression
from cloud.query._stages import Stage
from cloud.query._values import MISSING, as_float, compare, group_key, is_number

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cloud.model import Document


class _Accumulator:
    """One accumulator's running state for one group."""

    def add(self, value: object) -> None:
        """Folds in one document's value of the argument expression."""
        raise NotImplementedError

    def result(self) -> object:
        """The accumulated value."""
        raise NotImplementedError


class _Sum(_Accumulator):
    def __init__(self) -> None:
        self.total: int | float = 0

    def add(self, value: object) -> None:
        if is_number(value):
            try:
                self.total += as_float(value)
            except OverflowError:  # a huge int meeting a float
                self.total = float("inf") if self.total > 0 else float("-inf")

    def result(self) -> object:
        return self.total


class _Avg(_Sum):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def add(self, value: object) -> None:
        if is_number(value):
            super().add(value)
            self.count += 1

    def result(self) -> object:
        if not self.count:
            return None
        try:
            return self.total / self.count
        except OverflowError:  # int too large for a float quotient
            return float(self.total // self.count)


class _Extreme(_Accumulator):
    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.best: object = None

    def add(self, value: object) -> None:
        if value is None or value is MISSING:
            return
        if self.best is None or compare(value, self.best) * self.sign > 0:
            self.best = value

    def result(self) -> object:
        return self.best


class _First(_Accumulator):
    def __init__(self) -> None:
        self.value: object = MISSING

    def add(self, value: object) -> None:
        if self.value is MISSING:
            self.value = None if value is MISSING else value

    def result(self) -> object:
        return None if self.value is MISSING else self.value


class _Last(_First):
    def add(self, value: object) -> None:
        self.value = None if value is MISSING else value


class _Count(_Sum):
    def add(self, value: object) -> None:
        self.total += 1


ACCUMULATORS: dict[str, Callable[[], _Accumulator]] = {
    "$sum": _Sum,
    "$avg": _Avg,
    "$min": functools.partial(_Extreme, -1),
    "$max": functools.partial(_Extreme, 1),
    "$first": _First,
    "$last": _Last,
    "$count": _Count,
}


class GroupStage(Stage):
    """``{"$group": {"_id": <expr>, "<field>": {"<accumulator>": <expr>}, ...}}``."""

    op = "$group"

    def __init__(self, index: int, arg: object) -> None:
        """Validates the key expression and the accumulators.

        Raises:
            InvalidArgument: no ``_id``, a bad output field name, or an unknown
                or malformed accumulator.
        """
        super().__init__(index)
        if not isinstance(arg, dict) or "_id" not in arg:
            raise InvalidArgument(f"{self.where}: needs a document with an _id key expression")
        self.key = compile_expression(arg["_id"], f"{self.where}: _id")
        self.fields: list[tuple[str, Callable[[], _Accumulator], Callable[[Document], object]]]
        self.fields = []
        for name, spec in arg.items():
            if name == "_id":
                continue
            where = f"{self.where}: {name}"
            if not name or name.startswith("$") or "." in name:
                raise InvalidArgument(f"{where}: invalid output field name")
            if not isinstance(spec, dict) or len(spec) != 1:
                raise InvalidArgument(f"{where}: needs a document with one accumulator")
            ((op, expr),) = spec.items()
            if op not in ACCUMULATORS:
                raise InvalidArgument(
                    f"{where}: unsupported accumulator {op}; supported: {', '.join(ACCUMULATORS)}"
                )
            if op == "$count" and expr != {}:
                raise InvalidArgument(f"{where}: $count takes no argument ({{}})")
            self.fields.append((name, ACCUMULATORS[op], compile_expression(expr, where)))

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Groups everything, then yields one document per group."""
        groups: dict[object, tuple[object, list[_Accumulator]]] = {}
        for doc in docs:
            key_value = self.key(doc)
            if key_value is MISSING:
                key_value = None
            key = group_key(key_value)
            group = groups.get(key)
            if group is None:
                if len(groups) >= max_docs:
                    raise self.too_many(max_docs, "groups")
                group = groups[key] = (key_value, [make() for _, make, _ in self.fields])
            for accumulator, (_, _, expr) in zip(group[1], self.fields, strict=True):
                accumulator.add(expr(doc))
        for key_value, accumulators in groups.values():
            out: dict[str, object] = {"_id": key_value}
            for (name, _, _), accumulator in zip(self.fields, accumulators, strict=True):
                out[name] = accumulator.result()
            yield out
