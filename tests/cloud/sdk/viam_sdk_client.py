"""Drives ``ferry cloud serve`` with the official, unmodified Viam Python SDK.

Run with the isolated SDK venv's interpreter (see ``sdkenv.py``), never the project's:
the SDK pins its own ``protobuf``. It connects exactly as a Viam user would::

    ViamClient.create_from_dial_options(DialOptions.with_api_key(key, key_id), app_url=...)

and then calls ``client.data_client``. Every SDK call is recorded as its own step, so a
failure names the call that broke and the gRPC status it got. The outcome is one JSON
object on stdout; the exit status is 0 only when every step and every check passed.

Each run expects a fresh organization and part (the counts it checks are exact); the
pytest side gives it new ids every time.

Modes (``--mode``):

* ``full``: upload with all five upload helpers, read everything back with every query
  call, check values, then delete with all three delete calls and check counts drop.
* ``keep``: as ``full`` without the deletes (seeds data for the tenancy check).
* ``pages``: page through readings and binary items two at a time with the loop the
  SDK's docstrings show (pass ``last`` back until a page is empty).
* ``foreign``: with another organization's key, try to read, delete and overwrite the
  data of ``--foreign-org``/``--foreign-part``: every read must come back empty (or be
  refused), every delete must delete nothing, and the upload must be refused.
* ``recount``: check the part still has ``--expect-tabular`` readings and
  ``--expect-binary`` binary items (after a ``foreign`` run tried to touch them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from viam.app.viam_client import ViamClient
from viam.proto.app.data import DeleteTabularFilter
from viam.rpc.dial import DialOptions
from viam.utils import create_filter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from viam.app.data_client import DataClient

T = TypeVar("T")

CALL_TIMEOUT_S = 30.0
MAX_PAGES = 8
SLOW_CALL_S = 0.02
SENSOR_API = "rdk:component:sensor"
CAMERA_API = "rdk:component:camera"
# Statuses that mean "you may not see this", acceptable answers to a foreign key.
REFUSED = {Status.PERMISSION_DENIED, Status.NOT_FOUND, Status.UNAUTHENTICATED}


@dataclass
class Step:
    """One SDK call: whether it raised, what it returned, which checks failed."""

    call: str
    ok: bool = True
    seconds: float = 0.0
    error: str | None = None
    grpc_status: str | None = None
    failures: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def expect(self, condition: bool, message: str) -> bool:
        """Records ``message`` as a failure of this call unless ``condition`` holds."""
        if not condition:
            self.ok = False
            self.failures.append(message)
        return condition


@dataclass
class Report:
    """Every step, in order; the script's stdout."""

    mode: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    async def call(self, name: str, make: Callable[[], Awaitable[T]]) -> tuple[Step, T | None]:
        """Runs one SDK call under a timeout, recording its error instead of raising."""
        step = Step(name)
        self.steps.append(step)
        started = time.monotonic()
        try:
            result: T | None = await asyncio.wait_for(make(), CALL_TIMEOUT_S)
        except GRPCError as error:
            step.ok = False
            step.grpc_status = error.status.name
            step.error = f"GRPCError {error.status.name}: {error.message}"
            if error.details:
                step.error += f" (details: {error.details!r})"
            result = None
        except Exception as error:
            step.ok = False
            step.error = f"{type(error).__name__}: {error}"
            step.info["traceback"] = traceback.format_exc().splitlines()[-6:]
            result = None
        step.seconds = round(time.monotonic() - started, 3)
        return step, result

    async def call_refused_or(
        self, name: str, make: Callable[[], Awaitable[T]]
    ) -> tuple[Step, T | None]:
        """As :meth:`call`, but a refusal status (not found, permission denied) is a pass."""
        step, result = await self.call(name, make)
        if step.grpc_status is not None and Status[step.grpc_status] in REFUSED:
            step.ok = True
            step.info["refused"] = step.error
            step.error = None
        return step, result

    async def paginate(
        self,
        name: str,
        fetch: Callable[[str | None], Awaitable[tuple[list[Any], int, str]]],
        key: Callable[[Any], str],
    ) -> tuple[Step, list[Any]]:
        """Pages exactly as the SDK's docstrings do: pass ``last`` back until a page is empty.

        That loop (``while True: data, count, last = ...(last=last); if not data: break``)
        only ends if the server answers an empty page after the final one; a server that
        returns ``last=""`` with the final rows makes the SDK start over from the first
        page, forever. Each page is its own step; the loop's verdict is the returned one.
        """
        summary = Step(f"{name}(documented pagination loop)")
        items: list[Any] = []
        seen: set[str] = set()
        last: str | None = None
        pages: list[dict[str, Any]] = []
        for number in range(1, MAX_PAGES + 1):
            step, page = await self.call(f"{name}(page {number})", lambda last=last: fetch(last))
            if page is None:
                summary.expect(False, f"page {number} failed: {step.error}")
                break
            found, _count, next_last = page
            pages.append({"items": len(found), "last_in": last, "last_out": next_last})
            if not found:
                break
            repeated = sorted(key(item) for item in found if key(item) in seen)
            if repeated:
                summary.expect(
                    False,
                    f"page {number} (sent last={last!r}) repeats {len(repeated)} item(s) "
                    f"already seen: the page before answered last={pages[-2]['last_out']!r} "
                    "with rows, so the SDK's documented loop restarts from the first page "
                    "and never ends (it needs a cursor with every non-empty page and an "
                    "empty page after the final one)",
                )
                break
            seen.update(key(item) for item in found)
            items.extend(found)
            last = next_last
        else:
            summary.expect(False, f"no empty page after {MAX_PAGES} pages")
        summary.info["pages"] = pages
        self.steps.append(summary)
        return summary, items

    def skipped(self, name: str, reason: str) -> None:
        """A call not made because an earlier one it depends on failed."""
        self.steps.append(Step(name, ok=False, error=f"not run: {reason}"))

    def note_latency(self) -> None:
        """Notes a slow median call: a sign of Nagle/delayed-ACK stalls (no TCP_NODELAY)."""
        times = sorted(step.seconds for step in self.steps if step.seconds)
        if times and times[len(times) // 2] > SLOW_CALL_S:
            self.notes.append(
                f"median call took {times[len(times) // 2] * 1000:.0f} ms on loopback"
            )

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def failures(self) -> list[str]:
        """One line per broken call: the call, its error, its failed checks."""
        lines = []
        for step in self.steps:
            if step.error:
                lines.append(f"{step.call}: {step.error}")
            lines.extend(f"{step.call}: {failure}" for failure in step.failures)
        return lines

    def to_json(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "mode": self.mode,
                "failures": self.failures(),
                "ids": self.ids,
                "notes": self.notes,
                "steps": [asdict(step) for step in self.steps],
            },
            default=str,
        )


