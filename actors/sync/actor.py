"""The sync actor: scheduled and manual passes over the sync paths, and a pool of upload workers.

A pass (every ``sync_interval_mins``, or now on a manual Sync) asks the writer
to finish its open files, then walks the capture dirs and additional sync
paths and hands each ready file to one of ``maximum_num_sync_threads`` workers
through an unbuffered channel, so memory is O(workers), not O(files). A worker
runs the file's state machine (``FileJob``) to the end: deleted after the
cloud's confirmation, parked in ``failed/``, or left in place when cancelled.

A live reconfigure that changes only the schedule is applied in place; any
other change restarts the workers (files stay, uploads resume at the cloud's
committed offset). Counters survive both.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.ports import SyncFile
from actors.sync.batch import (
    LINGER_S,
    MAX_FILES,
    Batch,
    batch_budget,
    batchable,
    read_batch,
    run_batch,
)
from actors.sync.files import retry_failed
from actors.sync.future_mtimes import FutureMtimes
from actors.sync.limiter import BandwidthLimiter
from actors.sync.scan import ScanRules, walk_ready
from actors.sync.seams import Links, Pass, PassResult, SyncSeams
from actors.sync.stats import SyncStatus
from actors.sync.worker import FileJob, WorkerContext

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from actors.codec import JsonValue
    from actors.sync.fsm import FileState
    from actors.sync.plan import SyncPlan

__all__ = ["ROTATE_TIMEOUT_S", "SENSOR_TIMEOUT_S", "Links", "PassResult", "SyncActor", "SyncSeams"]

LOGGER = logging.getLogger("ferry.sync")

ROTATE_TIMEOUT_S = 30.0
"""A pass waits this long at most for the writer to finish its open files."""
SENSOR_TIMEOUT_S = 10.0
"""The selective syncer's Readings call is bounded by this."""


