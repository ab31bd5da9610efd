"""The real ``ferry run`` process: cold start to first capture, and idle CPU (issue 8 #9).

A temp config has 10 ``fake`` sensors, each capturing ``Readings`` at 1 Hz into
a temp capture dir, no ``cloud`` section (nothing syncs), and the agent runs with
``--no-api``, as a subprocess of this one.

- Cold start: from just before the spawn until a capture file in the capture dir
  holds one complete reading after its header (polled every 2 ms with
  ``CaptureFileReader``). Median of ``--starts`` fresh starts (each a new process
  and an empty capture dir; the OS file cache is warm, as after any earlier run).
- Before the starts, the project's packages are byte-compiled (``compileall``,
  into their git-ignored ``__pycache__``), as an installed agent's are: with
  ``PYTHONDONTWRITEBYTECODE`` set, as on this machine, every start would
  otherwise compile the modules that have no ``.pyc`` yet from source.
- Idle CPU: after ``--settle`` seconds, the agent's CPU seconds (user + system,
  all threads, psutil) over ``--seconds`` of wall time, as % of one core.

Run: python -m bench.agent [--seconds 20] [--starts 3]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

import actors
from actors.codec import CaptureFileError, CaptureFileReader

PACKAGES = ("actors", "cloud", "sim", "protos")
COLLECTORS = 10
POLL_S = 0.002
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AgentResult:
    """Cold starts (seconds, each run) and idle CPU (% of one core) with its RSS."""

    starts: tuple[float, ...]
    idle_cpu_pct: float
    idle_seconds: float
    rss_mb: float

    @property
    def cold_start_s(self) -> float:
        """The median cold start."""
        return statistics.median(self.starts)


def write_config(root: Path) -> Path:
    """A robot config: ``COLLECTORS`` fake sensors at 1 Hz into ``root/capture``, no cloud."""
    components = [
        {
            "name": f"sensor-{i}",
            "api": "rdk:component:sensor",
            "model": "fake",
            "service_configs": [
                {
                    "type": "data_manager",
                    "attributes": {
                        "capture_methods": [{"method": "Readings", "capture_frequency_hz": 1}]
                    },
                }
            ],
        }
        for i in range(COLLECTORS)
    ]
    config = {
        "components": components,
        "services": [
            {
                "name": "data_manager-1",
                "api": "rdk:service:data_manager",
                "attributes": {"capture_dir": str(root / "capture")},
            }
        ],
    }
    path = root / "robot.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def spawn(config: Path, home: Path) -> subprocess.Popen[bytes]:
    """``ferry run`` on ``config`` (no local API, warnings only), as a child process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actors.cli",
            "run",
            "--config",
            str(config),
            "--no-api",
            "--log-level",
            "warning",
        ],
        env={**os.environ, "HOME": str(home), "FERRY_HOME": str(home / ".ferry")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def has_reading(capture: Path) -> bool:
    """Whether any capture file under ``capture`` holds a complete reading after its header."""
    if not capture.is_dir():
        return False
    for path in capture.rglob("*"):
        if path.suffix not in (".prog", ".capture"):
            continue
        with contextlib.suppress(OSError, CaptureFileError), CaptureFileReader(path) as reader:
            if next(reader.raw_records(), None) is not None:
                return True
    return False


def time_to_first_capture(root: Path) -> tuple[float, subprocess.Popen[bytes]]:
    """Seconds from spawn until the first reading is on disk; the still-running agent."""
    config = write_config(root)
    capture = root / "capture"
    t0 = time.perf_counter()
    proc = spawn(config, root)
    while not has_reading(capture):
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"ferry run exited with {proc.returncode}: {err.strip()[-500:]}")
        if time.perf_counter() - t0 > START_TIMEOUT_S:
            stop(proc)
            raise RuntimeError(f"no reading captured within {START_TIMEOUT_S:g} s")
        time.sleep(POLL_S)
    return time.perf_counter() - t0, proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the agent finishes its files), then wait; SIGKILL if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def idle_cpu(proc: subprocess.Popen[bytes], settle: float, seconds: float) -> tuple[float, float]:
    """% of one core the agent uses over ``seconds`` after ``settle``; and its RSS in MB."""
    agent = psutil.Process(proc.pid)
    time.sleep(settle)
    cpu0, t0 = agent.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    cpu1, t1 = agent.cpu_times(), time.perf_counter()
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return 100.0 * used / (t1 - t0), agent.memory_info().rss / 1e6


def compile_project() -> None:
    """Byte-compiles Ferry's packages, as installing them would (untimed)."""
    repo = Path(actors.__file__).resolve().parent.parent
    for package in PACKAGES:
        compileall.compile_dir(repo / package, quiet=1)


def measure(root: Path, *, starts: int, settle: float, seconds: float) -> AgentResult:
    """``starts`` cold starts; the last agent then stays up for the idle CPU measurement."""
    compile_project()
    times: list[float] = []
    pct = rss = 0.0
    for i in range(starts):
        run_dir = root / f"run-{i}"
        run_dir.mkdir()
        took, proc = time_to_first_capture(run_dir)
        times.append(took)
        try:
            if i == starts - 1:
                pct, rss = idle_cpu(proc, settle, seconds)
        finally:
            stop(proc)
    return AgentResult(tuple(times), pct, seconds, rss)


def main() -> None:
    """Prints the cold starts and the idle CPU."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3, help="cold starts (median)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before idle CPU")
    parser.add_argument("--seconds", type=float, default=20.0, help="idle CPU window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-agent-") as tmp:
        r = measure(Path(tmp), starts=args.starts, settle=args.settle, seconds=args.seconds)
    runs = ", ".join(f"{s:.2f}" for s in r.starts)
    print(f"ferry run, {COLLECTORS} fake sensors at 1 Hz, no cloud, --no-api")
    print(f"  cold start to first reading on disk: {r.cold_start_s:.2f} s median ({runs})")
    print(f"  idle CPU: {r.idle_cpu_pct:.2f} % of a core over {r.idle_seconds:g} s")
    print(f"  RSS: {r.rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
