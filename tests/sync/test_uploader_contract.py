"""The ``Uploader`` contract, run against every implementation (STYLE.md §17).

One suite, two uploaders, one real cloud: ``InProcessUploader`` (the simulator's,
calling the cloud's ingest directly) and ``GrpcUploader`` (production, over
grpclib to a real ``CloudServer`` on loopback). Both must give the same answers
and raise the same ``actors.errors`` classes, naming the same RPC.

Guarantees checked: a new upload starts at offset 0; reopening the same identity
resumes at the committed offset; a chunk at a stale offset changes nothing;
finish is idempotent and a finished upload reopens as finished with the same
ids; arbitrary files keep their tags, dataset ids and absolute path; walker tags
reach the cloud, sent alone or in a batch; a corrupt capture file is a
PermanentError naming the offset; scope, state and argument errors are
classified as the gRPC edge classifies them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import trio

from actors.adapters.aio import open_aio_loop
from actors.adapters.cloud_link import CloudLink
from actors.adapters.grpc_uploader import (
    FINISH_UPLOAD,
    OPEN_UPLOAD,
    UPLOAD_FILES,
    WRITE_CHUNK,
    GrpcUploader,
)
from actors.errors import OfflineError, PermanentError, TransientError
from actors.ports import Confirmation, FileIdentity, FileKind, SmallFile, SyncFile
from actors.sync.files import arbitrary_file_metadata
from cloud.model import Principal
from sim.uploader import InProcessUploader
from tests.cli.captures import write_binary, write_tabular
from tests.sync.cloudfixture import LOC, ORG, PART, running_cloud

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from actors.ports import Uploader
    from tests.sync.cloudfixture import ThreadedCloud

CHUNK = 1000


@dataclass
class Env:
    """One uploader implementation in front of a real cloud."""

    cloud: ThreadedCloud
    kind: str
    root: Path
    links: list[CloudLink] = field(default_factory=list)

    def uploader(self, *, org: str = ORG, key_part: str | None = None) -> Uploader:
        """An uploader acting for ``org``/loc-a, scoped to ``key_part`` when given."""
        if self.kind == "in-process":
            who = Principal("sim-key", org, LOC, key_part)
            return InProcessUploader(self.cloud.server.resumable, who)
        link = CloudLink(self.cloud.settings(org=org, key_part=key_part), call_timeout_s=10)
        self.links.append(link)
        return GrpcUploader(link)

    def capture(self, n: int = 30, *, name: str = "cap") -> SyncFile:
        """A finished tabular capture file of ``n`` readings under the sync root."""
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        path = write_tabular(d, [{"readings": {"i": i, "pad": "x" * 20}} for i in range(n)])
        return sync_file(path, self.root, FileKind.CAPTURE)

    def arbitrary(self, data: bytes, name: str = "notes.txt", **kw: tuple[str, ...]) -> SyncFile:
        path = self.root / "extra" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return sync_file(path, self.root, FileKind.ARBITRARY, **kw)


def sync_file(path: Path, root: Path, kind: FileKind, **kw: tuple[str, ...]) -> SyncFile:
    st = path.stat()
    return SyncFile(path, root, kind, st.st_size, st.st_mtime_ns, **kw)


def identity_of(file: SyncFile, part_id: str = PART) -> FileIdentity:
    data = file.path.read_bytes()
    return FileIdentity(part_id, file.relpath, len(data), hashlib.sha256(data).digest())


async def upload_all(uploader: Uploader, file: SyncFile, ident: FileIdentity):
    """The sync actor's loop: open, continue at the committed offset, finish."""
    data = file.path.read_bytes()
    up = await uploader.open(ident, file)
    offset = up.committed_offset
    while offset < len(data):
        result = await uploader.write(up.upload_id, offset, data[offset : offset + CHUNK])
        offset = result.committed_offset
    return up, await uploader.finish(up.upload_id, ident.sha256)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[ThreadedCloud]:
    with running_cloud(tmp_path) as cloud:
        yield cloud


