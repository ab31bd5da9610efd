"""``rsync`` in daemon mode over loopback: the reference beside Ferry's binary sync (issue 8 #4).

Starts ``rsync --daemon --no-detach`` on a free port with one writable module
pointing at a fresh directory, then times ``rsync -a --fsync <files>
rsync://127.0.0.1:<port>/bench/``: the same files Ferry's sync uploads, each
fsynced on arrival (Ferry's cloud makes every chunk durable before its ack).

Run: python -m bench.rsync_ref FILE... (prints MiB/s)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import MIB, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

MODULE = "bench"
READY_TIMEOUT_S = 10.0


def available() -> bool:
    """Whether an ``rsync`` binary is on the PATH."""
    return shutil.which("rsync") is not None


def _config(root: Path, target: Path) -> Path:
    """An rsyncd.conf with one writable module at ``target``, run as the current user."""
    conf = root / "rsyncd.conf"
    conf.write_text(
        f"use chroot = no\nuid = {os.getuid()}\ngid = {os.getgid()}\n"
        f"log file = {root / 'rsyncd.log'}\n"
        f"[{MODULE}]\n  path = {target}\n  read only = no\n"
    )
    return conf


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Returns once the daemon accepts connections on ``port``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rsync daemon exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError("rsync daemon did not listen within 10 s")


@contextlib.contextmanager
def daemon(root: Path) -> Iterator[tuple[int, Path]]:
    """An rsync daemon on loopback; yields its port and the module's directory."""
    target = root / "dst"
    target.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        ["rsync", "--daemon", "--no-detach", f"--config={_config(root, target)}", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        yield port, target
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rsync_mib_s(files: Sequence[Path], workdir: Path) -> float:
    """MiB/s copying ``files`` to a fresh rsync daemon on loopback, its module under ``workdir``."""
    if not available():
        raise RuntimeError("rsync unavailable")
    size = sum(f.stat().st_size for f in files)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-rsync-", dir=workdir) as tmp:
        with daemon(Path(tmp)) as (port, target):
            t0 = time.perf_counter()
            subprocess.run(
                ["rsync", "-a", "--fsync", *map(str, files), f"rsync://127.0.0.1:{port}/{MODULE}/"],
                check=True,
            )
            seconds = time.perf_counter() - t0
            copied = sum(p.stat().st_size for p in target.iterdir())
        if copied != size:
            raise RuntimeError(f"rsync copied {copied} of {size} bytes")
    return size / MIB / seconds


def main() -> None:
    """Prints the MiB/s of copying the files named on the command line."""
    files = [Path(a).resolve() for a in sys.argv[1:]]
    if not files:
        sys.exit("usage: python -m bench.rsync_ref FILE...")
    rate = rsync_mib_s(files, files[0].parent)
    print(f"rsync daemon, loopback, --fsync: {rate:,.0f} MiB/s")


if __name__ == "__main__":
    main()
