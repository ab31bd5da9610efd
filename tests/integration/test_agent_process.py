"""The real `ferry run` process: kill -9, restart, and every completed record is there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.codec import CAPTURE_EXT, PROG_EXT, CaptureFileError, CaptureFileReader, iter_records

FERRY = Path(sys.executable).parent / "ferry"
pytestmark = pytest.mark.slow


def _config(path: Path, capture_dir: Path) -> Path:
    method = {"method": "Readings", "capture_frequency_hz": 50}
    path.write_text(
        json.dumps(
            {
                "components": [
                    {
                        "name": f"s{i}",
                        "api": "rdk:component:sensor",
                        "model": "fake",
                        "service_configs": [
                            {"type": "data_manager", "attributes": {"capture_methods": [method]}}
                        ],
                    }
                    for i in range(3)
                ],
                "services": [
                    {
                        "name": "dm",
                        "api": "rdk:service:data_manager",
                        "attributes": {"capture_dir": str(capture_dir)},
                    }
                ],
            }
        )
    )
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [str(FERRY), "run", "--config", str(config), "--no-api"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _complete_records(path: Path) -> set[tuple[str, int]]:
    """(component, time_requested) of every complete record in a (possibly torn) file."""
    found: set[tuple[str, int]] = set()
    try:
        with CaptureFileReader(path) as reader:
            name = reader.header.component_name
            for _, record in reader.records():
                found.add((name, record.time_requested_ns))
    except CaptureFileError:
        pass  # the torn tail of a killed writer: what came before is counted
    return found


def _all_records(root: Path, ext: str) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for path in root.rglob(f"*{ext}"):
        out |= _complete_records(path)
    return out


def test_kill_9_then_restart_recovers_every_completed_record(tmp_path: Path):
    capture = tmp_path / "capture"
    config = _config(tmp_path / "robot.json", capture)
    log = tmp_path / "agent.log"
    agent = _start(config, log)
    try:
        # Wait until the agent has written (not just buffered) a good amount of data.
        _wait_for(lambda: sum(p.stat().st_size for p in capture.rglob(f"*{PROG_EXT}")) > 20_000)
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
    on_disk = _all_records(capture, PROG_EXT) | _all_records(capture, CAPTURE_EXT)
    assert len(on_disk) > 100
    assert list(capture.rglob(f"*{PROG_EXT}")), "a killed agent leaves its open files as .prog"

    agent = _start(config, log)
    try:  # the log holds both runs: wait for the second start
        _wait_for(lambda: log.read_text().count("agent running") == 2)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0, log.read_text()

    assert not list(capture.rglob(f"*{PROG_EXT}")), "restart and clean stop leave no .prog"
    after: list[tuple[str, int]] = []
    for path in capture.rglob(f"*{CAPTURE_EXT}"):
        name = None
        for _, record in iter_records(path):  # every file reads fully: no torn tail remains
            with CaptureFileReader(path) as reader:
                name = reader.header.component_name
            after.append((name, record.time_requested_ns))
    assert on_disk <= set(after), "a record that was complete on disk at the kill is missing"
    assert len(after) == len(set(after)), "a record was duplicated by recovery"
    assert "recovered" in log.read_text()


def test_sigterm_finishes_every_open_file(tmp_path: Path):
    capture = tmp_path / "capture"
    config = _config(tmp_path / "robot.json", capture)
    log = tmp_path / "agent.log"
    agent = _start(config, log)
    try:
        _wait_for(lambda: "agent running" in log.read_text())
        _wait_for(lambda: any(capture.rglob(f"*{PROG_EXT}")))
        time.sleep(1.0)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0, log.read_text()
    assert not list(capture.rglob(f"*{PROG_EXT}"))
    assert len(_all_records(capture, CAPTURE_EXT)) >= 100


def test_invalid_config_exits_with_every_problem_named(tmp_path: Path):
    config = tmp_path / "robot.json"
    config.write_text(
        '{"components": [{"name": "x", "api": "rdk:component:sensor", "model": "fake", '
        '"service_configs": [{"type": "data_manager", "attributes": '
        '{"capture_methods": [{"method": "Readings", "capture_queue_size": -1}]}}]}]}'
    )
    result = subprocess.run(
        [str(FERRY), "run", "--config", str(config), "--no-api"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        "components[0].service_configs[0].attributes.capture_methods[0].capture_queue_size"
        in result.stderr
    )