@pytest.fixture(params=["in-process", "grpc"])
async def env(
    request: pytest.FixtureRequest, cloud: ThreadedCloud, tmp_path: Path
) -> AsyncIterator[Env]:
    env = Env(cloud, request.param, tmp_path / "capture")
    async with open_aio_loop():
        try:
            yield env
        finally:
            with trio.CancelScope(shield=True):
                for link in env.links:
                    await link.close()


async def test_a_new_upload_opens_at_offset_zero_and_finishing_stores_every_reading(env: Env):
    file = env.capture(30)
    up, done = await upload_all(env.uploader(), file, identity_of(file))
    assert (up.committed_offset, up.finished) == (0, False)
    assert up.max_chunk_bytes >= CHUNK
    assert done.records == 30
    assert done.file_id
    assert sorted(row.data["readings"]["i"] for row in env.cloud.readings()) == list(range(30))


async def test_reopening_resumes_at_the_committed_offset(env: Env):
    file = env.capture(30)
    ident = identity_of(file)
    data = file.path.read_bytes()
    uploader = env.uploader()
    first = await uploader.open(ident, file)
    assert (await uploader.write(first.upload_id, 0, data[:CHUNK])).accepted
    again = await env.uploader().open(ident, file)  # e.g. after a robot restart
    assert (again.upload_id, again.committed_offset, again.finished) == (
        first.upload_id,
        CHUNK,
        False,
    )
    _, done = await upload_all(uploader, file, ident)
    assert done.records == 30
    assert len(env.cloud.readings()) == 30


async def test_a_chunk_at_a_stale_offset_changes_nothing(env: Env):
    file = env.capture(100)
    ident = identity_of(file)
    data = file.path.read_bytes()
    uploader = env.uploader()
    up = await uploader.open(ident, file)
    await uploader.write(up.upload_id, 0, data[:CHUNK])
    duplicate = await uploader.write(up.upload_id, 0, b"garbage!" * 10)
    ahead = await uploader.write(up.upload_id, 3 * CHUNK, data[3 * CHUNK : 4 * CHUNK])
    assert (duplicate.accepted, duplicate.committed_offset) == (False, CHUNK)
    assert (ahead.accepted, ahead.committed_offset) == (False, CHUNK)
    _, done = await upload_all(uploader, file, ident)
    assert done.records == 100  # the garbage never reached the stored file


async def test_finish_is_idempotent_and_a_finished_upload_reopens_as_finished(env: Env):
    file = env.arbitrary(b"0123456789" * 300, tags=("t",))
    ident = identity_of(file)
    uploader = env.uploader()
    up, done = await upload_all(uploader, file, ident)
    assert await uploader.finish(up.upload_id, ident.sha256) == done
    reopened = await env.uploader().open(ident, file)
    assert reopened.finished
    assert (reopened.upload_id, reopened.committed_offset) == (up.upload_id, ident.size)
    assert (reopened.file_id, reopened.binary_data_ids) == (done.file_id, done.binary_data_ids)
    late = await uploader.write(up.upload_id, 0, b"x")
    assert (late.accepted, late.committed_offset) == (False, ident.size)
    assert len(env.cloud.binaries()) == 1  # stored once


async def test_an_arbitrary_file_keeps_its_tags_datasets_and_absolute_path(env: Env):
    file = env.arbitrary(
        b"hello, cloud\n" * 200, name="log.txt", tags=("a", "b"), dataset_ids=("ds-1",)
    )
    _, done = await upload_all(env.uploader(), file, identity_of(file))
    assert len(done.binary_data_ids) == 1
    [row] = env.cloud.binaries()
    assert row.binary_data_id == done.binary_data_ids[0]
    assert row.file_name == str(file.path)
    assert row.file_ext == ".txt"
    assert set(row.metadata.tags) == {"a", "b"}
    assert row.dataset_ids == ("ds-1",)
    assert row.blob.size == file.size
    assert row.time_received_ns // 1000 == file.mtime_ns // 1000


