"""Fixtures and factories shared by the store tests.

``store`` is a fresh ``SqliteStore`` in ``tmp_path`` with a deterministic wall
clock; ``open_store`` opens (or reopens, after ``close()``) the store in the
same data directory, for durability tests. The ``make_*`` factories build
domain values with sensible defaults; import them with
``from tests.cloud.store.conftest import make_ctx``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from cloud.model import (
    AnyValue,
    CaptureContext,
    PartInfo,
    Principal,
    TabularRecord,
    UploadIdentity,
)
from cloud.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from actors.codec import JsonObject

# 2023-11-14T22:13:20Z: the first value the fake wall clock returns.
WALL0_NS = 1_700_000_000_000_000_000

ORG = "org-1"
LOCATION = "loc-1"
PART = "part-1"


class StepClock:
    """A deterministic wall clock: ``WALL0_NS``, then ``step_ns`` later each call."""

    def __init__(self, start_ns: int = WALL0_NS, step_ns: int = 1_000_000) -> None:
        self.now_ns = start_ns
        self.step_ns = step_ns

    def __call__(self) -> int:
        now = self.now_ns
        self.now_ns += self.step_ns
        return now


@pytest.fixture
def wall() -> StepClock:
    """The wall clock every store opened by ``open_store`` uses."""
    return StepClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The store's data directory (not created: the store creates it)."""
    return tmp_path / "data"


@pytest.fixture
def open_store(data_dir: Path, wall: StepClock) -> Iterator[Callable[[], SqliteStore]]:
    """Opens a store on ``data_dir``; every store opened is closed at teardown."""
    opened: list[SqliteStore] = []

    def _open() -> SqliteStore:
        store = SqliteStore(data_dir, wall_ns=wall)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], SqliteStore]) -> SqliteStore:
    """A fresh, empty store."""
    return open_store()


def make_principal(
    org_id: str = ORG,
    location_id: str = LOCATION,
    part_id: str | None = None,
    key_id: str = "key-1",
) -> Principal:
    """A caller (location-scoped unless ``part_id`` is given)."""
    return Principal(key_id=key_id, org_id=org_id, location_id=location_id, part_id=part_id)


def make_part(
    part_id: str = PART,
    org_id: str = ORG,
    location_id: str = LOCATION,
    part_name: str = "",
    robot_id: str = "",
    robot_name: str = "",
) -> PartInfo:
    """A part value (not stored: use ``store.resolve_part`` to claim one)."""
    return PartInfo(
        part_id=part_id,
        org_id=org_id,
        location_id=location_id,
        part_name=part_name or part_id,
        robot_id=robot_id,
        robot_name=robot_name,
    )


def make_ctx(
    component_name: str = "sensor-1",
    component_type: str = "rdk:component:sensor",
    method_name: str = "Readings",
    *,
    tags: tuple[str, ...] = (),
    method_parameters: dict[str, bytes] | None = None,
    mime_type: str = "",
    dataset_ids: tuple[str, ...] = (),
    file_extension: str = "",
) -> CaptureContext:
    """A capture context; ``method_parameters`` maps names to ``Any`` value bytes."""
    params = tuple(
        (name, AnyValue(type_url=f"type.googleapis.com/test.{name}", value=value))
        for name, value in sorted((method_parameters or {}).items())
    )
    return CaptureContext(
        component_type=component_type,
        component_name=component_name,
        method_name=method_name,
        method_parameters=params,
        tags=tags,
        dataset_ids=dataset_ids,
        mime_type=mime_type,
        file_extension=file_extension,
    )


def make_record(
    time_requested_ns: int = WALL0_NS - 2_000,
    data: JsonObject | None = None,
    *,
    time_received_ns: int | None = None,
) -> TabularRecord:
    """A tabular reading (received 1 µs after requested unless given)."""
    return TabularRecord(
        time_requested_ns=time_requested_ns,
        time_received_ns=(
            time_requested_ns + 1_000 if time_received_ns is None else time_received_ns
        ),
        data={"readings": {"x": 1.5}} if data is None else data,
    )


def make_identity(
    data: bytes, part_id: str = PART, path: str = "/capture/a.capture"
) -> UploadIdentity:
    """The identity of a file with content ``data``."""
    return UploadIdentity(
        part_id=part_id, path=path, size=len(data), sha256=hashlib.sha256(data).digest()
    )
