"""The sync actor end to end, in-process: real files, the real cloud ingest and store, lossy calls.

Each test names the guarantee it checks (ARCHITECTURE.md, sync guarantees 1-5).
Time is virtual (``autojump_clock``): backoffs and intervals cost nothing.
"""

from __future__ import annotations

import errno
import itertools
import logging

import pytest
import trio

from actors.adapters.os_fs import OsFileSystem
from actors.errors import ResumableUnsupported
from actors.ports import FileKind, SyncFile
from actors.sync.batch import read_small
from cloud.model import Filter, PageRequest
from tests.cli.captures import T0, write_binary
from tests.sync.world import PRINCIPAL, make_world, running


async def test_a_pass_uploads_every_capture_file_once_then_deletes_it(autojump_clock, tmp_path):
    """Guarantees 1-3: every reading reaches the cloud exactly once; files go only after that."""
    world = make_world(tmp_path)
    for t in range(5):
        world.capture_file(10 + t, t=t)
    async with running(world.actor()) as actor:
        result = await actor.sync_now(wait=True)
    assert (result.files, result.confirmed, result.failed) == (5, 5, 0)
    assert world.cloud_readings() == sum(10 + t for t in range(5))
    assert world.local_files() == []
    c = actor.status.counters
    assert (c.files_uploaded, c.files_deleted, c.records_uploaded) == (5, 5, 60)
    assert c.bytes_resent == 0


async def test_lost_requests_and_lost_answers_neither_lose_nor_duplicate_readings(
    autojump_clock, tmp_path
):
    """Guarantees 1, 2, 4: drops and lost acks mid-file resume at the committed offset."""
    world = make_world(tmp_path)
    path = world.capture_file(200)
    size = path.stat().st_size
    fates = {("write", 2): "drop", ("write", 4): "lose", ("finish", 1): "lose", ("open", 2): "drop"}
    world.net.fate = lambda rpc, n: fates.get((rpc, n), "ok")
    async with running(world.actor(world.plan(threads=1))) as actor:
        await actor.sync_now(wait=True)
    assert world.cloud_readings() == 200
    assert world.local_files() == []
    c = actor.status.counters
    # The dropped chunk is sent again (once); the lost ack's chunk is not (the cloud has it).
    assert c.interruptions == 3
    assert c.bytes_resent == 256
    assert world.net.chunk_bytes_delivered == size
    assert c.files_uploaded == 1
    assert c.retries == 4


async def test_a_crash_between_confirmation_and_delete_ends_in_a_delete_without_reupload(
    autojump_clock, tmp_path
):
    """Guarantee 2 and 3: after a restart the cloud says FINISHED and the file is only deleted."""
    world = make_world(tmp_path)
    path = world.capture_file(50)

    class Crash(Exception):
        pass

    def crash(point, file):
        if point == "confirmed":
            raise Crash(file.path)

    world.on_point = crash
    with pytest.RaisesGroup(Crash, flatten_subgroups=True):
        async with running(world.actor()) as actor:
            await actor.sync_now(wait=True)
    assert path.exists()
    assert world.cloud_readings() == 50
    writes_before = world.net.calls["write"]

    world.on_point = None
    async with running(world.actor()) as actor:
        await actor.sync_now(wait=True)
    assert not path.exists()
    assert world.cloud_readings() == 50
    assert world.net.calls["write"] == writes_before
    assert actor.status.counters.files_already_in_cloud == 1
    assert actor.status.counters.files_uploaded == 0


