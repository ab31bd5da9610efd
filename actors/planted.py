"""Planted bugs: deliberate mistakes the simulator switches on to prove it catches them.

Each ``Bug`` names one place in the real code that, while the bug is planted,
does the wrong thing (deletes before the cloud confirmed, skips an fsync, …).
``ferry sim --plant BUG`` sets the switch around one simulated run, and the
test suite shows a seed sweep finds a violation for every bug (issue 7): a
checker that never fails proves nothing. The switch is a context variable set
only by the simulator, so on a robot every ``planted`` check is false.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator


class Bug(Enum):
    """The planted bugs, each named for what it breaks."""

    DELETE_BEFORE_CONFIRM = "delete-before-confirm"
    """Sync deletes the local file when the last chunk is sent, before FinishUpload answers."""
    IGNORE_COMMITTED_OFFSET = "ignore-committed-offset"
    """A resumed upload starts again at offset 0 and walks forward over rejected chunks."""
    RENAME_BEFORE_FSYNC = "rename-before-fsync"
    """A capture file becomes ``.capture`` without its last bytes being fsynced."""
    IDENTITY_PER_ATTEMPT = "identity-per-attempt"
    """Every attempt opens a new upload, so a retried finish materializes the file twice."""
    BACKOFF_WITHOUT_CAP = "backoff-without-cap"
    """Retry waits keep doubling past the one-hour cap."""
    UNCOUNTED_RETENTION = "uncounted-retention"
    """The disk-full policy deletes a file without logging or counting it."""
    DROP_ON_ROTATE = "drop-on-rotate"
    """Finishing a file for rotation drops the records still in its buffer."""
    UNSYNCED_DIRS = "unsynced-dirs"
    """New directories are never fsynced into their parents, so a power cut can take
    a capture directory with its finished files."""
    BLIND_FSYNC_RETRY = "blind-fsync-retry"
    """After a failed fsync the writer only fsyncs again, as if the unsynced bytes were
    still there to make durable (Linux dropped them)."""


_PLANTED: ContextVar[frozenset[Bug]] = ContextVar("ferry_planted_bugs", default=frozenset())


def planted(bug: Bug) -> bool:
    """Whether ``bug`` is switched on in this task's context (never, outside ``ferry sim``)."""
    return bug in _PLANTED.get()


@contextlib.contextmanager
def planting(bugs: Collection[Bug]) -> Iterator[None]:
    """Switches ``bugs`` on for the body of the ``with`` (and for tasks started inside it)."""
    token = _PLANTED.set(frozenset(bugs))
    try:
        yield
    finally:
        _PLANTED.reset(token)
