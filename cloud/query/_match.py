"""``$match``: MongoDB query documents compiled to Python predicates.

A query is compiled once (so malformed input is rejected before any document is
read) into a function ``Document -> bool``. Field conditions follow MongoDB's
query semantics: a dotted path may reach several values through arrays
(:func:`~cloud.query._paths.query_values`) and a condition holds when *any* of
them, or any element of an array among them, satisfies it; ``{"f": null}``
also matches documents without ``f``; ``$ne`` and ``$nin`` are the exact
negations of ``$eq`` and ``$in``. Range operators use type bracketing: a value
only compares with values of the same canonical BSON type (numbers across
int/float, dates with dates, strings with strings).
"""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING

from bson.regex import Regex

from cloud.errors import InvalidArgument
from cloud.query._paths import query_values, split_path
from cloud.query._values import MISSING, compare, equal, rank

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cloud.model import Document

QUERY_OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
    "$exists", "$not", "$regex", "$options",
)  # fmt: skip
LOGICAL_OPERATORS = ("$and", "$or", "$nor")
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}
_RANGE = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def compile_query(query: object, where: str) -> Callable[[Document], bool]:
    """Compiles a query document (``$match``'s argument) into a predicate.

    Raises:
        InvalidArgument: not a document, an unsupported operator, or an operator
            with an argument of the wrong shape; the message names the field.
    """
    if not isinstance(query, dict):
        raise InvalidArgument(f"{where}: the query must be a document, got {_kind(query)}")
    predicates: list[Callable[[Document], bool]] = []
    for key, value in query.items():
        if key in LOGICAL_OPERATORS:
            predicates.append(_compile_logical(key, value, where))
        elif key.startswith("$"):
            raise InvalidArgument(
                f"{where}: unsupported top-level operator {key}; supported: "
                f"{', '.join(LOGICAL_OPERATORS)} and field conditions"
            )
        else:
            predicates.append(_compile_field(key, value, where))
    if len(predicates) == 1:
        return predicates[0]
    return lambda doc: all(p(doc) for p in predicates)


def _compile_logical(key: str, value: object, where: str) -> Callable[[Document], bool]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument(f"{where}: {key} needs a non-empty array of documents")
    clauses = [compile_query(clause, f"{where}: {key}[{i}]") for i, clause in enumerate(value)]
    if key == "$and":
        return lambda doc: all(c(doc) for c in clauses)
    if key == "$or":
        return lambda doc: any(c(doc) for c in clauses)
    return lambda doc: not any(c(doc) for c in clauses)


def _compile_field(path: str, condition: object, where: str) -> Callable[[Document], bool]:
    parts = split_path(path, where)
    test = _compile_condition(condition, f"{where}: {path}")
    return lambda doc: test(query_values(doc, parts))


def _is_operator_doc(value: object) -> bool:
    return isinstance(value, dict) and any(str(k).startswith("$") for k in value)


def _compile_condition(condition: object, where: str) -> Callable[[list[object]], bool]:
    if _is_operator_doc(condition):
        assert isinstance(condition, dict)
        return _compile_operators(condition, where)
    if isinstance(condition, Regex | re.Pattern):
        return _regex_test(_compile_regex(condition, None, where))
    return _eq_test(condition)


def _compile_operators(ops: dict[str, object], where: str) -> Callable[[list[object]], bool]:
    tests: list[Callable[[list[object]], bool]] = []
    for op, arg in ops.items():
        if op == "$options":
            if "$regex" not in ops:
                raise InvalidArgument(f"{where}: $options needs $regex")
            continue
        if op == "$regex":
            options = ops.get("$options")
            if options is not None and not isinstance(options, str):
                raise InvalidArgument(f"{where}: $options must be a string")
            tests.append(_regex_test(_compile_regex(arg, options, where)))
        else:
            tests.append(_compile_operator(op, arg, where))
    if len(tests) == 1:
        return tests[0]
    return lambda values: all(t(values) for t in tests)


