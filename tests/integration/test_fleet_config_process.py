"""Fleet config end to end: one real `ferry cloud`, three real agents sharing a fragment.

Guarantees checked (issue 9's acceptance): a fragment frequency change made with
`ferry cloud fragment set-frequency` is applied by all three agents within 5 s
(each reports the new revision to the cloud), and their capture rate follows,
counted from their capture files; a part's override of one method keeps its
own value through the change; no reading is lost or duplicated around the
change (the deadline schedule leaves no gap and no repeated timestamp); and an
agent restarted while the cloud is down starts from its cached config and
captures at the latest frequency.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest

from actors.codec import CAPTURE_EXT, iter_records
from cloud.store.sqlite import SqliteStore
from tests.cloud.fleet.test_merge import sensor
from tests.integration.test_cloud_process import create_key

if TYPE_CHECKING:
    from pathlib import Path

    from cloud.fleet.port import PartStatus

pytestmark = pytest.mark.slow

FERRY = [sys.executable, "-m", "actors.cli"]
ORG = "org-a"
PARTS = ("robot-1", "robot-2", "robot-3")
OVERRIDE_PART = "robot-3"
TEMP_HZ_BEFORE, TEMP_HZ_AFTER = 2.0, 10.0
HUM_HZ, HUM_OVERRIDE_HZ = 4.0, 1.0
APPLY_DEADLINE_S = 5.0


FRAGMENT = {
    "components": [sensor("temp", TEMP_HZ_BEFORE), sensor("hum", HUM_HZ)],
    "services": [
        {
            "name": "dm",
            "api": "rdk:service:data_manager",
            # Files stay on the robot, so the test counts every reading captured.
            "attributes": {"sync_disabled": True, "maximum_capture_file_age_secs": 1},
        }
    ],
}
HUM_PATH = (
    "components.hum.service_configs.data_manager.attributes.capture_methods.Readings"
    ".capture_frequency_hz"
)


def _ferry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FERRY, *args], capture_output=True, text=True, timeout=60, check=False)


def _cloud(data_dir: Path, log: Path, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    with log.open("a") as stderr:
        proc = subprocess.Popen(
            [*FERRY, "cloud", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line + log.read_text()
    return proc, int(line.split()[4].rsplit(":", 1)[1])


def _agent(home: Path, part: str, port: int, key: dict[str, str]) -> subprocess.Popen[bytes]:
    home.mkdir(exist_ok=True)
    bootstrap = home / "bootstrap.json"
    cloud = {
        "address": f"127.0.0.1:{port}",
        "part_id": part,
        "api_key_id": key["key_id"],
        "api_key": key["key"],
        "insecure": True,
    }
    bootstrap.write_text(json.dumps({"config_source": "cloud", "cloud": cloud}))
    with (home / "agent.log").open("ab") as stderr:
        return subprocess.Popen(
            [*FERRY, "run", "--config", str(bootstrap), "--no-api"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "FERRY_HOME": str(home), "PYTHONUNBUFFERED": "1"},
        )


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> int:
    """Stops a process with SIGTERM (as an operator would); returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return code


def _statuses(data_dir: Path) -> dict[str, PartStatus]:
    store = SqliteStore(data_dir, sweep=False)
    try:
        return {s.part_id: s for s in store.part_statuses(ORG)}
    finally:
        store.close()


def _wait_applied(data_dir: Path, deadline_s: float) -> dict[str, PartStatus]:
    """Waits until every part reports running its current merged revision."""
    end = time.monotonic() + deadline_s
    while True:
        statuses = _statuses(data_dir)
        done = all(
            p in statuses
            and statuses[p].current_revision
            and statuses[p].applied_revision == statuses[p].current_revision
            for p in PARTS
        )
        if done or time.monotonic() > end:
            return statuses
        time.sleep(0.05)


def _readings(home: Path) -> dict[str, list[int]]:
    """``time_requested`` of every reading each collector captured, from the capture files."""
    out: dict[str, list[int]] = defaultdict(list)
    for path in sorted((home / "capture").rglob(f"*{CAPTURE_EXT}")):
        component = path.parent.parent.name
        out[component] += [record.time_requested_ns for _, record in iter_records(path)]
    return {name: sorted(times) for name, times in out.items()}


def _rate(times: list[int], start_ns: int, end_ns: int) -> float:
    inside = [t for t in times if start_ns <= t < end_ns]
    return len(inside) / ((end_ns - start_ns) / 1e9)


