"""A documented subset of MongoDB's aggregation pipeline, evaluated in Python.

``TabularDataByMQL`` receives a pipeline as BSON stages; :func:`compile_pipeline`
validates all of them up front (so a bad pipeline fails before any data is
read) and :meth:`Pipeline.run` evaluates it over an iterator of Viam-shaped
reading documents. The supported subset and its differences from MongoDB are
in ``docs/mql.md``.

Memory: ``$match``, ``$project``, ``$skip`` and ``$limit`` are lazy generators
holding one document at a time, so ``$match`` + ``$limit`` over any number of
documents stops reading as soon as it has enough. ``$sort`` and ``$group`` are
blocking; they refuse to hold more than ``max_docs`` documents (or groups),
raising ``InvalidArgument``. A ``$sort`` directly followed by ``$skip``/``$limit``
stages keeps only the top ``skip + limit`` documents, so it never hits the cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud.errors import InvalidArgument
from cloud.query._group import GroupStage
from cloud.query._match import compile_query, equalities
from cloud.query._project import Projection
from cloud.query._stages import CountStage, LimitStage, SkipStage, SortStage, Stage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from cloud.model import Document

PUSHDOWN_FIELDS = (
    "part_id",
    "component_name",
    "component_type",
    "method_name",
    "robot_id",
    "robot_name",
    "part_name",
    "location_id",
)
"""Top-level string fields a store can filter on before the pipeline runs."""

DEFAULT_MAX_DOCS = 1_000_000


class MatchStage(Stage):
    """``{"$match": <query>}``: the documents the query selects (see ``_match``)."""

    op = "$match"

    def __init__(self, index: int, arg: object) -> None:
        """Compiles the query."""
        super().__init__(index)
        self.query = arg
        self.predicate = compile_query(arg, self.where)

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Filters lazily."""
        return (doc for doc in docs if self.predicate(doc))


class ProjectStage(Stage):
    """``{"$project": <spec>}``: reshaped documents (see ``_project``)."""

    op = "$project"

    def __init__(self, index: int, arg: object) -> None:
        """Compiles the projection."""
        super().__init__(index)
        self.projection = Projection(arg, self.where)

    def apply(self, docs: Iterator[Document], max_docs: int) -> Iterator[Document]:
        """Projects lazily."""
        return self.projection.apply(docs)


_STAGES: dict[str, Callable[[int, object], Stage]] = {
    "$match": MatchStage,
    "$project": ProjectStage,
    "$sort": SortStage,
    "$limit": LimitStage,
    "$skip": SkipStage,
    "$count": CountStage,
    "$group": GroupStage,
}
SUPPORTED_STAGES = tuple(sorted(_STAGES))


def _compile_stage(index: int, stage: Mapping[str, object]) -> Stage:
    if not isinstance(stage, dict) or len(stage) != 1:
        got = sorted(stage) if isinstance(stage, dict) else type(stage).__name__
        raise InvalidArgument(f"stage {index}: a stage must have exactly one operator, got {got}")
    ((op, arg),) = stage.items()
    cls = _STAGES.get(op)
    if cls is None:
        raise InvalidArgument(
            f"stage {index}: unsupported stage {op}; supported: {', '.join(SUPPORTED_STAGES)}"
        )
    return cls(index, arg)


def _sort_keep(following: Sequence[Stage]) -> int | None:
    """How many sorted documents the ``$skip``/``$limit`` run after a ``$sort`` uses."""
    offset = 0
    for stage in following:
        if isinstance(stage, SkipStage):
            offset += stage.n
        elif isinstance(stage, LimitStage):
            return offset + stage.n
        else:
            return None
    return None


class Pipeline:
    """A validated pipeline, reusable: :meth:`run` may be called any number of times."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        """Wraps compiled stages; use :func:`compile_pipeline` to build one."""
        self.stages = tuple(stages)
        for i, stage in enumerate(self.stages):
            if isinstance(stage, SortStage):
                stage.keep = _sort_keep(self.stages[i + 1 :])

    def run(
        self, docs: Iterable[Document], *, max_docs: int = DEFAULT_MAX_DOCS
    ) -> Iterator[Document]:
        """Evaluates the pipeline over ``docs``, lazily.

        Documents are read only as results are pulled; errors from a blocking
        stage exceeding ``max_docs`` are raised while iterating.

        Raises:
            ValueError: ``max_docs`` is not positive (a server setting, not input).
        """
        if max_docs < 1:
            raise ValueError(f"max_docs must be positive, got {max_docs}")
        out: Iterator[Document] = iter(docs)
        for stage in self.stages:
            out = stage.apply(out, max_docs)
        return out

    def leading_filter(self) -> dict[str, str]:
        """Equalities on well-known string fields the store may apply before ``run``.

        Only the ``$match`` stages at the start of the pipeline count (later ones
        may see renamed or grouped fields), and only string equalities on
        :data:`PUSHDOWN_FIELDS`. The pipeline still applies every ``$match``, so
        the push-down is an optimization that must only narrow the input by exact
        equality; it never changes the result.
        """
        out: dict[str, str] = {}
        for stage in self.stages:
            if not isinstance(stage, MatchStage):
                break
            for name, value in equalities(stage.query).items():
                if name in PUSHDOWN_FIELDS and isinstance(value, str):
                    out.setdefault(name, value)
        return out


def compile_pipeline(stages: Sequence[Mapping[str, object]]) -> Pipeline:
    """Validates and compiles aggregation stages (as :func:`decode_stages` returns them).

    Raises:
        InvalidArgument: a malformed or unsupported stage; the message starts with
            ``stage N (<op>)``, ``N`` being the stage's 0-based index.
    """
    return Pipeline([_compile_stage(i, stage) for i, stage in enumerate(stages)])
