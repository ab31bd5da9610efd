"""``ferry cloud config|fragment|parts``: edit fleet configs and see what each robot runs.

These commands run on the cloud host and open the store in ``--data-dir``
directly, like ``ferry cloud keys create``; every one is scoped to ``--org``.
A write is checked by the store before it is kept, so a refused change prints
every problem by JSON path and changes nothing. Output for people goes to
stdout; JSON documents are printed alone on stdout so they can be piped.
Exit status: 0 done, 1 nothing found, 2 bad input or a refused change.

Example::

    $ ferry cloud fragment set sensors sensors.json --org acme
    fragment sensors: v2 stored
    used by: robot-1, robot-2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cloud.defaults import DEFAULT_DATA_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from actors.codec import JsonObject, JsonValue
    from actors.config import ConfigError
    from cloud.fleet.port import PartStatus
    from cloud.store.sqlite import SqliteStore

    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


class _BadInput(Exception):
    """A document file that cannot be read or is not one JSON object."""


def register_fleet(commands: Commands) -> None:
    """Adds ``ferry cloud config``, ``ferry cloud fragment`` and ``ferry cloud parts``."""
    _register_config(commands)
    _register_fragment(commands)
    parts = commands.add_parser("parts", help="every part: its config and what it runs")
    parts.add_argument("--json", action="store_true", help="print a JSON list, every field")
    _scope(parts)
    parts.set_defaults(handler=_parts)


def _register_config(commands: Commands) -> None:
    """Adds ``ferry cloud config set`` and ``ferry cloud config get``."""
    config = commands.add_parser("config", help="a part's config document")
    sub = config.add_subparsers(title="config commands", dest="config_command", required=True)

    put = sub.add_parser("set", help="store a new version of a part's config")
    put.add_argument("--part", required=True, help="the part id")
    put.add_argument("file", metavar="FILE", help="the config document (JSON; - = stdin)")
    _scope(put)
    put.set_defaults(handler=_config_set)

    get = sub.add_parser("get", help="print a part's config document")
    get.add_argument("--part", required=True, help="the part id")
    which = get.add_mutually_exclusive_group()
    which.add_argument("--version", type=_version, help="this version (default the latest)")
    which.add_argument("--merged", action="store_true", help="the merged config the robot gets")
    _scope(get)
    get.set_defaults(handler=_config_get)


def _register_fragment(commands: Commands) -> None:
    """Adds ``ferry cloud fragment set|get|list|set-frequency``."""
    fragment = commands.add_parser("fragment", help="reusable pieces of robot config")
    sub = fragment.add_subparsers(title="fragment commands", dest="fragment_command", required=True)

    put = sub.add_parser("set", help="store a new version of a fragment")
    put.add_argument("name", metavar="NAME")
    put.add_argument("file", metavar="FILE", help="the fragment document (JSON; - = stdin)")
    _scope(put)
    put.set_defaults(handler=_fragment_set)

    get = sub.add_parser("get", help="print a fragment's document")
    get.add_argument("name", metavar="NAME")
    get.add_argument("--version", type=_version, help="this version (default the latest)")
    _scope(get)
    get.set_defaults(handler=_fragment_get)

    listing = sub.add_parser("list", help="every fragment: latest version and its users")
    _scope(listing)
    listing.set_defaults(handler=_fragment_list)

    freq = sub.add_parser("set-frequency", help="store a new version with one method's rate")
    freq.add_argument("name", metavar="NAME")
    freq.add_argument("--component", required=True, help="the component's name")
    freq.add_argument("--method", required=True, help="the capture method, e.g. Readings")
    freq.add_argument("--hz", required=True, type=_hz, help="captures per second (>= 0)")
    _scope(freq)
    freq.set_defaults(handler=_fragment_set_frequency)


def _scope(parser: argparse.ArgumentParser) -> None:
    """Adds the ``--org`` and ``--data-dir`` every fleet command takes."""
    parser.add_argument("--org", required=True, help="the organization id")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"the store's directory (default {DEFAULT_DATA_DIR})",
    )


def _version(text: str) -> int:
    """Parses a ``--version``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _hz(text: str) -> float:
    """Parses ``--hz``: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


# ------------------------------------------------------------------- handlers


def _config_set(args: argparse.Namespace) -> int:
    """Stores a new version of a part's config and prints its merged revision."""
    from actors.config import ConfigError
    from cloud.errors import PermissionDenied

    command = "ferry cloud config set"
    try:
        document = _read_document(args.file)
    except _BadInput as exc:
        return _fail(command, str(exc), EXIT_USAGE)
    with _store(args) as store:
        try:
            version, merged = store.put_part_config(args.org, args.part, document)
        except ConfigError as exc:
            return _rejected(command, _source_name(args.file), exc)
        except PermissionDenied as exc:
            return _fail(command, str(exc), EXIT_USAGE)
    print(
        f"part {args.part}: config v{version} stored; merged revision {merged.revision} "
        f"({merged.label})"
    )
    return 0


