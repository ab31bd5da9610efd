"""What the sync actor runs on and reports: its injected seams, its cloud links, its passes.

Kept apart from ``actors.sync.actor`` so the actor module holds only behaviour
(scheduling, walking, the worker pool) and these plain records can be read alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

import trio

from actors.sync.fsm import Phase

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Mapping
    from contextlib import AbstractAsyncContextManager

    from actors.codec import JsonValue
    from actors.ports import (
        BlockingRunner,
        FileSystem,
        SyncFile,
        Uploader,
        WallClock,
        WholeFileUploader,
    )
    from actors.sync.fsm import Event, FileState
    from actors.sync.plan import SyncPlan


@final
@dataclass(frozen=True)
class Links:
    """The two ways to reach the cloud: resumable (Ferry's) and whole-file (Viam's)."""

    uploader: Uploader
    whole: WholeFileUploader


@final
@dataclass
class SyncSeams:
    """The injected world: production adapters on a robot, simulated ones in ``sim/``.

    ``connect`` opens the cloud links for a plan (and closes them on exit);
    ``rotate`` finishes the writer's open files; ``read_sensor`` reads the
    selective syncer (raising ``KeyError`` when no such component runs).
    """

    fs: FileSystem
    runner: BlockingRunner
    clock: WallClock
    rng: random.Random
    connect: Callable[[SyncPlan], AbstractAsyncContextManager[Links]]
    rotate: Callable[[], Awaitable[None]]
    read_sensor: Callable[[str], Awaitable[Mapping[str, JsonValue]]] | None = None
    on_point: Callable[[str, SyncFile], None] | None = None
    observe: Callable[[SyncFile, FileState, Event, FileState], None] | None = None
    """The simulator's view of every file's state machine (``WorkerContext.observe``)."""


@final
@dataclass
class PassResult:
    """What one pass handed out and how those files ended (so far)."""

    files: int = 0
    bytes: int = 0
    confirmed: int = 0
    failed: int = 0
    left: int = 0
    bytes_done: int = 0
    walked: bool = False
    error: str = ""

    @property
    def done(self) -> int:
        """Files of the pass whose life is over."""
        return self.confirmed + self.failed + self.left


@final
@dataclass
class Pass:
    """One pass's bookkeeping: what it handed out, how those files ended, and when it is done."""

    manual: bool
    retry_failed: bool = False
    result: PassResult = field(default_factory=PassResult)
    walked: trio.Event = field(default_factory=trio.Event)
    finished: trio.Event = field(default_factory=trio.Event)

    def add(self, size: int) -> None:
        self.result.files += 1
        self.result.bytes += size

    def file_done(self, size: int, state: FileState | None) -> None:
        r = self.result
        if state is not None and state.phase is Phase.DELETED:
            r.confirmed += 1
        elif state is not None and state.phase is Phase.FAILED:
            r.failed += 1
        else:
            r.left += 1
        r.bytes_done += size
        self._maybe_finish()

    def end_walk(self, error: str = "") -> None:
        self.result.walked = True
        self.result.error = self.result.error or error
        self.walked.set()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.result.walked and self.result.done >= self.result.files:
            self.finished.set()
