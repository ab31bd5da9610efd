"""What a durable 1 MiB write costs this machine, with and without dropping it from the cache.

The cloud stages each upload chunk with ``pwrite`` and ``fsync`` into a file it
keeps (it becomes the blob). On a virtual machine, a page-cache page the guest
has not touched before (or gave back to its host) is expensive to fill the
first time, so a growing page cache makes every chunk slow. Dropping a chunk's
pages after its fsync (``posix_fadvise(DONTNEED)``, what the store does behind
an 8 MiB tail) lets the next chunk reuse them. This prints the CPU per MiB and
the rate of both, alternating, on files that are all kept until the end.

Run: python -m bench.pagecache [--mib 256] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def write_file(path: Path, mib: int, *, drop: bool) -> tuple[float, float]:
    """MiB/s and CPU ms per MiB of writing ``mib`` MiB as fsynced 1 MiB chunks."""
    chunk = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(mib):
            os.pwrite(fd, chunk, i * MIB)
            os.fsync(fd)
            if drop:
                os.posix_fadvise(fd, i * MIB, MIB, os.POSIX_FADV_DONTNEED)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        os.close(fd)
    return mib / wall, 1e3 * cpu / mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of each file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    args = parser.parse_args()
    print(f"{args.mib} MiB per file, 1 MiB pwrite + fsync each; every file kept until the end")
    with tempfile.TemporaryDirectory(prefix="ferry-bench-pagecache-", dir=args.dir) as tmp:
        for r in range(args.rounds):
            for drop in (False, True):
                name = f"{'drop' if drop else 'keep'}-{r}"
                rate, cpu_ms = write_file(Path(tmp) / name, args.mib, drop=drop)
                label = "dropped after fsync" if drop else "kept in the page cache"
                print(f"  round {r + 1}, {label:<24} {rate:6.0f} MiB/s  {cpu_ms:5.2f} ms CPU/MiB")


if __name__ == "__main__":
    main()
