"""OTP-style supervision on one Trio nursery per supervisor (STYLE.md §5).

Children start in spec order (each is running before the next starts) and stop
in reverse order. A child that raises is logged once with context, counted and
restarted after a jittered exponential backoff (ONE_FOR_ONE); if more than
``intensity`` failures happen within ``period`` seconds the supervisor itself
raises ``SupervisorGaveUp`` and its parent decides. Children can be added and
removed while it runs (the collectors supervisor does this on reconfigure).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar, final

import trio

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Sequence

LOGGER = logging.getLogger("ferry.supervisor")

T = TypeVar("T")


class Restart(enum.Enum):
    """When a child is restarted (OTP restart types)."""

    PERMANENT = "permanent"  # always, also after a normal return
    TRANSIENT = "transient"  # only after it raised
    TEMPORARY = "temporary"  # never


class SupervisorGaveUp(Exception):
    """Children failed more than ``intensity`` times within ``period`` seconds."""


ChildStart = Callable[..., "Awaitable[object]"]


@final
@dataclass(frozen=True)
class ChildSpec:
    """How to run one child: ``start(task_status=...)`` must call ``task_status.started()``.

    ``shutdown`` bounds how long the child may take to clean up once cancelled;
    children enforce it in their shielded ``finally`` blocks.
    """

    id: str
    start: ChildStart
    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0


@dataclass
class ChildStats:
    """Counters of one child, kept across its restarts."""

    starts: int = 0
    failures: int = 0
    last_error: str = ""
    running: bool = False


@final
class _StartedFlag(Generic[T]):
    """Forwards ``started()`` to the real task status only once, and remembers it."""

    def __init__(self, status: trio.TaskStatus[T | None]) -> None:
        self._status = status
        self.done = False

    def started(self, value: T | None = None) -> None:
        if not self.done:
            self.done = True
            self._status.started(value)


@final
@dataclass
class _Child:
    spec: ChildSpec
    # Shielded: only the supervisor cancels a child, so it can stop children one
    # by one in reverse order even when its own parent is cancelling it.
    scope: trio.CancelScope = field(default_factory=lambda: trio.CancelScope(shield=True))
    exited: trio.Event = field(default_factory=trio.Event)


@final
class Supervisor:
    """Runs children under one nursery and restarts the ones that fail.

    Example::

        sup = Supervisor("root", rng=random.Random(0))
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run, [ChildSpec("writer", writer.run)])
    """

    def __init__(
        self,
        name: str,
        *,
        rng: random.Random,
        intensity: int = 5,
        period: float = 60.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name
        self._rng = rng
        self._intensity = intensity
        self._period = period
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._failures: deque[float] = deque()
        self._children: dict[str, _Child] = {}
        self._order: list[str] = []
        self._nursery: trio.Nursery | None = None
        self.stats: dict[str, ChildStats] = {}

    async def run(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Starts ``children`` in order, reports ready, and supervises until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for spec in children:
                    await self.start_child(spec)
                task_status.started()
                try:
                    await trio.sleep_forever()
                finally:
                    # Reverse order: e.g. collectors stop before the writer drains.
                    with trio.CancelScope(shield=True):
                        await self.stop()
        finally:
            self._nursery = None
        raise AssertionError("unreachable")  # pragma: no cover - sleep_forever never returns

    async def start_child(self, spec: ChildSpec) -> None:
        """Starts one child and returns once it reported itself started."""
        if self._nursery is None:
            raise RuntimeError(f"supervisor {self.name} is not running")
        if spec.id in self._children:
            raise ValueError(f"supervisor {self.name}: child {spec.id!r} already running")
        child = _Child(spec)
        self._children[spec.id] = child
        self._order.append(spec.id)
        self.stats.setdefault(spec.id, ChildStats())
        await self._nursery.start(self._supervise, child)

    async def terminate_child(self, child_id: str) -> None:
        """Cancels one child and waits until it has cleaned up and exited."""
        child = self._children.get(child_id)
        if child is None:
            return
        child.scope.cancel()
        with trio.move_on_after(child.spec.shutdown) as waited:
            await child.exited.wait()
        if waited.cancelled_caught:
            LOGGER.error(
                "%s/%s did not stop within %gs of being cancelled",
                self.name,
                child_id,
                child.spec.shutdown,
            )
            await child.exited.wait()

    async def stop(self) -> None:
        """Stops every child, newest first (reverse start order)."""
        for child_id in reversed(list(self._order)):
            await self.terminate_child(child_id)

    def child_ids(self) -> list[str]:
        """Ids of the running children, in start order."""
        return list(self._order)

    async def _supervise(self, child: _Child, *, task_status: trio.TaskStatus[None]) -> None:
        spec = child.spec
        stats = self.stats[spec.id]
        flag: _StartedFlag[None] = _StartedFlag(task_status)
        consecutive = 0
        try:
            with child.scope:
                while True:
                    began = trio.current_time()
                    stats.starts += 1
                    stats.running = True
                    try:
                        await spec.start(task_status=flag)
                    except Exception as exc:
                        stats.running = False
                        consecutive = (
                            1 if trio.current_time() - began > self._period else consecutive + 1
                        )
                        self._record_failure(spec, stats, exc)
                        if spec.restart is Restart.TEMPORARY:
                            flag.started()
                            return
                        await trio.sleep(self._backoff(consecutive))
                        continue
                    stats.running = False
                    if spec.restart is not Restart.PERMANENT:
                        flag.started()
                        return
                    LOGGER.warning(
                        "%s/%s returned; restarting (permanent child)", self.name, spec.id
                    )
                    consecutive = 0
        finally:
            stats.running = False
            flag.started()  # never leave a start() caller waiting on a cancelled child
            self._children.pop(spec.id, None)
            if spec.id in self._order:
                self._order.remove(spec.id)
            child.exited.set()

    def _record_failure(self, spec: ChildSpec, stats: ChildStats, exc: Exception) -> None:
        now = trio.current_time()
        stats.failures += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self._period:
            self._failures.popleft()
        LOGGER.error(
            "%s/%s crashed (failure %d): %s",
            self.name,
            spec.id,
            stats.failures,
            stats.last_error,
            exc_info=exc,
        )
        if len(self._failures) > self._intensity:
            raise SupervisorGaveUp(
                f"supervisor {self.name}: {len(self._failures)} failures within {self._period:g}s "
                f"(limit {self._intensity}); last: {spec.id}: {stats.last_error}"
            ) from exc

    def _backoff(self, consecutive: int) -> float:
        base = min(self._backoff_initial * 2.0 ** (consecutive - 1), self._backoff_max)
        return base * (0.5 + self._rng.random() / 2)