async def test_offline_retries_back_off_from_200_ms_doubling_and_log_once(
    autojump_clock, tmp_path, caplog
):
    """Guarantee 5: 0.2 s, 0.4 s, 0.8 s … (jitter ≤ 20 %), one log line per reachability change."""
    world = make_world(tmp_path)
    world.capture_file(5)
    attempts: list[float] = []

    def fate(rpc, n):
        attempts.append(trio.current_time())
        return "offline" if len(attempts) <= 6 else "ok"

    world.net.fate = fate
    caplog.set_level(logging.INFO, logger="ferry.sync")
    async with running(world.actor(world.plan(threads=1))) as actor:
        await actor.sync_now(wait=True)
    gaps = [b - a - 0.01 for a, b in itertools.pairwise(attempts[:6])]
    for k, gap in enumerate(gaps, start=1):
        nominal = 0.2 * 2 ** (k - 1)
        assert nominal - 1e-6 <= gap <= nominal * 1.2 + 1e-6
    assert world.cloud_readings() == 5
    unreachable = [r for r in caplog.records if "cloud unreachable" in r.message]
    back = [r for r in caplog.records if "reachable again" in r.message]
    assert len(unreachable) == 1
    assert len(back) == 1


async def test_a_corrupt_capture_file_is_parked_in_failed_with_a_reason_and_can_be_retried(
    tmp_path,
):
    """Terminal errors move the file to failed/ with a .reason; --retry-failed re-queues it."""
    world = make_world(tmp_path)
    good = world.capture_file(3)
    valid = good.read_bytes()
    bad = good.with_name("2000-01-01T00_00_00.000000Z.capture")
    bad.write_bytes(b"\xff\xff\xff\xff\x0fnot a header")
    async with running(world.actor()) as actor:
        result = await actor.sync_now(wait=True)
        assert (result.confirmed, result.failed) == (1, 1)
        parked = world.capture_dir / "failed" / bad.relative_to(world.capture_dir)
        assert parked.exists()
        assert not bad.exists()
        reason = parked.with_name(parked.name + ".reason").read_text()
        assert "offset" in reason
        assert actor.status.counters.files_failed == 1
        # Repaired by hand, then re-queued: it goes back where it was and syncs.
        parked.write_bytes(valid)
        result = await actor.sync_now(wait=True, retry_failed=True)
    assert (result.confirmed, result.failed) == (1, 0)
    assert not parked.exists()
    assert not bad.exists()
    assert world.cloud_readings() == 6


