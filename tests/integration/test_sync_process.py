"""The real agent syncing to the real `ferry cloud` through a fault-injecting TCP proxy.

Readings are counted at the server (its store, read after it stopped): through
mid-stream cuts, lost acknowledgements, a black hole and refused connections,
nothing is lost, nothing is duplicated, and each interruption re-sends at most
one chunk. A real kill -9 between the cloud's confirmation and the local delete
ends, after a restart, in a delete without a second upload.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import trio

from cloud.model import Filter, PageRequest, Principal
from cloud.store.sqlite import SqliteStore
from tests.cli.captures import write_tabular
from tests.integration.test_cloud_process import create_key, serve
from tests.support.faultproxy import FaultProxy

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

FERRY = [sys.executable, "-m", "actors.cli"]
PART = "robot-7-main"
CHUNK = 8192
READINGS_PER_FILE = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _capture_files(capture: Path, files: int) -> int:
    """Finished tabular capture files; every reading carries a unique ``uid``."""
    directory = capture / "rdk_component_sensor" / "env" / "Readings"
    directory.mkdir(parents=True)
    uid = 0
    for f in range(files):
        readings = []
        for _ in range(READINGS_PER_FILE):
            readings.append({"readings": {"uid": uid, "pad": "x" * 40}})
            uid += 1
        write_tabular(directory, readings, wall_ns=1_700_000_000_000_000_000 + f * 10**9)
    return uid


def _arbitrary_files(extra: Path, n: int) -> None:
    (extra / "tag=field" / "dataset=ds1").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = extra / "tag=field" / "dataset=ds1" / f"log-{i}.bin"
        path.write_bytes(os.urandom(40_000 + i))
        old = time.time() - 3600
        os.utime(path, (old, old))


@dataclass
class Site:
    """One test's robot and cloud: dirs, the cloud's key, the agent's API port and log."""

    data_dir: Path
    key: dict[str, str]
    capture: Path
    extra: Path
    total: int
    api_port: int
    log: Path


def _site(tmp_path: Path, capture_files: int, arbitrary_files: int = 0) -> Site:
    """Pre-written capture files (``total`` readings) and arbitrary files, and a cloud key."""
    data_dir, capture, extra = tmp_path / "cloud", tmp_path / "capture", tmp_path / "extra"
    key = create_key(data_dir)
    total = _capture_files(capture, capture_files)
    extra.mkdir()
    _arbitrary_files(extra, arbitrary_files)
    return Site(data_dir, key, capture, extra, total, _free_port(), tmp_path / "agent.log")


def _config(path: Path, capture: Path, extra: Path, port: int, key: dict[str, str], **dm) -> Path:
    attributes = {
        "capture_dir": str(capture),
        "additional_sync_paths": [str(extra)],
        "capture_disabled": True,
        "sync_interval_mins": 0.01,
        "sync_chunk_size_bytes": CHUNK,
        "sync_rpc_timeout_secs": 1.0,
        "file_last_modified_millis": 1,
        "maximum_num_sync_threads": 2,
        **dm,
    }
    config = {
        "services": [{"name": "dm", "api": "rdk:service:data_manager", "attributes": attributes}],
        "cloud": {
            "address": f"127.0.0.1:{port}",
            "part_id": PART,
            "api_key_id": key["key_id"],
            "api_key": key["key"],
            "insecure": True,
        },
    }
    path.write_text(json.dumps(config))
    return path


