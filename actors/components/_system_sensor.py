"""The ``system`` sensor: this machine's health, read through psutil.

psutil reads ``/proc`` (or the OS's equivalent) with blocking system calls, so
each reading runs on ``ctx.runner`` (or, without one, a worker thread). CPU
percentages are computed from this sensor's own previous sample of the CPU
times, not psutil's module-level one, so two system sensors never disturb each
other; the first reading is the average since boot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import psutil

from actors.components._protocol import Tabular
from actors.components._support import DispatchedComponent, Dispatcher, run_blocking, str_list_attr

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actors.codec import JsonValue
    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params
    from actors.ports import WallClock

# Per CPU: (busy seconds, total seconds) at the previous sample.
CpuSample = list[tuple[float, float]]


@final
class SystemSensor(DispatchedComponent):
    """``rdk:component:sensor`` model ``system``: CPU, memory, disk, network, load, temperatures.

    Attributes (all optional):
        disk_paths: mount points to report usage for (default ``["/"]``).
        fail_rate, latency_ms: the shared fault hooks.

    Methods: ``Readings`` → ``{"cpu_percent", "cpu_percent_per_cpu", "cpu_count",
    "memory", "swap", "disk_usage", "disk_io", "net_io", "load_avg", "uptime_s",
    "boot_time_s", "process_count", "temperatures_c", "battery"}`` (``disk_io``,
    ``load_avg``, ``temperatures_c`` and ``battery`` only where the OS provides
    them; see docs/components.md for every field) and ``DoCommand``.

    Example::

        sensor = SystemSensor(ctx)
        result = await sensor.capture("Readings", {})
        assert 0 <= result.data["cpu_percent"] <= 100
    """

    def __init__(self, ctx: ComponentContext) -> None:
        self._disk_paths = str_list_attr(ctx.attributes, "disk_paths", ["/"])
        self._clock: WallClock = ctx.clock
        self._runner = ctx.runner
        self._prev_cpu: CpuSample | None = None
        self._dispatch = Dispatcher(ctx, {"Readings": self._readings})

    async def _readings(self, params: Params) -> Captured:
        del params
        now_s = self._clock.now_ns() / 1e9
        prev, paths = self._prev_cpu, self._disk_paths
        readings, cpu = await run_blocking(self._runner, lambda: read_system(paths, prev, now_s))
        self._prev_cpu = cpu
        return Tabular(readings)


def read_system(
    disk_paths: Sequence[str], prev_cpu: CpuSample | None, now_s: float
) -> tuple[dict[str, JsonValue], CpuSample]:
    """One blocking snapshot of the machine; returns the readings and the new CPU sample.

    Example::

        readings, cpu = read_system(["/"], None, time_now_s)
        readings2, _ = read_system(["/"], cpu, time_now_s + 1)  # percentages over that second
    """
    cpu = _cpu_sample()
    total, per_cpu = _cpu_percent(prev_cpu, cpu)
    boot = float(psutil.boot_time())
    out: dict[str, JsonValue] = {
        "cpu_percent": total,
        "cpu_percent_per_cpu": per_cpu,
        "cpu_count": len(cpu),
        "memory": _memory(),
        "swap": _swap(),
        "disk_usage": {path: _disk_usage(path) for path in disk_paths},
        "net_io": _net_io(),
        "uptime_s": round(max(0.0, now_s - boot), 3),
        "boot_time_s": boot,
        "process_count": len(psutil.pids()),
    }
    disk_io = _disk_io()
    if disk_io is not None:
        out["disk_io"] = disk_io
    if hasattr(psutil, "getloadavg"):
        out["load_avg"] = [round(float(x), 4) for x in psutil.getloadavg()]
    temps = _temperatures()
    if temps:
        out["temperatures_c"] = temps
    battery = _battery()
    if battery is not None:
        out["battery"] = battery
    return out, cpu


def _cpu_sample() -> CpuSample:
    sample: CpuSample = []
    for times in psutil.cpu_times(percpu=True):
        fields = times._asdict()
        # On Linux guest time is already counted in user/nice (psutil does the same).
        total = sum(float(v) for v in fields.values())
        total -= float(fields.get("guest", 0.0)) + float(fields.get("guest_nice", 0.0))
        idle = float(fields.get("idle", 0.0)) + float(fields.get("iowait", 0.0))
        sample.append((total - idle, total))
    return sample


def _cpu_percent(prev: CpuSample | None, now: CpuSample) -> tuple[float, list[JsonValue]]:
    if prev is None or len(prev) != len(now):
        prev = [(0.0, 0.0)] * len(now)
    per_cpu: list[JsonValue] = []
    busy_sum = total_sum = 0.0
    for (busy0, total0), (busy1, total1) in zip(prev, now, strict=True):
        d_busy, d_total = max(0.0, busy1 - busy0), max(0.0, total1 - total0)
        busy_sum += d_busy
        total_sum += d_total
        per_cpu.append(_pct(d_busy, d_total))
    return _pct(busy_sum, total_sum), per_cpu


def _pct(part: float, whole: float) -> float:
    return round(min(100.0, 100.0 * part / whole), 2) if whole > 0 else 0.0


def _memory() -> dict[str, JsonValue]:
    vm = psutil.virtual_memory()
    return {
        "total_bytes": int(vm.total),
        "available_bytes": int(vm.available),
        "used_bytes": int(vm.used),
        "percent": float(vm.percent),
    }


def _swap() -> dict[str, JsonValue]:
    sw = psutil.swap_memory()
    return {
        "total_bytes": int(sw.total),
        "used_bytes": int(sw.used),
        "free_bytes": int(sw.free),
        "percent": float(sw.percent),
    }


def _disk_usage(path: str) -> dict[str, JsonValue]:
    # One bad mount must not hide the others: report its error in place of its numbers.
    try:
        du = psutil.disk_usage(path)
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {exc.strerror or exc}"}
    return {
        "total_bytes": int(du.total),
        "used_bytes": int(du.used),
        "free_bytes": int(du.free),
        "percent": float(du.percent),
    }


def _disk_io() -> dict[str, JsonValue] | None:
    io = psutil.disk_io_counters()
    if io is None:  # no disks visible (some containers)
        return None
    return {
        "read_bytes": int(io.read_bytes),
        "write_bytes": int(io.write_bytes),
        "read_count": int(io.read_count),
        "write_count": int(io.write_count),
    }


def _net_io() -> dict[str, JsonValue]:
    net = psutil.net_io_counters()
    names: tuple[str, ...] = ("bytes_sent", "bytes_recv", "packets_sent", "packets_recv")
    names += ("errin", "errout", "dropin", "dropout")
    return {name: int(getattr(net, name)) for name in names}


def _temperatures() -> dict[str, JsonValue]:
    if not hasattr(psutil, "sensors_temperatures"):
        return {}
    out: dict[str, JsonValue] = {}
    for chip, entries in psutil.sensors_temperatures().items():
        items: list[JsonValue] = []
        for entry in entries:
            item: dict[str, JsonValue] = {"label": str(entry.label or chip)}
            for key in ("current", "high", "critical"):
                value = getattr(entry, key)
                if value is not None:
                    item[key] = float(value)
            items.append(item)
        out[str(chip)] = items
    return out


def _battery() -> dict[str, JsonValue] | None:
    if not hasattr(psutil, "sensors_battery"):
        return None
    battery = psutil.sensors_battery()
    if battery is None:
        return None
    secs = battery.secsleft
    return {
        "percent": float(battery.percent),
        "power_plugged": None if battery.power_plugged is None else bool(battery.power_plugged),
        # psutil uses negative sentinels for "unknown" and "unlimited".
        "secs_left": int(secs) if isinstance(secs, int) and secs >= 0 else None,
    }
