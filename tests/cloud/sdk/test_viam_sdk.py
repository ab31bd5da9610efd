"""The official, unmodified Viam Python SDK works against a real ``ferry cloud serve``.

Each test creates API keys with ``ferry cloud keys create``, starts the server as a
subprocess on a free port with a temporary data dir, and runs ``viam_sdk_client.py``
with the interpreter of the isolated SDK venv (``sdkenv.py``): the SDK pins
``protobuf`` 6, which cannot live in the project's venv. Failures quote the script's
per-call report (which SDK call, which gRPC status) and the server's log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.cloud.sdk import sdkenv

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

FERRY = Path(sys.executable).parent / "ferry"
CLIENT = Path(__file__).with_name("viam_sdk_client.py")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
CLIENT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ApiKey:
    """A key printed by ``ferry cloud keys create --json``."""

    key_id: str
    key: str
    org_id: str
    location_id: str


@dataclass
class Server:
    """A running ``ferry cloud serve`` and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The isolated venv's interpreter; skips (with pip's reason) when PyPI is unreachable."""
    try:
        return sdkenv.ensure_sdk_python()
    except sdkenv.SdkEnvUnavailable as error:
        pytest.skip(str(error))


def create_key(data_dir: Path, org: str, location: str) -> ApiKey:
    """Makes an API key with the real CLI, as an operator would."""
    argv = [str(FERRY), "cloud", "keys", "create", "--data-dir", str(data_dir)]
    argv += ["--org", org, "--location", location, "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}"
    objects = [line for line in done.stdout.splitlines() if line.lstrip().startswith("{")]
    assert objects, f"no JSON object in `keys create --json` output: {done.stdout!r}"
    printed = json.loads(objects[-1])
    assert (printed["org_id"], printed["location_id"]) == (org, location), printed
    return ApiKey(printed["key_id"], printed["key"], org, location)


def listening_port(output: str) -> int | None:
    """The port of the ``listening on HOST:PORT`` line (the last ``:NUMBER`` on it)."""
    for line in output.splitlines():
        if "listening on" in line:
            ports = re.findall(r":(\d+)", line)
            if ports:
                return int(ports[-1])
    return None


def start_server(data_dir: Path, log: Path, tls: tuple[Path, Path] | None = None) -> Server:
    """Starts ``ferry cloud serve`` on port 0 and waits for its ``listening on`` line."""
    argv = [str(FERRY), "cloud", "serve", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--data-dir", str(data_dir)]
    if tls is not None:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        port = listening_port(log.read_text(errors="replace"))
        if port is not None:
            return Server(process, port, log)
        if process.poll() is not None:
            raise AssertionError(
                f"ferry cloud serve exited {process.returncode} before listening:\n"
                + log.read_text(errors="replace")
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(
                "ferry cloud serve printed no `listening on` line in "
                f"{START_TIMEOUT_S}s:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.05)


def stop_server(server: Server) -> int:
    """SIGTERM, then wait for the graceful shutdown; kills only if it hangs."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            raise AssertionError(
                f"ferry cloud serve ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{server.log_tail()}"
            ) from None
    return server.process.returncode


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cloud"
    path.mkdir()
    return path


@pytest.fixture
def serve(data_dir: Path, tmp_path: Path) -> Iterator[Any]:
    """Starts servers on demand; each must shut down cleanly (exit 0) on SIGTERM."""
    started: list[Server] = []

    def start(tls: tuple[Path, Path] | None = None) -> Server:
        server = start_server(data_dir, tmp_path / f"serve-{len(started)}.log", tls)
        started.append(server)
        return server

    yield start
    for server in started:
        status = stop_server(server)
        assert status == 0, f"ferry cloud serve exited {status} on SIGTERM:\n{server.log_tail()}"


def run_client(
    python: Path, server: Server, key: ApiKey, part_id: str, *extra: str, tls: bool = False
) -> dict[str, Any]:
    """Runs the SDK script; fails the test with its per-call report if anything broke."""
    argv = [str(python), str(CLIENT), "--address", server.address]
    argv += ["--key-id", key.key_id, "--key", key.key, "--org-id", key.org_id]
    argv += ["--location-id", key.location_id, "--part-id", part_id, *extra]
    if tls:
        argv.append("--tls")
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        env=sdkenv.clean_env(),
        cwd=CLIENT.parent,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(
            f"SDK client exited {done.returncode} without a JSON report\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}\n"
            f"server log:\n{server.log_tail()}"
        )
    if done.returncode != 0 or not report["ok"]:
        failures = "\n".join(f"  - {line}" for line in report["failures"])
        pytest.fail(
            f"Viam SDK calls failed against ferry cloud serve (mode {report['mode']}):\n"
            f"{failures}\nstderr tail:\n{done.stderr[-2000:]}\n"
            f"server log:\n{server.log_tail()}"
        )
    return report


