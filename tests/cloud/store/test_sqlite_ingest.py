"""``SqliteStore``'s write side: keys, parts, readings, blobs and resumable uploads.

Rows are checked with SQL on the store's own connection, so these tests do not
depend on the query side.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sqlite3
import threading
from types import MappingProxyType
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from cloud.model import (
    ApiKeyRecord,
    BinaryRecord,
    PartInfo,
    TabularRecord,
    UploadKind,
    UploadRecord,
    UploadStatus,
)
from cloud.store.sqlite._schema import SCHEMA_VERSION
from tests.cloud.store.conftest import (
    LOCATION,
    ORG,
    PART,
    WALL0_NS,
    make_ctx,
    make_identity,
    make_part,
    make_principal,
    make_record,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from actors.codec import JsonObject
    from cloud.store.port import Store
    from cloud.store.sqlite import SqliteStore
    from tests.cloud.store.conftest import StepClock

    OpenStore = Callable[[], SqliteStore]

SOURCE = bytes(range(256)) * 4  # a 1 KiB file to upload
_examples = itertools.count()


def _run_threads(n: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _rows(store: SqliteStore, sql: str, *params: object) -> list[tuple[object, ...]]:
    with store._db.read() as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def _count(store: SqliteStore, table: str) -> int:
    (row,) = _rows(store, f"SELECT count(*) FROM {table}")
    return int(str(row[0]))


def _claimed(store: SqliteStore, part_id: str = PART) -> PartInfo:
    return store.resolve_part(make_principal(), part_id)


def _open(store: SqliteStore, data: bytes = SOURCE, *, upload_id: str = "up-1") -> UploadRecord:
    return store.open_upload(
        _claimed(store),
        make_identity(data),
        UploadKind.CAPTURE_FILE,
        b"meta",
        new_upload_id=upload_id,
    )


def _upload_all(store: SqliteStore, upload: UploadRecord, data: bytes, chunk: int = 300) -> None:
    for offset in range(0, len(data), chunk):
        store.write_chunk(ORG, upload.upload_id, offset, data[offset : offset + chunk])


def test_sqlite_store_implements_the_store_port(store: SqliteStore) -> None:
    port: Store = store  # mypy checks conformance here (and in cloud/store/sqlite)
    assert port is store


# -- keys and tokens -----------------------------------------------------------------


def _key(key_id: str = "key-1", part_id: str | None = None) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=key_id,
        org_id=ORG,
        location_id=LOCATION,
        part_id=part_id,
        secret_hash=b"\x01" * 32,
        salt=b"\x02" * 16,
        created_ns=WALL0_NS,
    )


def test_api_keys_round_trip(store: SqliteStore) -> None:
    store.put_api_key(_key("k-loc"))
    store.put_api_key(_key("k-part", part_id=PART))
    assert store.get_api_key("k-loc") == _key("k-loc")
    assert store.get_api_key("k-part") == _key("k-part", part_id=PART)
    assert store.get_api_key("nope") is None


def test_duplicate_api_key_is_invalid_argument(store: SqliteStore) -> None:
    store.put_api_key(_key())
    with pytest.raises(InvalidArgument, match="'key-1' already exists"):
        store.put_api_key(_key())


def test_token_secret_is_created_once_and_survives_reopen(open_store: OpenStore) -> None:
    store = open_store()
    secret = store.token_secret()
    assert len(secret) == 32
    assert store.token_secret() == secret
    store.close()
    assert open_store().token_secret() == secret


def test_concurrent_first_token_secret_calls_agree(store: SqliteStore) -> None:
    secrets: list[bytes] = []
    _run_threads(8, lambda _: secrets.append(store.token_secret()))
    assert len(set(secrets)) == 1


# -- parts ---------------------------------------------------------------------------


def test_resolve_part_claims_on_first_use(store: SqliteStore) -> None:
    part = store.resolve_part(make_principal(), "p-new")
    assert part == PartInfo(part_id="p-new", org_id=ORG, location_id=LOCATION, part_name="p-new")
    assert part == make_part("p-new")
    assert store.resolve_part(make_principal(key_id="other-key"), "p-new") == part


def test_a_part_is_read_once_and_then_answered_from_memory_with_every_check(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part's row never changes once claimed, so upload calls after the first
    need no read transaction for it; the caller's scope is still checked each time."""
    part = _claimed(store)

    def no_database() -> None:
        raise AssertionError("resolve_part read the database again")

    monkeypatch.setattr(store._db, "read", no_database)
    monkeypatch.setattr(store._db, "write", no_database)
    assert store.resolve_part(make_principal(key_id="other-key"), PART) == part
    with pytest.raises(PermissionDenied, match="another organization"):
        store.resolve_part(make_principal(org_id="org-2"), PART)
    with pytest.raises(PermissionDenied, match="scoped to part"):
        store.resolve_part(make_principal(part_id="part-2"), PART)


