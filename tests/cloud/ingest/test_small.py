"""``UploadFiles`` (cloud/ingest/small.py): many small files, one call, one commit.

Guarantees: every reading (or binary item) of every good file is stored exactly
once, also when the same batch comes again (a lost answer) or a file was already
begun or finished through the resumable calls; a binary file's item holds its
bytes; tags sent with a file join its header's; a bad file gets its own error
naming it and never costs the others; an oversized call is refused whole; an
arbitrary file is stored as its resumable finish would store it.
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from cloud.errors import InvalidArgument
from cloud.ingest.small import MAX_FILES, SmallFileIn
from cloud.model import Filter, PageRequest, Principal, UploadIdentity, UploadKind, UploadStatus
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cli.captures import write_binary, write_tabular
from tests.cloud.ingest.conftest import ROBOT

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cloud.ingest.conftest import World


def small_file(tmp_path: Path, first: int, n: int = 5) -> bytes:
    d = tmp_path / f"f{first}"
    d.mkdir(exist_ok=True)
    return write_tabular(d, [{"readings": {"i": first + i}} for i in range(n)]).read_bytes()


def ident(data: bytes, path: str) -> UploadIdentity:
    return UploadIdentity("part-1", path, len(data), hashlib.sha256(data).digest())


def stored(world: World) -> list[int]:
    page = world.store.tabular_by_filter(ROBOT, Filter(), PageRequest(limit=10_000))
    return sorted(row.data["readings"]["i"] for row in page.rows)  # type: ignore[index]


def batch(tmp_path: Path, count: int) -> list[SmallFileIn]:
    files = []
    for k in range(count):
        data = small_file(tmp_path, 100 * k)
        files.append(SmallFileIn(ident(data, f"sensor/env/Readings/{k}.capture"), data))
    return files


def test_a_batch_stores_every_reading_once_and_a_repeat_changes_nothing(world, tmp_path):
    files = batch(tmp_path, 4)
    first = world.ingest.upload_files(ROBOT, files)
    assert [r.error for r in first] == [""] * 4
    assert [r.records for r in first] == [5] * 4
    assert len({r.upload_id for r in first}) == 4
    expected = sorted(100 * k + i for k in range(4) for i in range(5))
    assert stored(world) == expected
    again = world.ingest.upload_files(ROBOT, files)  # the robot never heard the answer
    assert again == first
    assert stored(world) == expected


def test_a_file_begun_or_finished_through_the_resumable_calls_is_stored_once(world, tmp_path):
    (begun_id, begun, *_), (done_id, done, *_) = batch(tmp_path, 2)
    up = world.ingest.open(ROBOT, begun_id, UploadKind.CAPTURE_FILE, b"")
    world.ingest.write(ROBOT, up.upload_id, 0, begun[:40], zlib.crc32(begun[:40]))
    finished = world.upload(done, path=done_id.path)
    results = world.ingest.upload_files(
        ROBOT, [SmallFileIn(begun_id, begun), SmallFileIn(done_id, done)]
    )
    assert results[0].upload_id == up.upload_id  # the same upload, finished here
    assert results[1].file_id == finished.file_id  # already finished: returned as stored
    assert stored(world) == sorted([*range(5), *range(100, 105)])
    assert world.store.get_upload("org-a", up.upload_id).status is UploadStatus.FINISHED
    assert not (world.store._staging / up.upload_id).exists()
    assert world.store._running.digest(up.upload_id, 40) is None  # its running hash, forgotten
    # A later resumable finish of the same upload is the same answer, nothing more.
    assert world.ingest.finish(ROBOT, up.upload_id, begun_id.sha256).file_id == results[0].file_id
    assert len(stored(world)) == 10


def test_a_bad_file_gets_its_own_error_and_the_others_are_stored(world, tmp_path):
    good = batch(tmp_path, 2)
    data = small_file(tmp_path, 900)
    corrupt = data[:-2]
    bad = [
        SmallFileIn(UploadIdentity("part-1", "wrong-hash.capture", len(data), b"\0" * 32), data),
        SmallFileIn(ident(data, "short.capture"), data[:-1]),
        SmallFileIn(ident(corrupt, "torn.capture"), corrupt),
        SmallFileIn(
            UploadIdentity("part-x", "p.capture", len(data), hashlib.sha256(data).digest()), data
        ),
        SmallFileIn(ident(data, "long-tag.capture"), data, ("ok", "x" * 1025)),
    ]
    results = world.ingest.upload_files(
        Principal("key-p", "org-a", "loc-a", part_id="part-1"), [good[0], *bad, good[1]]
    )
    assert results[0].error == results[-1].error == ""
    codes = [r.error_code for r in results[1:-1]]
    assert codes == ["INVALID_ARGUMENT"] * 3 + ["PERMISSION_DENIED", "INVALID_ARGUMENT"]
    messages = [r.error for r in results[1:-1]]
    assert "do not hash" in messages[0]
    assert "identity.size" in messages[1]
    assert "torn.capture" in messages[2]
    assert "offset" in messages[2]
    assert messages[4] == "file 'long-tag.capture' tags[1]: longer than 1024 characters"
    assert stored(world) == sorted([*range(5), *range(100, 105)])


def test_too_many_files_or_bytes_in_one_call_is_refused_whole(world, tmp_path):
    files = batch(tmp_path, 1)
    with pytest.raises(InvalidArgument, match=f"at most {MAX_FILES}"):
        world.ingest.upload_files(ROBOT, files * (MAX_FILES + 1))
    big = world.ingest.limits.max_chunk_bytes // len(files[0].data) + 1
    with pytest.raises(InvalidArgument, match="bytes in one call"):
        world.ingest.upload_files(ROBOT, files * big)
    assert stored(world) == []


def test_a_files_tags_join_its_headers_on_every_reading_as_openupload_metadata_would(
    world, tmp_path
):
    """The data manager's tags reach the cloud with batched files too (merged, sorted, once)."""
    data = small_file(tmp_path, 0)
    tagged = SmallFileIn(ident(data, "sensor/env/Readings/t.capture"), data, ("site-a", "t1"))
    [result] = world.ingest.upload_files(ROBOT, [tagged])
    assert result.error == ""
    page = world.store.tabular_by_filter(ROBOT, Filter(), PageRequest(limit=100))
    assert {row.metadata.tags for row in page.rows} == {("site-a", "t1", "t2")}
    assert len(page.rows) == 5


