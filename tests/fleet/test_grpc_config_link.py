"""``GrpcConfigLink`` against a real ``CloudServer``: fetch, watch, tenancy, reports, shutdown.

Guarantees checked: ``get`` is ``None`` for a part with no config and
otherwise the merged config exactly as the store has it; a watch sends the
current config first when the robot's revision differs, only heartbeats when
it is the same, and a change written by another store instance (the CLI, in
another process) within a couple of seconds; a key never receives another
organization's config nor another part's (a part-scoped key); reports land in
``part_statuses``; stopping the server ends an open watch promptly.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import trio

from actors.adapters.aio import open_aio_loop
from actors.adapters.cloud_link import CloudLink
from actors.adapters.grpc_config_link import GrpcConfigLink
from actors.errors import OfflineError, PermanentError, SyncError, TransientError
from actors.fleet.ports import CloudDoc, ConfigReport
from cloud.fleet.merge import canonical_json
from cloud.store.sqlite import SqliteStore
from tests.cloud.fleet.test_merge import sensor
from tests.sync.cloudfixture import ORG, PART, running_cloud

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from actors.codec import JsonObject
    from actors.config._resolve import CloudSettings
    from tests.sync.cloudfixture import ThreadedCloud

HEARTBEAT_S = 0.2
OTHER_ORG = "org-b"
OTHER_PART = "robot-2-main"


def part_config(hz: float) -> JsonObject:
    return {
        "components": [sensor("temp", hz)],
        "services": [{"name": "dm", "api": "rdk:service:data_manager", "attributes": {}}],
    }


def expected(cloud: ThreadedCloud, part: str = PART, org: str = ORG) -> CloudDoc:
    merged = cloud.server.store.merged_config(org, part)
    assert merged is not None
    return CloudDoc(merged.revision, merged.label, canonical_json(merged.document))


@contextlib.contextmanager
def cloud_with_config(tmp_path: Path, *, shutdown_grace_s: float = 2.0) -> Iterator[ThreadedCloud]:
    with running_cloud(
        tmp_path, config_heartbeat_s=HEARTBEAT_S, shutdown_grace_s=shutdown_grace_s
    ) as cloud:
        cloud.server.store.put_part_config(ORG, PART, part_config(2.0))
        yield cloud


@contextlib.asynccontextmanager
async def config_link(settings: CloudSettings) -> AsyncIterator[GrpcConfigLink]:
    """A link inside the aio loop, closed on exit; every test call is bounded."""
    async with open_aio_loop():
        link = GrpcConfigLink(CloudLink(settings, call_timeout_s=5))
        try:
            with trio.fail_after(10):
                yield link
        finally:
            await link.close()


@dataclass
class Watcher:
    """Collects what a watch delivers (``None``: a heartbeat), with the time it came."""

    updates: list[tuple[float, CloudDoc | None]] = field(default_factory=list)
    ended: BaseException | bool = False
    _changed: trio.Event = field(default_factory=trio.Event)

    async def on_update(self, doc: CloudDoc | None) -> None:
        self.updates.append((time.monotonic(), doc))
        self._changed.set()
        self._changed = trio.Event()

    @property
    def docs(self) -> list[CloudDoc]:
        return [doc for _, doc in self.updates if doc is not None]

    @property
    def heartbeats(self) -> int:
        return sum(1 for _, doc in self.updates if doc is None)

    async def until(self, done: Callable[[], bool], timeout_s: float = 3.0) -> None:
        """Waits until ``done()`` is true (or fails after ``timeout_s``)."""
        with trio.fail_after(timeout_s):
            while not done():
                await self._changed.wait()

    async def run(self, link: GrpcConfigLink, part: str, known: str) -> None:
        try:
            await link.watch(part, known, self.on_update)
            self.ended = True
        except SyncError as exc:
            self.ended = exc


# -------------------------------------------------------------------- get


async def test_get_is_none_without_a_config_then_the_merged_config(tmp_path: Path) -> None:
    with running_cloud(tmp_path) as cloud:
        async with config_link(cloud.settings()) as link:
            assert await link.get(PART) is None
            version, merged = cloud.server.store.put_part_config(ORG, PART, part_config(2.0))
            doc = await link.get(PART)
    assert doc == expected(cloud)
    assert doc.revision == merged.revision
    assert doc.label == merged.label
    assert f"v{version}" in doc.label
    assert doc.text == canonical_json(merged.document)


# -------------------------------------------------------------------- watch


async def test_watch_sends_the_current_config_first_when_the_robots_differs(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:
        current = expected(cloud)
        async with config_link(cloud.settings()) as link, trio.open_nursery() as nursery:
            watcher = Watcher()
            nursery.start_soon(watcher.run, link, PART, "rev-the-robot-runs")
            await watcher.until(lambda: watcher.heartbeats >= 2)
            nursery.cancel_scope.cancel()
    assert watcher.updates[0][1] == current
    assert watcher.docs == [current]


async def test_watch_sends_only_heartbeats_when_the_robot_runs_the_current_config(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:
        current = expected(cloud)
        async with config_link(cloud.settings()) as link, trio.open_nursery() as nursery:
            watcher = Watcher()
            nursery.start_soon(watcher.run, link, PART, current.revision)
            await watcher.until(lambda: watcher.heartbeats >= 3)
            nursery.cancel_scope.cancel()
    assert watcher.docs == []
    times = [t for t, _ in watcher.updates]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(HEARTBEAT_S / 2 <= gap <= HEARTBEAT_S * 10 for gap in gaps), gaps


async def test_a_change_written_by_another_store_instance_reaches_an_open_watch(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:
        first = expected(cloud)
        async with config_link(cloud.settings()) as link, trio.open_nursery() as nursery:
            watcher = Watcher()
            nursery.start_soon(watcher.run, link, PART, first.revision)
            await watcher.until(lambda: watcher.heartbeats >= 1)
            cli = SqliteStore(cloud.server.store.data_dir, sweep=False)
            try:
                _, merged = cli.put_part_config(ORG, PART, part_config(5.0))
            finally:
                cli.close()
            written = time.monotonic()
            await watcher.until(lambda: len(watcher.docs) >= 1, timeout_s=2.0)
            arrived = next(t for t, doc in watcher.updates if doc is not None)
            nursery.cancel_scope.cancel()
        assert watcher.docs == [expected(cloud)]
    assert watcher.docs[0].revision == merged.revision != first.revision
    assert arrived - written < 2.0


async def test_watch_sends_each_change_once_in_order(tmp_path: Path) -> None:
    with cloud_with_config(tmp_path) as cloud:
        store = cloud.server.store
        async with config_link(cloud.settings()) as link, trio.open_nursery() as nursery:
            watcher = Watcher()
            nursery.start_soon(watcher.run, link, PART, "")
            await watcher.until(lambda: len(watcher.docs) == 1)
            revisions = [watcher.docs[0].revision]
            for hz in (3.0, 4.0):
                _, merged = store.put_part_config(ORG, PART, part_config(hz))
                revisions.append(merged.revision)
                await watcher.until(lambda: len(watcher.docs) == len(revisions))
            await watcher.until(lambda: watcher.updates[-1][1] is None)  # then heartbeats
            nursery.cancel_scope.cancel()
    assert [d.revision for d in watcher.docs] == revisions


async def test_a_stream_silent_past_the_silence_limit_is_offline(tmp_path: Path) -> None:
    with running_cloud(tmp_path, config_heartbeat_s=30.0) as cloud:  # no heartbeat in time
        cloud.server.store.put_part_config(ORG, PART, part_config(2.0))
        current = expected(cloud)
        async with open_aio_loop():
            link = GrpcConfigLink(
                CloudLink(cloud.settings(), call_timeout_s=5), silence_limit_s=0.3
            )
            try:
                watcher = Watcher()
                start = time.monotonic()
                with trio.fail_after(3):
                    await watcher.run(link, PART, current.revision)
                took = time.monotonic() - start
            finally:
                await link.close()
    assert isinstance(watcher.ended, OfflineError), watcher.ended
    assert watcher.updates == []
    assert 0.3 <= took < 2.0


# -------------------------------------------------------------------- tenancy


async def test_another_orgs_key_is_refused_a_part_of_org_a_and_never_gets_its_config(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:
        async with config_link(cloud.settings()) as link:
            assert await link.get(PART) == expected(cloud)  # the robot of org-a was seen
        async with config_link(cloud.settings(org=OTHER_ORG)) as intruder:
            with pytest.raises(TransientError, match="PERMISSION_DENIED") as got:
                await intruder.get(PART)
            assert not isinstance(got.value, OfflineError | PermanentError)
            watcher = Watcher()
            await watcher.run(intruder, PART, "")
            with pytest.raises(TransientError, match="PERMISSION_DENIED"):
                await intruder.report(PART, ConfigReport(None, error="squatting"))
        (status,) = cloud.server.store.part_statuses(ORG)
        assert status.error == ""
        assert cloud.server.store.part_statuses(OTHER_ORG) == []
    assert isinstance(watcher.ended, TransientError)
    assert "PERMISSION_DENIED" in str(watcher.ended)
    assert watcher.updates == []


async def test_another_orgs_probe_cannot_take_a_part_whose_config_is_in_org_a(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:  # config set by the CLI; robot not yet seen
        async with config_link(cloud.settings(org=OTHER_ORG)) as intruder:
            with contextlib.suppress(TransientError):  # refused, ideally; never the config
                assert await intruder.get(PART) is None
        # The part still belongs to org-a: its robot gets the config, its operator edits it.
        async with config_link(cloud.settings()) as link:
            assert await link.get(PART) == expected(cloud)
        cloud.server.store.put_part_config(ORG, PART, part_config(3.0))


async def test_another_orgs_probe_never_receives_the_config(tmp_path: Path) -> None:
    with cloud_with_config(tmp_path) as cloud:  # config set by the CLI; robot not yet seen
        async with config_link(cloud.settings(org=OTHER_ORG)) as intruder:
            try:
                got = await intruder.get(PART)
            except TransientError:
                got = None
            assert got is None
            watcher = Watcher()
            with trio.move_on_after(4 * HEARTBEAT_S):
                await watcher.run(intruder, PART, "")
    assert watcher.docs == []


async def test_a_part_scoped_key_is_refused_every_other_part(tmp_path: Path) -> None:
    with cloud_with_config(tmp_path) as cloud:
        cloud.server.store.put_part_config(ORG, OTHER_PART, part_config(9.0))
        async with config_link(cloud.settings(key_part=PART)) as link:
            assert await link.get(PART) == expected(cloud)
            with pytest.raises(TransientError, match=r"PERMISSION_DENIED.*scoped to part"):
                await link.get(OTHER_PART)
            watcher = Watcher()
            await watcher.run(link, OTHER_PART, "")
            with pytest.raises(TransientError, match="PERMISSION_DENIED"):
                await link.report(OTHER_PART, ConfigReport(None))
        statuses = {s.part_id: s for s in cloud.server.store.part_statuses(ORG)}
        assert statuses[OTHER_PART].last_seen_ns is None
    assert isinstance(watcher.ended, TransientError)
    assert watcher.updates == []


# -------------------------------------------------------------------- reports


async def test_reports_are_recorded_with_what_runs_what_was_refused_and_the_backlog(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:
        before = time.time_ns()
        async with config_link(cloud.settings()) as link:
            doc = await link.get(PART)
            assert doc is not None
            report = ConfigReport(doc, "rev-refused", "components.temp: bad", 7, 123_456)
            await link.report(PART, report)
            (status,) = cloud.server.store.part_statuses(ORG)
            assert status.last_seen_ns is not None
            assert status.last_seen_ns >= before
            assert (status.applied_revision, status.applied_label) == (doc.revision, doc.label)
            assert status.applied_ns is not None
            assert status.current_revision == doc.revision
            assert (status.rejected_revision, status.error) == report_refusal(report)
            assert (status.pending_files, status.pending_bytes) == (7, 123_456)
            # A later report replaces it: nothing refused any more, backlog drained.
            await link.report(PART, ConfigReport(doc))
        (status,) = cloud.server.store.part_statuses(ORG)
    assert (status.rejected_revision, status.error) == ("", "")
    assert (status.pending_files, status.pending_bytes) == (0, 0)
    assert status.applied_revision == doc.revision


async def test_a_report_with_nothing_applied_clears_the_applied_revision(
    tmp_path: Path,
) -> None:
    with cloud_with_config(tmp_path) as cloud:
        async with config_link(cloud.settings()) as link:
            await link.report(PART, ConfigReport(None, "rev-x", "refused", 1, 2))
        (status,) = cloud.server.store.part_statuses(ORG)
    assert (status.applied_revision, status.applied_label, status.applied_ns) == ("", "", None)
    assert (status.rejected_revision, status.error) == ("rev-x", "refused")
    assert status.last_seen_ns is not None


def report_refusal(report: ConfigReport) -> tuple[str, str]:
    return report.rejected_revision, report.error


# -------------------------------------------------------------------- shutdown


@dataclass
class Stopped:
    """What stopping the server did to an open watch."""

    watch_ended_after_s: float
    stopped_after_s: float
    ended: BaseException | bool


def collect_leaks() -> list[str]:
    """Collects garbage; returns the unclosed sockets and transports it reported."""
    leaks: list[str] = []
    old_hook = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        leaks.append(repr(unraisable.exc_value))

    sys.unraisablehook = hook
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            gc.collect()
    finally:
        sys.unraisablehook = old_hook
    return leaks + [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def stop_server_during_a_watch(tmp_path: Path) -> Stopped:
    """Opens a watch, stops the server (10 s grace) from a thread, times both.

    Nothing of the server outlives the call, so ``collect_leaks()`` afterwards sees
    whatever the server left open.
    """
    stack = contextlib.ExitStack()
    cloud = stack.enter_context(cloud_with_config(tmp_path, shutdown_grace_s=10.0))
    try:
        current = expected(cloud)
        async with config_link(cloud.settings()) as link, trio.open_nursery() as nursery:
            watcher = Watcher()
            done = trio.Event()

            async def watch() -> None:
                await watcher.run(link, PART, current.revision)
                done.set()

            nursery.start_soon(watch)
            await watcher.until(lambda: watcher.heartbeats >= 1)
            start = time.monotonic()
            stopped = trio.Event()

            async def stop() -> None:
                await trio.to_thread.run_sync(stack.close)
                stopped.set()

            nursery.start_soon(stop)
            with trio.fail_after(3.0):
                await done.wait()
            watch_ended_after = time.monotonic() - start
            with trio.fail_after(9.0):
                await stopped.wait()
            stopped_after = time.monotonic() - start
    finally:
        stack.close()
    return Stopped(watch_ended_after, stopped_after, watcher.ended)


async def test_stopping_the_server_ends_an_open_watch_promptly(tmp_path: Path) -> None:
    stopped = await stop_server_during_a_watch(tmp_path)
    collect_leaks()  # what stopping leaves open is test_..._closes_the_connections_...'s concern
    assert stopped.ended is True or isinstance(stopped.ended, OfflineError), stopped.ended
    assert stopped.watch_ended_after_s < 3.0
    assert stopped.stopped_after_s < 5.0  # far below the 10 s grace: nothing left to drain


async def test_stopping_the_server_closes_the_connections_of_robots_still_connected(
    tmp_path: Path,
) -> None:
    """grpclib's Server.close leaves accepted connections open; CloudServer.stop closes them."""
    await stop_server_during_a_watch(tmp_path)
    assert collect_leaks() == []