def new_id() -> str:
    return str(uuid.uuid4())


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway cert for 127.0.0.1/localhost, from ``cryptography`` or the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import cryptography  # noqa: F401
    except ImportError:
        pass
    else:
        _cert_with_cryptography(cert, key)
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither the cryptography package nor the openssl CLI can make a cert")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _cert_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_sdk_uploads_reads_and_deletes_over_h2c(sdk_python: Path, data_dir: Path, serve) -> None:
    """Every DataClient upload, query and delete call of viam-sdk works over plain h2c.

    Uploaded bytes come back identical, tabular values and times match, tags are there,
    and counts drop after each delete.
    """
    key = create_key(data_dir, new_id(), new_id())
    server = serve()
    report = run_client(sdk_python, server, key, new_id())
    calls = {step["call"] for step in report["steps"]}
    for call in (
        "binary_data_capture_upload",
        "tabular_data_capture_upload",
        "streaming_data_capture_upload",
        "file_upload",
        "file_upload_from_path",
        "tabular_data_by_filter",
        "tabular_data_by_sql",
        "tabular_data_by_mql",
        "get_latest_tabular_data",
        "export_tabular_data",
        "binary_data_by_filter",
        "binary_data_by_ids",
        "tags_by_filter",
        "delete_binary_data_by_ids",
        "delete_binary_data_by_filter",
        "delete_tabular_data",
    ):
        assert call in calls, f"the SDK script never made {call}"


def test_sdk_documented_pagination_loop_returns_everything_once_and_ends(
    sdk_python: Path, data_dir: Path, serve
) -> None:
    """The loop the SDK's docstrings teach (pass ``last`` back, stop on an empty page)
    yields every reading and binary item exactly once, and terminates."""
    key = create_key(data_dir, new_id(), new_id())
    server = serve()
    run_client(sdk_python, server, key, new_id(), "--mode", "pages")


def test_sdk_works_over_tls_with_a_self_signed_cert(
    sdk_python: Path, data_dir: Path, serve, tmp_path: Path
) -> None:
    """With ``--tls-cert/--tls-key`` the server speaks TLS (h2 via ALPN), and the SDK's
    own TLS dial path (unverified context for localhost) uploads and reads through it."""
    cert, cert_key = self_signed_cert(tmp_path)
    key = create_key(data_dir, new_id(), new_id())
    server = serve(tls=(cert, cert_key))

    # The port really serves our certificate, and negotiates h2 as gRPC requires.
    context = ssl.create_default_context(cafile=str(cert))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"

    run_client(sdk_python, server, key, new_id(), tls=True)


def test_sdk_key_of_another_org_cannot_see_touch_or_overwrite_data(
    sdk_python: Path, data_dir: Path, serve
) -> None:
    """Tenancy through the SDK: org B's key reads nothing of org A (empty or refused),
    deletes nothing of it, cannot upload into A's part, and A's data is intact after."""
    key_a = create_key(data_dir, new_id(), new_id())
    key_b = create_key(data_dir, new_id(), new_id())
    part_a = new_id()
    server = serve()

    seeded = run_client(sdk_python, server, key_a, part_a, "--mode", "keep")
    binary_ids = [
        seeded["ids"][kind]
        for kind in ("binary_capture", "binary_stream", "binary_file", "binary_path")
    ]
    run_client(
        sdk_python,
        server,
        key_b,
        new_id(),
        "--mode",
        "foreign",
        "--foreign-org",
        key_a.org_id,
        "--foreign-part",
        part_a,
        "--foreign-sensor",
        seeded["ids"]["sensor"],
        "--foreign-binary-ids",
        ",".join(binary_ids),
    )
    run_client(
        sdk_python,
        server,
        key_a,
        part_a,
        "--mode",
        "recount",
        "--expect-tabular",
        "3",
        "--expect-binary",
        str(len(binary_ids)),
    )