def test_a_call_with_no_files_stores_nothing(world):
    """A robot asks whether the server applies tags with an empty call: it changes nothing."""
    assert world.ingest.upload_files(ROBOT, []) == []
    assert stored(world) == []


def binary_file(tmp_path: Path, payload: bytes, name: str) -> SmallFileIn:
    d = tmp_path / name
    d.mkdir()
    data = write_binary(d, payload).read_bytes()
    return SmallFileIn(ident(data, f"camera/cam/ReadImage/{name}.capture"), data, ("site-a",))


def test_a_binary_capture_file_becomes_its_item_once_with_its_bytes_and_tags(world, tmp_path):
    """A camera frame sent whole is stored as a resumable finish would store it."""
    frame = binary_file(tmp_path, bytes(range(256)) * 40, "frame")
    tabular = batch(tmp_path, 1)[0]
    first = world.ingest.upload_files(ROBOT, [frame, tabular])
    assert [(r.error, r.records) for r in first] == [("", 1), ("", 5)]
    record = world.store.get_upload("org-a", first[0].upload_id)
    assert record.status is UploadStatus.FINISHED
    [row] = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    assert b"".join(world.store.open_blob(row.blob)) == bytes(range(256)) * 40
    assert (row.metadata.component_name, row.file_ext) == ("cam", ".jpeg")
    assert set(row.metadata.tags) >= {"site-a"}
    assert world.ingest.upload_files(ROBOT, [frame]) == first[:1]  # a lost answer
    assert len(world.store.binary_by_filter(ROBOT, Filter(), PageRequest(limit=10)).rows) == 1


def test_a_binary_file_begun_through_write_chunk_is_finished_once_by_a_batch(world, tmp_path):
    frame = binary_file(tmp_path, b"\xff\xd8" * 3000, "begun")
    up = world.ingest.open(ROBOT, frame.identity, UploadKind.CAPTURE_FILE, b"")
    world.ingest.write(ROBOT, up.upload_id, 0, frame.data[:100], zlib.crc32(frame.data[:100]))
    [result] = world.ingest.upload_files(ROBOT, [frame])
    assert (result.upload_id, result.records) == (up.upload_id, 1)
    assert not (world.store._staging / up.upload_id).exists()
    finished = world.ingest.finish(ROBOT, up.upload_id, frame.identity.sha256)
    assert finished.binary_data_ids == world.store.get_upload("org-a", up.upload_id).binary_data_ids
    assert len(world.store.binary_by_filter(ROBOT, Filter(), PageRequest(limit=10)).rows) == 1


