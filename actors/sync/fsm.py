"""The life of one file in sync as a pure Mealy machine: ``step(state, event)``.

No Trio, no I/O: the shell (``actors.sync.worker``) executes the actions and
feeds their outcomes back as events, so Hypothesis can drive every
interleaving of failures directly (STYLE.md §11, OTP ``statem``).

Phases::

    PENDING ─Start─► OPENING ─Opened─► UPLOADING(offset) ─ChunkWritten…─► FINISHING
       │                 │ Opened(finished) | Batched                        │ Finished
       │                 └──────────────────────────► CONFIRMED ◄───────────┘
       │ Start (compat)                                   │ Deleted
       └─────────────► WHOLE ─WholeUploaded─────────────► │ ──► DELETED
    any active phase ─Failed(transient)─► BACKOFF ─TimerFired/Kick─► OPENING | WHOLE | CONFIRMED
    any active phase ─Failed(permanent)─► FAILED (the file moves to failed/)
    any non-terminal phase ─Cancel─► CANCELLED (the file stays; the next pass retries it)

Guarantees the machine itself upholds (and tests check):

- ``Delete`` is only ever emitted from CONFIRMED, i.e. after the cloud's
  durable confirmation (guarantee 3);
- after an interruption, uploading restarts at the offset the cloud reports,
  so at most the one chunk in flight is re-sent (guarantee 4);
- waits follow ``backoff_delay``: never above one hour, no attempt limit (guarantee 5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import final

from actors.sync.backoff import backoff_delay


class Phase(Enum):
    """Where a file is in its life."""

    PENDING = "pending"
    OPENING = "opening"
    UPLOADING = "uploading"
    FINISHING = "finishing"
    WHOLE = "whole"
    CONFIRMED = "confirmed"
    BACKOFF = "backoff"
    DELETED = "deleted"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Phase.DELETED, Phase.FAILED, Phase.CANCELLED})
"""Phases a file never leaves."""


class Failure(Enum):
    """How an attempt failed, as the adapter classified it (``actors.errors``)."""

    TRANSIENT = "transient"
    OFFLINE = "offline"
    PERMANENT = "permanent"


# ---------------------------------------------------------------- events


@final
@dataclass(frozen=True, slots=True)
class Start:
    """The shell took the file and begins its upload."""


@final
@dataclass(frozen=True, slots=True)
class Opened:
    """The cloud answered OpenUpload: its committed offset, or that the upload is finished."""

    upload_id: str
    committed_offset: int
    finished: bool
    max_chunk_bytes: int = 0


@final
@dataclass(frozen=True, slots=True)
class ChunkWritten:
    """The cloud answered WriteChunk with its committed offset."""

    committed_offset: int
    accepted: bool


@final
@dataclass(frozen=True, slots=True)
class Finished:
    """The cloud durably confirmed the whole file (FinishUpload)."""

    file_id: str


@final
@dataclass(frozen=True, slots=True)
class Batched:
    """The cloud durably stored the whole file, sent with others in one UploadFiles call."""

    file_id: str


@final
@dataclass(frozen=True, slots=True)
class WholeUploaded:
    """A Viam-compatible whole-file upload succeeded."""

    file_id: str


@final
@dataclass(frozen=True, slots=True)
class Unsupported:
    """The server has no resumable service: continue with Viam's RPCs."""


@final
@dataclass(frozen=True, slots=True)
class Failed:
    """The current action failed. ``jitter`` in [0, 1) comes from the injected RNG."""

    kind: Failure
    message: str
    jitter: float = 0.0


@final
@dataclass(frozen=True, slots=True)
class TimerFired:
    """The backoff wait is over."""


@final
@dataclass(frozen=True, slots=True)
class Kick:
    """A manual sync: a file waiting in backoff retries now (its attempt count is kept)."""


@final
@dataclass(frozen=True, slots=True)
class Deleted:
    """The local file is gone (and its directory fsynced)."""


@final
@dataclass(frozen=True, slots=True)
class Cancel:
    """The shell is stopping (reconfigure, shutdown); the file stays where it is."""


