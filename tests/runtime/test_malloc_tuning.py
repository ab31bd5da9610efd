"""``tune_malloc``: megabyte buffers freed by an upload are reused, not faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from actors.adapters import malloc_tuning

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)

# Allocates and frees 1 MiB buffers as an upload chunk does (a slice of the file,
# then a copy of it), and prints the minor page faults this cost.
_CHURN = """
import os, resource, sys
from actors.adapters.malloc_tuning import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()
data = os.urandom(8 << 20)
for _ in range(3):  # warm up: the heap grows once
    chunk = data[:1 << 20] + b"x"
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(64):
    off = (i % 8) << 20
    chunk = data[off : off + (1 << 20)]
    framed = b"\\x00" + chunk
    del chunk, framed
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@glibc
def test_tuned_process_reuses_freed_megabyte_buffers() -> None:
    # 128 buffers of 1 MiB: 32,768 pages if each were fresh. Tuned (the child
    # asserts that tune_malloc reported success), they come back from the heap;
    # untuned, glibc maps and unmaps (or trims) them. Children, so that this
    # test process keeps the allocator it started with.
    tuned = _faults("tuned")
    untuned = _faults("default")
    assert tuned < 1000, tuned
    assert untuned > 10 * max(tuned, 100), (tuned, untuned)


def test_does_nothing_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc_tuning.sys, "platform", "darwin")
    assert malloc_tuning.tune_malloc() is False


def test_does_nothing_without_mallopt(monkeypatch: pytest.MonkeyPatch) -> None:
    # musl's C library has no mallopt: the lookup fails and defaults stay.
    class NoMallopt:
        def __init__(self, name: str | None) -> None:
            pass

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(malloc_tuning.sys, "platform", "linux")
    monkeypatch.setattr(malloc_tuning.ctypes, "CDLL", NoMallopt)
    assert malloc_tuning.tune_malloc() is False