def _config_get(args: argparse.Namespace) -> int:
    """Prints a part's stored config document, or the merged config with ``--merged``."""
    from actors.config import ConfigError

    command = "ferry cloud config get"
    with _store(args) as store:
        if args.merged:
            try:
                merged = store.merged_config(args.org, args.part)
            except ConfigError as exc:
                return _fail(command, str(exc), EXIT_NOT_FOUND)
            if merged is None:
                return _fail(command, f"part {args.part!r} has no config", EXIT_NOT_FOUND)
            _print_json(merged.document)
            print(f"revision {merged.revision} ({merged.label})", file=sys.stderr)
            return 0
        record = store.get_part_config(args.org, args.part, args.version)
    if record is None:
        return _fail(
            command, f"part {args.part!r} has no config{_at(args.version)}", EXIT_NOT_FOUND
        )
    _print_json(record.document)
    return 0


def _fragment_set(args: argparse.Namespace) -> int:
    """Stores a new version of a fragment and names the parts that use it."""
    from actors.config import ConfigError

    command = "ferry cloud fragment set"
    try:
        document = _read_document(args.file)
    except _BadInput as exc:
        return _fail(command, str(exc), EXIT_USAGE)
    with _store(args) as store:
        try:
            version = store.put_fragment(args.org, args.name, document)
        except ConfigError as exc:
            return _rejected(command, _source_name(args.file), exc)
        used_by = _used_by(store, args.org, args.name)
    print(f"fragment {args.name}: v{version} stored")
    if used_by:
        print(f"used by: {', '.join(used_by)}")
    return 0


def _fragment_get(args: argparse.Namespace) -> int:
    """Prints a fragment's document at the latest or the given version."""
    with _store(args) as store:
        fragment = store.get_fragment(args.org, args.name, args.version)
    if fragment is None:
        message = f"no fragment {args.name!r}{_at(args.version)}"
        return _fail("ferry cloud fragment get", message, EXIT_NOT_FOUND)
    _print_json(fragment.document)
    return 0


def _fragment_list(args: argparse.Namespace) -> int:
    """Prints a table of the organization's fragments."""
    with _store(args) as store:
        fragments = store.list_fragments(args.org)
    if not fragments:
        print(f"no fragments in organization {args.org!r}", file=sys.stderr)
        return 0
    rows = [
        [f.name, f"v{f.version}", _utc(f.created_ns), _users(f.used_by, f.pinned_by)]
        for f in fragments
    ]
    for line in _table(["NAME", "VERSION", "UPDATED", "USED BY"], rows):
        print(line)
    return 0


def _fragment_set_frequency(args: argparse.Namespace) -> int:
    """Stores a new fragment version with one capture method's frequency changed."""
    from actors.config import ConfigError
    from cloud.errors import FailedPrecondition
    from cloud.fleet.merge import set_frequency

    command = "ferry cloud fragment set-frequency"
    with _store(args) as store:
        fragment = store.get_fragment(args.org, args.name)
        if fragment is None:
            return _fail(command, f"no fragment {args.name!r}", EXIT_USAGE)
        try:
            document = set_frequency(fragment.document, args.component, args.method, args.hz)
        except ConfigError as exc:
            problems = "\n".join(f"{i.path}: {i.message}" for i in exc.issues)
            return _fail(command, problems, EXIT_USAGE)
        try:
            version = store.put_fragment(
                args.org, args.name, document, expected_version=fragment.version
            )
        except ConfigError as exc:
            return _rejected(command, f"fragment {args.name}", exc)
        except FailedPrecondition as exc:
            return _fail(command, str(exc), 1)
    print(
        f"fragment {args.name}: v{version} stored ({args.component}.{args.method} "
        f"at {args.hz:g} Hz)"
    )
    return 0