async def test_a_capture_file_with_no_readings_is_deleted_without_upload(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    empty = world.capture_file(0)
    async with running(world.actor()) as actor:
        await actor.sync_now(wait=True)
    assert not empty.exists()
    assert world.net.calls["open"] == 0
    assert actor.status.counters.empty_files_deleted == 1


async def test_scheduled_passes_follow_the_interval_and_sync_disabled_stops_only_them(
    autojump_clock, tmp_path
):
    """sync_interval_mins drives passes; sync_disabled stops scheduled ones; manual still works."""
    world = make_world(tmp_path)
    actor = world.actor(world.plan(interval_s=10.0))
    async with running(actor):
        await trio.sleep(35)
        assert actor.status.counters.passes == 4  # at 0, 10, 20, 30
        world.capture_file(3)
        await actor.apply(world.plan(interval_s=10.0, sync_disabled=True))
        await trio.sleep(30)
        assert world.cloud_readings() == 0
        assert actor.status.counters.skipped_ticks >= 2
        await actor.sync_now(wait=True)
        assert world.cloud_readings() == 3


async def test_the_writer_is_asked_to_finish_open_files_before_each_pass(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    async with running(world.actor(world.plan(interval_s=5.0))) as actor:
        await trio.sleep(12)
        await actor.sync_now()
    assert world.rotations == 4  # passes at 0, 5, 10 and the manual one


@pytest.mark.parametrize(
    ("readings", "synced", "status"),
    [
        ({"should_sync": True}, True, "should_sync: true"),
        ({"should_sync": False}, False, "should_sync: false"),
        ({"should_sync": "yes"}, False, "no boolean 'should_sync'"),
        ({}, False, "no boolean 'should_sync'"),
    ],
)
async def test_the_selective_syncer_gates_scheduled_sync(
    autojump_clock, tmp_path, readings, synced, status
):
    """Scheduled sync runs only while the sensor reads should_sync: true; manual ignores it."""
    world = make_world(tmp_path)
    world.readings = readings
    world.capture_file(3)
    actor = world.actor(world.plan(interval_s=5.0, selective_syncer="syncer"))
    async with running(actor):
        await trio.sleep(1)
        assert (world.cloud_readings() == 3) is synced
        assert status in actor.status.selective
        await actor.sync_now(wait=True)
        assert world.cloud_readings() == 3


async def test_a_missing_selective_syncer_is_a_clear_error_in_status(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    world.capture_file(3)
    actor = world.actor(world.plan(interval_s=5.0, selective_syncer="nope"))
    async with running(actor):
        await trio.sleep(1)
        assert world.cloud_readings() == 0
        assert "'nope' is not a running sensor" in actor.render_status()["selective_syncer"]


async def test_a_server_without_the_resumable_service_falls_back_to_viam_rpcs(
    autojump_clock, tmp_path
):
    """Viam-compatible mode: whole files, and status says exactly-once does not hold."""
    world = make_world(tmp_path)
    paths = [world.capture_file(3, t=t) for t in range(3)]
    world.net.unsupported = True
    async with running(world.actor()) as actor:
        await actor.sync_now(wait=True)
        status = actor.render_status()
    assert sorted(world.whole.uploaded) == sorted(paths)
    assert world.local_files() == []
    assert status["mode"] == "viam-compatible"
    assert status["exactly_once"] is False


async def test_without_a_cloud_section_a_manual_sync_says_why(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    async with running(world.actor(world.plan(cloud=None))) as actor:
        result = await actor.sync_now(wait=True)
    assert "no cloud section" in result.error


async def test_memory_is_bounded_by_workers_not_by_backlog(autojump_clock, tmp_path):
    """A 300-file backlog never has more claimed at once than each worker's two batches
    (the one on the wire and the next, read meanwhile; each at most one chunk of bytes)
    and the file that ended the second, plus the one being handed out:
    O(threads x chunk), not O(backlog)."""
    world = make_world(tmp_path)
    for t in range(300):
        size = world.capture_file(1, t=t).stat().st_size
    actor = world.actor(world.plan(threads=3))
    peak = 0

    def watch(point, file):
        nonlocal peak
        peak = max(peak, len(actor.in_progress()))

    world.on_point = watch
    async with running(actor):
        await actor.sync_now(wait=True)
    assert world.cloud_readings() == 300
    per_batch = max(1, world.plan().chunk_bytes // size)
    assert 1 <= peak <= 3 * (2 * per_batch + 1) + 1


async def test_a_manual_sync_cuts_a_long_backoff_short(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    world.capture_file(3)
    offline = True
    world.net.fate = lambda rpc, n: "offline" if offline else "ok"
    async with running(world.actor(world.plan(threads=1))) as actor:
        await trio.sleep(3000)  # attempts back off toward the one-hour cap
        (progress,) = actor.status.files.values()
        assert progress.state.delay_s > 60
        offline = False
        start = trio.current_time()
        await actor.sync_now(wait=True)
        assert trio.current_time() - start < 1
    assert world.cloud_readings() == 3


async def test_a_reconfigure_of_the_workers_resumes_uploads_without_loss(autojump_clock, tmp_path):
    """Changing threads/chunk size restarts workers; uploads continue at the committed offset."""
    world = make_world(tmp_path)
    for t in range(4):
        world.capture_file(100, t=t)
    gate = trio.Event()
    released = False

    def fate(rpc, n):
        return "ok"

    world.net.fate = fate
    actor = world.actor(world.plan(threads=1, chunk_bytes=128))

    def slow(point, file):
        nonlocal released
        if not released:
            released = True
            gate.set()

    world.on_point = slow
    async with running(actor):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.sync_now)
            await gate.wait()
            await actor.apply(world.plan(threads=3, chunk_bytes=512))
        await trio.sleep(1)
        await actor.sync_now(wait=True)
    assert world.cloud_readings() == 400
    assert world.local_files() == []


async def test_bandwidth_cap_paces_uploads(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    path = world.capture_file(2000)
    size = path.stat().st_size
    rate = size // 4
    async with running(world.actor(world.plan(max_bytes_per_sec=rate, chunk_bytes=4096))) as actor:
        start = trio.current_time()
        await actor.sync_now(wait=True)
        elapsed = trio.current_time() - start
    assert elapsed >= 2.5  # one second of burst, then the rest at the cap
    assert world.cloud_readings() == 2000


async def test_a_file_that_cannot_be_parked_stays_put_and_sync_keeps_running(
    autojump_clock, tmp_path, monkeypatch
):
    """A full disk cannot take failed/'s .reason note: the file stays, no worker crashes."""
    import actors.sync.worker as worker_module

    world = make_world(tmp_path)
    good = world.capture_file(3)
    bad = good.with_name("2000-01-01T00_00_00.000000Z.capture")
    bad.write_bytes(b"\xff\xff\xff\xff\x0fnot a header")

    def no_space(fs, file, reason):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(worker_module, "park", no_space)
    async with running(world.actor()) as actor:
        result = await actor.sync_now(wait=True)
        await actor.sync_now(wait=True)
    assert bad.exists()
    assert result.confirmed == 1
    assert world.cloud_readings() == 3


async def test_an_arbitrary_file_changed_mid_upload_is_uploaded_again_not_parked(
    autojump_clock, tmp_path
):
    """The cloud's hash check fails for a file edited during its upload: Ferry sees the edit
    and starts over with the new content as a new identity, instead of parking it in failed/."""
    world = make_world(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    log = extra / "run.log"
    log.write_bytes(b"a" * 1000)
    world.clock.offset_ns = 3600 * 10**9  # the file is old enough to sync

    def edit_during_first_write(rpc, n):
        if (rpc, n) == ("write", 1):
            log.write_bytes(b"b" * 1500)
        return "ok"

    world.net.fate = edit_during_first_write
    plan = world.plan(additional_sync_paths=(extra,), file_last_modified_ms=1, threads=1)
    async with running(world.actor(plan)) as actor:
        first = await actor.sync_now(wait=True)
        assert first.left == 1  # given back for the next pass
        await actor.sync_now(wait=True)
    assert not log.exists()
    assert not (extra / "failed").exists()
    assert actor.status.counters.files_failed == 0
    assert world.store.count_binary(PRINCIPAL, Filter()) == 1


async def test_a_call_that_never_returns_is_bounded_and_retried(autojump_clock, tmp_path):
    """A hung call (e.g. a flow-control wait behind a stalled connection) cannot stall a
    worker: the worker's own bound (twice the RPC timeout) ends it and the upload resumes."""
    world = make_world(tmp_path)
    world.capture_file(100)
    world.net.fate = lambda rpc, n: "hang" if (rpc, n) == ("write", 2) else "ok"
    async with running(world.actor(world.plan(threads=1, rpc_timeout_s=5.0))) as actor:
        start = trio.current_time()
        await actor.sync_now(wait=True)
        elapsed = trio.current_time() - start
    assert world.cloud_readings() == 100
    assert 10.0 <= elapsed < 11.0  # the bound (2 x 5 s, plus 256 bytes at 32 KiB/s), then 0.2 s
    assert actor.status.counters.interruptions == 1


async def test_the_next_chunk_is_read_while_the_current_one_is_uploaded_and_read_once(
    autojump_clock, tmp_path, monkeypatch
):
    """Read-ahead overlaps disk and network without reading a chunk twice or sending stale bytes."""
    from actors.sync import worker

    world = make_world(tmp_path)
    path = world.capture_file(60)
    size = path.stat().st_size
    events: list[tuple[str, int]] = []
    real_read = worker.read_chunk

    def read(fs, p, offset, length):  # type: ignore[no-untyped-def]
        events.append(("read", offset))
        return real_read(fs, p, offset, length)

    monkeypatch.setattr(worker, "read_chunk", read)

    inner_write = world.net.write

    async def write(upload_id, offset, data):  # type: ignore[no-untyped-def]
        events.append(("send", offset))
        await trio.sleep(0.05)  # the round trip, during which the next read happens
        result = await inner_write(upload_id, offset, data)
        events.append(("acked", offset))
        return result

    monkeypatch.setattr(world.net, "write", write)
    async with running(world.actor(world.plan(threads=1))) as actor:
        await actor.sync_now(wait=True)
    assert world.cloud_readings() == 60
    offsets = list(range(0, size, 256))
    assert [o for kind, o in events if kind == "read"] == offsets  # each chunk read once
    for this, nxt in itertools.pairwise(offsets):
        assert events.index(("send", this)) < events.index(("read", nxt))
        assert events.index(("read", nxt)) < events.index(("acked", this))


async def test_small_files_go_in_batches_and_a_lost_batch_answer_duplicates_nothing(
    autojump_clock, tmp_path
):
    """Guarantees 1-3 for batches: one call carries many files, a lost answer is harmless."""
    world = make_world(tmp_path)
    for t in range(40):
        size = world.capture_file(1, t=t).stat().st_size
    per_batch = 8
    world.net.fate = lambda rpc, n: "lose" if (rpc, n) == ("batch", 1) else "ok"
    plan = world.plan(threads=1, chunk_bytes=per_batch * size)
    async with running(world.actor(plan)) as actor:
        result = await actor.sync_now(wait=True)
    assert (result.files, result.confirmed) == (40, 40)
    assert world.cloud_readings() == 40
    assert world.local_files() == []
    # Five batches of eight. The first one's answer was lost: its files went one by one
    # and found themselves stored (no chunk written); the others needed one call each.
    assert world.net.calls["batch"] == 5
    assert world.net.calls["open"] == per_batch
    assert world.net.calls["write"] == 0
    assert actor.status.counters.files_uploaded == 40 - per_batch


async def test_a_failed_directory_fsync_after_a_batch_is_logged_and_syncing_goes_on(
    autojump_clock, tmp_path, monkeypatch, caplog
):
    """A disk error while deleting a batch's uploaded files must not crash the actor:
    the files are in the cloud, and at worst a power cut brings one back to sync again."""
    world = make_world(tmp_path)
    for t in range(8):
        size = world.capture_file(1, t=t).stat().st_size
    real_fsync_dir = OsFileSystem.fsync_dir
    failing = True

    def fsync_dir(fs: OsFileSystem, path) -> None:
        if failing and world.capture_dir in path.parents:
            raise OSError(errno.EIO, "Input/output error", str(path))
        real_fsync_dir(fs, path)

    monkeypatch.setattr(OsFileSystem, "fsync_dir", fsync_dir)
    plan = world.plan(threads=1, chunk_bytes=4 * size)
    with caplog.at_level(logging.WARNING, logger="ferry.sync"):
        async with running(world.actor(plan)) as actor:
            first = await actor.sync_now(wait=True)
            failing = False  # the capture side writes one more file
            world.capture_file(1, t=10**10)  # a name of its own
            failing = True
            second = await actor.sync_now(wait=True)
    assert (first.files, first.confirmed) == (8, 8)
    assert (second.files, second.confirmed) == (1, 1)
    assert world.local_files() == []
    assert world.cloud_readings() == 9
    assert "its deletes are not durable yet: [Errno 5] Input/output error" in caplog.text


async def test_small_files_with_the_data_managers_tags_still_go_in_batches_with_their_tags(
    autojump_clock, tmp_path
):
    """A config with ``tags`` keeps the batch path, and the cloud stores every tag."""
    world = make_world(tmp_path)
    for t in range(12):
        size = world.capture_file(1, t=t).stat().st_size
    plan = world.plan(threads=1, chunk_bytes=4 * size, tags=("site-a",))
    async with running(world.actor(plan)) as actor:
        result = await actor.sync_now(wait=True)
    assert (result.files, result.confirmed) == (12, 12)
    assert world.net.calls["batch"] == 3
    assert world.net.calls["open"] == 0
    rows = world.store.tabular_by_filter(PRINCIPAL, Filter(), PageRequest(limit=100)).rows
    assert len(rows) == 12
    assert all("site-a" in row.metadata.tags for row in rows)


async def test_small_camera_frames_go_in_batches_with_the_tabular_files(autojump_clock, tmp_path):
    """A binary capture file under the batch budget is sent whole too, and stored once."""
    world = make_world(tmp_path)
    frames = world.capture_dir / "rdk_component_camera" / "cam" / "ReadImage"
    for t in range(6):
        (frames / str(t)).mkdir(parents=True)
        write_binary(frames / str(t), bytes([t]) * 2000, wall_ns=T0 + t)
        world.capture_file(1, t=t)
    plan = world.plan(threads=1, chunk_bytes=64 * 1024)
    async with running(world.actor(plan)) as actor:
        result = await actor.sync_now(wait=True)
    assert (result.files, result.confirmed) == (12, 12)
    assert world.net.calls["batch"] == 1
    assert world.net.calls["open"] == 0
    assert world.local_files() == []
    rows = world.store.binary_by_filter(PRINCIPAL, Filter(), PageRequest(limit=100)).rows
    payloads = sorted(b"".join(world.store.open_blob(row.blob)) for row in rows)
    assert payloads == [bytes([t]) * 2000 for t in range(6)]
    assert world.cloud_readings() == 6


async def test_small_arbitrary_files_go_in_batches_with_their_names_and_dataset_ids(
    autojump_clock, tmp_path
):
    """A dropped file under the batch budget is sent whole with the metadata its
    OpenUpload would carry, stored once, and deleted once the cloud has it."""
    world = make_world(tmp_path)
    extra = tmp_path / "extra" / "dataset=ds-9"
    extra.mkdir(parents=True)
    notes = [extra / f"note-{k}.txt" for k in range(5)]
    for k, note in enumerate(notes):
        note.write_bytes(f"note {k}\n".encode() * 50)
    world.capture_file(1, t=0)
    world.clock.offset_ns = 3600 * 10**9  # the notes are old enough to sync
    plan = world.plan(
        additional_sync_paths=(tmp_path / "extra",),
        file_last_modified_ms=1,
        threads=1,
        chunk_bytes=64 * 1024,
    )
    async with running(world.actor(plan)) as actor:
        result = await actor.sync_now(wait=True)
    assert (result.files, result.confirmed) == (6, 6)
    assert world.net.calls["batch"] == 1
    assert world.net.calls["open"] == 0
    assert not any(note.exists() for note in notes)
    rows = world.store.binary_by_filter(PRINCIPAL, Filter(), PageRequest(limit=100)).rows
    assert sorted(row.file_name for row in rows) == sorted(str(note) for note in notes)
    assert {row.dataset_ids for row in rows} == {("ds-9",)}
    assert {row.file_ext for row in rows} == {".txt"}
    assert world.cloud_readings() == 1


def test_a_batch_leaves_an_arbitrary_file_changed_since_the_walk_to_its_own_job(tmp_path):
    """Read for a batch, a file whose size or mtime moved since the walk is not sent: its
    job sees the change and waits for the file to settle, as on the resumable path."""
    note = tmp_path / "note.txt"
    note.write_bytes(b"first")
    st = note.stat()
    walked = SyncFile(note, tmp_path, FileKind.ARBITRARY, st.st_size, st.st_mtime_ns)
    [read] = read_small(OsFileSystem(), [walked], "part-1")
    assert read is not None
    assert read[2] == b"first"
    note.write_bytes(b"second, longer")
    assert read_small(OsFileSystem(), [walked], "part-1") == [None]


async def test_an_upload_the_cloud_expired_mid_file_is_opened_again_and_stored_once(
    autojump_clock, tmp_path
):
    """The cloud expires an idle upload (NOT_FOUND): the file is sent again from 0, stored once."""
    world = make_world(tmp_path)
    world.capture_file(60)
    inner = world.net.write
    expired: list[str] = []

    async def write(upload_id, offset, data):  # type: ignore[no-untyped-def]
        if world.net.calls["write"] == 2 and not expired:
            expired.extend(world.store.expire_idle_uploads(-1))  # every open upload, now
        return await inner(upload_id, offset, data)

    world.net.write = write  # type: ignore[method-assign]
    async with running(world.actor(world.plan(threads=1))) as actor:
        result = await actor.sync_now(wait=True)  # the retry, after its backoff, is in the pass
    assert (result.files, result.confirmed) == (1, 1)
    assert len(expired) == 1
    assert world.net.calls["open"] == 2
    assert world.cloud_readings() == 60
    assert world.local_files() == []


async def test_status_shows_the_files_of_an_upload_files_call_in_flight(autojump_clock, tmp_path):
    """A file in a batch on the wire is in ``ferry status`` (opening), and gone once synced."""
    world = make_world(tmp_path)
    paths = [world.capture_file(1, t=t) for t in range(3)]
    sizes = {str(p): p.stat().st_size for p in paths}
    inner = world.net.upload_files
    seen: list[dict[str, object]] = []

    async def upload_files(files):  # type: ignore[no-untyped-def]
        await trio.sleep(1.0)  # the call is on the wire
        seen.extend(actor.status.render(trio.current_time())["files"])  # type: ignore[arg-type]
        return await inner(files)

    world.net.upload_files = upload_files  # type: ignore[method-assign]
    plan = world.plan(threads=1, chunk_bytes=64 * 1024)
    async with running(world.actor(plan)) as actor:
        await actor.sync_now(wait=True)
        after = actor.status.render(trio.current_time())["files"]
    assert {f["path"]: f["size"] for f in seen} == sizes
    assert {f["phase"] for f in seen} == {"opening"}
    assert after == []
    assert world.cloud_readings() == 3


async def test_without_upload_files_small_files_go_one_by_one(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    for t in range(5):
        world.capture_file(1, t=t)
    real = world.net.upload_files

    async def unimplemented(files):  # type: ignore[no-untyped-def]
        world.net.calls["batch"] += 1
        raise ResumableUnsupported("UNIMPLEMENTED: no UploadFiles", where="UploadFiles")

    world.net.upload_files = unimplemented  # type: ignore[method-assign]
    async with running(world.actor(world.plan(threads=1, chunk_bytes=64 * 1024))) as actor:
        await actor.sync_now(wait=True)
        await actor.sync_now(wait=True)  # a later pass does not ask again
    assert world.cloud_readings() == 5
    assert world.net.calls["batch"] == 1
    assert world.net.calls["open"] == 5
    assert not actor.status.compat  # the resumable service is still used
    del real


async def test_the_bandwidth_cap_paces_batches_too(autojump_clock, tmp_path):
    world = make_world(tmp_path)
    total = sum(world.capture_file(1, t=t).stat().st_size for t in range(20))
    plan = world.plan(threads=1, chunk_bytes=64 * 1024, max_bytes_per_sec=total // 4)
    async with running(world.actor(plan)) as actor:
        start = trio.current_time()
        await actor.sync_now(wait=True)
        elapsed = trio.current_time() - start
    assert world.net.calls["batch"] >= 1
    assert elapsed >= 2.5  # one second of burst, then the rest at the cap
    assert world.cloud_readings() == 20
