"""The system sensor reads this machine through psutil and reports the documented keys."""

from __future__ import annotations

from collections import namedtuple

import psutil
import pytest

from actors.codec import StructEncoder
from actors.components import SystemSensor
from actors.components._system_sensor import _cpu_percent, read_system
from tests.components.support import EPOCH_2026_NS, InlineRunner, ManualClock, make_ctx, tabular

ALWAYS = {
    "cpu_percent",
    "cpu_percent_per_cpu",
    "cpu_count",
    "memory",
    "swap",
    "disk_usage",
    "net_io",
    "uptime_s",
    "boot_time_s",
    "process_count",
}
WHERE_PRESENT = {"disk_io", "load_avg", "temperatures_c", "battery"}


@pytest.fixture
def clock():
    # The real time, once: uptime is wall time minus psutil's boot time.
    return ManualClock(now=int(psutil.boot_time() * 1e9) + 3_600_000_000_000)


async def test_system_sensor_returns_the_documented_keys_on_this_machine(clock):
    sensor = SystemSensor(make_ctx("sensor", "system", clock=clock))  # real worker thread
    data = tabular(await sensor.capture("Readings", {}))
    assert ALWAYS <= set(data) <= ALWAYS | WHERE_PRESENT
    assert set(data["memory"]) == {"total_bytes", "available_bytes", "used_bytes", "percent"}
    assert set(data["swap"]) == {"total_bytes", "used_bytes", "free_bytes", "percent"}
    assert set(data["disk_usage"]) == {"/"}
    assert set(data["disk_usage"]["/"]) == {"total_bytes", "used_bytes", "free_bytes", "percent"}
    assert {"bytes_sent", "bytes_recv", "dropin", "dropout"} <= set(data["net_io"])
    assert data["uptime_s"] == pytest.approx(3600)
    assert data["process_count"] > 0
    if hasattr(psutil, "getloadavg"):
        assert len(data["load_avg"]) == 3
    if psutil.disk_io_counters() is not None:
        assert set(data["disk_io"]) == {"read_bytes", "write_bytes", "read_count", "write_count"}


async def test_system_sensor_cpu_percentages_are_percentages(clock):
    sensor = SystemSensor(make_ctx("sensor", "system", clock=clock, runner=InlineRunner()))
    for _ in range(2):  # first since boot, then since the previous reading
        data = tabular(await sensor.capture("Readings", {}))
        assert 0 <= data["cpu_percent"] <= 100
        assert len(data["cpu_percent_per_cpu"]) == data["cpu_count"] == psutil.cpu_count()
        assert all(0 <= p <= 100 for p in data["cpu_percent_per_cpu"])


async def test_system_sensor_readings_encode_as_a_protobuf_struct(clock):
    sensor = SystemSensor(make_ctx("sensor", "system", clock=clock, runner=InlineRunner()))
    assert StructEncoder().encode(tabular(await sensor.capture("Readings", {})))


async def test_system_sensor_reports_a_bad_disk_path_in_place(tmp_path, clock):
    attrs = {"disk_paths": [str(tmp_path), "/no/such/mount"]}
    sensor = SystemSensor(make_ctx("sensor", "system", attrs, clock=clock, runner=InlineRunner()))
    usage = tabular(await sensor.capture("Readings", {}))["disk_usage"]
    assert usage[str(tmp_path)]["total_bytes"] > 0
    assert usage["/no/such/mount"] == {"error": "FileNotFoundError: No such file or directory"}


def test_cpu_percent_comes_from_the_difference_of_two_samples():
    _, first = read_system([], None, EPOCH_2026_NS / 1e9)
    # Pretend every CPU was busy for 1 s out of 2 s since ``first``.
    later = [(busy + 1.0, total + 2.0) for busy, total in first]
    total, per_cpu = _cpu_percent(first, later)
    assert total == 50.0
    assert per_cpu == [50.0] * len(first)


def test_temperatures_are_reported_only_where_present(monkeypatch):
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {}, raising=False)
    readings, _ = read_system([], None, EPOCH_2026_NS / 1e9)
    assert "temperatures_c" not in readings


def test_temperatures_list_each_chip_with_its_labels(monkeypatch):
    shwtemp = namedtuple("shwtemp", "label current high critical")
    fake = {"coretemp": [shwtemp("Package id 0", 47.0, 80.0, None), shwtemp("", 45.0, None, None)]}
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: fake, raising=False)
    readings, _ = read_system([], None, EPOCH_2026_NS / 1e9)
    assert readings["temperatures_c"] == {
        "coretemp": [
            {"label": "Package id 0", "current": 47.0, "high": 80.0},
            {"label": "coretemp", "current": 45.0},
        ]
    }
