"""The resumable protocol's rules, without a transport (cloud.ingest.resumable).

Guarantees: compare-and-set offsets (a chunk at another offset changes nothing),
checksummed chunks, whole-file verification at finish, materialization exactly
once (idempotent finish, same identity → same upload), scoping by organization
and part, and bad input rejected with a message that names the problem.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import zlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.codec import CaptureFileWriter, RecordEncoder, encode_header
from cloud.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from cloud.model import Filter, PageRequest, Principal, UploadIdentity, UploadKind, UploadStatus
from cloud.store.sqlite import SqliteStore
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cli.captures import camera_header, write_binary, write_tabular
from tests.cloud.ingest.conftest import ROBOT

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cloud.ingest.conftest import World


def tabular_bytes(tmp_path: Path, n: int = 50) -> bytes:
    d = tmp_path / f"cap{n}"
    d.mkdir(exist_ok=True)
    return write_tabular(d, [{"readings": {"i": i, "x": i / 2}} for i in range(n)]).read_bytes()


def stored_readings(world: World, who: Principal = ROBOT) -> list[object]:
    page = world.store.tabular_by_filter(who, Filter(), PageRequest(limit=10_000))
    return sorted(row.data["readings"]["i"] for row in page.rows)  # type: ignore[index]


def test_a_capture_file_uploaded_in_chunks_is_stored_once_with_every_reading(world, tmp_path):
    data = tabular_bytes(tmp_path, 500)
    record = world.upload(data, chunk=1000)
    assert record.status == UploadStatus.FINISHED
    assert record.records == 500
    assert stored_readings(world) == list(range(500))


def test_a_chunk_at_any_other_offset_changes_nothing_and_reports_the_committed_offset(
    world, tmp_path
):
    data = tabular_bytes(tmp_path)
    ident = world.identity(data)
    up = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    first = data[:100]
    assert world.ingest.write(ROBOT, up.upload_id, 0, first, zlib.crc32(first)) == (100, True)
    # A duplicate of the first chunk, a chunk from the future, and a stale one.
    assert world.ingest.write(ROBOT, up.upload_id, 0, first, zlib.crc32(first)) == (100, False)
    later = data[200:300]
    assert world.ingest.write(ROBOT, up.upload_id, 200, later, zlib.crc32(later)) == (100, False)
    assert world.store.get_upload("org-a", up.upload_id).committed_offset == 100


def test_reopening_the_same_identity_finds_the_upload_and_its_committed_offset(world, tmp_path):
    data = tabular_bytes(tmp_path)
    ident = world.identity(data)
    up = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    world.ingest.write(ROBOT, up.upload_id, 0, data[:64], zlib.crc32(data[:64]))
    again = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    assert (again.upload_id, again.committed_offset) == (up.upload_id, 64)


def test_finish_is_idempotent_and_a_finished_upload_opens_as_finished(world, tmp_path):
    data = tabular_bytes(tmp_path)
    first = world.upload(data)
    ident = world.identity(data)
    second = world.ingest.finish(ROBOT, first.upload_id, ident.sha256)
    reopened = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    assert second.file_id == first.file_id
    assert reopened.status == UploadStatus.FINISHED
    assert reopened.file_id == first.file_id
    # Uploading the whole file again (a robot that lost the confirmation) stores nothing new.
    world.upload(data)
    assert stored_readings(world) == list(range(50))


def test_finish_before_every_byte_is_committed_is_a_failed_precondition(world, tmp_path):
    data = tabular_bytes(tmp_path)
    ident = world.identity(data)
    up = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    world.ingest.write(ROBOT, up.upload_id, 0, data[:10], zlib.crc32(data[:10]))
    with pytest.raises(FailedPrecondition, match=f"10 of {len(data)} bytes committed"):
        world.ingest.finish(ROBOT, up.upload_id, ident.sha256)


def test_finish_with_another_hash_is_invalid(world, tmp_path):
    data = tabular_bytes(tmp_path)
    up = world.ingest.open(ROBOT, world.identity(data), UploadKind.CAPTURE_FILE, b"")
    with pytest.raises(InvalidArgument, match="differs from the identity's"):
        world.ingest.finish(ROBOT, up.upload_id, b"\x00" * 32)


def test_bytes_that_do_not_hash_to_the_identity_are_rejected_and_not_stored(world, tmp_path):
    data = tabular_bytes(tmp_path)
    ident = world.identity(data)
    changed = bytearray(data)
    changed[-1] ^= 0xFF  # the file changed after the robot hashed it
    up = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    world.ingest.write(ROBOT, up.upload_id, 0, bytes(changed), zlib.crc32(changed))
    with pytest.raises(InvalidArgument, match="the file changed while it was uploaded"):
        world.ingest.finish(ROBOT, up.upload_id, ident.sha256)
    assert stored_readings(world) == []


@pytest.mark.parametrize(
    ("offset", "data", "crc", "message"),
    [
        (0, b"abc", 1, "chunk crc32 0x00000001 does not match its data"),
        (0, b"", 0, "chunk is empty"),
        (0, b"x" * (64 << 10 | 1), None, "exceeds max_chunk_bytes 65536"),
        (0, b"x" * 5000, None, "past|exceed|size"),
    ],
)
def test_bad_chunks_are_invalid_and_name_the_upload_and_offset(
    world, tmp_path, offset, data, crc, message
):
    small = tabular_bytes(tmp_path, 3)
    assert len(small) < 5000
    up = world.ingest.open(ROBOT, world.identity(small), UploadKind.CAPTURE_FILE, b"")
    with pytest.raises(InvalidArgument, match=message) as info:
        world.ingest.write(
            ROBOT, up.upload_id, offset, data, zlib.crc32(data) if crc is None else crc
        )
    assert up.upload_id in str(info.value)
    assert world.store.get_upload("org-a", up.upload_id).committed_offset == 0


@pytest.mark.parametrize(
    ("identity", "kind", "message"),
    [
        (UploadIdentity("", "p", 1, b"\0" * 32), 1, "identity.part_id is required"),
        (UploadIdentity("part-1", "", 1, b"\0" * 32), 1, "identity.path is required"),
        (UploadIdentity("part-1", "p", 1, b"\0" * 31), 1, "identity.sha256: must be 32 bytes"),
        (UploadIdentity("part-1", "p", 1 << 40, b"\0" * 32), 1, "exceeds the server's limit"),
        (UploadIdentity("part-1", "p", 1, b"\0" * 32), 0, "kind: must be CAPTURE_FILE"),
        (UploadIdentity("part-1", "p", 1, b"\0" * 32), 9, "kind: must be CAPTURE_FILE"),
    ],
)
def test_bad_identities_are_invalid(world, identity, kind, message):
    with pytest.raises(InvalidArgument, match=message):
        world.ingest.open(ROBOT, identity, kind, b"")


def test_metadata_naming_another_part_is_invalid(world, tmp_path):
    data = tabular_bytes(tmp_path)
    md = bytes(datasync.UploadMetadata(part_id="part-2"))
    with pytest.raises(InvalidArgument, match=r"differs from identity\.part_id"):
        world.ingest.open(ROBOT, world.identity(data), UploadKind.CAPTURE_FILE, md)


def test_another_organization_cannot_see_or_write_an_upload(world, tmp_path):
    data = tabular_bytes(tmp_path)
    up = world.ingest.open(ROBOT, world.identity(data), UploadKind.CAPTURE_FILE, b"")
    other = Principal("key-b", "org-b", "loc-b")
    with pytest.raises(NotFound):
        world.ingest.write(other, up.upload_id, 0, data[:10], zlib.crc32(data[:10]))
    with pytest.raises(NotFound):
        world.ingest.finish(other, up.upload_id, world.identity(data).sha256)
    # The part is org A's: org B cannot claim it either.
    with pytest.raises(PermissionDenied):
        world.ingest.open(other, world.identity(data), UploadKind.CAPTURE_FILE, b"")


def test_a_part_scoped_key_cannot_touch_another_parts_upload(world, tmp_path):
    data = tabular_bytes(tmp_path)
    up = world.ingest.open(ROBOT, world.identity(data), UploadKind.CAPTURE_FILE, b"")
    narrow = Principal("key-p2", "org-a", "loc-a", "part-2")
    with pytest.raises(PermissionDenied, match="outside this key's part"):
        world.ingest.write(narrow, up.upload_id, 0, data[:10], zlib.crc32(data[:10]))


def test_a_corrupt_capture_file_is_invalid_names_the_offset_and_stores_nothing(world, tmp_path):
    data = tabular_bytes(tmp_path, 20)
    corrupt = data[:-3]  # torn final record
    with pytest.raises(InvalidArgument, match=r"not a valid capture file at offset \d+"):
        world.upload(corrupt)
    assert stored_readings(world) == []


def test_a_binary_capture_file_becomes_one_blob_with_its_bytes(world, tmp_path):
    payload = bytes(range(256)) * 300
    data = write_binary(tmp_path, payload).read_bytes()
    record = world.upload(data, chunk=10_000, path="camera/cam/ReadImage/x.capture")
    assert len(record.binary_data_ids) == 1
    [row] = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    assert b"".join(world.store.open_blob(row.blob)) == payload
    assert row.metadata.component_name == "cam"
    assert row.file_ext == ".jpeg"


def test_an_arbitrary_file_becomes_one_blob_named_after_the_file(world):
    content = b"robot log line\n" * 1000
    md = bytes(datasync.UploadMetadata(tags=["logs"], file_extension=".txt"))
    record = world.upload(
        content, kind=UploadKind.ARBITRARY_FILE, metadata=md, path="extra/robot.log"
    )
    [row] = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    assert b"".join(world.store.open_blob(row.blob)) == content
    assert (row.file_name, row.file_ext, row.metadata.tags) == ("robot.log", ".txt", ("logs",))


def test_an_empty_arbitrary_file_uploads(world):
    record = world.upload(b"", kind=UploadKind.ARBITRARY_FILE, path="extra/empty")
    assert record.status == UploadStatus.FINISHED


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(200, 3000), min_size=1, max_size=10),
    actions=st.lists(st.sampled_from(["send", "dup", "stale", "reopen", "finish"]), max_size=60),
)
def test_any_interleaving_of_retries_stores_every_reading_exactly_once(
    world, tmp_path, sizes, actions
):
    """Duplicates, stale chunks, re-opens and early finishes never lose or repeat a reading."""
    data = tabular_bytes(tmp_path, 80)
    path = f"f-{hashlib.sha256(repr((sizes, actions)).encode()).hexdigest()[:12]}.capture"
    ident = world.identity(data, path)
    up = world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"")
    offset, last = 0, (0, b"")
    sizes_iter = itertools.cycle(sizes)
    for action in [*actions, *["send"] * 100_000]:
        if offset >= len(data):
            break
        if action == "send":
            piece = data[offset : offset + next(sizes_iter)]
            last = (offset, piece)
            offset, _ = world.ingest.write(ROBOT, up.upload_id, offset, piece, zlib.crc32(piece))
        elif action == "dup" and last[1]:
            got, accepted = world.ingest.write(ROBOT, up.upload_id, *last, zlib.crc32(last[1]))
            assert got == offset
            assert not accepted
        elif action == "stale" and offset:
            piece = data[: min(offset, 7)]
            assert world.ingest.write(ROBOT, up.upload_id, 0, piece, zlib.crc32(piece)) == (
                offset,
                False,
            )
        elif action == "reopen":
            assert (
                world.ingest.open(ROBOT, ident, UploadKind.CAPTURE_FILE, b"").committed_offset
                == offset
            )
        elif action == "finish":
            with pytest.raises(FailedPrecondition):
                world.ingest.finish(ROBOT, up.upload_id, ident.sha256)
    assert offset == len(data)
    world.ingest.finish(ROBOT, up.upload_id, ident.sha256)
    world.ingest.finish(ROBOT, up.upload_id, ident.sha256)
    rows = world.store.tabular_by_filter(ROBOT, Filter(), PageRequest(limit=10_000)).rows
    mine = sorted(r.data["readings"]["i"] for r in rows)  # type: ignore[index]
    # Every example shares the store: each finished file adds its 80 readings exactly once.
    assert len(mine) % 80 == 0
    assert mine == sorted(list(range(80)) * (len(mine) // 80))


def multi_record_file(tmp_path: Path, payloads: list[bytes]) -> bytes:
    writer = CaptureFileWriter.create(tmp_path, 1, encode_header(camera_header()))
    for i, payload in enumerate(payloads):
        writer.append_parts(RecordEncoder().binary_prefix(i, i + 1, len(payload)), payload)
    return writer.finish().read_bytes()


def blob_files(world: World) -> list[Path]:
    return [p for p in world.store._blobs.root.rglob("*") if p.is_file()]


def test_every_record_of_a_binary_file_is_its_own_item_in_the_one_adopted_file(world, tmp_path):
    payloads = [b"first" * 1000, b"", b"third" * 50_000]
    data = multi_record_file(tmp_path, payloads)
    record = world.upload(data, chunk=20_000, path="camera/cam/ReadImage/multi.capture")
    rows = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    assert [b"".join(world.store.open_blob(r.blob)) for r in rows] == payloads
    assert [r.time_requested_ns for r in rows] == [0, 1, 2]
    # No payload was copied: the capture file itself is the only blob.
    [blob] = blob_files(world)
    assert blob.read_bytes() == data
    assert {r.blob.sha256 for r in rows} == {hashlib.sha256(data).hexdigest()}


def test_deleting_one_image_frees_its_bytes_and_the_last_one_frees_the_file(world, tmp_path):
    payloads = [b"keep" * 5000, b"private" * 5000, b"also" * 5000]
    data = multi_record_file(tmp_path, payloads)
    record = world.upload(data, chunk=60_000, path="camera/cam/ReadImage/three.capture")
    keep1, gone, keep2 = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    assert world.store.delete_binary_by_ids(ROBOT, [gone.binary_data_id]) == 1
    [blob] = blob_files(world)
    assert b"private" not in blob.read_bytes()  # punched, not just unreferenced
    for row, payload in ((keep1, payloads[0]), (keep2, payloads[2])):
        assert b"".join(world.store.open_blob(row.blob)) == payload
    world.store.delete_binary_by_ids(ROBOT, [keep1.binary_data_id, keep2.binary_data_id])
    assert blob_files(world) == []


def pending_frees(store: SqliteStore) -> list[tuple[object, ...]]:
    with store._db.read() as conn:
        return conn.execute("SELECT * FROM pending_frees").fetchall()


def test_a_crash_between_a_deletes_commit_and_its_punch_is_finished_when_the_store_opens(
    world, tmp_path, monkeypatch
):
    payloads = [b"keep" * 5000, b"private" * 5000, b"also" * 5000]
    data = multi_record_file(tmp_path, payloads)
    record = world.upload(data, chunk=60_000, path="camera/cam/ReadImage/three.capture")
    keep1, gone, keep2 = world.store.binary_by_ids(ROBOT, record.binary_data_ids)

    def crash(_ref: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(world.store._blobs, "punch", crash)
    with pytest.raises(OSError, match="power cut"):
        world.store.delete_binary_by_ids(ROBOT, [gone.binary_data_id])
    [blob] = blob_files(world)
    assert b"private" in blob.read_bytes()  # the row is gone, its bytes are not
    assert len(pending_frees(world.store)) == 1
    world.store.close()

    reopened = SqliteStore(world.store.data_dir, wall_ns=lambda: 0)
    try:
        assert b"private" not in blob.read_bytes()
        assert pending_frees(reopened) == []
        for row, payload in ((keep1, payloads[0]), (keep2, payloads[2])):
            assert b"".join(reopened.open_blob(row.blob)) == payload
    finally:
        reopened.close()


def test_a_completed_delete_leaves_no_pending_free(world, tmp_path):
    record = world.upload(
        multi_record_file(tmp_path, [b"a" * 9000, b"b" * 9000]),
        path="camera/cam/ReadImage/two.capture",
    )
    first, _second = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    world.store.delete_binary_by_ids(ROBOT, [first.binary_data_id])
    assert pending_frees(world.store) == []


def test_identical_capture_files_share_a_blob_and_deleting_one_keeps_the_other(world, tmp_path):
    payloads = [b"same image" * 3000]
    data = multi_record_file(tmp_path, payloads)
    first = world.upload(data, path="camera/cam/ReadImage/a.capture")
    second = world.upload(data, path="camera/cam/ReadImage/b.capture")
    assert len(blob_files(world)) == 1
    world.store.delete_binary_by_ids(ROBOT, list(first.binary_data_ids))
    [row] = world.store.binary_by_ids(ROBOT, second.binary_data_ids)
    assert b"".join(world.store.open_blob(row.blob)) == payloads[0]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (RecordEncoder().tabular(1, 2, {"x": 1.0}), "a binary capture file holds a struct"),
        (b"\x09\x0a\x03\x08\x01\x10", "record runs past the end of the file"),
        (b"\x02\x0a\x00", "record has no binary payload"),
    ],
)
def test_a_malformed_binary_capture_file_is_invalid_names_the_offset_and_stores_nothing(
    world, tmp_path, record, reason
):
    header = encode_header(camera_header())
    data = header + record
    with pytest.raises(InvalidArgument, match=rf"at offset (\d+): {reason}") as info:
        world.upload(data, path="camera/cam/ReadImage/bad.capture")
    offset = int(re.search(r"at offset (\d+)", str(info.value))[1])  # type: ignore[index]
    assert len(header) <= offset < len(data)  # inside the bad record
    assert world.store.count_binary(ROBOT, Filter()) == 0