async def test_a_binary_capture_file_becomes_binary_items(env: Env):
    d = env.root / "camera"
    d.mkdir(parents=True)
    file = sync_file(write_binary(d, b"\xff\xd8" + b"j" * 5000), env.root, FileKind.CAPTURE)
    _, done = await upload_all(env.uploader(), file, identity_of(file))
    [row] = env.cloud.binaries()
    assert done.binary_data_ids == (row.binary_data_id,)
    assert row.blob.size == 5002
    assert row.metadata.mime_type == "image/jpeg"


async def test_capture_file_tags_from_the_walker_are_added(env: Env):
    file = env.capture(5)
    tagged = SyncFile(file.path, file.root, file.kind, file.size, file.mtime_ns, tags=("extra",))
    await upload_all(env.uploader(), tagged, identity_of(tagged))
    assert {tuple(sorted(row.metadata.tags)) for row in env.cloud.readings()} == {
        ("extra", "t1", "t2")
    }


async def test_walker_tags_of_small_files_in_one_call_are_added_as_open_would_add_them(
    env: Env,
):
    files = [env.capture(5, name=f"c{k}") for k in range(2)]
    tagged = SmallFile(identity_of(files[0]), files[0].path.read_bytes(), ("extra",))
    plain = SmallFile(identity_of(files[1]), files[1].path.read_bytes())
    outcomes = await env.uploader().upload_files([tagged, plain])
    assert all(isinstance(o, Confirmation) for o in outcomes)
    tags = {row.metadata.tags for row in env.cloud.readings()}
    assert tags == {("extra", "t1", "t2"), ("t1", "t2")}


async def test_a_small_binary_capture_file_in_one_call_is_stored_as_its_item(env: Env):
    d = env.root / "camera"
    d.mkdir(parents=True)
    frame = sync_file(write_binary(d, b"\xff\xd8" + b"j" * 3000), env.root, FileKind.CAPTURE)
    small = SmallFile(identity_of(frame), frame.path.read_bytes(), binary=True)
    [outcome] = await env.uploader().upload_files([small])
    assert isinstance(outcome, Confirmation)
    assert outcome.records == 1
    [row] = env.cloud.binaries()
    assert b"".join(env.cloud.server.store.open_blob(row.blob)) == b"\xff\xd8" + b"j" * 3000


async def test_an_arbitrary_file_in_one_call_keeps_its_tags_datasets_and_absolute_path(
    env: Env,
):
    """Sent in a batch with the metadata its OpenUpload carries, stored as that stores it."""
    file = env.arbitrary(b"hello\n" * 100, name="log.txt", tags=("a",), dataset_ids=("ds-1",))
    metadata = bytes(arbitrary_file_metadata(file, PART))
    small = SmallFile(identity_of(file), file.path.read_bytes(), kind=file.kind, metadata=metadata)
    [outcome] = await env.uploader().upload_files([small])
    assert isinstance(outcome, Confirmation)
    [row] = env.cloud.binaries()
    assert (row.file_name, row.file_ext, row.dataset_ids) == (str(file.path), ".txt", ("ds-1",))
    assert set(row.metadata.tags) == {"a"}
    assert row.time_received_ns // 1000 == file.mtime_ns // 1000
    assert b"".join(env.cloud.server.store.open_blob(row.blob)) == b"hello\n" * 100
    # Its resumable upload, begun by a robot that never heard the answer, is finished.
    up = await env.uploader().open(identity_of(file), file)
    assert up.finished
    assert len(env.cloud.binaries()) == 1


async def test_a_corrupt_capture_file_is_permanent_and_names_the_offset(env: Env):
    file = env.capture(10)
    data = bytearray(file.path.read_bytes())
    data[-3:] = b"\xff\xff\xff"  # the last record's struct is no longer valid
    file.path.write_bytes(bytes(data))
    file = sync_file(file.path, env.root, FileKind.CAPTURE)
    with pytest.raises(PermanentError, match=r"offset \d+") as caught:
        await upload_all(env.uploader(), file, identity_of(file))
    assert caught.value.where == FINISH_UPLOAD
    assert "INVALID_ARGUMENT" in str(caught.value)
    assert not env.cloud.readings()