Event = (
    Start
    | Opened
    | ChunkWritten
    | Finished
    | Batched
    | WholeUploaded
    | Unsupported
    | Failed
    | TimerFired
    | Kick
    | Deleted
    | Cancel
)


# ---------------------------------------------------------------- actions


@final
@dataclass(frozen=True, slots=True)
class Open:
    """Ask the cloud for the upload's state (OpenUpload)."""


@final
@dataclass(frozen=True, slots=True)
class SendChunk:
    """Send bytes ``[offset, offset + length)`` of the file (WriteChunk)."""

    upload_id: str
    offset: int
    length: int


@final
@dataclass(frozen=True, slots=True)
class Finish:
    """Ask the cloud to verify and materialize the upload (FinishUpload)."""

    upload_id: str


@final
@dataclass(frozen=True, slots=True)
class UploadWhole:
    """Upload the whole file with Viam's RPCs."""


@final
@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the local file, then fsync its directory."""


@final
@dataclass(frozen=True, slots=True)
class MoveToFailed:
    """Move the file to ``failed/`` with a ``.reason`` sidecar."""

    reason: str


@final
@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``delay_s``, then deliver ``TimerFired`` (a ``Kick`` may end it early)."""

    delay_s: float


Action = Open | SendChunk | Finish | UploadWhole | Delete | MoveToFailed | Wait


# ---------------------------------------------------------------- state


@final
@dataclass(frozen=True, slots=True)
class FileState:
    """Everything the machine knows about one file.

    ``offset`` is the cloud's committed offset as last reported; ``sent_upto``
    the end of the furthest chunk handed to the network, so a chunk sent below
    it is a re-send and is counted in ``resent_bytes``. ``confirmed`` survives
    BACKOFF, so a failed delete is retried without uploading again.
    """

    size: int
    chunk_bytes: int
    phase: Phase = Phase.PENDING
    compat: bool = False
    upload_id: str = ""
    offset: int = 0
    sent_upto: int = 0
    confirmed: bool = False
    file_id: str = ""
    attempt: int = 0
    delay_s: float = 0.0
    interruptions: int = 0
    resent_bytes: int = 0
    offline: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")
        if self.chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {self.chunk_bytes}")

    @property
    def terminal(self) -> bool:
        """Whether the file's life is over."""
        return self.phase in TERMINAL


class InvalidTransition(ValueError):
    """An event arrived that the current phase cannot receive: a bug in the shell."""


_ACTIVE = frozenset({Phase.OPENING, Phase.UPLOADING, Phase.FINISHING, Phase.WHOLE})


def initial(size: int, chunk_bytes: int, *, compat: bool = False) -> FileState:
    """The state of a file just found by the walker."""
    return FileState(size=size, chunk_bytes=chunk_bytes, compat=compat)


def step(state: FileState, event: Event) -> tuple[FileState, list[Action]]:
    """Applies ``event`` to ``state``; returns the new state and the actions to run, in order.

    Raises:
        InvalidTransition: ``event`` cannot happen in ``state.phase``.
    """
    if isinstance(event, Cancel):
        if state.terminal:
            return state, []
        return dataclasses.replace(state, phase=Phase.CANCELLED), []
    if isinstance(event, Kick) and state.phase is not Phase.BACKOFF:
        return state, []  # not waiting (or already over): nothing to hurry
    if state.terminal:
        raise _invalid(state, event)
    match event:
        case Start() if state.phase is Phase.PENDING:
            return _begin(state)
        case Opened() if state.phase is Phase.OPENING:
            return _opened(state, event)
        case ChunkWritten() if state.phase is Phase.UPLOADING:
            return _written(state, event)
        case Finished() if state.phase is Phase.FINISHING:
            return _confirm(state, event.file_id)
        case Batched() if state.phase is Phase.OPENING:
            return _confirm(dataclasses.replace(state, sent_upto=state.size), event.file_id)
        case WholeUploaded() if state.phase is Phase.WHOLE:
            return _confirm(state, event.file_id)
        case Unsupported() if state.phase is Phase.OPENING:
            return dataclasses.replace(state, phase=Phase.WHOLE, compat=True), [UploadWhole()]
        case Failed() if state.phase in _ACTIVE or state.phase is Phase.CONFIRMED:
            return _failed(state, event)
        case TimerFired() | Kick() if state.phase is Phase.BACKOFF:
            return _resume(state)
        case Deleted() if state.phase is Phase.CONFIRMED:
            return dataclasses.replace(state, phase=Phase.DELETED), []
        case _:
            raise _invalid(state, event)


