"""A real `ferry cloud serve` process: durability across kill -9, TLS, graceful shutdown.

Guarantees checked: an acknowledged chunk survives a kill -9 of the server; a
chunk whose acknowledgement was lost is safely re-sent (the committed offset
decides); a finished upload stays finished; SIGTERM shuts down cleanly; TLS
serves the same API.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import ssl
import subprocess
import sys
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import pytest
from grpclib.client import Channel
from grpclib.exceptions import GRPCError, StreamTerminatedError

from cloud.aio_loop import run_asyncio
from protos.gen.viam.app.data import v1 as data_pb
from tests.cli.captures import write_tabular
from tests.cloud import wire

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    # grpclib's client can leave its socket to the garbage collector when the server
    # dies mid-call (the kills below); that is the client's leak, not the server's.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_leaked_client_sockets():
    """Collects them here, so that they are reported (and ignored) in this module."""
    yield
    gc.collect()


FERRY = [sys.executable, "-m", "actors.cli"]
PART = "robot-1-main"


def ferry(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FERRY, *args], capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


def create_key(data_dir: Path, org: str = "org-a", loc: str = "loc-a") -> dict[str, str]:
    result = ferry(
        "cloud",
        "keys",
        "create",
        "--data-dir",
        str(data_dir),
        "--org",
        org,
        "--location",
        loc,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@contextmanager
def serve(data_dir: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [*FERRY, "cloud", "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line + (proc.stderr.read() if proc.stderr else "")
        port = int(line.split()[4].rsplit(":", 1)[1])
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def capture_bytes(tmp_path: Path, n: int) -> bytes:
    d = tmp_path / "capture"
    d.mkdir(exist_ok=True)
    return write_tabular(
        d, [{"readings": {"i": i, "pad": "x" * 40}} for i in range(n)]
    ).read_bytes()


async def count_readings(channel: Channel, md: dict[str, str]) -> int:
    reply = await data_pb.DataServiceStub(channel).tabular_data_by_filter(
        data_pb.TabularDataByFilterRequest(
            data_request=data_pb.DataRequest(filter=data_pb.Filter()), count_only=True
        ),
        metadata=md,
    )
    return reply.count


def test_acknowledged_chunks_survive_kill_9_and_unacknowledged_ones_are_safely_resent(tmp_path):
    data_dir = tmp_path / "cloud"
    key = create_key(data_dir)
    data = capture_bytes(tmp_path, 3000)
    chunk = 8192
    acked = 0

    async def first_half(port: int) -> None:
        nonlocal acked
        async with Channel("127.0.0.1", port) as channel:
            md = await wire.bearer(channel, key["key_id"], key["key"])
            up = await wire.open_upload(channel, md, data, PART, "a.capture")
            while acked < len(data) // 2:
                reply = await wire.write_chunk(
                    channel, md, up.upload_id, acked, data[acked : acked + chunk]
                )
                assert reply.accepted
                acked = reply.committed_offset

    with serve(data_dir) as (proc, port):
        run_asyncio(first_half(port))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    async def in_flight_kill(port: int, proc: subprocess.Popen[str]) -> None:
        # A chunk whose fate the client never learns: the server dies while it is in flight.
        async with Channel("127.0.0.1", port) as channel:
            md = await wire.bearer(channel, key["key_id"], key["key"])
            up = await wire.open_upload(channel, md, data, PART, "a.capture")
            assert up.committed_offset == acked, "an acknowledged chunk was lost"
            send = asyncio.ensure_future(
                wire.write_chunk(channel, md, up.upload_id, acked, data[acked : acked + chunk])
            )
            await asyncio.sleep(0)
            proc.send_signal(signal.SIGKILL)
            with suppress(GRPCError, StreamTerminatedError, ConnectionError, OSError):
                await send

    with serve(data_dir) as (proc, port):
        run_asyncio(in_flight_kill(port, proc))
        proc.wait(timeout=30)

    async def finish(port: int) -> None:
        async with Channel("127.0.0.1", port) as channel:
            md = await wire.bearer(channel, key["key_id"], key["key"])
            up = await wire.open_upload(channel, md, data, PART, "a.capture")
            assert up.committed_offset in (acked, acked + chunk)
            # Re-sending the last acknowledged chunk changes nothing.
            dup = await wire.write_chunk(
                channel, md, up.upload_id, acked - chunk, data[acked - chunk : acked]
            )
            assert (dup.accepted, dup.committed_offset) == (False, up.committed_offset)
            done = await wire.upload(channel, md, data, part_id=PART, path="a.capture", chunk=chunk)
            assert done.records == 3000
            assert await count_readings(channel, md) == 3000

    with serve(data_dir) as (proc, port):
        run_asyncio(finish(port))


def test_a_finished_upload_is_not_materialized_again_after_a_restart(tmp_path):
    data_dir = tmp_path / "cloud"
    key = create_key(data_dir)
    data = capture_bytes(tmp_path, 100)

    async def upload(port: int) -> tuple[str, int]:
        async with Channel("127.0.0.1", port) as channel:
            md = await wire.bearer(channel, key["key_id"], key["key"])
            done = await wire.upload(channel, md, data, part_id=PART, path="b.capture")
            return done.file_id, await count_readings(channel, md)

    with serve(data_dir) as (proc, port):
        first = run_asyncio(upload(port))
        proc.send_signal(signal.SIGKILL)
    with serve(data_dir) as (proc, port):
        assert run_asyncio(upload(port)) == (first[0], 100)


def test_sigterm_shuts_down_gracefully(tmp_path):
    data_dir = tmp_path / "cloud"
    with serve(data_dir) as (proc, _port):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert "shutting down" in proc.stderr.read()


def test_the_server_serves_the_same_api_over_tls(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    data_dir = tmp_path / "cloud"
    key = create_key(data_dir)
    data = capture_bytes(tmp_path, 10)

    async def over_tls(port: int) -> int:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        ctx.set_alpn_protocols(["h2"])
        async with Channel("127.0.0.1", port, ssl=ctx) as channel:
            md = await wire.bearer(channel, key["key_id"], key["key"])
            await wire.upload(channel, md, data, part_id=PART, path="c.capture")
            return await count_readings(channel, md)

    async def plaintext(port: int) -> None:
        async with Channel("127.0.0.1", port) as channel:
            await wire.bearer(channel, key["key_id"], key["key"])

    with serve(data_dir, "--tls-cert", str(cert_file), "--tls-key", str(key_file)) as (_, port):
        assert run_asyncio(over_tls(port)) == 10
        with pytest.raises((GRPCError, StreamTerminatedError, ConnectionError, OSError)):
            run_asyncio(asyncio.wait_for(plaintext(port), 10))


def test_keys_create_rejects_a_bad_id_with_a_clear_message(tmp_path):
    result = ferry(
        "cloud", "keys", "create", "--data-dir", str(tmp_path), "--org", "", "--location", "l"
    )
    assert result.returncode == 2
    assert "org: must be a non-empty printable id" in result.stderr


def test_serve_needs_both_tls_files(tmp_path):
    result = ferry("cloud", "serve", "--data-dir", str(tmp_path), "--tls-cert", "x.pem")
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr
    assert not os.path.exists(tmp_path / "ferry.db")


@pytest.mark.parametrize("days", ["-1", "nan", "inf", "soon"])
def test_serve_rejects_a_bad_upload_expiry_naming_the_flag(tmp_path, days):
    result = ferry(
        "cloud", "serve", "--data-dir", str(tmp_path), "--expire-uploads-after-days", days
    )
    assert result.returncode == 2
    assert "--expire-uploads-after-days" in result.stderr
    assert not os.path.exists(tmp_path / "ferry.db")