async def test_a_part_outside_the_keys_scope_is_transient_permission_denied(env: Env):
    file = env.capture(5)
    uploader = env.uploader(key_part=PART)
    with pytest.raises(TransientError, match="PERMISSION_DENIED") as caught:
        await uploader.open(identity_of(file, part_id="someone-elses-part"), file)
    assert caught.value.where == OPEN_UPLOAD
    assert not isinstance(caught.value, OfflineError)


async def test_another_organizations_upload_is_not_found(env: Env):
    file = env.capture(5)
    up = await env.uploader().open(identity_of(file), file)
    stranger = env.uploader(org="org-b")
    with pytest.raises(TransientError, match="NOT_FOUND") as caught:
        await stranger.write(up.upload_id, 0, b"x")
    assert caught.value.where == WRITE_CHUNK


async def test_finishing_before_every_byte_is_committed_is_transient(env: Env):
    file = env.capture(30)
    ident = identity_of(file)
    uploader = env.uploader()
    up = await uploader.open(ident, file)
    await uploader.write(up.upload_id, 0, file.path.read_bytes()[:CHUNK])
    with pytest.raises(TransientError, match=rf"FAILED_PRECONDITION: .*{CHUNK} of"):
        await uploader.finish(up.upload_id, ident.sha256)


async def test_a_chunk_past_the_declared_size_is_permanent(env: Env):
    file = env.arbitrary(b"short")
    uploader = env.uploader()
    up = await uploader.open(identity_of(file), file)
    with pytest.raises(PermanentError, match="INVALID_ARGUMENT") as caught:
        await uploader.write(up.upload_id, 0, b"much longer than five bytes")
    assert caught.value.where == WRITE_CHUNK


async def test_a_wrong_sha256_at_finish_is_permanent(env: Env):
    file = env.arbitrary(b"abc")
    ident = identity_of(file)
    uploader = env.uploader()
    up, _ = await upload_all(uploader, file, ident)
    with pytest.raises(PermanentError, match="sha256"):
        await uploader.finish(up.upload_id, hashlib.sha256(b"other").digest())


async def test_a_malformed_identity_is_permanent(env: Env):
    file = env.arbitrary(b"abc")
    ident = FileIdentity(PART, file.relpath, 3, b"too short")
    with pytest.raises(PermanentError, match=r"identity\.sha256") as caught:
        await env.uploader().open(ident, file)
    assert caught.value.where == OPEN_UPLOAD


async def test_small_files_in_one_call_are_stored_once_and_a_bad_one_is_named(env: Env):
    files = [env.capture(5, name=f"c{k}") for k in range(3)]
    smalls = [SmallFile(identity_of(f), f.path.read_bytes()) for f in files]
    bad = b"\x05abc"
    torn = SmallFile(FileIdentity(PART, "torn.capture", 4, hashlib.sha256(bad).digest()), bad)
    uploader = env.uploader()
    first = await uploader.upload_files([*smalls, torn])
    assert [isinstance(o, Confirmation) for o in first] == [True, True, True, False]
    assert isinstance(first[3], str)
    assert first[3].startswith("INVALID_ARGUMENT")
    assert "torn.capture" in first[3]
    again = await uploader.upload_files(smalls)  # a lost answer: the same batch again
    assert again == first[:3]
    assert len(env.cloud.readings()) == 15


async def test_an_oversized_batch_is_permanent_naming_upload_files(env: Env):
    file = env.capture(5)
    small = SmallFile(identity_of(file), file.path.read_bytes())
    with pytest.raises(PermanentError) as raised:
        await env.uploader().upload_files([small] * 1025)
    assert raised.value.where == UPLOAD_FILES
