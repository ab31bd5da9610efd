"""``CloudConfigSource``: start-up, watching, refusals, caching, reports and backoff.

Guarantees checked, against an in-memory ``ConfigLink`` under Trio's autojump
clock with a real ``ConfigCache`` on disk: start-up runs the cloud's config
when it answers (cached, marked applied); an unreachable or silent cloud
(5 s) starts from the cache; a config the agent refuses is recorded with the
validator's message, not applied, not asked for again, and the last good one
stays running and cached; an applied update is cached and reported at once,
with the sync backlog; watch failures back off (0.2 s doubling, capped at one
hour) and "unreachable" is logged once per change of state; a corrupt cache is
logged and ignored.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import trio

from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import InlineRunner
from actors.errors import OfflineError
from actors.fleet.cache import ConfigCache
from actors.fleet.ports import CloudDoc, ConfigReport
from actors.fleet.source import INITIAL_TIMEOUT_S, REPORT_INTERVAL_S, CloudConfigSource
from actors.sync.backoff import INITIAL_DELAY_S, MAX_DELAY_S

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

PART = "robot-1-main"
DOC1 = CloudDoc("rev-1", "part robot-1-main v1", '{"components": []}')
DOC2 = CloudDoc("rev-2", "part robot-1-main v2", '{"components": [1]}')
BAD = CloudDoc("rev-bad", "part robot-1-main v3", '{"components": "oops"}')
CACHED = CloudDoc("rev-cached", "part robot-1-main v0", '{"components": [0]}')
REFUSAL = "components: expected a list"
UNREACHABLE = "cloud unreachable"

HANG = "hang"
"""A ``get`` script step: never answer."""

# One watch call's script: each step is delivered in order; a float sleeps that
# long, an exception is raised (the call fails); reaching the end returns (the
# server ended the stream cleanly).
Step = CloudDoc | None | float | Exception


@dataclass
class FakeLink:
    """A scripted ``ConfigLink`` that records every call with the Trio time it was made."""

    get_result: CloudDoc | Exception | str | None = None
    sessions: list[list[Step]] = field(default_factory=list)
    watches: list[tuple[float, str]] = field(default_factory=list)
    reports: list[tuple[float, ConfigReport]] = field(default_factory=list)
    gets: int = 0
    closed: bool = False
    exhausted: trio.Event = field(default_factory=trio.Event)
    reported: trio.Event = field(default_factory=trio.Event)

    async def get(self, part_id: str) -> CloudDoc | None:
        assert part_id == PART
        self.gets += 1
        await trio.lowlevel.checkpoint()
        result = self.get_result
        if result == HANG:
            await trio.sleep_forever()
        if isinstance(result, Exception):
            raise result
        assert not isinstance(result, str)
        return result

    async def watch(
        self,
        part_id: str,
        known_revision: str,
        on_update: Callable[[CloudDoc | None], Awaitable[None]],
    ) -> None:
        assert part_id == PART
        self.watches.append((trio.current_time(), known_revision))
        await trio.lowlevel.checkpoint()
        if not self.sessions:
            self.exhausted.set()
            await trio.sleep_forever()
        for step in self.sessions.pop(0):
            if isinstance(step, Exception):
                raise step
            if isinstance(step, float):
                await trio.sleep(step)
            else:
                await on_update(step)

    async def report(self, part_id: str, report: ConfigReport) -> None:
        assert part_id == PART
        self.reports.append((trio.current_time(), report))
        self.reported.set()
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        self.closed = True


@dataclass
class Agent:
    """The agent's side: what it applied, refuses ``refuse``, and a sync backlog."""

    refuse: frozenset[str] = frozenset({BAD.revision})
    applied: list[CloudDoc] = field(default_factory=list)
    backlog: tuple[int, int] = (0, 0)

    async def apply(self, doc: CloudDoc) -> str:
        await trio.lowlevel.checkpoint()
        if doc.revision in self.refuse:
            return REFUSAL
        self.applied.append(doc)
        return ""

    async def pending(self) -> tuple[int, int]:
        await trio.lowlevel.checkpoint()
        return self.backlog

    def plan_for(self, doc: CloudDoc | None) -> str:
        if doc is not None and doc.revision in self.refuse:
            raise ValueError(REFUSAL)
        return f"plan {doc.revision if doc else 'bootstrap'}"


def cache_of(tmp_path: Path) -> ConfigCache:
    return ConfigCache(tmp_path / "config-cache", PART, OsFileSystem(), InlineRunner())


def make_source(tmp_path: Path, link: FakeLink, agent: Agent, seed: int = 0) -> CloudConfigSource:
    return CloudConfigSource(
        link, PART, cache_of(tmp_path), agent.apply, agent.pending, random.Random(seed)
    )