def test_a_part_claimed_by_another_process_is_read_from_the_database(
    open_store: OpenStore,
) -> None:
    store, other = open_store(), open_store()  # as two processes on the same data
    assert store.resolve_part(make_principal(), PART) == other.resolve_part(make_principal(), PART)
    claimed = other.resolve_part(make_principal(), "p-elsewhere")
    assert store.resolve_part(make_principal(), "p-elsewhere") == claimed
    with pytest.raises(PermissionDenied, match="another organization"):
        store.resolve_part(make_principal(org_id="org-2"), "p-elsewhere")


def test_resolve_part_of_another_org_is_denied(store: SqliteStore) -> None:
    _claimed(store)
    with pytest.raises(PermissionDenied, match="another organization"):
        store.resolve_part(make_principal(org_id="org-2"), PART)


def test_resolve_part_of_another_location_is_denied(store: SqliteStore) -> None:
    _claimed(store)
    with pytest.raises(PermissionDenied, match="location 'loc-1'"):
        store.resolve_part(make_principal(location_id="loc-2"), PART)


def test_part_scoped_key_may_write_only_its_part(store: SqliteStore) -> None:
    key = make_principal(part_id=PART)
    assert store.resolve_part(key, PART).part_id == PART
    with pytest.raises(PermissionDenied, match="scoped to part 'part-1', not 'part-2'"):
        store.resolve_part(key, "part-2")
    assert _count(store, "parts") == 1  # the denied part was not claimed


def test_empty_part_id_is_invalid_argument(store: SqliteStore) -> None:
    with pytest.raises(InvalidArgument, match="part_id is empty"):
        store.resolve_part(make_principal(), "")


def test_concurrent_claims_from_two_orgs_have_one_winner(store: SqliteStore) -> None:
    outcomes: list[str] = []

    def claim(i: int) -> None:
        try:
            outcomes.append(store.resolve_part(make_principal(org_id=f"org-{i % 2}"), PART).org_id)
        except PermissionDenied:
            outcomes.append("denied")

    _run_threads(8, claim)
    winners = {o for o in outcomes if o != "denied"}
    assert len(winners) == 1
    assert outcomes.count("denied") == 4


# -- tabular -------------------------------------------------------------------------


def test_commit_tabular_stores_rows_with_context_and_sync_time(store: SqliteStore) -> None:
    part = _claimed(store)
    ctx = make_ctx(tags=("b", "a", "b"), method_parameters={"z": b"\x00\xff", "a": b"hi"})
    records = [make_record(WALL0_NS - 10), make_record(WALL0_NS - 5, {"n": [1, 2.5, None]})]
    store.commit_tabular(part, ctx, records, file_id="f-1")

    rows = _rows(
        store,
        "SELECT t.org_id, t.time_requested, t.time_received, t.time_synced, t.data, t.file_id, "
        "c.location_id, c.part_id, c.component_name, c.method_parameters, c.tags "
        "FROM tabular t JOIN contexts c USING (context_id) ORDER BY t.id",
    )
    params = (
        '{"a":{"type_url":"type.googleapis.com/test.a","value":"aGk="},'
        '"z":{"type_url":"type.googleapis.com/test.z","value":"AP8="}}'
    )
    common = (LOCATION, PART, "sensor-1", params, '["a","b"]')
    synced = rows[0][3]
    assert rows == [
        (
            ORG,
            WALL0_NS - 10,
            WALL0_NS - 10 + 1_000,
            synced,
            '{"readings":{"x":1.5}}',
            "f-1",
            *common,
        ),
        (ORG, WALL0_NS - 5, WALL0_NS - 5 + 1_000, synced, '{"n":[1,2.5,null]}', "f-1", *common),
    ]
    assert isinstance(synced, int)
    assert synced >= WALL0_NS  # from the injected wall clock


