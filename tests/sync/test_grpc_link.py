"""``CloudLink``: TLS, API-key authentication, deadlines, reconnection, error classification.

Guarantees checked: TLS verifies the server against the configured CA (and
fails, retryably, against one it does not trust); a wrong API key is a
TransientError naming Authenticate; a refused connection is an OfflineError; a
server without the resumable service makes the uploader say
ResumableUnsupported; a rejected token is replaced once, and a second rejection
is a TransientError; a black-holed connection fails after the deadline and the
next call reaches a live server on a new channel; a call the caller cancels
also drops its channel; every status code maps to one class.
"""

from __future__ import annotations

import hashlib
import socket
import time
from typing import TYPE_CHECKING

import pytest
import trio
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from h2.exceptions import ProtocolError

from actors.adapters.aio import open_aio_loop
from actors.adapters.cloud_link import (
    AUTHENTICATE,
    CloudLink,
    CredentialsRejected,
    map_exceptions,
    status_error,
)
from actors.adapters.grpc_uploader import OPEN_UPLOAD, GrpcUploader
from actors.errors import (
    OfflineError,
    PermanentError,
    ResumableUnsupported,
    SyncError,
    TransientError,
)
from actors.ports import FileIdentity, FileKind, SyncFile
from cloud.auth import create_api_key
from cloud.store.sqlite import SqliteStore
from protos.gen.ferry.sync import v1 as resumable_pb
from protos.gen.proto.rpc import v1 as rpc_pb
from tests.sync.cloudfixture import (
    LOC,
    ORG,
    PART,
    cloud_settings,
    running_cloud,
    running_grpc_server,
)

if TYPE_CHECKING:
    from pathlib import Path

    from actors.config._resolve import CloudSettings


def a_file(tmp_path: Path) -> tuple[FileIdentity, SyncFile]:
    path = tmp_path / "files" / "a.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"abc")
    file = SyncFile(path, path.parent, FileKind.ARBITRARY, 3, path.stat().st_mtime_ns)
    return FileIdentity(PART, "a.txt", 3, hashlib.sha256(b"abc").digest()), file