def _compile_operator(op: str, arg: object, where: str) -> Callable[[list[object]], bool]:
    if op == "$eq":
        return _eq_test(arg)
    if op == "$ne":
        eq = _eq_test(arg)
        return lambda values: not eq(values)
    if op in _RANGE:
        return _range_test(op, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise InvalidArgument(f"{where}: {op} needs an array, got {_kind(arg)}")
        member = _in_test(arg, where)
        return member if op == "$in" else (lambda values: not member(values))
    if op == "$exists":
        if not isinstance(arg, bool | int | float):
            raise InvalidArgument(f"{where}: $exists needs a boolean, got {_kind(arg)}")
        want = bool(arg)
        return lambda values: any(v is not MISSING for v in values) == want
    if op == "$not":
        if isinstance(arg, Regex | re.Pattern):
            inner = _regex_test(_compile_regex(arg, None, where))
        elif _is_operator_doc(arg):
            assert isinstance(arg, dict)
            inner = _compile_operators(arg, where)
        else:
            raise InvalidArgument(f"{where}: $not needs a regex or an operator document")
        return lambda values: not inner(values)
    raise InvalidArgument(
        f"{where}: unsupported query operator {op}; supported: {', '.join(QUERY_OPERATORS)}"
    )


def _expand(values: list[object]) -> Iterator[object]:
    """Each resolved value, then (for arrays) each of its elements."""
    for value in values:
        yield value
        if isinstance(value, list | tuple):
            yield from value


def _eq_test(target: object) -> Callable[[list[object]], bool]:
    if target is None:  # null matches null, a null element, and a missing field
        return lambda values: any(v is MISSING or v is None for v in _expand(values))
    return lambda values: any(v is not MISSING and equal(v, target) for v in _expand(values))


def _range_test(op: str, bound: object) -> Callable[[list[object]], bool]:
    if bound is None:
        # Only null is in null's bracket: $gte/$lte null is $eq null; $gt/$lt never match.
        return _eq_test(None) if op in ("$gte", "$lte") else (lambda _values: False)
    accept = _RANGE[op]
    bracket = rank(bound)
    return lambda values: any(
        v is not MISSING and rank(v) == bracket and accept(compare(v, bound), 0)
        for v in _expand(values)
    )


def _in_test(choices: list[object], where: str) -> Callable[[list[object]], bool]:
    tests: list[Callable[[list[object]], bool]] = []
    for i, choice in enumerate(choices):
        if isinstance(choice, Regex | re.Pattern):
            tests.append(_regex_test(_compile_regex(choice, None, f"{where}[{i}]")))
        elif isinstance(choice, dict) and _is_operator_doc(choice):
            raise InvalidArgument(f"{where}: $in/$nin cannot contain operators")
        else:
            tests.append(_eq_test(choice))
    return lambda values: any(t(values) for t in tests)


def _compile_regex(pattern: object, options: str | None, where: str) -> re.Pattern[str]:
    flags = 0
    if isinstance(pattern, Regex | re.Pattern):
        flags = int(pattern.flags) & ~re.UNICODE
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise InvalidArgument(f"{where}: $regex needs a string, got {_kind(pattern)}")
    if options is not None:
        flags = 0
        for letter in options:
            if letter not in _REGEX_FLAGS:
                raise InvalidArgument(f"{where}: unsupported $regex option {letter!r}")
            flags |= _REGEX_FLAGS[letter]
    try:
        return re.compile(pattern, flags)
    except (re.error, ValueError) as exc:
        raise InvalidArgument(f"{where}: invalid regex {pattern!r} ({exc})") from None


def _regex_test(pattern: re.Pattern[str]) -> Callable[[list[object]], bool]:
    return lambda values: any(
        isinstance(v, str) and pattern.search(v) is not None for v in _expand(values)
    )


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def equalities(query: object) -> dict[str, object]:
    """The ``field == value`` conditions a query ANDs at its top level.

    Implicit equalities (``{"f": v}``) and ``{"f": {"$eq": v}}`` count, also
    inside a top-level ``$and``. The first one wins if a field has several (the
    full query still runs, so this only ever narrows what it already selects).
    """
    out: dict[str, object] = {}
    if not isinstance(query, dict):
        return out
    for key, value in query.items():
        if key == "$and" and isinstance(value, list):
            for clause in value:
                for field, v in equalities(clause).items():
                    out.setdefault(field, v)
        elif key.startswith("$"):
            continue
        elif isinstance(value, dict) and list(value) == ["$eq"]:
            out.setdefault(key, value["$eq"])
        elif not _is_operator_doc(value) and not isinstance(value, Regex | re.Pattern):
            out.setdefault(key, value)
    return out