def test_contexts_are_shared_and_tag_order_does_not_matter(store: SqliteStore) -> None:
    part = _claimed(store)
    store.commit_tabular(part, make_ctx(tags=("x", "y")), [make_record()], file_id="f-1")
    store.commit_tabular(part, make_ctx(tags=("y", "x", "x")), [make_record()], file_id="f-2")
    store.commit_tabular(part, make_ctx(tags=("z",)), [make_record()], file_id="f-3")
    assert _count(store, "contexts") == 2
    assert _count(store, "tabular") == 3


def test_non_finite_floats_are_stored_as_strings_in_valid_json(store: SqliteStore) -> None:
    data: JsonObject = {
        "a": math.nan,
        "b": [math.inf, -math.inf],
        "c": MappingProxyType({"d": (1, 2)}),
    }
    store.commit_tabular(_claimed(store), make_ctx(), [make_record(data=data)], file_id="f")
    ((text, valid),) = _rows(store, "SELECT data, json_valid(data) FROM tabular")
    assert valid == 1
    assert json.loads(str(text)) == {"a": "NaN", "b": ["Infinity", "-Infinity"], "c": {"d": [1, 2]}}


def test_commit_tabular_is_all_or_none(store: SqliteStore) -> None:
    bad = TabularRecord(1, 2, {"ok": 1, "nested": {"bad": b"bytes"}})
    records = [make_record(), bad, make_record()]
    with pytest.raises(InvalidArgument, match=r"record 1 data\.nested\.bad holds a bytes"):
        store.commit_tabular(_claimed(store), make_ctx(), records, file_id="f")
    assert _count(store, "tabular") == 0
    assert _count(store, "contexts") == 0