@dataclass(frozen=True)
class Plan:
    """What one run uploads: names unique to the run, payloads with known bytes."""

    org_id: str
    location_id: str
    part_id: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def sensor(self) -> str:
        return f"sdk-sensor-{self.run}"

    @property
    def camera(self) -> str:
        return f"sdk-camera-{self.run}"

    @property
    def streamer(self) -> str:
        return f"sdk-stream-{self.run}"

    @property
    def filer(self) -> str:
        return f"sdk-files-{self.run}"


def _readings(base: datetime) -> tuple[list[dict[str, Any]], list[tuple[datetime, datetime]]]:
    """Three readings with nested values, and their (requested, received) times.

    Numbers are floats and there are no nulls: ``google.protobuf.Struct`` holds only
    doubles, and the SDK turns a null into ``0``, so these survive a round trip exactly.
    """
    rows: list[dict[str, Any]] = []
    times: list[tuple[datetime, datetime]] = []
    for i in range(3):
        rows.append(
            {
                "readings": {
                    "temperature": 20.5 + i,
                    "label": f"reading-{i}",
                    "ok": i % 2 == 0,
                    "vector": [1.0 * i, -2.5, 3.25e10],
                    "nested": {"depth": {"value": 0.125 * (i + 1)}, "unicode": "çé✓"},
                }
            }
        )
        requested = base + timedelta(seconds=i, microseconds=123_456)
        times.append((requested, requested + timedelta(milliseconds=7)))
    return rows, times


def _new_id(step: Step, bid: str | None, taken: dict[str, Any]) -> bool:
    """Checks an upload answered a non-empty binary data id no other upload got."""
    return (
        step.ok
        and step.expect(bool(bid), "returned an empty binary_data_id")
        and step.expect(bid not in taken, f"returned {bid!r}, the id of an earlier upload")
    )


