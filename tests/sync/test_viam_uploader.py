"""``ViamUploader``: Viam's DataSyncService upload paths against a real ``CloudServer``.

Guarantees checked (spec §4.4): a tabular capture file goes up as one unary
DataCaptureUpload with every reading and the header's metadata; a binary
reading of at most 1,000,000 bytes goes unary and a larger one streams, and
either is stored byte for byte; an arbitrary file streams as FileUpload with
its absolute path, tags and dataset ids, read 64 KiB at a time (never whole);
a retried stream starts again at byte 0 (DATA-3114); a capture file with no
readings is not sent; a corrupt capture file is a PermanentError naming the
file and offset, and nothing is sent; an unreadable file is transient, not offline.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import TYPE_CHECKING, Any, BinaryIO

import pytest

from actors.adapters.aio import open_aio_loop
from actors.adapters.cloud_link import CloudLink
from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import ThreadRunner
from actors.adapters.viam_uploader import (
    DATA_CAPTURE_UPLOAD,
    FILE_UPLOAD,
    MAX_UNARY_BYTES,
    STREAMING_DATA_CAPTURE_UPLOAD,
    ViamUploader,
)
from actors.codec import CaptureFileReader, CaptureFileWriter, RecordEncoder, encode_header
from actors.errors import OfflineError, PermanentError, TransientError
from actors.ports import FileKind, SyncFile
from protos.gen.viam.app.datasync import v1 as datasync
from tests.cli.captures import MS, T0, camera_header, tabular_header, write_tabular
from tests.sync.cloudfixture import PART, running_cloud

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from tests.sync.cloudfixture import ThreadedCloud


class RecordingLink:
    """A ``CloudLink`` that remembers which RPCs were called (and passes them on)."""

    def __init__(self, link: CloudLink) -> None:
        self.link = link
        self.rpcs: list[str] = []

    async def call(self, rpc: str, attempt: Any, *, payload_bytes: int = 0) -> Any:
        self.rpcs.append(rpc)
        return await self.link.call(rpc, attempt, payload_bytes=payload_bytes)


class RecordingReader:
    """A read-only file that remembers the size of every read."""

    def __init__(self, f: BinaryIO, reads: list[int]) -> None:
        self._f = f
        self._reads = reads

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._reads.append(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingFs:
    """``OsFileSystem`` whose opened files record their reads."""

    def __init__(self) -> None:
        self._fs = OsFileSystem()
        self.reads: list[int] = []

    def open_read(self, path: Path) -> Any:
        return RecordingReader(self._fs.open_read(path), self.reads)

    def size(self, path: Path) -> int:
        return self._fs.size(path)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[ThreadedCloud]:
    with running_cloud(tmp_path) as cloud:
        yield cloud


@pytest.fixture
async def link(cloud: ThreadedCloud) -> AsyncIterator[RecordingLink]:
    async with open_aio_loop():
        real = CloudLink(cloud.settings(), call_timeout_s=10)
        try:
            yield RecordingLink(real)
        finally:
            await real.close()


@pytest.fixture
def fs() -> RecordingFs:
    return RecordingFs()


@pytest.fixture
def uploader(link: RecordingLink, fs: RecordingFs) -> ViamUploader:
    return ViamUploader(link, part_id=PART, fs=fs, runner=ThreadRunner())  # type: ignore[arg-type]


def sync_file(path: Path, kind: FileKind = FileKind.CAPTURE, **kw: tuple[str, ...]) -> SyncFile:
    st = path.stat()
    return SyncFile(path, path.parent, kind, st.st_size, st.st_mtime_ns, **kw)


def binary_file(directory: Path, *payloads: bytes, header: Any = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    writer = CaptureFileWriter.create(directory, T0, encode_header(header or camera_header()))
    encoder = RecordEncoder()
    for i, payload in enumerate(payloads):
        t = T0 + i * MS
        writer.append_parts(encoder.binary_prefix(t, t + MS, len(payload)), payload)
    return writer.finish()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ capture files


async def test_a_tabular_file_is_one_unary_upload_with_every_reading(
    tmp_path, cloud, link, uploader
):
    d = tmp_path / "sensor"
    d.mkdir()
    path = write_tabular(d, [{"readings": {"i": i}} for i in range(50)])
    done = await uploader.upload(sync_file(path, tags=("walker",)))
    assert link.rpcs == [DATA_CAPTURE_UPLOAD]
    assert done.records == 50
    assert done.file_id
    rows = cloud.readings()
    assert sorted(row.data["readings"]["i"] for row in rows) == list(range(50))
    meta = rows[0].metadata
    assert (meta.part_id, meta.component_name, meta.method_name) == (PART, "env", "Readings")
    assert set(meta.tags) == {"t1", "t2", "walker"}  # the header's, and the walker's
    assert sorted(row.time_requested_ns // 1000 for row in rows)[0] == T0 // 1000


@pytest.mark.parametrize(
    ("size", "rpc"),
    [
        (5_000, DATA_CAPTURE_UPLOAD),
        (MAX_UNARY_BYTES, DATA_CAPTURE_UPLOAD),
        (MAX_UNARY_BYTES + 1, STREAMING_DATA_CAPTURE_UPLOAD),
    ],
)
async def test_a_binary_reading_goes_unary_up_to_1_000_000_bytes_and_streams_beyond(
    tmp_path, cloud, link, uploader, size, rpc
):
    payload = os.urandom(size)
    done = await uploader.upload(sync_file(binary_file(tmp_path / "cam", payload)))
    assert link.rpcs == [rpc]
    [row] = cloud.binaries()
    assert done.binary_data_ids == (row.binary_data_id,)
    assert done.records == 1
    assert (row.blob.sha256, row.blob.size) == (sha(payload), size)
    assert (row.metadata.mime_type, row.file_ext) == ("image/jpeg", ".jpeg")
    assert row.metadata.tags == ("cams",)
    assert row.time_requested_ns // 1000 == T0 // 1000


async def test_each_reading_of_a_binary_file_is_uploaded_on_its_own(
    tmp_path, cloud, link, uploader, fs
):
    small, large = os.urandom(10_000), os.urandom(MAX_UNARY_BYTES + 70_000)
    done = await uploader.upload(sync_file(binary_file(tmp_path / "cam", small, large)))
    assert link.rpcs == [DATA_CAPTURE_UPLOAD, STREAMING_DATA_CAPTURE_UPLOAD]
    assert done.records == 2
    stored = {row.binary_data_id: row.blob.sha256 for row in cloud.binaries()}
    assert [stored[i] for i in done.binary_data_ids] == [sha(small), sha(large)]
    assert max(fs.reads) <= MAX_UNARY_BYTES  # the large payload was read in chunks


async def test_a_capture_file_without_readings_is_not_sent(tmp_path, cloud, link, uploader):
    d = tmp_path / "sensor"
    d.mkdir()
    done = await uploader.upload(sync_file(write_tabular(d, [])))
    assert (done.file_id, done.records, link.rpcs) == ("", 0, [])


@pytest.mark.parametrize("kind", ["tabular", "binary"])
async def test_a_corrupt_capture_file_is_permanent_names_file_and_offset_and_sends_nothing(
    tmp_path, cloud, link, uploader, kind
):
    if kind == "tabular":
        d = tmp_path / "sensor"
        d.mkdir()
        path = write_tabular(d, [{"readings": {"i": i}} for i in range(5)])
        bad_at = path.stat().st_size
        with path.open("ab") as f:
            f.write(b"\x05" + b"\xff" * 5)  # a framed record that is not a SensorData
    else:
        path = binary_file(tmp_path / "cam", b"x" * 5000)
        with CaptureFileReader(path) as reader:
            bad_at = reader.header_end  # where the one record starts
        path.write_bytes(path.read_bytes()[:-10])  # its payload is cut short
    with pytest.raises(PermanentError, match=rf"offset {bad_at}\b") as caught:
        await uploader.upload(sync_file(path))
    assert str(path) in str(caught.value)
    assert link.rpcs == []


async def test_a_header_without_a_data_type_is_permanent(tmp_path, cloud, link, uploader):
    header = tabular_header()
    header.type = datasync.DataType.UNSPECIFIED
    d = tmp_path / "sensor"
    d.mkdir()
    path = write_tabular(d, [{"readings": {"i": 1}}], header=header)
    with pytest.raises(PermanentError, match="header type"):
        await uploader.upload(sync_file(path))
    assert link.rpcs == []


async def test_a_file_that_cannot_be_read_is_transient_not_offline(tmp_path, cloud, link, uploader):
    d = tmp_path / "sensor"
    d.mkdir()
    path = write_tabular(d, [{"readings": {"i": 1}}])
    file = sync_file(path)
    path.unlink()
    with pytest.raises(TransientError, match="No such file") as caught:
        await uploader.upload(file)
    assert not isinstance(caught.value, OfflineError)
    assert caught.value.where == str(path)


# ---------------------------------------------------------------- arbitrary files


async def test_an_arbitrary_file_streams_in_64_kib_chunks_with_its_metadata(
    tmp_path, cloud, link, uploader, fs
):
    data = os.urandom(300_000)
    path = tmp_path / "extra" / "scan.bin"
    path.parent.mkdir()
    path.write_bytes(data)
    done = await uploader.upload(
        sync_file(path, FileKind.ARBITRARY, tags=("lidar",), dataset_ids=("ds-1",))
    )
    assert link.rpcs == [FILE_UPLOAD]
    [row] = cloud.binaries()
    assert done.binary_data_ids == (row.binary_data_id,)
    assert (row.blob.sha256, row.blob.size) == (sha(data), len(data))
    assert (row.file_name, row.file_ext) == (str(path), ".bin")
    assert row.metadata.tags == ("lidar",)
    assert row.dataset_ids == ("ds-1",)
    assert max(fs.reads) == 65536  # read as it is sent, never whole
    assert sum(fs.reads) == len(data)


async def test_a_retried_stream_starts_again_at_byte_zero(tmp_path):
    # The first attempt is refused (expired token) after the stream began; the
    # retry must send the whole file again, not continue where it stopped.
    now = [time.time_ns()]
    data = os.urandom(200_000)
    path = tmp_path / "extra" / "f.bin"
    path.parent.mkdir()
    path.write_bytes(data)
    with running_cloud(tmp_path, wall_ns=lambda: now[0], token_ttl_s=60) as cloud:
        async with open_aio_loop():
            link = CloudLink(cloud.settings(), call_timeout_s=10)
            uploader = ViamUploader(link, part_id=PART, fs=OsFileSystem(), runner=ThreadRunner())
            try:
                await uploader.upload(sync_file(path, FileKind.ARBITRARY))
                now[0] += 120 * 1_000_000_000
                await uploader.upload(sync_file(path, FileKind.ARBITRARY))
            finally:
                await link.close()
        assert link.authentications == 2
        assert [row.blob.sha256 for row in cloud.binaries()] == [sha(data)] * 2