def test_commit_tabular_of_nothing_stores_nothing(store: SqliteStore) -> None:
    store.commit_tabular(_claimed(store), make_ctx(), [], file_id="f")
    assert _count(store, "contexts") == 0


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_any_json_like_reading_is_stored_as_valid_json(
    store: SqliteStore, data: dict[str, object]
) -> None:
    def expected(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if isinstance(value, dict):
            return {k: expected(v) for k, v in value.items()}
        if isinstance(value, list):
            return [expected(v) for v in value]
        return value

    record = TabularRecord(0, 0, data)  # type: ignore[arg-type]
    store.commit_tabular(_claimed(store), make_ctx(), [record], file_id="prop")
    text, valid = _rows(store, "SELECT data, json_valid(data) FROM tabular ORDER BY id DESC")[0]
    assert valid == 1
    assert json.loads(str(text)) == expected(data)


# -- binary --------------------------------------------------------------------------


def _binary(store: SqliteStore, binary_id: str = "bin-1", data: bytes = b"jpeg") -> BinaryRecord:
    return BinaryRecord(
        binary_data_id=binary_id,
        blob=store.put_blob(data),
        time_requested_ns=WALL0_NS - 100,
        time_received_ns=WALL0_NS - 50,
        file_name="img",
        annotations={"classifications": [{"label": "cat"}]},
    )


def test_commit_binary_stores_a_row_for_a_stored_blob(store: SqliteStore) -> None:
    ctx = make_ctx(mime_type="image/jpeg", dataset_ids=("ds-2", "ds-1"), file_extension=".jpg")
    record = _binary(store)
    store.commit_binary(_claimed(store), ctx, record, file_id="f-1")
    rows = _rows(
        store,
        "SELECT binary_data_id, org_id, sha256, size, mime_type, file_name, file_ext, "
        "dataset_ids, annotations, file_id FROM binary",
    )
    assert rows == [
        (
            "bin-1",
            ORG,
            record.blob.sha256,
            4,
            "image/jpeg",
            "img",
            ".jpg",
            '["ds-1","ds-2"]',
            '{"classifications":[{"label":"cat"}]}',
            "f-1",
        )
    ]
    assert b"".join(store.open_blob(record.blob)) == b"jpeg"


def test_commit_binary_with_a_duplicate_id_is_invalid_argument(store: SqliteStore) -> None:
    store.commit_binary(_claimed(store), make_ctx(), _binary(store), file_id="f")
    with pytest.raises(InvalidArgument, match="'bin-1' already exists"):
        store.commit_binary(_claimed(store), make_ctx(), _binary(store), file_id="f")


def test_commit_binary_of_a_missing_blob_fails(store: SqliteStore) -> None:
    record = _binary(store)
    store._blobs.remove(record.blob.sha256)  # e.g. deleted between put and commit
    with pytest.raises(FailedPrecondition, match="is not stored"):
        store.commit_binary(_claimed(store), make_ctx(), record, file_id="f")
    assert _count(store, "binary") == 0


def test_adopt_blob_moves_a_file_in(store: SqliteStore, tmp_path: Path) -> None:
    source = tmp_path / "file"
    source.write_bytes(b"adopted")
    ref = store.adopt_blob(source, hashlib.sha256(b"adopted").hexdigest(), 7)
    assert not source.exists()
    assert b"".join(store.open_blob(ref)) == b"adopted"


# -- opening uploads -----------------------------------------------------------------


def test_open_upload_creates_then_finds_the_same_upload(store: SqliteStore) -> None:
    first = _open(store, upload_id="up-1")
    assert first.upload_id == "up-1"
    assert first.org_id == ORG
    assert first.identity == make_identity(SOURCE)
    assert (first.kind, first.metadata, first.status) == (
        UploadKind.CAPTURE_FILE,
        b"meta",
        UploadStatus.OPEN,
    )
    assert first.committed_offset == 0
    assert first.created_ns >= WALL0_NS
    assert _open(store, upload_id="up-2") == first  # the new id is ignored
    assert store.get_upload(ORG, "up-1") == first


def test_same_identity_in_another_org_is_another_upload(store: SqliteStore) -> None:
    mine = _open(store)
    theirs_part = store.resolve_part(make_principal(org_id="org-2"), "part-9")
    identity = make_identity(SOURCE, part_id="part-9")
    theirs = store.open_upload(
        theirs_part, identity, UploadKind.CAPTURE_FILE, b"", new_upload_id="up-2"
    )
    assert theirs.upload_id != mine.upload_id
    with pytest.raises(NotFound, match="'up-2'"):
        store.get_upload(ORG, "up-2")  # invisible to other orgs


def test_another_path_is_another_upload(store: SqliteStore) -> None:
    a = _open(store, upload_id="up-a")
    b = store.open_upload(
        _claimed(store),
        make_identity(SOURCE, path="/capture/b.capture"),
        UploadKind.CAPTURE_FILE,
        b"",
        new_upload_id="up-b",
    )
    assert a.upload_id != b.upload_id


def test_identity_of_another_part_is_invalid_argument(store: SqliteStore) -> None:
    with pytest.raises(InvalidArgument, match="names part 'part-2'"):
        store.open_upload(
            _claimed(store),
            make_identity(SOURCE, part_id="part-2"),
            UploadKind.CAPTURE_FILE,
            b"",
            new_upload_id="up-1",
        )


def test_concurrent_opens_of_one_identity_get_one_upload(store: SqliteStore) -> None:
    ids: list[str] = []
    _run_threads(8, lambda i: ids.append(_open(store, upload_id=f"up-{i}").upload_id))
    assert len(set(ids)) == 1
    assert _count(store, "uploads") == 1


def test_unknown_upload_is_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFound, match="'nope'"):
        store.write_chunk(ORG, "nope", 0, b"x")
    with pytest.raises(NotFound):
        store.staged_path(ORG, "nope")


# -- writing chunks ------------------------------------------------------------------


def test_write_chunk_appends_at_the_committed_offset(store: SqliteStore) -> None:
    up = _open(store)
    assert store.write_chunk(ORG, up.upload_id, 0, SOURCE[:100]) == 100
    assert store.write_chunk(ORG, up.upload_id, 100, SOURCE[100:250]) == 250
    assert store.get_upload(ORG, up.upload_id).committed_offset == 250
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE[:250]


@pytest.mark.parametrize("offset", [0, 50, 101, -1])
def test_write_chunk_at_another_offset_changes_nothing(store: SqliteStore, offset: int) -> None:
    up = _open(store)
    store.write_chunk(ORG, up.upload_id, 0, SOURCE[:100])
    assert store.write_chunk(ORG, up.upload_id, offset, b"\xee" * 10) == 100
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE[:100]


def test_empty_chunk_changes_nothing(store: SqliteStore) -> None:
    up = _open(store)
    assert store.write_chunk(ORG, up.upload_id, 0, b"") == 0


