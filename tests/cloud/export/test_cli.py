"""``ferry export``'s command line without a server: one-line errors and exit statuses."""

from __future__ import annotations

import argparse
import datetime as dt
import socket
from typing import TYPE_CHECKING

import pytest

from cloud.export.cli import credentials, parse_address, parse_time
from cloud.export.source import UsageError
from tests.cloud.export.cli_helpers import build_parser, ferry

if TYPE_CHECKING:
    from pathlib import Path

KEY = ("--key-id", "kid", "--key", "secret")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ferry export: ")
    return lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--start", "yesterday"), "--start 'yesterday' is not an ISO 8601 time"),
        (("--end", "2024-13-01"), "--end '2024-13-01' is not an ISO 8601 time"),
        (("--start", "2024-05-02", "--end", "2024-05-01"), "--start 2024-05-02 is after --end"),
    ],
)
def test_bad_times_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    status = ferry("--address", "127.0.0.1:1", *KEY, "--out", str(tmp_path), *argv)
    assert status == 2
    assert message in _one_line_error(capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("address", ["localhost", "host:", ":80", "h:0", "h:65536", "h:x"])
def test_bad_addresses_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    assert ferry("--address", address, *KEY, "--out", str(tmp_path)) == 2
    assert f"--address {address!r} must be HOST:PORT" in _one_line_error(capsys)


def test_a_missing_key_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_API_KEY_ID", raising=False)
    monkeypatch.delenv("FERRY_API_KEY", raising=False)
    assert ferry("--address", "127.0.0.1:1", "--key-id", "kid", "--out", str(tmp_path)) == 2
    line = _one_line_error(capsys)
    assert "no API key:" in line
    assert "FERRY_API_KEY" in line


def test_a_missing_ca_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "nope.pem"
    assert ferry("--address", "h:1", *KEY, "--tls-ca", str(ca), "--out", str(tmp_path)) == 2
    assert f"--tls-ca {ca}: No such file or directory" in _one_line_error(capsys)


def test_an_unreachable_server_is_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    status = ferry("--address", f"127.0.0.1:{port}", *KEY, "--out", str(tmp_path / "o"))
    assert status == 1
    assert f"cannot reach 127.0.0.1:{port}" in _one_line_error(capsys)


def test_tls_options_exclude_each_other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("--address", "h:1", *KEY, "--tls", "--tls-ca", "x", "--out", str(tmp_path))
    assert ferry(*argv) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert ferry("--help") == 0
    out = capsys.readouterr().out
    for option in ("--address", "--key-id", "--tls-ca", "--kind", "--format", "--part",
                   "--component-type", "--method", "--start", "--end", "--tag", "--page-size",
                   "--restart", "--no-progress"):  # fmt: skip
        assert option in out


def test_tags_may_be_listed_or_repeated() -> None:
    args = build_parser().parse_args(
        ["export", "--address", "h:1", "--out", "o", "--tag", "a", "b", "--tag", "c"]
    )
    assert args.tags == ["a", "b", "c"]


def test_times_without_a_zone_are_utc() -> None:
    assert parse_time("2024-05-01T12:00", "--start") == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert parse_time("2024-05-01T14:00+02:00", "--start") == dt.datetime(
        2024, 5, 1, 12, tzinfo=dt.UTC
    )
    assert parse_time("2024-05-01T12:00:00.5Z", "--start").microsecond == 500_000


def test_ipv6_addresses_take_brackets() -> None:
    assert parse_address("[::1]:8080") == ("::1", 8080)
    assert parse_address("example.com:443") == ("example.com", 443)


def test_flags_override_the_environment_one_by_one() -> None:
    env = {"FERRY_API_KEY_ID": "env-id", "FERRY_API_KEY": "env-key"}
    both = credentials(argparse.Namespace(key_id=None, key=None), env)
    assert (both.key_id, both.key) == ("env-id", "env-key")
    mixed = credentials(argparse.Namespace(key_id="flag-id", key=None), env)
    assert (mixed.key_id, mixed.key) == ("flag-id", "env-key")
    with pytest.raises(UsageError, match="no API key id and key"):
        credentials(argparse.Namespace(key_id=None, key=None), {})