def test_a_binary_file_with_a_broken_record_is_refused_naming_the_offset(world, tmp_path):
    good = binary_file(tmp_path, b"jpeg" * 100, "good")
    torn = good.data[:-5]
    bad = SmallFileIn(ident(torn, "camera/cam/ReadImage/torn.capture"), torn)
    [result] = world.ingest.upload_files(ROBOT, [bad])
    assert result.error_code == "INVALID_ARGUMENT"
    assert "torn.capture" in result.error
    assert "offset" in result.error
    assert not world.store.binary_by_filter(ROBOT, Filter(), PageRequest(limit=10)).rows


def note_metadata(**changes: object) -> bytes:
    """What a robot sends with an arbitrary file (``arbitrary_file_metadata``)."""
    fields: dict[str, object] = {
        "part_id": "part-1",
        "type": datasync.DataType.FILE,
        "file_name": "/robot/notes/today.txt",
        "file_extension": ".txt",
        "tags": ["site-a"],
        "dataset_ids": ["ds-2", "ds-1"],
        "file_modify_time": datetime(2026, 11, 22, 8, 0, 1, tzinfo=UTC),
    }
    fields.update(changes)
    return bytes(datasync.UploadMetadata(**fields))  # type: ignore[arg-type]


def test_an_arbitrary_file_is_stored_once_as_a_resumable_finish_stores_it(world, tmp_path):
    """One binary item with the file's bytes, name, time, tags and dataset ids."""
    data = b"a note\n" * 300
    note = SmallFileIn(ident(data, "notes/today.txt"), data, (), UploadKind.ARBITRARY_FILE,
                       note_metadata())  # fmt: skip
    first = world.ingest.upload_files(ROBOT, [note, batch(tmp_path, 1)[0]])
    assert [(r.error, r.records) for r in first] == [("", 1), ("", 5)]
    record = world.store.get_upload("org-a", first[0].upload_id)
    assert (record.kind, record.metadata) == (UploadKind.ARBITRARY_FILE, note.metadata)
    [row] = world.store.binary_by_ids(ROBOT, record.binary_data_ids)
    assert b"".join(world.store.open_blob(row.blob)) == data
    # The same file through OpenUpload, WriteChunk and FinishUpload (at another path).
    resumable = world.upload(
        data, kind=UploadKind.ARBITRARY_FILE, metadata=note_metadata(), path="notes/again.txt"
    )
    [other] = world.store.binary_by_ids(ROBOT, resumable.binary_data_ids)
    same = ("metadata", "blob", "time_requested_ns", "time_received_ns", "file_name", "file_ext",
            "dataset_ids")  # fmt: skip
    assert {f: getattr(row, f) for f in same} == {f: getattr(other, f) for f in same}
    assert row.file_name == "/robot/notes/today.txt"
    assert row.dataset_ids == ("ds-1", "ds-2")
    assert "site-a" in row.metadata.tags
    assert world.ingest.upload_files(ROBOT, [note]) == first[:1]  # a lost answer: nothing twice
    assert len(world.store.binary_by_filter(ROBOT, Filter(), PageRequest(limit=10)).rows) == 2


@pytest.mark.parametrize(
    ("kind", "metadata", "error"),
    [
        (7, note_metadata(), "kind must be CAPTURE_FILE or ARBITRARY_FILE, got 7"),
        (UploadKind.ARBITRARY_FILE, b"\x0a\x01\xff", "upload_metadata is not valid"),
        (
            UploadKind.ARBITRARY_FILE,
            note_metadata(part_id="part-2"),
            "upload_metadata.part_id 'part-2' differs from identity.part_id 'part-1'",
        ),
        (UploadKind.ARBITRARY_FILE, note_metadata(tags=["x" * 2000]), "tags[0]"),
    ],
)
def test_a_bad_arbitrary_file_gets_its_own_error_naming_it(world, tmp_path, kind, metadata, error):
    data = b"note"
    bad = SmallFileIn(ident(data, "notes/bad.txt"), data, (), kind, metadata)
    good = batch(tmp_path, 1)[0]
    results = world.ingest.upload_files(ROBOT, [bad, good])
    assert results[0].error_code == "INVALID_ARGUMENT"
    assert "notes/bad.txt" in results[0].error
    assert error in results[0].error
    assert results[1].error == ""
    assert not world.store.binary_by_filter(ROBOT, Filter(), PageRequest(limit=10)).rows