def test_chunk_past_the_size_is_invalid_argument(store: SqliteStore) -> None:
    up = _open(store)
    store.write_chunk(ORG, up.upload_id, 0, SOURCE[:1000])
    with pytest.raises(InvalidArgument, match=r"upload up-1: .* at offset 1000 .* size 1024"):
        store.write_chunk(ORG, up.upload_id, 1000, b"x" * 25)
    assert store.write_chunk(ORG, up.upload_id, 1000, SOURCE[1000:]) == 1024


def test_committed_bytes_survive_reopen(open_store: OpenStore) -> None:
    store = open_store()
    up = _open(store)
    store.write_chunk(ORG, up.upload_id, 0, SOURCE[:300])
    store.close()

    store = open_store()
    assert store.get_upload(ORG, up.upload_id).committed_offset == 300
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE[:300]
    assert store.write_chunk(ORG, up.upload_id, 300, SOURCE[300:]) == len(SOURCE)
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE


def test_bytes_past_the_committed_offset_are_dropped(open_store: OpenStore) -> None:
    # A crash after a chunk's fsync but before its offset committed leaves extra bytes.
    store = open_store()
    up = _open(store)
    store.write_chunk(ORG, up.upload_id, 0, SOURCE[:300])
    staged = store.staged_path(ORG, up.upload_id)
    store.close()
    with staged.open("ab") as f:
        f.write(b"\xee" * 500)

    store = open_store()
    assert store.write_chunk(ORG, up.upload_id, 300, SOURCE[300:400]) == 400
    assert staged.read_bytes() == SOURCE[:400]
    with staged.open("ab") as f:
        f.write(b"\xee" * 7)
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE[:400]


def test_threads_writing_the_same_offset_have_one_winner(store: SqliteStore) -> None:
    up = _open(store)
    accepted: list[int] = []

    def write(i: int) -> None:
        chunk = bytes([i]) * (10 + i)  # distinct lengths: only the winner gets its own end
        if store.write_chunk(ORG, up.upload_id, 0, chunk) == len(chunk):
            accepted.append(i)

    _run_threads(8, write)
    assert len(accepted) == 1
    (winner,) = accepted
    assert store.staged_path(ORG, up.upload_id).read_bytes() == bytes([winner]) * (10 + winner)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.tuples(st.integers(0, len(SOURCE) + 10), st.integers(0, 400), st.booleans()),
        max_size=12,
    )
)
def test_any_chunk_sequence_stages_a_prefix_of_the_source(
    store: SqliteStore, ops: list[tuple[int, int, bool]]
) -> None:
    # Each op writes source[offset:offset+length] (or garbage, if ``garbage``):
    # duplicates, gaps and rewinds are all refused, so garbage never lands.
    n = next(_examples)  # a fresh upload per example, in the one store
    up = store.open_upload(
        _claimed(store),
        make_identity(SOURCE, path=f"/p/{n}"),
        UploadKind.CAPTURE_FILE,
        b"",
        new_upload_id=f"up-{n}",
    )
    committed = 0
    for offset, length, garbage in ops:
        data = b"\xee" * length if garbage else SOURCE[offset : offset + length]
        if offset == committed and length and offset + length > len(SOURCE):
            with pytest.raises(InvalidArgument):
                store.write_chunk(ORG, up.upload_id, offset, data)
            continue
        if offset == committed and not garbage:
            committed += len(data)
        elif offset == committed:
            continue  # a garbage chunk at the right offset would be accepted: skip it
        assert store.write_chunk(ORG, up.upload_id, offset, data) == committed
        assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE[:committed]


# -- finishing uploads ---------------------------------------------------------------


def _records(n: int) -> Iterator[TabularRecord]:
    for i in range(n):
        yield make_record(WALL0_NS - 1_000 + i, {"i": i})