async def run_until_exhausted(source: CloudConfigSource, link: FakeLink) -> None:
    """Runs the source until every scripted watch session is used up, then stops it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(source.run)
        await link.exhausted.wait()
        await trio.sleep(0.01)  # let the report loop send what the last change caused
        nursery.cancel_scope.cancel()


def unreachable_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1 for r in caplog.records if r.levelno == logging.WARNING and UNREACHABLE in r.message
    )


# -------------------------------------------------------------------- start-up


async def test_startup_runs_caches_and_marks_applied_the_clouds_config(
    tmp_path: Path, autojump_clock: object
) -> None:
    link, agent = FakeLink(get_result=DOC1), Agent()
    source = make_source(tmp_path, link, agent)
    plan = await source.initial(agent.plan_for)
    assert plan == "plan rev-1"
    assert source.applied == DOC1
    assert source.from_cache is False
    assert source.online is True
    assert (source.rejected_revision, source.error) == ("", "")
    cache = cache_of(tmp_path)
    assert cache.path.exists()
    assert list(cache.path.parent.glob("*.prog")) == []
    assert await cache.load() == DOC1
    status = source.render_status()
    assert status["applied_revision"] == "rev-1"
    assert status["applied_label"] == DOC1.label
    assert status["from_cache"] is False
    assert status["online"] is True


async def test_startup_replaces_a_stale_prog_file_left_by_a_crash(
    tmp_path: Path, autojump_clock: object
) -> None:
    cache = cache_of(tmp_path)
    cache.path.parent.mkdir(parents=True)
    stale = cache.path.with_name(cache.path.name + ".prog")
    stale.write_text("half a write")
    link, agent = FakeLink(get_result=DOC1), Agent()
    await make_source(tmp_path, link, agent).initial(agent.plan_for)
    assert not stale.exists()
    assert await cache.load() == DOC1


async def test_startup_with_the_cloud_offline_starts_from_the_cache(
    tmp_path: Path, autojump_clock: object
) -> None:
    await cache_of(tmp_path).save(CACHED)
    link, agent = FakeLink(get_result=OfflineError("connection refused")), Agent()
    source = make_source(tmp_path, link, agent)
    assert await source.initial(agent.plan_for) == "plan rev-cached"
    assert source.applied == CACHED
    assert source.from_cache is True
    status = source.render_status()
    assert status["online"] is False
    assert status["from_cache"] is True
    assert "connection refused" in str(status["offline_reason"])


async def test_startup_gives_a_silent_cloud_5_s_then_starts_from_the_cache(
    tmp_path: Path, autojump_clock: object
) -> None:
    await cache_of(tmp_path).save(CACHED)
    link, agent = FakeLink(get_result=HANG), Agent()
    source = make_source(tmp_path, link, agent)
    t0 = trio.current_time()
    assert await source.initial(agent.plan_for) == "plan rev-cached"
    assert trio.current_time() - t0 == pytest.approx(INITIAL_TIMEOUT_S, abs=0.01)
    assert source.from_cache is True
    assert source.online is False
    assert "no answer within 5 s" in source.last_offline_reason


async def test_startup_with_the_cloud_offline_and_no_cache_plans_the_bootstrap_alone(
    tmp_path: Path, autojump_clock: object
) -> None:
    link, agent = FakeLink(get_result=OfflineError("down")), Agent()
    source = make_source(tmp_path, link, agent)
    assert await source.initial(agent.plan_for) == "plan bootstrap"
    assert source.applied is None
    assert source.online is False


async def test_startup_refusing_the_clouds_config_falls_back_to_the_cache(
    tmp_path: Path, autojump_clock: object
) -> None:
    await cache_of(tmp_path).save(CACHED)
    link, agent = FakeLink(get_result=BAD), Agent()
    source = make_source(tmp_path, link, agent)
    assert await source.initial(agent.plan_for) == "plan rev-cached"
    assert source.applied == CACHED
    assert source.from_cache is True
    assert await cache_of(tmp_path).load() == CACHED  # the refused config is never cached


async def test_startup_refusal_stays_recorded_when_the_cache_is_used(
    tmp_path: Path, autojump_clock: object
) -> None:
    await cache_of(tmp_path).save(CACHED)
    link, agent = FakeLink(get_result=BAD, sessions=[[None]]), Agent()
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)
    assert link.watches[0][1] == BAD.revision
    assert (source.rejected_revision, source.error) == (BAD.revision, REFUSAL)
    assert link.reports[0][1] == ConfigReport(CACHED, BAD.revision, REFUSAL)


async def test_startup_refusal_with_no_cache_is_recorded_and_plans_the_bootstrap(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ferry.config")
    link, agent = FakeLink(get_result=BAD, sessions=[[None]]), Agent()
    source = make_source(tmp_path, link, agent)
    assert await source.initial(agent.plan_for) == "plan bootstrap"
    assert source.applied is None
    assert (source.rejected_revision, source.error) == (BAD.revision, REFUSAL)
    assert any(REFUSAL in r.message and BAD.revision in r.message for r in caplog.records)
    assert not cache_of(tmp_path).path.exists()
    await run_until_exhausted(source, link)
    assert link.watches[0][1] == BAD.revision  # the cloud does not resend it
    assert agent.applied == []
    assert link.reports[0][1] == ConfigReport(None, BAD.revision, REFUSAL)


# -------------------------------------------------------------------- updates


async def test_a_refused_update_is_reported_not_applied_and_not_asked_for_again(
    tmp_path: Path, autojump_clock: object
) -> None:
    link, agent = FakeLink(get_result=DOC1, sessions=[[BAD, OfflineError("reset")], []]), Agent()
    agent.backlog = (2, 300)
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)
    assert agent.applied == []  # BAD reached apply(), which refused it
    assert source.applied == DOC1  # the running config stays
    assert (source.rejected_revision, source.error) == (BAD.revision, REFUSAL)
    assert [known for _, known in link.watches] == [DOC1.revision, BAD.revision, BAD.revision]
    assert link.reports[-1][1] == ConfigReport(DOC1, BAD.revision, REFUSAL, 2, 300)
    assert await cache_of(tmp_path).load() == DOC1
    assert source.render_status()["rejected_revision"] == BAD.revision


async def test_a_refused_update_resent_by_the_cloud_is_not_applied_again(
    tmp_path: Path, autojump_clock: object
) -> None:
    link = FakeLink(get_result=DOC1, sessions=[[BAD], [BAD, None, BAD]])
    agent = Agent()
    calls: list[CloudDoc] = []

    async def apply(doc: CloudDoc) -> str:
        calls.append(doc)
        return await agent.apply(doc)

    source = CloudConfigSource(
        link, PART, cache_of(tmp_path), apply, agent.pending, random.Random(0)
    )
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)
    assert calls == [BAD]
    assert source.updates == 1


async def test_an_applied_update_is_cached_and_reported_at_once_with_the_backlog(
    tmp_path: Path, autojump_clock: object
) -> None:
    link, agent = FakeLink(get_result=DOC1, sessions=[[None, 7.0, DOC2, 100.0]]), Agent()
    agent.backlog = (3, 4096)
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    t0 = trio.current_time()
    await run_until_exhausted(source, link)
    times = [t - t0 for t, _ in link.reports]
    reports = [r for _, r in link.reports]
    # At start-up (what runs), at the change (7 s: not at the next 30 s tick), then every 30 s.
    assert reports[0] == ConfigReport(DOC1, "", "", 3, 4096)
    assert times[0] == pytest.approx(0.0, abs=0.01)
    assert reports[1] == ConfigReport(DOC2, "", "", 3, 4096)
    assert times[1] == pytest.approx(7.0, abs=0.01)
    assert times[2] == pytest.approx(7.0 + REPORT_INTERVAL_S, abs=0.01)
    assert agent.applied == [DOC2]
    assert source.applied == DOC2
    assert source.from_cache is False
    assert source.updates == 1
    assert await cache_of(tmp_path).load() == DOC2
    assert list((tmp_path / "config-cache").glob("*.prog")) == []


async def test_an_update_replaces_a_config_started_from_the_cache(
    tmp_path: Path, autojump_clock: object
) -> None:
    await cache_of(tmp_path).save(CACHED)
    link, agent = FakeLink(get_result=OfflineError("down"), sessions=[[DOC1]]), Agent()
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)
    assert link.watches[0][1] == CACHED.revision
    assert source.applied == DOC1
    assert source.from_cache is False
    assert source.online is True
    assert await cache_of(tmp_path).load() == DOC1


# -------------------------------------------------------------------- backoff


async def test_watch_failures_back_off_doubling_to_the_one_hour_cap_and_log_once(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ferry.config")
    failures = 40
    sessions: list[list[Step]] = [[OfflineError(f"refused {i}")] for i in range(failures)]
    sessions.append([None, OfflineError("dropped again")])  # one message, then a failure
    sessions.extend([[OfflineError("still down")]] * 2)
    link, agent = FakeLink(get_result=DOC1, sessions=sessions), Agent()
    source = make_source(tmp_path, link, agent, seed=7)
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)

    times = [t for t, _ in link.watches]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    first = gaps[:failures]  # after failure 1..40
    assert INITIAL_DELAY_S <= first[0] <= INITIAL_DELAY_S * 1.2
    for n, (a, b) in enumerate(itertools.pairwise(first), start=1):
        if a * 2 < MAX_DELAY_S:
            assert 2 / 1.2 <= b / a <= 2 * 1.2, (n, a, b)
    assert max(gaps) <= MAX_DELAY_S * 1.2
    assert first[-1] >= MAX_DELAY_S / 1.2  # the cap was reached
    # A message resets the count: the next failure waits 0.2 s again.
    after_reset = gaps[failures:]
    assert INITIAL_DELAY_S <= after_reset[0] <= INITIAL_DELAY_S * 1.2
    assert INITIAL_DELAY_S * 2 <= after_reset[1] <= INITIAL_DELAY_S * 2 * 1.2
    # Logged per change of state: offline, online (info), offline again; not 43 times.
    assert unreachable_warnings(caplog) == 2
    connected = [r for r in caplog.records if "connected to the cloud" in r.message]
    assert len(connected) == 2  # at start-up, and after the message


async def test_a_failing_startup_and_watch_log_unreachable_once(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ferry.config")
    sessions: list[list[Step]] = [[OfflineError("down")] for _ in range(10)]
    link, agent = FakeLink(get_result=OfflineError("down"), sessions=sessions), Agent()
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)
    assert len(link.watches) == 11
    assert unreachable_warnings(caplog) == 1
    assert source.failures == 10


async def test_streams_that_end_at_once_without_a_message_are_not_reopened_in_a_tight_loop(
    tmp_path: Path, autojump_clock: object
) -> None:
    link, agent = FakeLink(get_result=DOC1, sessions=[[] for _ in range(50)]), Agent()
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    await run_until_exhausted(source, link)
    times = [t for t, _ in link.watches]
    assert times[-1] - times[0] >= 1.0  # 50 empty streams: at least some backoff between them


# -------------------------------------------------------------------- corrupt cache


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b"null", b'{"revision": "r"}'],
    ids=["bad-json", "bad-utf8", "a-list", "null", "missing-keys"],
)
async def test_a_corrupt_cache_is_logged_and_ignored(
    tmp_path: Path, autojump_clock: object, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    caplog.set_level(logging.ERROR, logger="ferry.config")
    cache = cache_of(tmp_path)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(content)
    # Offline: nothing to run but the bootstrap.
    link, agent = FakeLink(get_result=OfflineError("down")), Agent()
    source = make_source(tmp_path, link, agent)
    assert await source.initial(agent.plan_for) == "plan bootstrap"
    assert source.applied is None
    assert any("ignoring the cached cloud config" in r.message for r in caplog.records)
    # Online: the cloud's config runs and replaces the corrupt cache.
    link.get_result = DOC1
    source = make_source(tmp_path, link, agent)
    assert await source.initial(agent.plan_for) == "plan rev-1"
    assert json.loads(cache.path.read_text())["revision"] == DOC1.revision
    assert await cache.load() == DOC1


# -------------------------------------------------------------- live link changes


async def test_a_new_cloud_section_moves_the_watch_to_a_new_link_at_once(
    tmp_path: Path, autojump_clock: object
) -> None:
    old = FakeLink(get_result=DOC1)  # its watch never ends: no scripted sessions
    new = FakeLink(sessions=[[DOC2]])
    agent = Agent()
    source = make_source(tmp_path, old, agent)
    await source.initial(agent.plan_for)
    async with trio.open_nursery() as nursery:
        await nursery.start(source.run)
        await old.exhausted.wait()  # watching through the old link
        await trio.sleep(60.0)
        swapped_at = trio.current_time()
        await source.replace_link(new)
        await new.exhausted.wait()
        nursery.cancel_scope.cancel()
    assert old.closed
    assert new.watches[0] == (swapped_at, DOC1.revision)
    assert source.applied == DOC2


async def test_a_heartbeat_confirms_a_config_started_from_the_cache(
    tmp_path: Path, autojump_clock: object
) -> None:
    cache_of(tmp_path)._save(CACHED)  # a cache left by an earlier run
    link = FakeLink(get_result=OfflineError("down"), sessions=[[None]])
    agent = Agent()
    source = make_source(tmp_path, link, agent)
    await source.initial(agent.plan_for)
    assert source.from_cache is True
    await run_until_exhausted(source, link)
    assert link.watches[0][1] == CACHED.revision
    assert source.from_cache is False  # the cloud's current revision is the cached one
