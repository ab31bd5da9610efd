"""Where a tabular reading's ingest time goes: decode, JSON encoding, SQLite insert.

Times the cloud's own functions, one stage at a time, on the readings of
``bench.cloud``'s tabular file: the general path (decode to dicts, then JSON),
the transcoder ingest uses instead (straight to JSON, learned shapes), and the
insert, also with the ``tabular`` table's indexes dropped (what each index
costs). One process, one thread.

Run: python -m bench.ingest_stages [--readings 50000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from actors.codec import CaptureFileReader, TabularTranscoder
from bench.cloud import tabular_file
from cloud.reading_json import reading_json
from cloud.store.sqlite import _readings
from cloud.store.sqlite._db import Database

_CONTEXT = (
    "INSERT INTO contexts (org_id, location_id, part_id, component_type, component_name, "
    "method_name, method_parameters, tags, mime_type) VALUES ('o','l','p','a','b','c','{}','[]','')"
)
_ORG = "6c1d1b1e-5d7e-4a0e-9a51-3c8f1e3b2a10"  # ids as long as the server's
_FILE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def _insert_us(root: Path, rows: list[tuple[int, int, str]], drop: tuple[str, ...]) -> float:
    """µs per row of inserting ``rows`` into a fresh database, best of three."""
    return min(_insert_once(root, rows, drop) for _ in range(3))


def _insert_once(root: Path, rows: list[tuple[int, int, str]], drop: tuple[str, ...]) -> float:
    """µs per row of inserting ``rows`` in one transaction, in batches as the store does."""
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        db = Database(Path(tmp) / "ferry.db")
        try:
            with db.write() as conn:
                for index in drop:
                    conn.execute(f"DROP INDEX {index}")
                conn.execute(_CONTEXT)
            full = [(_ORG, 1, req, rec, 5, data, _FILE) for req, rec, data in rows]
            start = time.perf_counter()
            with db.write() as conn:
                for i in range(0, len(full), 1000):
                    conn.executemany(_readings._INSERT_TABULAR, full[i : i + 1000])
            return 1e6 * (time.perf_counter() - start) / len(rows)
        finally:
            db.close()


def _framing_us(path: Path, method: str, n: int) -> float:
    """µs per record of cutting ``path`` into records with the reader's ``method``, best of 5."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        with CaptureFileReader(path) as reader:
            for _ in getattr(reader, method)():
                pass
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=50_000)
    args = parser.parse_args()
    n = args.readings
    with tempfile.TemporaryDirectory(prefix="ferry-bench-stages-") as tmp:
        root = Path(tmp)
        path = tabular_file(root, 0, n)
        framing = {name: _framing_us(path, name, n) for name in ("raw_records", "frames")}
        start = time.perf_counter()
        with CaptureFileReader(path) as reader:
            records = [record for _, record in reader.records()]
        decoded = time.perf_counter()
        rows = [
            (r.time_requested_ns, r.time_received_ns, reading_json(r.struct or {}, "r"))
            for r in records
        ]
        encoded = time.perf_counter()
        transcoder = TabularTranscoder(lambda struct: reading_json(struct, "r"))
        with CaptureFileReader(path) as reader:
            transcoded = [transcoder.row(body) for _, _, body in reader.frames()]
        direct = time.perf_counter()
        assert transcoded == rows
        print(f"ingest stages, {n:,} readings of bench.cloud's tabular file (µs per reading):")
        print(f"  framing, record by record         {framing['raw_records']:6.2f}")
        print(f"  framing, the file cut in memory   {framing['frames']:6.2f}")
        print(f"  decode (capture file -> records)  {1e6 * (decoded - start) / n:6.2f}")
        print(f"  JSON encoding                     {1e6 * (encoded - decoded) / n:6.2f}")
        print(f"  both, transcoded (what ingest does) {1e6 * (direct - encoded) / n:4.2f}")
        print(f"  insert + commit                   {_insert_us(root, rows, ()):6.2f}")
        org = ("tabular_by_org_time",)
        both = (*org, "tabular_by_context_time")
        print(f"  ... without the org index         {_insert_us(root, rows, org):6.2f}")
        print(f"  ... without both indexes          {_insert_us(root, rows, both):6.2f}")


if __name__ == "__main__":
    main()