def test_finish_inserts_rows_once_and_is_idempotent(store: SqliteStore) -> None:
    up = _open(store)
    _upload_all(store, up, SOURCE)
    staged = store.staged_path(ORG, up.upload_id)
    binary = [_binary(store, "bin-1", b"one"), _binary(store, "bin-2", b"two")]

    done = store.finish_upload(
        ORG, up.upload_id, _claimed(store), make_ctx(), file_id="file-1",
        tabular=_records(2500), binary=binary,
    )  # fmt: skip
    assert done.status is UploadStatus.FINISHED
    assert (done.file_id, done.binary_data_ids, done.records) == (
        "file-1",
        ("bin-1", "bin-2"),
        2502,
    )
    assert store.get_upload(ORG, up.upload_id) == done
    assert not staged.exists()
    assert _count(store, "tabular") == 2500
    assert _count(store, "binary") == 2

    def never() -> Iterator[TabularRecord]:
        raise AssertionError("a finished upload must not consume its readings")
        yield  # pragma: no cover - makes this a generator

    again = store.finish_upload(
        ORG, up.upload_id, _claimed(store), make_ctx(), file_id="file-2", tabular=never(),
        binary=[_binary(store, "bin-3", b"three")],
    )  # fmt: skip
    assert again == done
    assert _count(store, "tabular") == 2500
    assert _count(store, "binary") == 2
    # A finished upload accepts no more bytes and has no staged bytes.
    assert store.write_chunk(ORG, up.upload_id, len(SOURCE), b"") == len(SOURCE)
    with pytest.raises(FailedPrecondition, match="already finished"):
        store.staged_path(ORG, up.upload_id)


def test_finish_of_an_incomplete_upload_fails(store: SqliteStore) -> None:
    up = _open(store)
    store.write_chunk(ORG, up.upload_id, 0, SOURCE[:10])
    with pytest.raises(FailedPrecondition, match="has 10 of its 1024 bytes"):
        store.finish_upload(ORG, up.upload_id, _claimed(store), make_ctx(), file_id="f")


def test_failed_finish_stores_nothing_and_can_be_retried(store: SqliteStore) -> None:
    up = _open(store)
    _upload_all(store, up, SOURCE)

    def corrupt() -> Iterator[TabularRecord]:
        yield from _records(1500)
        raise InvalidArgument("capture file is truncated at byte 900")

    with pytest.raises(InvalidArgument, match="truncated"):
        store.finish_upload(
            ORG, up.upload_id, _claimed(store), make_ctx(), file_id="f", tabular=corrupt()
        )
    assert store.get_upload(ORG, up.upload_id).status is UploadStatus.OPEN
    assert (_count(store, "tabular"), _count(store, "contexts")) == (0, 0)
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE

    done = store.finish_upload(
        ORG, up.upload_id, _claimed(store), make_ctx(), file_id="f", tabular=_records(3)
    )
    assert done.records == 3


def test_adopted_staging_file_is_restored_if_finish_fails(store: SqliteStore) -> None:
    up = store.open_upload(
        _claimed(store), make_identity(SOURCE), UploadKind.ARBITRARY_FILE, b"", new_upload_id="u"
    )
    _upload_all(store, up, SOURCE)
    staged = store.staged_path(ORG, up.upload_id)
    ref = store.adopt_blob(staged, hashlib.sha256(SOURCE).hexdigest(), len(SOURCE))
    record = BinaryRecord(binary_data_id="bin-1", blob=ref)
    store.commit_binary(_claimed(store), make_ctx(), record, file_id="other")  # id now taken
    with pytest.raises(InvalidArgument, match="already exists"):
        store.finish_upload(
            ORG, up.upload_id, _claimed(store), make_ctx(), file_id="f", binary=[record]
        )
    assert store.staged_path(ORG, up.upload_id).read_bytes() == SOURCE


def test_zero_byte_upload(store: SqliteStore) -> None:
    up = _open(store, b"")
    assert up.identity.size == 0
    assert store.write_chunk(ORG, up.upload_id, 0, b"") == 0
    assert store.staged_path(ORG, up.upload_id).read_bytes() == b""
    blob = store.put_blob(b"")
    done = store.finish_upload(
        ORG, up.upload_id, _claimed(store), make_ctx(), file_id="f",
        binary=[BinaryRecord(binary_data_id="empty", blob=blob)],
    )  # fmt: skip
    assert (done.status, done.records) == (UploadStatus.FINISHED, 1)


