"""``DIR/.export-state.json``: where an interrupted export resumes from.

The state records, per kind, the paging cursor after the last page written and
the byte length of that kind's output file at that moment. The driver writes a
page, fsyncs the output, then replaces the state (temp file, fsync, rename,
fsync of the directory), so the state never points past durable output. On
restart the output is truncated back to the recorded length — dropping a page
written after the last checkpoint — and paging continues from the cursor: no
line is lost or repeated.

The ``query`` (filter, kinds, format) is fingerprinted; a different query
against an existing state is refused rather than silently mixing two exports.

Example::

    state = ExportState.new(query)
    save_state(out / STATE_NAME, state)
    state = state.advanced(Kind.TABULAR, cursor=page.last, offset=n, items=50)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloud.export.source import ExportError, Kind

if TYPE_CHECKING:
    from pathlib import Path

    from actors.codec import JsonValue

STATE_NAME = ".export-state.json"
STATE_VERSION = 1


def fingerprint(query: dict[str, JsonValue]) -> str:
    """The SHA-256 of ``query`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(query, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class KindState:
    """Progress of one kind: resume from ``cursor`` with the output cut to ``offset`` bytes.

    ``done`` is set once the server's last page is written; ``cursor`` "" with
    ``done`` unset means "not started".
    """

    cursor: str = ""
    offset: int = 0
    items: int = 0
    nbytes: int = 0
    done: bool = False


@dataclass(frozen=True)
class ExportState:
    """The whole state file: the query, its fingerprint, each kind's progress."""

    query: dict[str, JsonValue]
    kinds: dict[str, KindState]
    complete: bool = False

    @classmethod
    def new(cls, query: dict[str, JsonValue], kinds: tuple[Kind, ...]) -> ExportState:
        """A fresh state for ``query``, nothing exported yet."""
        return cls(query=query, kinds={kind.value: KindState() for kind in kinds})

    @property
    def fingerprint(self) -> str:
        """The query's fingerprint (see ``fingerprint``)."""
        return fingerprint(self.query)

    @property
    def started(self) -> bool:
        """Whether any page was saved under this state (or it is complete)."""
        return self.complete or any(k != KindState() for k in self.kinds.values())

    def of(self, kind: Kind) -> KindState:
        """The progress of ``kind`` (a fresh one if the query does not export it)."""
        return self.kinds.get(kind.value, KindState())

    def advanced(
        self, kind: Kind, *, cursor: str, offset: int, items: int, nbytes: int
    ) -> ExportState:
        """This state after one more page of ``kind``: ``items``/``nbytes`` are added.

        An empty ``cursor`` means the page was the last one: the kind is done.
        """
        old = self.of(kind)
        new = KindState(cursor, offset, old.items + items, old.nbytes + nbytes, done=not cursor)
        return dataclasses.replace(self, kinds={**self.kinds, kind.value: new})

    def completed(self) -> ExportState:
        """This state, marked complete (every kind done)."""
        return dataclasses.replace(self, complete=True)

    def to_json(self) -> dict[str, JsonValue]:
        """The JSON object written to the state file."""
        return {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "query": self.query,
            "complete": self.complete,
            "kinds": {name: dataclasses.asdict(k) for name, k in self.kinds.items()},
        }


def load_state(path: Path) -> ExportState | None:
    """The state at ``path``, or ``None`` if there is none.

    Raises:
        ExportError: the file exists but is not a state this version wrote.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path}: {exc}; use --restart to start over") from None
    try:
        if raw["version"] != STATE_VERSION:
            raise ValueError(f"version {raw['version']!r}")
        kinds = {str(name): _kind_state(k) for name, k in dict(raw["kinds"]).items()}
        state = ExportState(query=dict(raw["query"]), kinds=kinds, complete=bool(raw["complete"]))
        if state.fingerprint != raw["fingerprint"]:
            raise ValueError("fingerprint does not match its query")
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{path} is not a valid export state ({exc}); use --restart") from None
    return state


def _kind_state(raw: dict[str, JsonValue]) -> KindState:
    cursor, done = raw["cursor"], raw["done"]
    if not isinstance(cursor, str) or not isinstance(done, bool):
        raise TypeError("cursor must be a string and done a boolean")
    return KindState(
        cursor, _count(raw, "offset"), _count(raw, "items"), _count(raw, "nbytes"), done
    )


def _count(raw: dict[str, JsonValue], name: str) -> int:
    value = raw[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{name}: {value!r} is not a count")
    return value


def save_state(path: Path, state: ExportState) -> None:
    """Replaces the state at ``path`` atomically and durably.

    Writes a temp file beside it, fsyncs it, renames it over ``path`` and
    fsyncs the directory: after a crash the old or the new state is there,
    never a torn one.

    Raises:
        OSError: the directory is not writable (the caller reports it).
    """
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Makes renames and creations in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
