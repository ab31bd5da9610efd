"""Config problems: JSON paths, messages, and the one exception the loader raises.

Every problem — an error that stops loading or a warning that does not — is a
``ConfigIssue`` naming the JSON path it is about, formatted the way a person
would write it when pointing at the file::

    components[2].service_configs[0].attributes.capture_methods[1].capture_frequency_hz

Pydantic reports errors as ``loc`` tuples with its own English; this module
turns them into those paths and into short, stable messages (``must be >= 0
(got -1)``) that the tests pin and the docs quote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]

# Tags of the `services[]` union (see _model.py); pydantic puts them in `loc`,
# but they are not part of the document, so paths leave them out.
SERVICE_UNION_TAGS = frozenset({"data_manager_service", "other_service"})

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_CHECK_ERROR = "ferry_check"
_GOT_LIMIT = 60


@final
@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config document, at a JSON path.

    ``path`` is ``""`` for the document as a whole.

    Example::

        ConfigIssue("services[0].attributes.sync_interval_mins", "must be >= 0 (got -1)")
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


class ConfigError(ValueError):
    """A config document that cannot be used; the message lists every problem.

    Attributes:
        source: where the document came from (a file path, or the ``source`` given).
        issues: every problem found, each ``<json path>: <problem>``.
        line, column: for a JSON syntax error, where it is (1-based); else ``None``.

    Example::

        try:
            load_config("robot.json")
        except ConfigError as exc:
            print(exc)  # robot.json: 1 problem\\n  components[0].model: required
    """

    def __init__(
        self,
        source: str,
        issues: Sequence[ConfigIssue],
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.source = source
        self.issues = tuple(issues)
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        if self.line is not None and self.column is not None and len(self.issues) == 1:
            # Compiler-style location, which editors and terminals can jump to.
            return f"{self.source}:{self.line}:{self.column}: {self.issues[0].message}"
        count = len(self.issues)
        lines = [f"{self.source}: {count} problem{'' if count == 1 else 's'}"]
        lines.extend(f"  {issue}" for issue in self.issues)
        return "\n".join(lines)


def format_path(loc: Iterable[str | int]) -> str:
    """Formats a location tuple as a JSON path.

    Example::

        format_path(("components", 2, "name"))  # "components[2].name"
        format_path(("attributes", "my key"))    # 'attributes["my key"]'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def check_error(issues: Sequence[tuple[Loc, str]], *, title: str) -> ValidationError:
    """Builds a pydantic ``ValidationError`` from ``(loc, message)`` pairs.

    Raised from a model validator, pydantic prefixes each ``loc`` with the
    model's own position, so cross-field checks still report exact paths.
    """
    details = [
        InitErrorDetails(
            type=PydanticCustomError(_CHECK_ERROR, "{message}", {"message": message}),
            loc=loc,
            input=None,
        )
        for loc, message in issues
    ]
    return ValidationError.from_exception_data(title, details)


def issues_from_validation_error(exc: ValidationError) -> list[ConfigIssue]:
    """Translates pydantic's errors into Ferry's paths and messages."""
    return [ConfigIssue(format_path(_document_loc(e["loc"])), _message(e)) for e in exc.errors()]


def _document_loc(loc: Loc) -> Loc:
    if len(loc) >= 3 and loc[0] == "services" and loc[2] in SERVICE_UNION_TAGS:
        return loc[:2] + loc[3:]
    return loc


def describe_value(value: object) -> str:
    """A short rendering of a JSON value for messages: ``-1``, ``"abc"``, ``a list``."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _GOT_LIMIT else text[: _GOT_LIMIT - 3] + "..."


_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "finite_number": "must be a finite number",
}
_BOUND_MESSAGES = {
    "greater_than_equal": ("must be >= {}", "ge"),
    "greater_than": ("must be > {}", "gt"),
    "less_than_equal": ("must be <= {}", "le"),
    "less_than": ("must be < {}", "lt"),
}


def _plain_number(value: object) -> object:
    """``0.0`` as ``0``, so bounds read as the docs write them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = f" (got {describe_value(error['input'])})"
    if kind == "missing":
        return "required"
    if kind == _CHECK_ERROR:
        return str(ctx["message"])
    if kind == "value_error":
        return str(ctx["error"])
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind] + got
    if kind in _BOUND_MESSAGES:
        template, key = _BOUND_MESSAGES[kind]
        return template.format(describe_value(_plain_number(ctx[key]))) + got
    if kind == "literal_error":
        return f"must be {ctx['expected']}{got}"
    # Anything else is pydantic's own wording, which is still specific.
    msg = error["msg"]
    return msg[:1].lower() + msg[1:] + got
