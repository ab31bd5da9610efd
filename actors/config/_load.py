"""Loading a config: JSON text to a validated ``RobotConfig`` plus its warnings.

The config is read once, at start-up or on reload, and handed down as frozen
objects (STYLE §9). Every way a document can be wrong ends in one
``ConfigError`` that lists all its problems by JSON path; every way it can be
odd but usable ends in ``LoadedConfig.warnings``.

JSON is parsed by the standard library so that syntax errors carry a line and
column, and so two things Python's parser allows but JSON does not — repeated
keys (last one silently wins) and ``NaN``/``Infinity`` — are caught with paths.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, final

from pydantic import ValidationError

from actors.config._issues import (
    ConfigError,
    ConfigIssue,
    Loc,
    format_path,
    issues_from_validation_error,
)
from actors.config._model import CloudConfig, RobotConfig
from actors.config._resolve import CloudSettings, ResolvedConfig, resolve_cloud, resolve_config
from actors.config._warnings import config_warnings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actors.codec import JsonValue


@final
@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config, the warnings it raised, and where it came from.

    ``base_dir`` is the config file's folder (relative paths in the config are
    relative to it), or ``None`` for a document that did not come from a file.
    """

    config: RobotConfig
    warnings: tuple[ConfigIssue, ...]
    source: str
    base_dir: Path | None = None

    def resolve(
        self, *, environ: Mapping[str, str] | None = None, cpu_count: int | None = None
    ) -> ResolvedConfig:
        """The runtime view of this config; see ``resolve_config``.

        Example::

            resolved = load_config("config/demo.json").resolve()
        """
        return resolve_config(
            self.config, base_dir=self.base_dir, environ=environ, cpu_count=cpu_count
        )


def load_config(path: str | os.PathLike[str]) -> LoadedConfig:
    """Reads and validates a config file.

    Args:
        path: a JSON file in Viam's robot config shape (docs/configuration.md).

    Returns:
        The validated config and its warnings.

    Raises:
        ConfigError: the file cannot be read, is not JSON, or is not a valid
            config. The message lists every problem as ``<json path>: <problem>``.

    Example::

        loaded = load_config("config/demo.json")
        for warning in loaded.warnings:
            print(warning)
    """
    file = Path(path)
    source = os.fspath(path)
    try:
        # utf-8-sig: accept the byte-order mark some Windows editors write.
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not UTF-8 text ({exc.reason})")]) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(source, [ConfigIssue("", f"cannot read: {reason}")]) from exc
    return parse_config(text, source=source, base_dir=file.absolute().parent)


def parse_config(
    document: str | bytes | Mapping[str, object],
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
) -> LoadedConfig:
    """Validates a config given as JSON text or as an already-decoded object.

    Args:
        document: JSON text, or a decoded JSON object.
        source: how to name the document in messages (e.g. a file path).
        base_dir: folder that relative paths in the config are relative to.

    Returns:
        The validated config and its warnings.

    Raises:
        ConfigError: the text is not JSON, or the document is not a valid config.

    Example::

        loaded = parse_config('{"components": []}', source="inline")
        assert loaded.warnings == ()
    """
    data = _decode(document, source) if isinstance(document, str | bytes) else dict(document)
    try:
        config = RobotConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation_error(exc)) from None
    return LoadedConfig(
        config=config,
        warnings=tuple(config_warnings(config)),
        source=source,
        base_dir=base_dir,
    )


class _NonFinite:
    """Stands in for ``NaN``/``Infinity`` while decoding, so they can be reported by path."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _decode(text: str | bytes, source: str) -> object:
    duplicates: dict[int, list[str]] = {}

    def object_pairs(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            repeated: list[str] = []
            for key, _ in pairs:
                if key in seen:
                    repeated.append(key)
                seen.add(key)
            duplicates[id(obj)] = repeated
        return obj

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(source, [ConfigIssue("", f"not UTF-8 text ({exc.reason})")]) from None
    text = text.removeprefix("\ufeff")
    try:
        data: object = json.loads(text, object_pairs_hook=object_pairs, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        issue = ConfigIssue("", f"invalid JSON: {exc.msg}")
        raise ConfigError(source, [issue], line=exc.lineno, column=exc.colno) from None
    issues = _strict_json_issues(data, (), duplicates)
    if issues:
        raise ConfigError(source, issues)
    return data


def _strict_json_issues(
    value: object, loc: Loc, duplicates: dict[int, list[str]]
) -> list[ConfigIssue]:
    if isinstance(value, _NonFinite):
        return [ConfigIssue(format_path(loc), f"{value.literal} is not a JSON number")]
    out: list[ConfigIssue] = []
    if isinstance(value, dict):
        out += [
            ConfigIssue(
                format_path((*loc, key)), "duplicate key; JSON objects must not repeat a key"
            )
            for key in duplicates.get(id(value), [])
        ]
        for key, item in value.items():
            out += _strict_json_issues(item, (*loc, key), duplicates)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _strict_json_issues(item, (*loc, i), duplicates)
    return out


def parse_cloud_file(text: str, *, source: str, base_dir: Path) -> CloudSettings:
    """Validates a file holding only a ``cloud`` section (credentials kept out of the config).

    Raises:
        ConfigError: not JSON, or not a valid cloud section; the message names each key.
    """
    data = _decode(text, source)
    try:
        cloud = CloudConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_from_validation_error(exc)) from None
    return resolve_cloud(cloud, base_dir=base_dir)