def _start_agent(config: Path, api_port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [*FERRY, "run", "--config", str(config), "--api", f"127.0.0.1:{api_port}", *extra],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _read(path: Path) -> str:
    return path.read_text()


def _remaining(*roots: Path) -> list[Path]:
    return [
        p
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and p.name != ".ferry.lock" and "failed" not in p.parts
    ]


async def _wait_until_synced(agent: subprocess.Popen[bytes], log: Path, *roots: Path) -> None:
    with trio.fail_after(120):
        while _remaining(*roots):
            if agent.poll() is not None:
                raise AssertionError(f"the agent exited:\n{_read(log)}")
            await trio.sleep(0.1)


async def _status(api_port: int) -> dict:
    """The agent's status, once its local API answers (within 30 s)."""
    with trio.fail_after(30):
        while True:
            result = await trio.run_process(
                [*FERRY, "status", "--json", "--api", f"127.0.0.1:{api_port}"],
                capture_stdout=True,
                check=False,
            )
            if result.returncode == 0:
                return json.loads(result.stdout)
            await trio.sleep(0.2)


def _stop(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def _stored_uids(data_dir: Path, key: dict[str, str]) -> list[int]:
    store = SqliteStore(data_dir)
    who = Principal(key["key_id"], key["org_id"], key["location_id"])
    uids: list[int] = []
    last = ""
    while True:
        page = store.tabular_by_filter(who, Filter(), PageRequest(limit=1000, last=last))
        if not page.rows:
            return uids
        uids += [int(row.data["readings"]["uid"]) for row in page.rows]
        last = page.last


def _stored_binary(data_dir: Path, key: dict[str, str]) -> int:
    store = SqliteStore(data_dir)
    return store.count_binary(Principal(key["key_id"], key["org_id"], key["location_id"]), Filter())


async def test_faults_on_the_wire_lose_nothing_duplicate_nothing_and_resend_at_most_a_chunk_each(
    tmp_path: Path,
):
    # Enough data that, at the agent's bandwidth cap, uploads outlast every fault below.
    site = _site(tmp_path, capture_files=24, arbitrary_files=3)
    data_dir, key, capture, extra = site.data_dir, site.key, site.capture, site.extra
    total, api_port, log = site.total, site.api_port, site.log
    with serve(data_dir) as (_cloud, cloud_port):
        proxy = FaultProxy("127.0.0.1", cloud_port)
        async with trio.open_nursery() as nursery:
            proxy_port = await nursery.start(proxy.run)
            # A bandwidth cap keeps the uploads long enough for every fault to land mid-file.
            config = _config(
                tmp_path / "robot.json", capture, extra, proxy_port, key,
                sync_max_bytes_per_sec=120_000,
            )  # fmt: skip
            agent = _start_agent(config, api_port, log)
            try:
                await _inject_faults(proxy)
                await _wait_until_synced(agent, log, capture, extra)
                status = await _status(api_port)
            finally:
                _stop(agent)
            nursery.cancel_scope.cancel()
    uids = _stored_uids(data_dir, key)
    assert len(uids) == total, "readings lost or duplicated"
    assert sorted(uids) == list(range(total))
    assert _stored_binary(data_dir, key) == 3
    counters = status["sync"]["counters"]
    assert counters["interruptions"] >= 3, counters
    assert counters["bytes_resent"] <= counters["interruptions"] * CHUNK, counters
    assert counters["files_failed"] == 0
    assert counters["files_deleted"] == 27
    assert status["sync"]["exactly_once"] is True


async def _inject_faults(proxy: FaultProxy) -> None:
    """Each fault while an upload is mid-file (the agent's bandwidth cap keeps them long)."""
    with trio.fail_after(120):
        # 1. Cut mid-stream, twice.
        await proxy.wait_up_bytes(40_000)
        proxy.cut()
        proxy.cut_after_up_bytes(30_000)
        await proxy.wait_up_bytes(proxy.bytes_up + 40_000)
        # 2. The server commits, the robot never hears: hold replies, then cut.
        proxy.hold_down(True)
        await proxy.wait_up_bytes(proxy.bytes_up + CHUNK // 2)
        await trio.sleep(0.5)
        proxy.cut()
        proxy.hold_down(False)
        # 3. A black hole: connections stay open, nothing passes.
        await proxy.wait_up_bytes(proxy.bytes_up + 20_000)
        proxy.blackhole(True)
        await trio.sleep(2.5)
        proxy.blackhole(False)
        proxy.cut()
        # 4. Refused connections (the cloud is "down").
        proxy.refuse(True)
        await trio.sleep(1.5)
        proxy.refuse(False)


async def test_kill_9_between_confirmation_and_delete_deletes_after_restart_without_reupload(
    tmp_path: Path,
):
    site = _site(tmp_path, capture_files=1)
    data_dir, key, capture, extra = site.data_dir, site.key, site.capture, site.extra
    total, api_port, log = site.total, site.api_port, site.log
    with serve(data_dir) as (_cloud, cloud_port):
        config = _config(tmp_path / "robot.json", capture, extra, cloud_port, key)
        crashed = _start_agent(config, api_port, log, "--crash-at", "confirmed")
        assert crashed.wait(timeout=60) == -signal.SIGKILL, log.read_text()
        assert len(_remaining(capture)) == 1  # confirmed by the cloud, not deleted
        agent = _start_agent(config, api_port, log)
        try:
            await _wait_until_synced(agent, log, capture)
            status = await _status(api_port)
        finally:
            _stop(agent)
    counters = status["sync"]["counters"]
    assert counters["files_already_in_cloud"] == 1
    assert counters["files_uploaded"] == 0
    assert counters["bytes_sent"] == 0
    assert sorted(_stored_uids(data_dir, key)) == list(range(total))


async def test_ferry_sync_wait_uploads_everything_pending_when_scheduled_sync_is_off(
    tmp_path: Path,
):
    site = _site(tmp_path, capture_files=4)
    data_dir, key, capture, extra = site.data_dir, site.key, site.capture, site.extra
    total, api_port, log = site.total, site.api_port, site.log
    with serve(data_dir) as (_cloud, cloud_port):
        config = _config(
            tmp_path / "robot.json", capture, extra, cloud_port, key, sync_disabled=True
        )
        agent = _start_agent(config, api_port, log)
        try:
            with trio.fail_after(60):
                while True:
                    result = await trio.run_process(
                        [*FERRY, "sync", "--wait", "--api", f"127.0.0.1:{api_port}"],
                        capture_stdout=True,
                        capture_stderr=True,
                        check=False,
                    )
                    if result.returncode != 1:  # 1: the agent's API is not up yet
                        break
                    await trio.sleep(0.2)
        finally:
            _stop(agent)
    assert result.returncode == 0, result.stderr
    assert b"sync done: 4 files, confirmed 4, failed 0" in result.stdout
    assert _remaining(capture) == []
    assert len(_stored_uids(data_dir, key)) == total