def test_reopen_sweeps_leftovers_but_keeps_open_uploads(
    open_store: OpenStore, data_dir: Path
) -> None:
    store = open_store()
    open_up = _open(store, upload_id="open")
    store.write_chunk(ORG, open_up.upload_id, 0, SOURCE[:5])
    finished = _open(store, b"done", upload_id="finished")
    store.write_chunk(ORG, finished.upload_id, 0, b"done")
    store.finish_upload(ORG, finished.upload_id, _claimed(store), make_ctx(), file_id="f")
    kept = _binary(store, "bin-1", b"kept")
    store.commit_binary(_claimed(store), make_ctx(), kept, file_id="f")
    orphan = store.put_blob(b"never committed")
    pending = store.put_blob(SOURCE)  # an open upload's adopted file
    store.close()
    (data_dir / "staging" / "finished").write_bytes(b"left by a crash")
    (data_dir / "staging" / "unknown").write_bytes(b"?")

    store = open_store()
    assert sorted(p.name for p in (data_dir / "staging").iterdir()) == ["open"]
    assert store.staged_path(ORG, open_up.upload_id).read_bytes() == SOURCE[:5]
    assert store._blobs.exists(kept.blob)
    assert store._blobs.exists(pending)
    assert not store._blobs.exists(orphan)


def test_a_version_1_database_is_upgraded_in_place(open_store: OpenStore, data_dir: Path) -> None:
    # Build a version-1 database: today's schema without the columns versions 2 and 3 added.
    open_store().close()
    db = sqlite3.connect(data_dir / "ferry.db")
    with db:
        db.execute("ALTER TABLE binary DROP COLUMN blob_offset")
        db.execute("ALTER TABLE uploads DROP COLUMN touched_ns")
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    db.close()
    open_store().close()
    db = sqlite3.connect(data_dir / "ferry.db")
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(binary)")]
        upload_columns = [row[1] for row in db.execute("PRAGMA table_info(uploads)")]
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    finally:
        db.close()
    assert "blob_offset" in columns
    assert "touched_ns" in upload_columns
    assert int(version[0]) == SCHEMA_VERSION == 3


# -- expiring idle uploads -----------------------------------------------------------

DAY_NS = 86_400 * 10**9


def test_an_idle_open_upload_expires_with_its_staged_bytes_and_a_reopen_starts_over(
    store: SqliteStore, wall: StepClock, data_dir: Path
) -> None:
    """Expiry frees an abandoned upload's bytes; the robot that returns loses nothing."""
    idle = _open(store, upload_id="idle")
    store.write_chunk(ORG, idle.upload_id, 0, SOURCE[:100])
    wall.now_ns += 3 * DAY_NS
    other = SOURCE[::-1]
    fresh = _open(store, other, upload_id="fresh")  # opened just now
    assert store.expire_idle_uploads(2 * DAY_NS) == ["idle"]
    assert sorted(p.name for p in (data_dir / "staging").iterdir()) == []
    with pytest.raises(NotFound):
        store.get_upload(ORG, "idle")
    with pytest.raises(NotFound):
        store.write_chunk(ORG, "idle", 100, SOURCE[100:200])
    again = _open(store, upload_id="again")  # the same file, opened again
    assert (again.upload_id, again.committed_offset) == ("again", 0)
    _upload_all(store, again, SOURCE)
    done = store.finish_upload(ORG, again.upload_id, _claimed(store), make_ctx(), file_id="f")
    assert done.status is UploadStatus.FINISHED
    assert store.get_upload(ORG, fresh.upload_id).status is UploadStatus.OPEN


def test_a_committed_chunk_keeps_an_old_upload_alive(store: SqliteStore, wall: StepClock) -> None:
    """Idle means no chunk for the whole period, not an old upload."""
    up = _open(store)
    wall.now_ns += 3 * DAY_NS
    store.write_chunk(ORG, up.upload_id, 0, SOURCE[:100])
    wall.now_ns += DAY_NS
    assert store.expire_idle_uploads(2 * DAY_NS) == []
    wall.now_ns += 2 * DAY_NS
    assert store.expire_idle_uploads(2 * DAY_NS) == [up.upload_id]


def test_finished_uploads_never_expire(store: SqliteStore, wall: StepClock) -> None:
    """A finished upload is the exactly-once record of its file: it stays."""
    up = _open(store)
    _upload_all(store, up, SOURCE)
    store.finish_upload(ORG, up.upload_id, _claimed(store), make_ctx(), file_id="f")
    wall.now_ns += 365 * DAY_NS
    assert store.expire_idle_uploads(DAY_NS) == []
    assert _open(store, upload_id="other").upload_id == up.upload_id
