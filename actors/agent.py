"""The agent: the root of Ferry's supervision tree on a robot.

Start-up order: load and validate the config; lock each capture directory and
recover the ``.prog`` files a crash left there; open the process's single
trio-asyncio loop; then start, under the root supervisor, the capture runtime
(writer, collectors), the sync actor, the retention actor, the config watcher
and the local API.
Cancelling ``run`` stops them in reverse order, so collectors stop, the writer
drains and every open ``.prog`` is finished as ``.capture``.

The agent's inputs (``AgentOptions``, ``InvalidConfig``, re-exported here) are in
``actors._agent_options``; the parts of its status report, in ``actors._agent_status``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors._agent_options import AgentOptions, InvalidConfig
from actors._agent_status import (
    collectors_status,
    disk_status,
    pending_files,
    process_status,
    writer_status,
)
from actors.adapters.aio import open_aio_loop
from actors.adapters.grpc_local_api import LocalApi
from actors.capture import CaptureRuntime
from actors.config import ConfigError, default_ferry_home
from actors.config_watcher import ConfigWatcher
from actors.fleet.cache import ConfigCache
from actors.fleet.compose import Bootstrap, compose, read_bootstrap
from actors.fleet.source import CloudConfigSource
from actors.recovery import CaptureDirLock, recover_capture_dir
from actors.retention import RetentionActor, RetentionSeams
from actors.supervisor import ChildSpec, Supervisor
from actors.sync.actor import SyncActor, SyncSeams

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from actors.capture import CaptureSeams
    from actors.codec import JsonObject, JsonValue
    from actors.config_plan import AgentPlan
    from actors.fleet.ports import CloudDoc
    from actors.plan import CapturePlan
    from actors.sync.actor import Links
    from actors.sync.plan import SyncPlan

LOGGER = logging.getLogger("ferry.agent")

__all__ = ["Agent", "AgentOptions", "InvalidConfig"]


@final
class Agent:
    """One Ferry agent process.

    Example::

        agent = Agent(options, seams)
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
    """

    def __init__(self, options: AgentOptions, seams: CaptureSeams) -> None:
        self._options = options
        self._seams = seams
        self.runtime = CaptureRuntime(seams)
        self.sync: SyncActor | None = None
        self.retention: RetentionActor | None = None
        self._root = Supervisor("root", rng=seams.rng, intensity=3, period=60.0)
        self._watcher: ConfigWatcher | None = None
        # Held from first use of a capture directory until the agent stops.
        self._locks: dict[Path, CaptureDirLock] = {}
        self.config_error = ""
        self.fleet: CloudConfigSource | None = None
        self._bootstrap: Bootstrap | None = None
        self.api_port = 0
        self._started_wall = 0

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Recovers, starts every actor, reports ready, and runs until cancelled.

        Raises:
            InvalidConfig: the config file is unreadable or invalid at start-up.
            CaptureDirLocked: another agent owns a capture directory.
        """
        path = self._options.config_path
        text = await self._seams.runner.run(_read_text, path)
        self._started_wall = self._seams.clock.now_ns()
        # The asyncio bridge is only needed by gRPC; the simulator runs without it.
        grpc_sync = self._options.sync_connect is not None and self._options.aio
        uses_grpc = self._options.serve_api or grpc_sync or self._options.config_link is not None
        loop = open_aio_loop() if uses_grpc else contextlib.nullcontext()
        try:
            async with loop:
                try:
                    plan = await self._initial_plan(text)
                    await self._prepare_dirs(plan.capture)
                    await self._run_actors(plan, text, task_status=task_status)
                finally:
                    if self.fleet is not None:  # its channel lives in the aio loop
                        with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                            await self.fleet.close()
        finally:
            for lock in self._locks.values():
                lock.release()
            self._locks.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_actors(
        self, plan: AgentPlan, text: str, *, task_status: trio.TaskStatus[None]
    ) -> NoReturn:
        path = self._options.config_path
        self._watcher = ConfigWatcher(
            path,
            self._seams.runner,
            self.reconfigure,
            initial=text,
            poll_s=self._options.config_poll_s,
        )
        children = [ChildSpec("capture", functools.partial(self.runtime.run, plan.capture))]
        if self._options.sync_connect is not None:
            self.sync = SyncActor(plan.sync, self._sync_seams(self._options.sync_connect))
            children.append(ChildSpec("sync", self.sync.run))
        self.retention = RetentionActor(plan.retention, self._retention_seams())
        children.append(ChildSpec("retention", self.retention.run))
        children.append(ChildSpec("config", self._watcher.run))
        if self.fleet is not None:
            children.append(ChildSpec("cloud-config", self.fleet.run))
        if self._options.serve_api:
            api = LocalApi(
                self._options.api_host,
                self._options.api_port,
                status=self.status,
                sync=self.manual_sync if self.sync is not None else None,
            )
            children.append(ChildSpec("api", functools.partial(self._serve_api, api)))
        async with trio.open_nursery() as nursery:
            await nursery.start(self._root.run, children)
            LOGGER.info("agent running: %d collectors", len(plan.capture.collectors))
            task_status.started()
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _initial_plan(self, text: str) -> AgentPlan:
        """The plan of a local config, or of the cloud's (else the cached) for a cloud one."""
        path = self._options.config_path
        try:
            bootstrap = read_bootstrap(text, source=str(path))
        except ConfigError as exc:
            raise InvalidConfig(str(exc)) from exc
        if bootstrap is None:
            return self._plan_or_raise(text)
        if bootstrap.cloud is None or self._options.config_link is None:
            raise InvalidConfig(f"{path}: config_source 'cloud' needs a cloud section and gRPC")
        self._bootstrap = bootstrap
        home = self._options.config_cache_dir or default_ferry_home() / "config-cache"
        part = bootstrap.cloud.part_id
        self.fleet = CloudConfigSource(
            self._options.config_link(bootstrap.cloud),
            part,
            ConfigCache(home, part, self._seams.fs, self._seams.runner),
            self._apply_cloud,
            self._pending_backlog,
            self._seams.rng,
        )
        return await self.fleet.initial(self._cloud_plan)

    def _cloud_plan(self, doc: CloudDoc | None) -> AgentPlan:
        """The plan of a cloud config (``None``: the bootstrap alone) with the bootstrap's cloud."""
        assert self._bootstrap is not None
        source = (
            f"cloud config {doc.revision} ({doc.label})" if doc else str(self._options.config_path)
        )
        composed = compose(self._bootstrap, doc.text if doc else None, source=source)
        try:
            return self._options.load_plan(composed, self._options.config_path)
        except ConfigError as exc:
            raise InvalidConfig(f"{source}:\n{exc}") from exc

    def reload(self) -> None:
        """Re-reads the config file now (SIGHUP)."""
        if self._watcher is not None:
            self._watcher.kick()

    async def reconfigure(self, text: str) -> None:
        """Validates the config file's new ``text`` and applies it live; an invalid
        config changes nothing. For a cloud-configured robot, ``text`` is the
        bootstrap: its cloud section is combined with the cloud's config."""
        if self._bootstrap is not None:
            try:
                bootstrap = read_bootstrap(text, source=str(self._options.config_path))
            except ConfigError as exc:
                self._reject(str(exc))
                return
            old = self._bootstrap.cloud
            if bootstrap is None or bootstrap.cloud is None:
                self._reject("config_source changed from 'cloud': restart ferry to apply it")
                return
            if old is not None and bootstrap.cloud.part_id != old.part_id:
                self._reject("cloud.part_id changed: restart ferry to apply it")
                return
            self._bootstrap = bootstrap
            if bootstrap.cloud != old and self.fleet is not None and self._options.config_link:
                await self.fleet.replace_link(self._options.config_link(bootstrap.cloud))
            applied = self.fleet.applied if self.fleet is not None else None
            text = compose(bootstrap, applied.text if applied else None, source="cloud config")
        await self._apply_text(text)

    async def _apply_cloud(self, doc: CloudDoc) -> str:
        """Applies a config from the cloud; returns why it was refused, or ``""``."""
        try:
            plan = self._cloud_plan(doc)
        except InvalidConfig as exc:
            return str(exc)
        await self._apply_plan(plan)
        return ""

    async def _apply_text(self, text: str) -> None:
        try:
            plan = self._options.load_plan(text, self._options.config_path)
        except Exception as exc:
            self._reject(str(exc))
            return
        await self._apply_plan(plan)

    def _reject(self, why: str) -> None:
        self.config_error = why
        LOGGER.error("new config rejected, keeping the running one:\n%s", why)

    async def _apply_plan(self, plan: AgentPlan) -> None:
        self.config_error = ""
        await self._prepare_dirs(plan.capture)
        await self.runtime.apply(plan.capture)
        if self.sync is not None:
            await self.sync.apply(plan.sync)
        if self.retention is not None:
            await self.retention.apply(plan.retention)

    async def _pending_backlog(self) -> tuple[int, int]:
        dirs = sorted(self.runtime.plan.capture_dirs)
        return await self._seams.runner.run(pending_files, dirs)

    async def manual_sync(self, request: Mapping[str, JsonValue]) -> JsonObject:
        """A manual sync (local API ``Sync``): ``{"wait": bool, "retry_failed": bool}``.

        Raises:
            RuntimeError: sync is not running, or the pass could not run (the message says why).
        """
        if self.sync is None:
            raise RuntimeError("sync is not running in this agent")
        result = await self.sync.sync_now(
            wait=request.get("wait") is True, retry_failed=request.get("retry_failed") is True
        )
        if result.error:
            raise RuntimeError(result.error)
        return {
            "files": result.files,
            "confirmed": result.confirmed,
            "failed": result.failed,
            "left": result.left,
        }

    def _retention_seams(self) -> RetentionSeams:
        seams = self._seams
        return RetentionSeams(
            fs=seams.fs,
            runner=seams.runner,
            clock=seams.clock,
            disk=self._options.disk,
            in_progress=self._in_progress,
            pause_capture=self._pause_capture,
        )

    def _in_progress(self) -> frozenset[Path]:
        """Files sync holds (retention must not delete them), plus the open ``.prog`` files."""
        syncing = self.sync.in_progress() if self.sync is not None else frozenset()
        store = self.runtime.store
        return syncing | frozenset(store.open_files() if store is not None else ())

    def _pause_capture(self, paused: bool) -> None:
        if self.runtime.writer is not None:
            self.runtime.writer.pause(paused)

    def _sync_seams(
        self, connect: Callable[[SyncPlan], AbstractAsyncContextManager[Links]]
    ) -> SyncSeams:
        seams = self._seams
        return SyncSeams(
            fs=seams.fs,
            runner=seams.runner,
            clock=seams.clock,
            rng=seams.rng,
            connect=connect,
            rotate=self.runtime.rotate,
            read_sensor=self.runtime.read_sensor,
            on_point=self._options.sync_on_point,
            observe=self._options.sync_observe,
        )

    async def status(self) -> JsonObject:
        """Everything ``ferry status`` shows, as JSON-like data."""
        collectors = collectors_status(self.runtime, trio.current_time())
        dirs = sorted(self.runtime.plan.capture_dirs)
        pending = await self._pending_backlog()
        disk = await disk_status(self._seams.runner, self._options.disk, dirs)
        return {
            "agent": process_status(
                self._options.config_path,
                self.config_error,
                self._started_wall,
                self._seams.component_errors,
                self._root,
            ),
            "collectors": collectors,
            "writer": writer_status(self.runtime),
            "pending": {"files": pending[0], "bytes": pending[1]},
            "disk": disk,
            "config": self.fleet.render_status() if self.fleet else {"source": "local"},
            "sync": self.sync.render_status() if self.sync is not None else {},
            "retention": self.retention.render_status() if self.retention is not None else {},
        }

    async def _serve_api(self, api: LocalApi, *, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            self.api_port = await nursery.start(api.run)
            task_status.started()

    def _plan_or_raise(self, text: str) -> AgentPlan:
        try:
            return self._options.load_plan(text, self._options.config_path)
        except Exception as exc:
            raise InvalidConfig(str(exc)) from exc

    async def _prepare_dirs(self, plan: CapturePlan) -> None:
        """Locks and recovers each capture directory the first time it is used."""
        for directory in sorted(plan.capture_dirs):
            if directory in self._locks:
                continue
            lock = CaptureDirLock(directory)
            await self._seams.runner.run(lock.acquire)
            self._locks[directory] = lock
            report = await self._seams.runner.run(recover_capture_dir, directory, self._seams.fs)
            if report.recovered or report.failed or report.removed_empty or report.left:
                LOGGER.warning(
                    "%s: recovered %d files (%d records), removed %d empty, moved %d to "
                    "failed/, left %d for the next start",
                    directory,
                    len(report.recovered),
                    report.records,
                    report.removed_empty,
                    len(report.failed),
                    len(report.left),
                )


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise InvalidConfig(f"{path}: cannot read config: {exc.strerror}") from None