@final
class SyncActor:
    """Uploads finished files exactly once and deletes them after the cloud confirms.

    Example::

        actor = SyncActor(plan, seams)
        await nursery.start(actor.run)
        result = await actor.sync_now(wait=True)
    """

    def __init__(self, plan: SyncPlan, seams: SyncSeams) -> None:
        self._plan = plan
        self._seams = seams
        self.status = SyncStatus()
        self._claims: dict[Path, list[Pass]] = {}
        self._future = FutureMtimes()  # arbitrary files written before the clock stepped back
        self._generation = trio.CancelScope()
        self._requests_send, self._requests = trio.open_memory_channel[Pass | None](16)
        self._last_manual: Pass | None = None
        # Manual passes requested but not yet walked: files other passes hand out
        # meanwhile are theirs too, so ``wait`` covers every file pending at the call.
        self._pending_manual: list[Pass] = []

    @property
    def plan(self) -> SyncPlan:
        """The plan being run."""
        return self._plan

    def in_progress(self) -> frozenset[Path]:
        """Files a worker holds or a pass is handing out (retention must not touch them)."""
        return frozenset(self._claims)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Runs passes until cancelled; a workers-level reconfigure restarts the inside."""
        started = False
        while True:
            self._generation = trio.CancelScope()
            with self._generation:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._run_generation, self._plan)
                    if not started:
                        started = True
                        task_status.started()
                    await trio.sleep_forever()
            LOGGER.info("sync restarted for the new config")

    async def apply(self, plan: SyncPlan) -> None:
        """Follows a new plan: in place for schedule changes, by restarting workers otherwise."""
        old, self._plan = self._plan, plan
        if plan.workers_key() != old.workers_key():
            self._generation.cancel()
        else:
            self._requests_send.send_nowait(None)  # the scheduler re-reads the interval

    async def sync_now(self, *, wait: bool = False, retry_failed: bool = False) -> PassResult:
        """A manual pass, whatever the schedule (``sync_disabled`` only stops scheduled ones).

        Returns once every ready file is handed to a worker, or with ``wait`` once
        every file pending at the call (including those already uploading) is
        confirmed, failed or left for later.
        """
        pass_ = Pass(manual=True, retry_failed=retry_failed)
        for path, passes in self._claims.items():
            passes.append(pass_)
            pass_.add(self._size_of(path))
        self._last_manual = pass_
        self._pending_manual.append(pass_)
        for progress in self.status.files.values():
            progress.kick.set()  # a manual sync ends every backoff now
        await self._requests_send.send(pass_)
        await pass_.walked.wait()
        if wait:
            await pass_.finished.wait()
        return pass_.result

    def render_status(self) -> dict[str, JsonValue]:
        """The sync section of ``ferry status``."""
        rendered = dict(self.status.render(trio.current_time()))
        plan = self._plan
        rendered["cloud"] = plan.cloud.address if plan.cloud is not None else ""
        rendered["scheduled"] = not plan.sync_disabled
        rendered["interval_s"] = plan.interval_s
        rendered["workers"] = plan.threads
        manual = self._last_manual
        if manual is not None:
            r = manual.result
            rendered["manual_pass"] = {
                "files": r.files,
                "done": r.done,
                "confirmed": r.confirmed,
                "failed": r.failed,
                "bytes": r.bytes,
                "bytes_done": r.bytes_done,
                "walked": r.walked,
                "finished": manual.finished.is_set(),
                "error": r.error,
            }
        return rendered

    def _size_of(self, path: Path) -> int:
        progress = self.status.files.get(path)
        return progress.state.size if progress is not None else 0

    # ------------------------------------------------------------ one generation

    async def _run_generation(self, plan: SyncPlan, *, task_status: trio.TaskStatus[None]) -> None:
        if plan.cloud is None:
            self.status.error = "no cloud section in the config: nothing is uploaded"
            task_status.started()
            await self._refuse_requests(self.status.error)
        seams = self._seams
        self.status.error = ""
        async with seams.connect(plan) as links, trio.open_nursery() as nursery:
            send, receive = trio.open_memory_channel[SyncFile](0)
            ctx = WorkerContext(
                part_id=plan.cloud.part_id,
                uploader=links.uploader,
                whole=links.whole,
                fs=seams.fs,
                runner=seams.runner,
                rng=seams.rng,
                limiter=BandwidthLimiter(plan.max_bytes_per_sec),
                status=self.status,
                chunk_bytes=plan.chunk_bytes,
                rpc_timeout_s=plan.rpc_timeout_s,
                on_point=seams.on_point,
                observe=seams.observe,
            )
            with send, receive:
                for _ in range(plan.threads):
                    nursery.start_soon(self._worker, ctx, receive.clone())
                nursery.start_soon(self._scheduler, send.clone())
                task_status.started()
                await trio.sleep_forever()

    async def _refuse_requests(self, error: str) -> NoReturn:
        """Without a cloud, manual syncs end at once with the reason."""
        async for pass_ in self._requests:
            if pass_ is not None:
                pass_.end_walk(error)
        raise AssertionError("unreachable")  # pragma: no cover - the channel never closes

    async def _worker(
        self, ctx: WorkerContext, receive: trio.MemoryReceiveChannel[SyncFile]
    ) -> None:
        """One worker: a file at a time, or a batch of small ones (``actors.sync.batch``).

        Two stages: ``_take`` receives files, gathers small ones into batches and
        reads them; this task uploads. The hand-over channel is unbuffered, so
        the next batch is read while this one is on the wire, and a worker holds
        at most two batches.
        """
        work_send, work = trio.open_memory_channel[SyncFile | Batch](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._take, ctx, receive, work_send)
            with work:
                async for item in work:
                    files = item.files if isinstance(item, Batch) else [item]
                    states: list[FileState | None] = []
                    try:
                        if isinstance(item, Batch):
                            states = await run_batch(ctx, item)
                        else:
                            states = [await FileJob(ctx, item).run()]
                    finally:
                        self._release(files, states)

    async def _take(
        self,
        ctx: WorkerContext,
        receive: trio.MemoryReceiveChannel[SyncFile],
        work: trio.MemorySendChannel[SyncFile | Batch],
    ) -> None:
        """A worker's first stage: files in, single files or read batches out.

        ``pending`` holds every file taken but not yet handed over, so a cancel at
        any await (a reconfigure, shutdown) releases their claims: a claim left
        behind would keep the file out of every later pass.
        """
        pending: list[SyncFile] = []
        try:
            with receive, work:
                while True:
                    if not pending:
                        try:
                            pending.append(await receive.receive())
                        except trio.EndOfChannel:
                            return
                    file = pending[0]
                    if ctx.status.batch_unsupported or not batchable(file, ctx.chunk_bytes):
                        await work.send(file)
                        del pending[0]
                        continue
                    taken = await _gather(pending, receive, ctx.chunk_bytes)
                    await work.send(await read_batch(ctx, pending[:taken]))
                    del pending[:taken]
        finally:
            self._release(pending, [])

    def _release(self, files: Sequence[SyncFile], states: Sequence[FileState | None]) -> None:
        """Ends the claims on ``files``; ``states`` are the last states known, in order."""
        for index, done in enumerate(files):
            state = states[index] if index < len(states) else None
            for pass_ in self._claims.pop(done.path, []):
                pass_.file_done(done.size, state)

    # ------------------------------------------------------------ scheduling

    async def _scheduler(self, send: trio.MemorySendChannel[SyncFile]) -> None:
        """Runs a pass at start, then every interval and on every manual request."""
        with send:
            next_tick = trio.current_time()
            while True:
                self.status.next_pass_at = next_tick
                request: Pass | None = None
                with trio.move_on_at(next_tick) as timer:
                    request = await self._requests.receive()
                    if request is None:  # reconfigured: recompute the next tick
                        next_tick = min(next_tick, trio.current_time() + self._plan.interval_s)
                        continue
                if timer.cancelled_caught:
                    request = Pass(manual=False)
                    interval = self._plan.interval_s
                    # Ticks missed while a pass runs are dropped, as in Viam.
                    next_tick += interval * max(
                        1, int((trio.current_time() - next_tick) // interval) + 1
                    )
                assert request is not None
                await self._run_pass(request, send)

    async def _run_pass(self, pass_: Pass, send: trio.MemorySendChannel[SyncFile]) -> None:
        error = ""
        try:
            reason = "" if pass_.manual else await self._skip_reason()
            if reason:
                self.status.counters.skipped_ticks += 1
                LOGGER.debug("scheduled sync skipped: %s", reason)
                return
            await self._walk(pass_, send)
        except Exception as exc:
            error = f"sync pass failed: {exc}"
            LOGGER.exception("sync pass failed")
        finally:
            if pass_ in self._pending_manual:
                self._pending_manual.remove(pass_)
            pass_.end_walk(error)

    async def _skip_reason(self) -> str:
        plan = self._plan
        if plan.sync_disabled:
            return "sync_disabled"
        if plan.selective_syncer is None:
            return ""
        verdict = await self._ask_selective_syncer(plan.selective_syncer)
        self.status.selective = verdict
        return "" if verdict == "should_sync: true" else verdict

    async def _ask_selective_syncer(self, name: str) -> str:
        read = self._seams.read_sensor
        if read is None:
            return f"selective syncer {name!r}: sensors cannot be read here"
        try:
            with trio.fail_after(SENSOR_TIMEOUT_S):
                readings = await read(name)
        except KeyError:
            return f"selective syncer {name!r} is not a running sensor: scheduled sync is off"
        except trio.TooSlowError:
            return f"selective syncer {name!r} did not answer within {SENSOR_TIMEOUT_S:g} s"
        except Exception as exc:
            return f"selective syncer {name!r} failed: {exc}"
        value = readings.get("should_sync")
        if value is True:
            return "should_sync: true"
        if isinstance(value, bool):
            return "should_sync: false"
        return f"selective syncer {name!r} has no boolean 'should_sync' reading (got {value!r})"

    async def _walk(self, pass_: Pass, send: trio.MemorySendChannel[SyncFile]) -> None:
        plan, seams = self._plan, self._seams
        rules = ScanRules(
            capture_dirs=plan.capture_dirs,
            additional_sync_paths=plan.additional_sync_paths,
            file_last_modified_ns=plan.file_last_modified_ms * 1_000_000,
            tags=plan.tags,
        )
        if pass_.retry_failed:
            restored = await seams.runner.run(retry_failed, seams.fs, rules.roots)
            LOGGER.info("re-queued %d files from failed/", len(restored))
        with trio.move_on_after(ROTATE_TIMEOUT_S) as rotating:
            await seams.rotate()
        if rotating.cancelled_caught:
            LOGGER.warning("the writer did not finish its open files within %g s", ROTATE_TIMEOUT_S)
        self.status.counters.passes += 1
        self.status.last_pass_wall_ns = seams.clock.now_ns()
        found = walk_ready(
            rules, seams.fs, seams.runner, seams.clock, skip=self._claims, future=self._future
        )
        async with aclosing(found):
            async for file in found:
                await self._hand_out(pass_, file, send)

    async def _hand_out(
        self, pass_: Pass, file: SyncFile, send: trio.MemorySendChannel[SyncFile]
    ) -> None:
        """Claims ``file`` for ``pass_`` and every waiting manual pass; hands it to a worker."""
        owners = [pass_, *(p for p in self._pending_manual if p is not pass_)]
        self._claims[file.path] = owners
        for owner in owners:
            owner.add(file.size)
        try:
            await send.send(file)
        except BaseException:
            self._claims.pop(file.path, None)
            for owner in owners:
                owner.file_done(file.size, None)
            raise


async def _gather(
    pending: list[SyncFile], receive: trio.MemoryReceiveChannel[SyncFile], chunk_bytes: int
) -> int:
    """Adds the small files that follow ``pending[0]`` within ``LINGER_S`` to ``pending``.

    Returns how many leading files of ``pending`` make the batch (up to
    ``MAX_FILES`` and the byte budget). A file that does not fit (not batchable,
    or over the budget) is appended too, after the batch: the worker takes it next.
    """
    budget = batch_budget(chunk_bytes)
    size = pending[0].size
    with trio.move_on_after(LINGER_S):
        while len(pending) < MAX_FILES:
            try:
                file = await receive.receive()
            except trio.EndOfChannel:
                break
            pending.append(file)
            if not batchable(file, chunk_bytes) or size + file.size > budget:
                return len(pending) - 1
            size += file.size
    return len(pending)
