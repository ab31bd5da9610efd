"""The simple stages: ``$sort``, ``$limit``, ``$skip`` and ``$count``.

Each compiled stage is a :class:`Stage`: its arguments are validated by the
constructor, and :meth:`Stage.apply` transforms a document iterator. All but
``$sort`` stream (``$count`` reads everything but holds only a counter);
``$sort`` must see every document before it yields the first, so it holds them
all, up to the ``max_docs`` cap, unless the pipeline tells it that only the
first ``keep`` results are used (a ``$limit`` follows), in which case it keeps
a bounded top-``keep`` heap instead, as MongoDB's sort+limit coalescence does.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import sys
from typing import TYPE_CHECKING

from bson.int64 import Int64

from cloud.errors import InvalidArgument
from cloud.query._paths import query_values, split_path
from cloud.query._values import EMPTY_ARRAY, MISSING, compare

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cloud.model import Document


class Stage:
    """A compiled pipeline stage: ``op`` at position ``index`` of the pipeline."""

    op = ""

    def __init__(self, index: int) -> None:
        """Records the stage's position, used in error messages."""
        self.index = index
        self.where = f"stage {index} ({self.op})"

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Transforms ``docs``; streaming stages must be lazy generators."""
        raise NotImplementedError

    def too_many(self, max_docs: int, what: str = "documents") -> InvalidArgument:
        """The error for a blocking stage that would hold more than ``max_docs``."""
        return InvalidArgument(
            f"{self.where}: more than {max_docs} {what}; add a $match or $limit before it"
        )


def as_count(value: object, where: str, *, minimum: int) -> int:
    """A non-negative integer argument (an integral double is accepted, as MongoDB does).

    Raises:
        InvalidArgument: not an integer, or below ``minimum``.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int | Int64) or isinstance(value, bool) or value < minimum:
        adjective = "positive" if minimum > 0 else "non-negative"
        raise InvalidArgument(f"{where}: needs a {adjective} integer, got {value!r}")
    return int(value)


class LimitStage(Stage):
    """``{"$limit": n}``: the first ``n`` documents (``n`` > 0); stops reading after them."""

    op = "$limit"

    def __init__(self, index: int, arg: object) -> None:
        """Validates ``n``."""
        super().__init__(index)
        self.n = as_count(arg, self.where, minimum=1)

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Yields at most ``n`` documents, never pulling the ``n+1``-th."""
        for count, doc in enumerate(docs, start=1):
            yield doc
            if count >= self.n:
                return


class SkipStage(Stage):
    """``{"$skip": n}``: all but the first ``n`` documents."""

    op = "$skip"

    def __init__(self, index: int, arg: object) -> None:
        """Validates ``n``."""
        super().__init__(index)
        self.n = as_count(arg, self.where, minimum=0)

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Drops ``n`` documents lazily."""
        return itertools.islice(docs, min(self.n, sys.maxsize), None)


class CountStage(Stage):
    """``{"$count": "name"}``: one document ``{name: count}``; none for no input, as MongoDB."""

    op = "$count"

    def __init__(self, index: int, arg: object) -> None:
        """Validates the output field name."""
        super().__init__(index)
        if not isinstance(arg, str) or not arg or arg.startswith("$") or "." in arg:
            raise InvalidArgument(
                f"{self.where}: needs a non-empty field name without '$' prefix or '.'"
            )
        self.name = arg

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Counts without holding documents."""
        count = sum(1 for _ in docs)
        if count:
            yield {self.name: count}


class SortStage(Stage):
    """``{"$sort": {"path": 1 | -1, ...}}``: a stable multi-key sort in BSON order.

    A field reaching several values (an array) sorts by its smallest value
    ascending and its largest descending; an empty array sorts before ``null``
    and missing fields sort as ``null`` (first ascending), as in MongoDB.
    """

    op = "$sort"

    def __init__(self, index: int, arg: object) -> None:
        """Validates the sort specification."""
        super().__init__(index)
        if not isinstance(arg, dict) or not arg:
            raise InvalidArgument(f"{self.where}: needs a non-empty document")
        self.keys: list[tuple[tuple[str, ...], int]] = []
        for path, direction in arg.items():
            parts = split_path(path, self.where)
            if isinstance(direction, bool) or direction not in (1, -1):
                raise InvalidArgument(
                    f"{self.where}: {path}: sort direction must be 1 or -1, got {direction!r}"
                )
            self.keys.append((parts, 1 if direction == 1 else -1))
        self.keep: int | None = None  # set by the pipeline when a $limit follows
        self._order = functools.cmp_to_key(self._compare)

    def _key(self, doc: Document) -> tuple[object, ...]:
        return tuple(_sort_value(doc, parts, direction) for parts, direction in self.keys)

    def _compare(self, a: tuple[object, ...], b: tuple[object, ...]) -> int:
        for (_, direction), x, y in zip(self.keys, a, b, strict=True):
            c = compare(x, y)
            if c:
                return c * direction
        return 0

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Sorts, holding at most ``max_docs`` documents (or only the top ``keep``)."""
        if self.keep is not None and self.keep <= max_docs:
            yield from heapq.nsmallest(self.keep, docs, key=lambda d: self._order(self._key(d)))
            return
        held: list[Document] = []
        for doc in docs:
            if len(held) >= max_docs:
                raise self.too_many(max_docs)
            held.append(doc)
        held.sort(key=lambda d: self._order(self._key(d)))  # stable: ties keep input order
        yield from held


def _sort_value(doc: Document, parts: tuple[str, ...], direction: int) -> object:
    values: list[object] = []
    for value in query_values(doc, parts):
        if isinstance(value, list | tuple):
            values.extend(value or [EMPTY_ARRAY])
        else:
            values.append(None if value is MISSING else value)
    pick = min if direction == 1 else max
    return pick(values, key=functools.cmp_to_key(compare))