def _canonical(value: Any) -> str:
    """A sort key for JSON-like values that ignores dict key order."""
    return json.dumps(value, sort_keys=True)


def _blob(size: int, seed: int) -> bytes:
    """Deterministic bytes covering every byte value (not valid UTF-8)."""
    return bytes((i * 31 + seed) % 256 for i in range(size))


async def run_full(data: DataClient, plan: Plan, report: Report, *, delete: bool) -> None:
    """Uploads with all five helpers, reads back with every query, then (optionally) deletes."""
    part = plan.part_id
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    rows, times = _readings(base)

    # ---- uploads ---------------------------------------------------------------------
    uploads: dict[str, tuple[bytes, list[str], str]] = {}  # binary id -> bytes, tags, kind

    capture_bytes = _blob(4096, 1)
    capture_tags = ["sdk-bin", "shared-tag"]
    step, bid = await report.call(
        "binary_data_capture_upload",
        lambda: data.binary_data_capture_upload(
            binary_data=capture_bytes,
            part_id=part,
            component_type=CAMERA_API,
            component_name=plan.camera,
            method_name="GetImages",
            file_extension=".jpg",
            tags=capture_tags,
            data_request_times=(base, base + timedelta(milliseconds=3)),
            mime_type="image/jpeg",
        ),
    )
    if _new_id(step, bid, uploads):
        assert bid is not None
        uploads[bid] = (capture_bytes, capture_tags, "capture")
        report.ids["binary_capture"] = bid

    step, file_id = await report.call(
        "tabular_data_capture_upload",
        lambda: data.tabular_data_capture_upload(
            tabular_data=rows,
            part_id=part,
            component_type=SENSOR_API,
            component_name=plan.sensor,
            method_name="Readings",
            data_request_times=times,
            tags=["sdk-tab"],
        ),
    )
    step.info["file_id"] = file_id
    tabular_uploaded = step.ok

    stream_bytes = _blob(300_000, 2)  # several HTTP/2 frames
    stream_tags = ["sdk-stream", "shared-tag"]
    step, bid = await report.call(
        "streaming_data_capture_upload",
        lambda: data.streaming_data_capture_upload(
            data=stream_bytes,
            part_id=part,
            file_ext="png",
            component_type=CAMERA_API,
            component_name=plan.streamer,
            method_name="GetImages",
            data_request_times=(base, base + timedelta(milliseconds=5)),
            tags=stream_tags,
        ),
    )
    if _new_id(step, bid, uploads):
        assert bid is not None
        uploads[bid] = (stream_bytes, stream_tags, "stream")
        report.ids["binary_stream"] = bid

    file_bytes = b"notes from the SDK\n\x00\xff" + _blob(1000, 3)
    file_tags = ["sdk-file"]
    step, bid = await report.call(
        "file_upload",
        lambda: data.file_upload(
            part_id=part,
            data=file_bytes,
            component_name=plan.filer,
            file_name="notes",
            file_extension=".txt",
            tags=file_tags,
        ),
    )
    if _new_id(step, bid, uploads):
        assert bid is not None
        uploads[bid] = (file_bytes, file_tags, "file")
        report.ids["binary_file"] = bid

    path_bytes = b"a,b\n1,2\n" + _blob(2000, 4)
    path_tags = ["sdk-path"]
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "report.csv"
        source.write_bytes(path_bytes)
        step, bid = await report.call(
            "file_upload_from_path",
            lambda: data.file_upload_from_path(
                filepath=str(source), part_id=part, component_name=plan.filer, tags=path_tags
            ),
        )
    if _new_id(step, bid, uploads):
        assert bid is not None
        uploads[bid] = (path_bytes, path_tags, "path")
        report.ids["binary_path"] = bid

    # ---- tabular reads ---------------------------------------------------------------
    sensor_filter = create_filter(component_name=plan.sensor, organization_ids=[plan.org_id])
    step, page = await report.call(
        "tabular_data_by_filter",
        lambda: data.tabular_data_by_filter(sensor_filter, limit=50),
    )
    if page is not None:
        found, count, _last = page
        step.expect(len(found) == 3, f"expected 3 readings, got {len(found)}")
        step.expect(count in (0, 3), f"count is {count}, expected 3")
        found = sorted(found, key=lambda row: row.time_requested)
        for i, row in enumerate(found[:3]):
            step.expect(row.data == rows[i], f"reading {i}: data {row.data!r} != {rows[i]!r}")
            step.expect(
                row.time_requested == times[i][0],
                f"reading {i}: time_requested {row.time_requested} != {times[i][0]}",
            )
            step.expect(
                row.time_received == times[i][1],
                f"reading {i}: time_received {row.time_received} != {times[i][1]}",
            )
            meta = row.metadata
            step.expect(meta.part_id == part, f"reading {i}: part_id {meta.part_id!r}")
            step.expect(meta.organization_id == plan.org_id, f"reading {i}: org {meta!r}")
            step.expect(meta.component_name == plan.sensor, f"reading {i}: component {meta!r}")
            step.expect(meta.method_name == "Readings", f"reading {i}: method {meta!r}")
            step.expect("sdk-tab" in meta.tags, f"reading {i}: tags {list(meta.tags)}")
    elif not tabular_uploaded:
        step.info["note"] = "tabular upload failed first"

    step, page = await report.call(
        "tabular_data_by_filter(count_only)",
        lambda: data.tabular_data_by_filter(sensor_filter, count_only=True),
    )
    if page is not None:
        step.expect(page[1] == 3, f"count_only count is {page[1]}, expected 3")

    sql = f"SELECT * FROM readings WHERE component_name = '{plan.sensor}'"
    step, docs = await report.call(
        "tabular_data_by_sql", lambda: data.tabular_data_by_sql(plan.org_id, sql)
    )
    if docs is not None:
        step.info["columns"] = sorted(docs[0]) if docs else []
        step.expect(len(docs) == 3, f"{sql!r} returned {len(docs)} rows, expected 3")
        got = sorted((doc.get("data") for doc in docs), key=_canonical)
        want = sorted(rows, key=_canonical)
        step.expect(got == want, f"data column {got!r} != uploaded {want!r}")
        for doc in docs:
            step.expect(
                doc.get("part_id") == part and doc.get("organization_id") == plan.org_id,
                f"row scope: part_id={doc.get('part_id')!r} org={doc.get('organization_id')!r}",
            )

    mql: list[dict[str, Any]] = [{"$match": {"component_name": plan.sensor}}, {"$limit": 10}]
    step, docs = await report.call(
        "tabular_data_by_mql", lambda: data.tabular_data_by_mql(plan.org_id, mql)
    )
    if docs is not None:
        step.expect(len(docs) == 3, f"{mql!r} returned {len(docs)} docs, expected 3")
        got = sorted((doc.get("data") for doc in docs), key=_canonical)
        want = sorted(rows, key=_canonical)
        step.expect(got == want, f"data field {got!r} != uploaded {want!r}")

    step, latest = await report.call(
        "get_latest_tabular_data",
        lambda: data.get_latest_tabular_data(part, plan.sensor, SENSOR_API, "Readings"),
    )
    if step.ok and step.expect(latest is not None, "returned None for a source just synced"):
        assert latest is not None
        captured, synced, payload = latest
        step.expect(payload == rows[-1], f"payload {payload!r} != newest reading {rows[-1]!r}")
        step.expect(
            captured in times[-1], f"time_captured {captured} is not the newest {times[-1]}"
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        step.expect(
            base <= synced <= now + timedelta(seconds=5), f"time_synced {synced} not recent"
        )

    step, missing = await report.call(
        "get_latest_tabular_data(unknown source)",
        lambda: data.get_latest_tabular_data(part, "no-such-sensor", SENSOR_API, "Readings"),
    )
    if step.ok:
        step.expect(missing is None, f"expected None for an unknown source, got {missing!r}")

    step, points = await report.call(
        "export_tabular_data",
        lambda: data.export_tabular_data(part, plan.sensor, SENSOR_API, "Readings"),
    )
    if points is not None:
        step.expect(len(points) == 3, f"exported {len(points)} points, expected 3")
        points = sorted(points, key=lambda point: point.time_captured)
        for i, point in enumerate(points[:3]):
            step.expect(point.payload == rows[i], f"point {i}: payload {point.payload!r}")
            step.expect(
                point.time_captured == times[i][0],
                f"point {i}: time_captured {point.time_captured} != {times[i][0]}",
            )
            step.expect(
                (point.part_id, point.organization_id, point.location_id)
                == (part, plan.org_id, plan.location_id),
                f"point {i}: scope {(point.part_id, point.organization_id, point.location_id)}",
            )
            step.expect(
                (point.resource_name, point.resource_api, point.method_name)
                == (plan.sensor, SENSOR_API, "Readings"),
                f"point {i}: source {(point.resource_name, point.resource_api)}",
            )
            step.expect("sdk-tab" in point.tags, f"point {i}: tags {point.tags}")

    # ---- binary reads ----------------------------------------------------------------
    part_filter = create_filter(part_id=part, organization_ids=[plan.org_id])
    page_step, page = await report.call(
        "binary_data_by_filter",
        lambda: data.binary_data_by_filter(part_filter, limit=50, include_binary_data=True),
    )
    listed = [] if page is None else page[0]
    seen = {item.metadata.binary_data_id: item for item in listed}
    page_step.expect(len(seen) == len(listed), "an item was returned twice")
    page_step.expect(
        set(seen) == set(uploads),
        f"paginated ids {sorted(seen)} != uploaded {sorted(uploads)}",
    )
    for key, (blob, tags, kind) in uploads.items():
        item = seen.get(key)
        if item is None:
            continue
        meta = item.metadata
        page_step.expect(
            item.binary == blob,
            f"{kind} {key}: bytes differ ({len(item.binary)} returned, {len(blob)} uploaded)",
        )
        capture = meta.capture_metadata
        page_step.expect(set(tags) <= set(capture.tags), f"{kind} {key}: tags {list(capture.tags)}")
        page_step.expect(
            (capture.part_id, capture.organization_id, capture.location_id)
            == (part, plan.org_id, plan.location_id),
            f"{kind} {key}: scope {(capture.part_id, capture.organization_id)}",
        )
        page_step.info[kind] = {
            "file_name": meta.file_name,
            "file_ext": meta.file_ext,
            "mime_type": capture.mime_type,
            "component_name": capture.component_name,
            "file_size_bytes": meta.file_size_bytes,
        }

    if "binary_capture" in report.ids:
        jpeg_filter = create_filter(part_id=part, mime_type=["image/jpeg"])
        step, page = await report.call(
            "binary_data_by_filter(mime_type)",
            lambda: data.binary_data_by_filter(jpeg_filter, include_binary_data=False),
        )
        if page is not None:
            got_ids = [item.metadata.binary_data_id for item in page[0]]
            step.expect(
                got_ids == [report.ids["binary_capture"]],
                f"mime_type image/jpeg matched {got_ids}, expected only the jpeg capture",
            )
    stream_info = page_step.info.get("stream", {})
    if stream_info and not stream_info.get("mime_type"):
        report.notes.append(
            "a .png streamed without mime_type is stored with an empty mime_type "
            "(the SDK documents that Viam derives it from the file extension)"
        )

    step, page = await report.call(
        "binary_data_by_filter(count_only)",
        lambda: data.binary_data_by_filter(part_filter, count_only=True),
    )
    if page is not None:
        step.expect(page[1] == len(uploads), f"count {page[1]}, expected {len(uploads)}")

    if uploads:
        step, items = await report.call(
            "binary_data_by_ids",
            lambda: data.binary_data_by_ids(list(uploads), include_binary_data=True),
        )
        if items is not None:
            by_id = {item.metadata.binary_data_id: item.binary for item in items}
            step.expect(set(by_id) == set(uploads), f"ids {sorted(by_id)} != uploaded")
            for key, (blob, _tags, kind) in uploads.items():
                if key in by_id:
                    step.expect(by_id[key] == blob, f"{kind} {key}: bytes differ")
    else:
        report.skipped("binary_data_by_ids", "no binary upload succeeded")

    step, tags_found = await report.call(
        "tags_by_filter", lambda: data.tags_by_filter(create_filter(part_id=part))
    )
    if tags_found is not None:
        wanted = {tag for _blob_, tags, _kind in uploads.values() for tag in tags}
        step.info["tags"] = tags_found
        step.expect(wanted <= set(tags_found), f"tags {tags_found} miss {wanted - set(tags_found)}")
        step.expect(len(tags_found) == len(set(tags_found)), f"duplicate tags in {tags_found}")

    if not delete:
        return

    # ---- deletes ---------------------------------------------------------------------
    remaining = len(uploads)

    async def binary_count(label: str) -> int | None:
        _step, page = await report.call(
            f"binary_data_by_filter(count after {label})",
            lambda: data.binary_data_by_filter(part_filter, include_binary_data=False),
        )
        return None if page is None else len(page[0])

    capture_id = report.ids.get("binary_capture")
    if capture_id:
        step, deleted = await report.call(
            "delete_binary_data_by_ids", lambda: data.delete_binary_data_by_ids([capture_id])
        )
        if step.ok:
            step.expect(deleted == 1, f"deleted_count {deleted}, expected 1")
            remaining -= 1
            left = await binary_count("delete_binary_data_by_ids")
            step.expect(left == remaining, f"{left} binary items left, expected {remaining}")
            step, gone = await report.call_refused_or(
                "binary_data_by_ids(deleted id)", lambda: data.binary_data_by_ids([capture_id])
            )
            if gone is not None:
                step.expect(not gone, f"deleted item still returned: {len(gone)} item(s)")
    else:
        report.skipped("delete_binary_data_by_ids", "binary_data_capture_upload failed")

    if report.ids.get("binary_stream"):
        stream_filter = create_filter(component_name=plan.streamer, organization_ids=[plan.org_id])
        step, deleted = await report.call(
            "delete_binary_data_by_filter",
            lambda: data.delete_binary_data_by_filter(stream_filter),
        )
        if step.ok:
            step.expect(deleted == 1, f"deleted_count {deleted}, expected 1")
            remaining -= 1
            left = await binary_count("delete_binary_data_by_filter")
            step.expect(left == remaining, f"{left} binary items left, expected {remaining}")
    else:
        report.skipped("delete_binary_data_by_filter", "streaming_data_capture_upload failed")

    async def tabular_count() -> int | None:
        _step, page = await report.call(
            "tabular_data_by_filter(count after delete)",
            lambda: data.tabular_data_by_filter(sensor_filter),
        )
        return None if page is None else len(page[0])

    step, deleted = await report.call(
        "delete_tabular_data(older than 1 day)",
        lambda: data.delete_tabular_data(plan.org_id, 1),
    )
    if step.ok:
        step.expect(deleted == 0, f"deleted {deleted} readings captured minutes ago")
        left = await tabular_count()
        step.expect(left == 3, f"{left} readings left, expected 3")

    step, deleted = await report.call(
        "delete_tabular_data(filter matching nothing)",
        lambda: data.delete_tabular_data(
            plan.org_id, 0, DeleteTabularFilter(component_name="no-such-sensor")
        ),
    )
    if step.ok:
        step.expect(deleted == 0, f"deleted {deleted}: the filter was ignored")
        left = await tabular_count()
        step.expect(left == 3, f"{left} readings left, expected 3")

    step, deleted = await report.call(
        "delete_tabular_data", lambda: data.delete_tabular_data(plan.org_id, 0)
    )
    if step.ok:
        step.expect(deleted == 3, f"deleted_count {deleted}, expected 3")
        left = await tabular_count()
        step.expect(left == 0, f"{left} readings left after deleting all")
        step, latest = await report.call(
            "get_latest_tabular_data(after delete)",
            lambda: data.get_latest_tabular_data(part, plan.sensor, SENSOR_API, "Readings"),
        )
        if step.ok:
            step.expect(latest is None, f"still returns {latest!r} after delete")


async def run_pages(data: DataClient, plan: Plan, report: Report) -> None:
    """Pages through 5 readings and 5 binary items 2 at a time, as the SDK's docs loop does.

    Every item must come back exactly once and the loop must end on an empty page.
    """
    base = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    rows = [{"readings": {"n": float(i)}} for i in range(5)]
    starts = [base + timedelta(seconds=i) for i in range(5)]
    times = [(start, start + timedelta(milliseconds=1)) for start in starts]
    await report.call(
        "tabular_data_capture_upload",
        lambda: data.tabular_data_capture_upload(
            tabular_data=rows,
            part_id=plan.part_id,
            component_type=SENSOR_API,
            component_name=plan.sensor,
            method_name="Readings",
            data_request_times=times,
        ),
    )
    uploaded: set[str] = set()
    for i in range(5):
        step, bid = await report.call(
            f"binary_data_capture_upload({i})",
            lambda i=i: data.binary_data_capture_upload(
                binary_data=_blob(100, i),
                part_id=plan.part_id,
                component_type=CAMERA_API,
                component_name=plan.camera,
                method_name="GetImages",
                file_extension=".bin",
                data_request_times=times[i],
            ),
        )
        if bid:
            uploaded.add(bid)

    sensor_filter = create_filter(component_name=plan.sensor, organization_ids=[plan.org_id])
    step, paged = await report.paginate(
        "tabular_data_by_filter",
        lambda last: data.tabular_data_by_filter(sensor_filter, limit=2, last=last),
        key=lambda row: f"{row.time_requested.isoformat()} {_canonical(row.data)}",
    )
    if step.ok:
        got = sorted((row.data for row in paged), key=_canonical)
        step.expect(got == sorted(rows, key=_canonical), f"paged readings {got!r} != uploaded")

    camera_filter = create_filter(component_name=plan.camera, organization_ids=[plan.org_id])
    step, listed = await report.paginate(
        "binary_data_by_filter",
        lambda last: data.binary_data_by_filter(camera_filter, limit=2, last=last),
        key=lambda item: item.metadata.binary_data_id,
    )
    if step.ok:
        got_ids = {item.metadata.binary_data_id for item in listed}
        step.expect(got_ids == uploaded, f"paged ids {sorted(got_ids)} != {sorted(uploaded)}")


async def run_foreign(data: DataClient, args: argparse.Namespace, report: Report) -> None:
    """With this key's organization, tries to read, delete and write another org's data."""
    org, part = args.foreign_org, args.foreign_part
    ids: list[str] = [key for key in args.foreign_binary_ids.split(",") if key]

    step, page = await report.call_refused_or(
        "tabular_data_by_filter(foreign org filter)",
        lambda: data.tabular_data_by_filter(create_filter(organization_ids=[org])),
    )
    if page is not None:
        step.expect(not page[0] and page[1] == 0, f"saw {len(page[0])} foreign readings")

    step, page = await report.call(
        "tabular_data_by_filter(no filter)", lambda: data.tabular_data_by_filter()
    )
    if page is not None:
        step.expect(not page[0], f"saw {len(page[0])} readings (this org has none)")

    step, page = await report.call_refused_or(
        "tabular_data_by_filter(foreign part)",
        lambda: data.tabular_data_by_filter(create_filter(part_id=part)),
    )
    if page is not None:
        step.expect(not page[0], f"saw {len(page[0])} readings of the foreign part")

    step, docs = await report.call_refused_or(
        "tabular_data_by_sql(foreign org)",
        lambda: data.tabular_data_by_sql(org, "SELECT * FROM readings"),
    )
    if docs is not None:
        step.expect(not docs, f"saw {len(docs)} foreign rows")

    step, docs = await report.call_refused_or(
        "tabular_data_by_mql(foreign org)",
        lambda: data.tabular_data_by_mql(org, [{"$match": {}}]),
    )
    if docs is not None:
        step.expect(not docs, f"saw {len(docs)} foreign documents")

    step, latest = await report.call_refused_or(
        "get_latest_tabular_data(foreign part)",
        lambda: data.get_latest_tabular_data(part, args.foreign_sensor, SENSOR_API, "Readings"),
    )
    if step.ok:
        step.expect(latest is None, f"saw the foreign latest reading {latest!r}")

    step, points = await report.call_refused_or(
        "export_tabular_data(foreign part)",
        lambda: data.export_tabular_data(part, args.foreign_sensor, SENSOR_API, "Readings"),
    )
    if points is not None:
        step.expect(not points, f"exported {len(points)} foreign points")

    step, page = await report.call_refused_or(
        "binary_data_by_filter(foreign org filter)",
        lambda: data.binary_data_by_filter(create_filter(organization_ids=[org])),
    )
    if page is not None:
        step.expect(not page[0] and page[1] == 0, f"saw {len(page[0])} foreign binary items")

    step, page = await report.call("binary_data_by_filter(no filter)", data.binary_data_by_filter)
    if page is not None:
        step.expect(not page[0], f"saw {len(page[0])} binary items (this org has none)")

    if ids:
        step, items = await report.call_refused_or(
            "binary_data_by_ids(foreign ids)", lambda: data.binary_data_by_ids(ids)
        )
        if items is not None:
            step.expect(not items, f"read {len(items)} foreign binary items by id")

    step, tags = await report.call_refused_or(
        "tags_by_filter(foreign part)", lambda: data.tags_by_filter(create_filter(part_id=part))
    )
    if tags is not None:
        step.expect(not tags, f"saw foreign tags {tags}")

    if ids:
        step, deleted = await report.call_refused_or(
            "delete_binary_data_by_ids(foreign ids)", lambda: data.delete_binary_data_by_ids(ids)
        )
        if step.ok and deleted is not None:
            step.expect(deleted == 0, f"deleted {deleted} foreign binary items")

    step, deleted = await report.call_refused_or(
        "delete_binary_data_by_filter(foreign org)",
        lambda: data.delete_binary_data_by_filter(create_filter(organization_ids=[org])),
    )
    if step.ok and deleted is not None:
        step.expect(deleted == 0, f"deleted {deleted} foreign binary items")

    step, deleted = await report.call_refused_or(
        "delete_tabular_data(foreign org)", lambda: data.delete_tabular_data(org, 0)
    )
    if step.ok and deleted is not None:
        step.expect(deleted == 0, f"deleted {deleted} foreign readings")

    step, bid = await report.call(
        "binary_data_capture_upload(into foreign part)",
        lambda: data.binary_data_capture_upload(
            binary_data=b"intruder",
            part_id=part,
            component_type=CAMERA_API,
            component_name="intruder",
            method_name="GetImages",
            file_extension=".bin",
        ),
    )
    if step.grpc_status is not None:  # refused, as it must be
        step.ok = True
        step.info["refused"] = step.error
        step.error = None
    else:
        step.expect(False, f"an upload into another org's part was accepted (id {bid!r})")


async def run_recount(data: DataClient, args: argparse.Namespace, report: Report) -> None:
    """Checks the part still holds the expected number of readings and binary items."""
    part_filter = create_filter(part_id=args.part_id)
    step, page = await report.call(
        "tabular_data_by_filter(recount)", lambda: data.tabular_data_by_filter(part_filter)
    )
    if page is not None:
        step.expect(
            len(page[0]) == args.expect_tabular,
            f"{len(page[0])} readings, expected {args.expect_tabular}",
        )
    step, page = await report.call(
        "binary_data_by_filter(recount)",
        lambda: data.binary_data_by_filter(part_filter, include_binary_data=False),
    )
    if page is not None:
        step.expect(
            len(page[0]) == args.expect_binary,
            f"{len(page[0])} binary items, expected {args.expect_binary}",
        )


async def main_async(args: argparse.Namespace) -> Report:
    """Connects with the SDK's own dial path, then runs the chosen mode."""
    report = Report(mode=args.mode)
    options = DialOptions.with_api_key(args.key, args.key_id)
    options.insecure = not args.tls
    options.timeout = CALL_TIMEOUT_S
    _step, client = await report.call(
        "ViamClient.create_from_dial_options",
        lambda: ViamClient.create_from_dial_options(options, app_url=args.address),
    )
    if client is None:
        return report
    try:
        data = client.data_client
        if args.mode in ("full", "keep"):
            plan = Plan(org_id=args.org_id, location_id=args.location_id, part_id=args.part_id)
            report.ids["sensor"] = plan.sensor
            await run_full(data, plan, report, delete=args.mode == "full")
        elif args.mode == "pages":
            plan = Plan(org_id=args.org_id, location_id=args.location_id, part_id=args.part_id)
            await run_pages(data, plan, report)
        elif args.mode == "foreign":
            await run_foreign(data, args, report)
        else:
            await run_recount(data, args, report)
        report.note_latency()
    finally:
        client.close()
        await asyncio.sleep(0)  # let grpclib finish closing the transport
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="host:port of ferry cloud serve")
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--org-id", required=True, help="the key's organization")
    parser.add_argument("--location-id", required=True, help="the key's location")
    parser.add_argument("--part-id", required=True, help="the part to upload as")
    parser.add_argument("--tls", action="store_true", help="dial with TLS (else insecure h2c)")
    modes = ["full", "keep", "pages", "foreign", "recount"]
    parser.add_argument("--mode", choices=modes, default="full")
    parser.add_argument("--foreign-org", default="")
    parser.add_argument("--foreign-part", default="")
    parser.add_argument("--foreign-sensor", default="")
    parser.add_argument("--foreign-binary-ids", default="", help="comma-separated")
    parser.add_argument("--expect-tabular", type=int, default=0)
    parser.add_argument("--expect-binary", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mode == "foreign" and not (args.foreign_org and args.foreign_part):
        parser.error("--mode foreign needs --foreign-org and --foreign-part")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = asyncio.run(main_async(args))
    print(report.to_json(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