async def open_once(settings: CloudSettings, tmp_path: Path, **kw: float) -> CloudLink:
    """Opens one upload through a new link; returns the (closed) link for its counters."""
    link = CloudLink(settings, **kw)
    try:
        await GrpcUploader(link).open(*a_file(tmp_path))
    finally:
        await link.close()
    return link


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeAuth(rpc_pb.AuthServiceBase):
    """Accepts any key; counts the tokens it hands out."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(
        self, message: rpc_pb.AuthenticateRequest
    ) -> rpc_pb.AuthenticateResponse:
        self.calls += 1
        return rpc_pb.AuthenticateResponse(access_token=f"token-{self.calls}")


class RejectsEveryToken(resumable_pb.ResumableUploadServiceBase):
    async def open_upload(
        self, message: resumable_pb.OpenUploadRequest
    ) -> resumable_pb.OpenUploadResponse:
        raise GRPCError(Status.UNAUTHENTICATED, "token revoked")


# ------------------------------------------------------------------ TLS and keys


def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "srv.pem", tmp_path / "srv.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return cert_file, key_file, ca_file


async def test_tls_trusts_the_configured_ca_and_rejects_an_unknown_one_retryably(tmp_path):
    cert, key, ca = tls_files(tmp_path)
    with running_cloud(tmp_path, tls_cert=cert, tls_key=key) as cloud:
        async with open_aio_loop():
            trusted = await open_once(cloud.settings(insecure=False, tls_ca_file=ca), tmp_path)
            assert trusted.authentications == 1
            with pytest.raises(OfflineError, match="CERTIFICATE_VERIFY_FAILED") as caught:
                await open_once(cloud.settings(insecure=False), tmp_path)  # system CAs only
            assert caught.value.where == AUTHENTICATE
            with pytest.raises(OfflineError):  # plaintext to a TLS port
                await open_once(cloud.settings(insecure=True), tmp_path, call_timeout_s=2)


async def test_a_wrong_api_key_is_transient_and_names_authenticate(tmp_path):
    with running_cloud(tmp_path) as cloud:
        key_id, _ = cloud.key()
        async with open_aio_loop():
            with pytest.raises(TransientError, match=r"Authenticate.*UNAUTHENTICATED") as caught:
                await open_once(cloud.settings(key=(key_id, "fk_wrong")), tmp_path)
    assert isinstance(caught.value, CredentialsRejected)
    assert not isinstance(caught.value, OfflineError)
    assert caught.value.where == AUTHENTICATE


async def test_an_expired_token_is_replaced_once_and_the_call_retried(tmp_path):
    now = [time.time_ns()]
    with running_cloud(tmp_path, wall_ns=lambda: now[0], token_ttl_s=60) as cloud:
        async with open_aio_loop():
            link = CloudLink(cloud.settings())
            uploader = GrpcUploader(link)
            try:
                first = await uploader.open(*a_file(tmp_path))
                now[0] += 120 * 1_000_000_000  # the token is now expired
                again = await uploader.open(*a_file(tmp_path))
            finally:
                await link.close()
    assert again.upload_id == first.upload_id
    assert link.authentications == 2
    assert link.channels_opened == 1  # re-authentication needs no new connection


async def test_a_token_rejected_twice_is_transient_naming_the_call(tmp_path):
    auth = FakeAuth()
    with running_grpc_server(lambda: [auth, RejectsEveryToken()]) as port:
        async with open_aio_loop():
            with pytest.raises(CredentialsRejected, match="token revoked") as caught:
                await open_once(cloud_settings(port), tmp_path)
    assert caught.value.where == OPEN_UPLOAD
    assert auth.calls == 2  # one re-authentication, then give up


async def test_a_server_answering_unimplemented_is_resumable_unsupported(tmp_path):
    # The generated base class answers UNIMPLEMENTED to every method, as a
    # grpc-go server does for a service it lacks. (A grpclib server that lacks
    # the service omits content-type, which grpclib's client reports as UNKNOWN.)
    unimplemented = resumable_pb.ResumableUploadServiceBase
    with running_grpc_server(lambda: [FakeAuth(), unimplemented()]) as port:
        async with open_aio_loop():
            with pytest.raises(ResumableUnsupported, match="UNIMPLEMENTED") as caught:
                await open_once(cloud_settings(port), tmp_path)
    assert caught.value.where == OPEN_UPLOAD


# ---------------------------------------------------------- offline and deadlines


async def test_a_refused_connection_is_offline(tmp_path):
    async with open_aio_loop():
        with pytest.raises(OfflineError, match="ConnectionRefused") as caught:
            await open_once(cloud_settings(free_port()), tmp_path)
    assert caught.value.where == AUTHENTICATE


def black_hole() -> socket.socket:
    """A TCP listener nobody accepts on: connections open, then nothing ever answers."""
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    return hole


async def test_a_black_holed_connection_fails_at_the_deadline_and_the_next_call_reconnects(
    tmp_path,
):
    # The key exists before the server does: the link is configured once.
    store = SqliteStore(tmp_path / "cloud", wall_ns=time.time_ns)
    key = create_api_key(store, org_id=ORG, location_id=LOC, wall_ns=time.time_ns)
    store.close()
    hole = black_hole()
    port = int(hole.getsockname()[1])
    async with open_aio_loop():
        # 1 s: short for the black hole, long enough for a fresh server's first
        # Authenticate on a loaded 2-core CI machine (0.2 s was flaky there).
        link = CloudLink(cloud_settings(port, key_id=key[0], secret=key[1]), call_timeout_s=1.0)
        uploader = GrpcUploader(link)
        try:
            t0 = trio.current_time()
            with pytest.raises(OfflineError, match="deadline"):
                await uploader.open(*a_file(tmp_path))
            assert 1.0 <= trio.current_time() - t0 < 5
            # The wedged connection stays open, unanswered; a live server takes the port.
            wedged, _ = hole.accept()
            hole.close()
            with wedged, running_cloud(tmp_path, port=port):
                up = await uploader.open(*a_file(tmp_path))
                await link.close()  # before the server stops: it would leave the socket open
        finally:
            await link.close()
    assert (up.committed_offset, up.finished) == (0, False)
    assert link.channels_opened == 2


async def test_a_call_the_caller_cancels_drops_its_channel(tmp_path):
    with black_hole() as hole:
        port = int(hole.getsockname()[1])
        async with open_aio_loop():
            link = CloudLink(cloud_settings(port), call_timeout_s=30)
            uploader = GrpcUploader(link)
            for _ in range(2):
                with trio.move_on_after(0.05) as scope:
                    await uploader.open(*a_file(tmp_path))
                assert scope.cancelled_caught
            await link.close()
    assert link.channels_opened == 2


# -------------------------------------------------------------- classification


OFFLINE = {Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED}
PERMANENT = {Status.INVALID_ARGUMENT, Status.DATA_LOSS, Status.OUT_OF_RANGE}


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.OK], ids=str)
def test_every_status_code_maps_to_exactly_one_class(status: Status):
    err = status_error("Svc/Call", status, "the server's words")
    if status in OFFLINE:
        expected: type[SyncError] = OfflineError
    elif status in PERMANENT:
        expected = PermanentError
    elif status is Status.UNIMPLEMENTED:
        expected = ResumableUnsupported
    else:
        expected = TransientError
    assert isinstance(err, expected)
    assert type(err) is expected or status is Status.UNAUTHENTICATED
    assert str(err) == f"Svc/Call: {status.name}: the server's words"


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError("reset by peer"),
        TimeoutError("Deadline exceeded"),  # asyncio.TimeoutError is this one
        StreamTerminatedError("Connection lost"),
        ProtocolError("bad frame"),
        OSError(113, "No route to host"),
    ],
    ids=type,
)
def test_transport_failures_are_offline_and_name_the_call(exc: Exception):
    pattern = rf"^Svc/Call: .*{type(exc).__name__}"
    with pytest.raises(OfflineError, match=pattern) as caught, map_exceptions("Svc/Call"):
        raise exc
    assert caught.value.__cause__ is exc


def test_other_exceptions_pass_through_unclassified():
    with pytest.raises(KeyError), map_exceptions("Svc/Call"):
        raise KeyError("a bug, not a network failure")


async def test_connections_are_recycled_without_cutting_off_a_call_in_flight(tmp_path):
    """h2 state per connection stays bounded: a new connection every N calls, none cut off."""
    with running_cloud(tmp_path) as cloud:
        async with open_aio_loop():
            link = CloudLink(cloud.settings(), recycle_after_calls=3)
            uploader = GrpcUploader(link)
            try:
                await uploader.open(*a_file(tmp_path))  # calls 1-2: Authenticate, OpenUpload
                # Calls 3-9 at once, across both recycling points: each must succeed.
                async with trio.open_nursery() as nursery:
                    for _ in range(7):
                        nursery.start_soon(uploader.open, *a_file(tmp_path))
            finally:
                await link.close()
    assert link.channels_opened == 3  # calls 1-3, 4-6, 7-9


async def test_the_deadline_leaves_no_asyncio_timer_behind(tmp_path):
    """Quick calls arm no asyncio timers (trio-asyncio keeps cancelled ones until due)."""
    with running_cloud(tmp_path) as cloud:
        async with open_aio_loop() as loop:
            link = CloudLink(cloud.settings())
            try:
                for _ in range(20):
                    await GrpcUploader(link).open(*a_file(tmp_path))
                timers = len(loop._timers)  # the leak this guards against
            finally:
                await link.close()
    assert timers < 5