def _assert_no_loss_or_duplicate(times: list[int], slowest_hz: float, where: str) -> None:
    assert len(set(times)) == len(times), f"{where}: duplicated readings"
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
    # The deadline schedule never bunches; a lost reading would leave a gap of
    # two periods. Allow one skipped tick on a loaded CI machine, no more.
    assert max(gaps) < 2.5 / slowest_hz, f"{where}: a gap of {max(gaps):.2f} s"


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Path, Path]:
    """The cloud's data dir with the shared fragment and the three part configs."""
    data_dir = tmp_path / "cloud"
    fragment = tmp_path / "fragment.json"
    fragment.write_text(json.dumps(FRAGMENT))
    args = ("--data-dir", str(data_dir), "--org", ORG)
    result = _ferry("cloud", "fragment", "set", "sensors", str(fragment), *args)
    assert result.returncode == 0, result.stderr
    for part in PARTS:
        config: dict[str, object] = {"fragments": ["sensors"]}
        if part == OVERRIDE_PART:
            mod = {"$set": {HUM_PATH: HUM_OVERRIDE_HZ}}
            config["fragment_mods"] = [{"fragment": "sensors", "mods": [mod]}]
        path = tmp_path / f"{part}.json"
        path.write_text(json.dumps(config))
        result = _ferry("cloud", "config", "set", "--part", part, str(path), *args)
        assert result.returncode == 0, result.stderr
    return data_dir, tmp_path


def test_fragment_change_reaches_every_robot_live_and_the_cache_survives_a_cloud_outage(
    fleet: tuple[Path, Path],
) -> None:
    data_dir, tmp_path = fleet
    key = create_key(data_dir, ORG)
    cloud, port = _cloud(data_dir, tmp_path / "cloud.log")
    homes = {part: tmp_path / part for part in PARTS}
    agents = {part: _agent(homes[part], part, port, key) for part in PARTS}
    try:
        statuses = _wait_applied(data_dir, 30.0)
        assert all(statuses[p].applied_revision for p in PARTS), statuses
        time.sleep(3.0)  # capture at the old frequency for a while

        changed_at = time.time_ns()
        started = time.monotonic()
        result = _ferry(
            "cloud", "fragment", "set-frequency", "sensors", "--component", "temp",
            "--method", "Readings", "--hz", str(TEMP_HZ_AFTER),
            "--data-dir", str(data_dir), "--org", ORG,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        statuses = _wait_applied(data_dir, APPLY_DEADLINE_S)
        took = time.monotonic() - started
        for part in PARTS:
            status = statuses[part]
            assert status.applied_revision == status.current_revision, (part, status)
            assert "fragment sensors v2" in status.applied_label
        assert took <= APPLY_DEADLINE_S, f"applied by all three after {took:.1f} s"
        applied_at = time.time_ns()
        time.sleep(3.0)  # capture at the new frequency
        stopped_at = time.time_ns()
    finally:
        codes = {part: _stop(agent) for part, agent in agents.items()}
        _stop(cloud)
    for part, code in codes.items():
        assert code == 0, (part, code, (homes[part] / "agent.log").read_text()[-3000:])

    for part, home in homes.items():
        readings = _readings(home)
        temp, hum = readings["temp"], readings["hum"]
        hum_hz = HUM_OVERRIDE_HZ if part == OVERRIDE_PART else HUM_HZ
        _assert_no_loss_or_duplicate(temp, TEMP_HZ_BEFORE, f"{part} temp")
        _assert_no_loss_or_duplicate(hum, hum_hz, f"{part} hum")
        before = _rate(temp, changed_at - 2 * 10**9, changed_at)
        after = _rate(temp, applied_at, stopped_at - 10**8)
        assert before == pytest.approx(TEMP_HZ_BEFORE, rel=0.35), (part, before)
        assert after == pytest.approx(TEMP_HZ_AFTER, rel=0.35), (part, after)
        # The override keeps its own value through the fragment change.
        assert _rate(hum, changed_at, stopped_at) == pytest.approx(hum_hz, rel=0.5), part

    # The cloud is down now: a restarted agent starts from its cached config.
    home = homes["robot-1"]
    restarted_at = time.time_ns()
    agent = _agent(home, "robot-1", port, key)
    try:
        deadline = time.monotonic() + 20
        while "starting from the cached cloud config" not in (home / "agent.log").read_text():
            assert agent.poll() is None, (home / "agent.log").read_text()
            assert time.monotonic() < deadline, (home / "agent.log").read_text()
            time.sleep(0.1)
        time.sleep(3.0)
    finally:
        code = _stop(agent)
    assert code == 0, (home / "agent.log").read_text()[-3000:]
    temp = [t for t in _readings(home)["temp"] if t >= restarted_at]
    assert len(temp) >= 2 * TEMP_HZ_AFTER, f"only {len(temp)} readings after the restart"
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(temp)]
    assert max(gaps) < 2.5 / TEMP_HZ_AFTER, "the cached config's frequency is not the one running"