def _invalid(state: FileState, event: Event) -> InvalidTransition:
    return InvalidTransition(f"{event!r} cannot happen in phase {state.phase.value}")


def _begin(state: FileState) -> tuple[FileState, list[Action]]:
    if state.compat:
        return dataclasses.replace(state, phase=Phase.WHOLE), [UploadWhole()]
    return dataclasses.replace(state, phase=Phase.OPENING), [Open()]


def _opened(state: FileState, event: Opened) -> tuple[FileState, list[Action]]:
    if event.finished:
        return _confirm(dataclasses.replace(state, upload_id=event.upload_id), "")
    chunk = state.chunk_bytes
    if event.max_chunk_bytes > 0:
        chunk = min(chunk, event.max_chunk_bytes)
    opened = dataclasses.replace(state, upload_id=event.upload_id, chunk_bytes=chunk)
    return _continue_at(opened, event.committed_offset)


def _written(state: FileState, event: ChunkWritten) -> tuple[FileState, list[Action]]:
    if event.committed_offset > state.offset:
        # Progress: the next failure backs off from the start again, so a long upload
        # over a flaky link does not creep toward hour-long waits while it advances.
        state = dataclasses.replace(state, attempt=0, delay_s=0.0)
    return _continue_at(state, event.committed_offset)


def _continue_at(state: FileState, committed: int) -> tuple[FileState, list[Action]]:
    """Next step once the cloud has ``committed`` bytes: another chunk, or finish."""
    if not 0 <= committed <= state.size:
        # The cloud claims bytes the file does not have: not a state retrying can fix.
        reason = f"cloud reports committed offset {committed} of a {state.size}-byte file"
        return _park(state, reason)
    if committed == state.size:
        moved = dataclasses.replace(state, phase=Phase.FINISHING, offset=committed)
        return moved, [Finish(state.upload_id)]
    length = min(state.chunk_bytes, state.size - committed)
    resent = max(0, min(committed + length, state.sent_upto) - committed)
    moved = dataclasses.replace(
        state,
        phase=Phase.UPLOADING,
        offset=committed,
        sent_upto=max(state.sent_upto, committed + length),
        resent_bytes=state.resent_bytes + resent,
    )
    return moved, [SendChunk(state.upload_id, committed, length)]


def _confirm(state: FileState, file_id: str) -> tuple[FileState, list[Action]]:
    confirmed = dataclasses.replace(
        state,
        phase=Phase.CONFIRMED,
        confirmed=True,
        file_id=file_id or state.file_id,
        offset=state.size,
        attempt=0,
        delay_s=0.0,
        offline=False,
    )
    return confirmed, [Delete()]


def _failed(state: FileState, event: Failed) -> tuple[FileState, list[Action]]:
    if event.kind is Failure.PERMANENT and not state.confirmed:
        return _park(state, event.message)
    attempt = state.attempt + 1
    delay = backoff_delay(attempt, event.jitter)
    interrupted = state.phase in (Phase.UPLOADING, Phase.FINISHING)
    waiting = dataclasses.replace(
        state,
        phase=Phase.BACKOFF,
        attempt=attempt,
        delay_s=delay,
        interruptions=state.interruptions + int(interrupted),
        offline=event.kind is Failure.OFFLINE,
        reason=event.message,
    )
    return waiting, [Wait(delay)]


def _park(state: FileState, reason: str) -> tuple[FileState, list[Action]]:
    return dataclasses.replace(state, phase=Phase.FAILED, reason=reason), [MoveToFailed(reason)]


def _resume(state: FileState) -> tuple[FileState, list[Action]]:
    if state.confirmed:
        return dataclasses.replace(state, phase=Phase.CONFIRMED), [Delete()]
    return _begin(state)