def _parts(args: argparse.Namespace) -> int:
    """Prints each part's config version, what it last applied, and its backlog."""
    with _store(args) as store:
        statuses = store.part_statuses(args.org)
    if args.json:
        print(json.dumps([asdict(s) for s in statuses], indent=2))
        return 0
    if not statuses:
        print(f"no parts in organization {args.org!r}", file=sys.stderr)
        return 0
    header = ["PART", "CONFIG", "LAST SEEN", "APPLIED", "APPLIED AT", "PENDING"]
    lines = _table(header, [_part_row(s) for s in statuses])
    print(lines[0])
    for status, line in zip(statuses, lines[1:], strict=True):
        print(line)
        if status.error:
            first = status.error.splitlines()[0]
            print(f"  rejected {status.rejected_revision or '?'}: {first}")
    return 0


# -------------------------------------------------------------------- helpers


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[SqliteStore]:
    """Opens the store in ``--data-dir`` and closes it afterwards."""
    from cloud.store.sqlite import SqliteStore

    # The server may be running on this store: never sweep its in-flight files.
    store = SqliteStore(args.data_dir.expanduser(), sweep=False)
    try:
        yield store
    finally:
        store.close()


def _read_document(file: str) -> JsonObject:
    """Reads one JSON object from ``file`` (``-`` = stdin), or raises ``_BadInput``."""
    name = _source_name(file)
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _BadInput(f"{name}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise _BadInput(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _BadInput(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise _BadInput(f"{name}: {exc}") from None
    if not isinstance(data, dict):
        raise _BadInput(f"{name}: must be a JSON object, not {type(data).__name__}")
    return data


def _no_constant(literal: str) -> JsonValue:
    """Refuses ``NaN`` and ``Infinity``, which Python's json accepts but JSON does not."""
    raise ValueError(f"{literal} is not a JSON number")


def _source_name(file: str) -> str:
    """How messages name a document file."""
    return "<stdin>" if file == "-" else file


def _users(used_by: tuple[str, ...], pinned_by: tuple[str, ...]) -> str:
    """Who uses a fragment: the parts that follow it, then those pinned to a version."""
    text = ", ".join(used_by)
    if pinned_by:
        text += f"{'; ' if text else ''}pinned: {', '.join(pinned_by)}"
    return text or "-"


def _used_by(store: SqliteStore, org_id: str, name: str) -> tuple[str, ...]:
    """The parts whose config lists fragment ``name``."""
    return next((f.used_by for f in store.list_fragments(org_id) if f.name == name), ())


def _part_row(status: PartStatus) -> list[str]:
    """One ``ferry cloud parts`` table row."""
    version = "-" if status.config_version is None else f"v{status.config_version}"
    last_seen = "never" if status.last_seen_ns is None else _utc(status.last_seen_ns)
    applied_at = "-" if status.applied_ns is None else _utc(status.applied_ns)
    pending = "-" if status.last_seen_ns is None else _pending(status)
    return [status.part_id, version, last_seen, _applied(status), applied_at, pending]


def _applied(status: PartStatus) -> str:
    """What the part runs, and whether that is its current config."""
    if not status.applied_revision:
        return "-"
    text = f"{status.applied_label or '?'} @ {status.applied_revision}"
    if status.applied_revision == status.current_revision:
        return f"{text} (current)"
    if status.current_revision:
        return f"{text} (behind: current {status.current_revision})"
    return text


def _pending(status: PartStatus) -> str:
    """The part's upload backlog: ``3 files, 1.2 MB``."""
    from cloud.export.progress import human_bytes

    noun = "file" if status.pending_files == 1 else "files"
    return f"{status.pending_files} {noun}, {human_bytes(status.pending_bytes)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, header first."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def _utc(ns: int) -> str:
    """Nanoseconds since the epoch as UTC ISO 8601 to the second (``...T12:00:00Z``)."""
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(version: int | None) -> str:
    """`` at version N`` for messages, or nothing for the latest."""
    return "" if version is None else f" at version {version}"


def _print_json(document: JsonObject) -> None:
    """Prints a document as indented JSON with sorted keys."""
    print(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))


def _rejected(command: str, what: str, exc: ConfigError) -> int:
    """Reports a change the store refused, with every problem, and returns 2."""
    return _fail(command, f"{what}: rejected\n{exc}", EXIT_USAGE)


def _fail(command: str, message: str, status: int) -> int:
    """Prints ``<command>: <message>`` to stderr and returns ``status``."""
    print(f"{command}: {message}", file=sys.stderr)
    return status
