"""``ferry export`` against the real cloud server over loopback gRPC.

One server (module scope) holds readings of three sources on two parts and
images of two cameras; each test exports into its own directory and compares
the files with what was uploaded. Interruptions are injected through the page
source (after N pages) and, in one slow test, by SIGKILLing an export process.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cloud.aio_loop import run_asyncio
from cloud.export.cli import build_plan, credentials, endpoint
from cloud.export.client import GrpcPageSource, open_source
from cloud.export.progress import Progress
from cloud.export.run import export
from cloud.export.state import STATE_NAME, load_state
from tests.cloud.export import live as live_mod
from tests.cloud.export.cli_helpers import build_parser, ferry
from tests.cloud.export.fakes import Boom, fail_at, tree

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from cloud.export.source import PageSource

pytestmark = pytest.mark.slow  # a real server, and every page is fsynced

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_mod.Live]:
    server = live_mod.start(tmp_path_factory.mktemp("cloud"))
    try:
        live_mod.populate(server, random.Random(5))
        yield server
    finally:
        live_mod.stop(server)


def _argv(live: live_mod.Live, out: Path, *extra: str) -> list[str]:
    key = ["--key-id", live.key_id, "--key", live.key]
    return ["--address", live.address, *key, "--out", str(out), "--no-progress", *extra]


def _export(live: live_mod.Live, out: Path, *extra: str) -> int:
    return ferry(*_argv(live, out, *extra))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_binary(out: Path, live: live_mod.Live, keep: Callable[[dict], bool]) -> None:
    index = _jsonl(out / "binary" / "index.jsonl")
    wanted = {bid for bid, (record, _) in live.data.files.items() if keep(record)}
    assert [e["binary_data_id"] for e in index] == sorted(
        wanted, key=lambda bid: live.data.files[bid][0]["time_requested"]
    )
    for entry in index:
        record, payload = live.data.files[entry["binary_data_id"]]
        assert (out / "binary" / entry["file"]).read_bytes() == payload
        assert entry["file"].startswith(record["component_name"] + "/")
        assert entry["file"].endswith(record["file_ext"])
        assert entry["size_bytes"] == len(payload)
        for name, value in record.items():
            assert entry[name] == value, name


def test_a_full_export_equals_what_was_uploaded(
    live: live_mod.Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(live, tmp_path, "--page-size", "17") == 0
    assert _jsonl(tmp_path / "tabular.jsonl") == live.data.readings
    _check_binary(tmp_path, live, lambda _: True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "done in" in err
    assert f"195 readings ({(tmp_path / 'tabular.jsonl').stat().st_size / 1000:.3g} kB)" in err
    assert "9 files" in err


def test_a_csv_export_holds_the_same_readings(live: live_mod.Live, tmp_path: Path) -> None:
    assert _export(live, tmp_path, "--kind", "tabular", "--format", "csv") == 0
    assert not (tmp_path / "binary").exists()
    with (tmp_path / "tabular.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["tags"], row["data"] = json.loads(row["tags"]), json.loads(row["data"])
    assert rows == live.data.readings


@pytest.mark.parametrize(
    ("flags", "keep"),
    [
        (["--component", "env"], lambda r: r["component_name"] == "env"),
        (["--part", "part-2"], lambda r: r["part_id"] == "part-2"),
        (["--tag", "lab", "field"], lambda r: {"lab", "field"} & set(r["tags"])),
        (
            ["--start", "2024-05-01T12:00:10Z", "--end", "2024-05-01T14:00:20.000020+02:00"],
            lambda r: "2024-05-01T12:00:10" <= r["time_requested"] <= "2024-05-01T12:00:20.000020Z",
        ),
        (
            ["--component-type", live_mod.MOVEMENT, "--method", "LinearAcceleration"],
            lambda r: r["component_name"] == "imu",
        ),
    ],
    ids=["component", "part", "tags", "interval", "type-and-method"],
)
def test_filters_select_the_same_data_as_the_model(
    live: live_mod.Live, tmp_path: Path, flags: list[str], keep: Callable[[dict], bool]
) -> None:
    assert _export(live, tmp_path, *flags) == 0
    expected = [r for r in live.data.readings if keep(r)]
    assert expected
    assert _jsonl(tmp_path / "tabular.jsonl") == expected
    _check_binary(tmp_path, live, keep)


class _Hooked:
    """A ``PageSource`` that calls ``on_page(n)`` before serving its page ``n``."""

    def __init__(self, inner: PageSource, on_page: Callable[[int], None]) -> None:
        self._inner, self._on_page, self._served = inner, on_page, 0

    async def count(self, kind):  # type: ignore[no-untyped-def]
        return await self._inner.count(kind)

    def _tick(self) -> None:
        self._on_page(self._served)
        self._served += 1

    async def tabular_page(self, last: str, limit: int):  # type: ignore[no-untyped-def]
        self._tick()
        return await self._inner.tabular_page(last, limit)

    async def binary_page(self, last: str, limit: int):  # type: ignore[no-untyped-def]
        self._tick()
        return await self._inner.binary_page(last, limit)


def _hooked_export(argv: list[str], on_page: Callable[[int], None]) -> None:
    """``run.export`` of the plan ``argv`` parses to, through ``_Hooked`` over real gRPC."""
    args = build_parser().parse_args(["export", *argv])
    plan, target, creds = build_plan(args), endpoint(args), credentials(args, {})

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[PageSource]:
        async with open_source(target, creds, plan.spec) as source:
            yield _Hooked(source, on_page)

    run_asyncio(export(connect, plan, Progress(sys.stderr, live=False)))


@pytest.mark.parametrize("after", [1, 4, 9, 10])
def test_an_export_interrupted_after_n_pages_resumes_to_the_full_output(
    live: live_mod.Live, tmp_path: Path, after: int
) -> None:
    flags = ("--page-size", "20", "--format", "csv")
    assert _export(live, tmp_path / "clean", *flags) == 0
    out = tmp_path / "out"
    # 195 readings make 10 pages of 20, then 9 files make 1: pages 0-10.
    with pytest.raises(Boom):
        _hooked_export(_argv(live, out, *flags), fail_at(after))
    state = load_state(out / STATE_NAME)
    assert state is not None
    assert sum(k.items for k in state.kinds.values()) == min(after * 20, 195)
    assert _export(live, out, *flags) == 0
    assert tree(out) == tree(tmp_path / "clean")


def test_a_killed_export_process_resumes_to_the_full_output(
    live: live_mod.Live, tmp_path: Path
) -> None:
    flags = ("--page-size", "2")
    assert _export(live, tmp_path / "clean", *flags) == 0
    out = tmp_path / "out"
    script = (
        "import sys; from tests.cloud.export.cli_helpers import ferry; "
        "sys.exit(ferry(*sys.argv[1:]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, *_argv(live, out, *flags)], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kill it mid-export, between or during pages
            state = _peek(out)
            if state is not None and sum(k.items for k in state.kinds.values()) >= 20:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    state = load_state(out / STATE_NAME)
    assert state is not None
    assert not state.complete, "the export finished before it could be killed"
    assert _export(live, out, *flags) == 0
    assert tree(out) == tree(tmp_path / "clean")


def _peek(out: Path):  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):  # the file may be replaced while read
        return load_state(out / STATE_NAME)
    return None


def test_a_changed_filter_is_refused_and_a_finished_export_is_not_redone(
    live: live_mod.Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(live, tmp_path, "--component", "imu") == 0
    before = tree(tmp_path)
    capsys.readouterr()
    assert _export(live, tmp_path, "--component", "imu") == 0
    assert "is already complete: 40 readings" in capsys.readouterr().err
    assert _export(live, tmp_path, "--component", "env") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "component_name: 'imu' -> 'env'" in err
    assert "--restart" in err
    assert tree(tmp_path) == before
    assert _export(live, tmp_path, "--component", "env", "--restart") == 0
    assert len(_jsonl(tmp_path / "tabular.jsonl")) == 155


def test_a_bad_key_fails_with_a_clear_message(
    live: live_mod.Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--address", live.address, "--key-id", live.key_id, "--key", "wrong"]
    assert ferry(*argv, "--out", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"ferry export: authentication failed at {live.address}: invalid API key id or key "
        "(check --key-id/--key or FERRY_API_KEY_ID/FERRY_API_KEY)"
    ]


def test_the_key_may_come_from_the_environment(
    live: live_mod.Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_API_KEY_ID", live.key_id)
    monkeypatch.setenv("FERRY_API_KEY", live.key)
    argv = ["--address", live.address, "--out", str(tmp_path), "--kind", "binary"]
    assert ferry(*argv, "--no-progress") == 0
    _check_binary(tmp_path, live, lambda _: True)


def test_tls_with_a_private_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    client_tls = ssl.create_default_context(cafile=str(ca_file))
    client_tls.set_alpn_protocols(["h2"])
    server = live_mod.start(tmp_path / "cloud", client_tls, tls_cert=cert_file, tls_key=key_file)
    try:
        live_mod.populate(server, random.Random(1))
        assert _export(server, tmp_path / "out", "--tls-ca", str(ca_file)) == 0
        assert _jsonl(tmp_path / "out" / "tabular.jsonl") == server.data.readings
        capsys.readouterr()
        assert _export(server, tmp_path / "plain") == 1  # h2c against a TLS server
        err = capsys.readouterr().err
        assert err.startswith(f"ferry export: cannot reach {server.address}")
        assert "Traceback" not in err
    finally:
        live_mod.stop(server)


def test_the_progress_bar_draws_on_a_terminal(live: live_mod.Live, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = (
        "import sys; from tests.cloud.export.cli_helpers import ferry; "
        "sys.stderr.isatty = lambda: True; sys.exit(ferry(*sys.argv[1:]))"
    )
    argv = _argv(live, tmp_path, "--page-size", "50")
    argv.remove("--no-progress")
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], cwd=REPO, env=env, capture_output=True,
        timeout=60, check=False,
    )  # fmt: skip
    err = done.stderr.decode()  # bytes: text mode would turn "\r" into "\n"
    assert done.returncode == 0, err
    assert "\rtabular [####################] 195/195 100%" in err
    assert "\rbinary  [####################] 9/9 100%" in err
    lines = err.split("\n")
    assert lines[-2].startswith("ferry export: done in")
    assert len(lines) == 4  # the two bars, the summary, and the final newline


def test_a_token_that_expires_mid_export_is_renewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logins: list[int] = []
    authenticate = GrpcPageSource.authenticate

    async def counted(self: GrpcPageSource) -> None:
        logins.append(1)
        await authenticate(self)

    monkeypatch.setattr(GrpcPageSource, "authenticate", counted)
    now = [time.time_ns()]
    server = live_mod.start(tmp_path / "cloud", wall_ns=lambda: now[0], token_ttl_s=60)
    try:
        live_mod.populate(server, random.Random(2))

        def expire(page: int) -> None:
            if page == 3:
                now[0] += 61 * 10**9  # past the first token's expiry

        _hooked_export(_argv(server, tmp_path / "out", "--page-size", "30"), expire)
        assert len(logins) == 2
        assert _jsonl(tmp_path / "out" / "tabular.jsonl") == server.data.readings
        _check_binary(tmp_path / "out", server, lambda _: True)
    finally:
        live_mod.stop(server)
