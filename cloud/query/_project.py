"""``$project``: reshape each document (inclusion, exclusion, computed fields).

The specification is parsed once into a tree of dotted paths. Values ``1`` /
``true`` (any non-zero number) include a field, ``0`` / ``false`` exclude it;
anything else is an expression (:mod:`cloud.query._expr`) computing a new
field. As in MongoDB a projection is either an *inclusion* projection (included
and computed fields; ``_id`` is kept unless ``_id: 0``) or an *exclusion*
projection (excluded fields only, ``_id`` kept unless excluded); mixing the two
is rejected. Through arrays, a sub-path applies to each element: inclusion
keeps only the elements that are documents, exclusion keeps the others as they
are. Input documents are never modified; output shares unchanged values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bson.decimal128 import Decimal128

from cloud.errors import InvalidArgument
from cloud.query._expr import compile_expression
from cloud.query._paths import split_path
from cloud.query._values import MISSING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cloud.model import Document

_INCLUDE = "include"
_EXCLUDE = "exclude"


@dataclass(frozen=True)
class _Computed:
    expr: Callable[[Document], object]


@dataclass
class _Node:
    fields: dict[str, _Node | _Computed | str] = field(default_factory=dict)
    computed: bool = False  # a computed field somewhere below


def _flag(value: object) -> str | None:
    """``_INCLUDE``/``_EXCLUDE`` for a boolean or number, ``None`` for an expression."""
    if isinstance(value, bool):
        return _INCLUDE if value else _EXCLUDE
    if isinstance(value, int | float | Decimal128):
        number = value.to_decimal() if isinstance(value, Decimal128) else value
        return _INCLUDE if number else _EXCLUDE
    return None


class Projection:
    """A compiled ``$project`` specification."""

    def __init__(self, spec: object, where: str) -> None:
        """Parses and validates ``spec``.

        Raises:
            InvalidArgument: not a non-empty document, a path collision, an
                unsupported expression, or inclusion mixed with exclusion.
        """
        if not isinstance(spec, dict) or not spec:
            raise InvalidArgument(f"{where}: $project needs a non-empty document")
        self._where = where
        self._root = _Node()
        self._modes: set[str] = set()
        self._parse(spec, (), self._root)
        if _EXCLUDE in self._modes and len(self._modes) > 1:
            raise InvalidArgument(
                f"{where}: cannot mix exclusion with inclusion or computed fields "
                "(only _id may be excluded in an inclusion projection)"
            )
        if self._modes:
            self.exclusion = self._modes == {_EXCLUDE}
        else:  # only _id: {_id: 0} keeps everything else, {_id: 1} nothing else
            self.exclusion = self._root.fields["_id"] == _EXCLUDE
        if not self.exclusion and "_id" not in self._root.fields:
            self._root.fields = {"_id": _INCLUDE, **self._root.fields}

    def _parse(self, spec: dict[str, object], prefix: tuple[str, ...], node: _Node) -> None:
        for key, value in spec.items():
            parts = split_path(key, self._where)
            if isinstance(value, dict) and value and not any(k.startswith("$") for k in value):
                # A nested projection, {"a": {"b": 1}}: the same as {"a.b": 1}.
                child = node
                for part in parts:
                    child = self._child(child, part, (*prefix, *parts))
                self._parse(value, (*prefix, *parts), child)
                continue
            if isinstance(value, dict) and not value:
                raise InvalidArgument(f"{self._where}: {key}: an empty document is not valid")
            parent = node
            for part in parts[:-1]:
                parent = self._child(parent, part, (*prefix, *parts))
            path = (*prefix, *parts)
            if parts[-1] in parent.fields:
                raise InvalidArgument(f"{self._where}: path collision at {'.'.join(path)}")
            flag = _flag(value)
            if flag is None:
                expr = compile_expression(value, f"{self._where}: {'.'.join(path)}")
                parent.fields[parts[-1]] = _Computed(expr)
                self._mark_computed(path[:-1])
                self._modes.add("computed")
            else:
                parent.fields[parts[-1]] = flag
                if path != ("_id",):
                    self._modes.add(flag)

    def _child(self, node: _Node, part: str, path: tuple[str, ...]) -> _Node:
        child = node.fields.setdefault(part, _Node())
        if not isinstance(child, _Node):
            raise InvalidArgument(f"{self._where}: path collision at {'.'.join(path)}")
        return child

    def _mark_computed(self, prefix: tuple[str, ...]) -> None:
        node = self._root
        node.computed = True
        for part in prefix:
            child = node.fields[part]
            assert isinstance(child, _Node)
            child.computed = True
            node = child

    def apply(self, docs: Iterator[Document]) -> Iterator[Document]:
        """Projects each document, lazily."""
        for doc in docs:
            if self.exclusion:
                out = _exclude(doc, self._root)
                assert isinstance(out, dict)
            else:
                out = _include(doc, self._root, doc)
                if "_id" in out and next(iter(out)) != "_id":  # _id first, as MongoDB
                    out = {"_id": out.pop("_id"), **out}
            yield out


def _include(value: object, node: _Node, root: Document) -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            spec = node.fields.get(key)
            if spec == _INCLUDE:
                out[key] = item
            elif isinstance(spec, _Node):
                projected = _include_value(item, spec, root)
                if projected is not MISSING:
                    out[key] = projected
    for key, spec in node.fields.items():
        if isinstance(spec, _Computed):
            computed = spec.expr(root)
            if computed is not MISSING:
                out[key] = computed
        elif isinstance(spec, _Node) and spec.computed and key not in out:
            out[key] = _include(MISSING, spec, root)
    return out


def _include_value(value: object, node: _Node, root: Document) -> object:
    if isinstance(value, dict):
        return _include(value, node, root)
    if isinstance(value, list | tuple):
        items = (_include_value(item, node, root) for item in value)
        return [item for item in items if item is not MISSING]
    if node.computed:  # a scalar where a sub-document is computed: replaced
        return _include(MISSING, node, root)
    return MISSING  # inclusion drops scalars where a sub-document was expected


def _exclude(value: object, node: _Node) -> object:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            spec = node.fields.get(key)
            if spec == _EXCLUDE:
                continue
            out[key] = _exclude(item, spec) if isinstance(spec, _Node) else item
        return out
    if isinstance(value, list | tuple):
        return [_exclude(item, node) for item in value]
    return value


def compile_project(spec: object, where: str) -> Callable[[Iterator[Document]], Iterator[Document]]:
    """Compiles ``$project`` into a lazy document transformer."""
    return Projection(spec, where).apply
