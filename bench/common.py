"""What every benchmark part shares: the table row, the machine's description, small helpers."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

MIB = 1 << 20
DASH = "—"


@dataclass
class Row:
    """One line of the `make bench` table; every figure is text, already formatted."""

    metric: str
    ferry: str
    reference: str = DASH
    ratio: str = DASH
    goal: str = DASH
    met: bool | None = None
    """True/False against the goal; None where the row is only reported."""


def failed_row(metric: str, error: str, goal: str = DASH) -> Row:
    """A row for a sub-benchmark that raised: its error where the figure would be."""
    return Row(metric, f"ERROR: {error}", goal=goal, met=False)


def ratio_text(value: float) -> str:
    """A ratio as the table prints it."""
    return f"{value:.2f}x"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def filesystem_of(path: Path) -> str:
    """The file system type and device holding ``path`` (``df -T``), or ``?``."""
    if shutil.which("df") is None:
        return "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        out = subprocess.run(
            ["df", "-T", str(path)], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        device, fstype = out.splitlines()[1].split()[:2]
        return f"{fstype} on {device}"
    return "?"


def disk_kind(path: Path) -> str:
    """Whether the disk under ``path`` is rotational, from sysfs (``?`` when unknown)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        device = os.stat(path).st_dev
        sysfs = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
        queue = sysfs / "queue" if (sysfs / "queue").exists() else sysfs.resolve().parent / "queue"
        rotational = (queue / "rotational").read_text().strip()
        name = sysfs.resolve().name
        return f"{name}, {'rotational' if rotational == '1' else 'non-rotational'}"
    return "?"


def python_build() -> str:
    """The interpreter and how it was built, since builds differ in speed: pyenv's
    default loads libpython as a shared library, Debian's links it into the
    executable (docs/performance.md compares the two)."""
    linked = "?"
    with contextlib.suppress(OSError):
        with Path("/proc/self/maps").open() as maps:
            shared = any("libpython" in line for line in maps)
        linked = "libpython shared" if shared else "libpython in the executable"
    flags = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    pgo = "PGO" if "--enable-optimizations" in flags else "no --enable-optimizations"
    return (
        f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable}; {linked}; {pgo})"
    )


def machine(bench_dir: Path) -> str:
    """One line: CPU, cores, memory, the bench dir's disk and file system, Python."""
    mem = psutil.virtual_memory().total / (1 << 30)
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {mem:.1f} GiB RAM; bench dir {bench_dir}: "
        f"{filesystem_of(bench_dir)} ({disk_kind(bench_dir)}); "
        f"{python_build()} ({sys.platform})"
    )


def repeated(measure: Callable[[Path], T], root: Path, runs: int) -> list[T]:
    """``measure`` run ``runs`` times, each in a fresh directory under ``root``.

    This machine's figures swing ±20 % between runs (docs/performance.md), so
    goals are judged on the median, and every run is printed beside it.
    """
    out = []
    for i in range(runs):
        run_dir = root / f"run-{i}"
        run_dir.mkdir(parents=True)
        out.append(measure(run_dir))
    return out
