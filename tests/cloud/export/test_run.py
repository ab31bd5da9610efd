"""The export driver against a fake source: outputs, resume after failures, query checks."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.aio_loop import run_asyncio
from cloud.export.progress import Progress
from cloud.export.run import LOCK_NAME, ExportPlan, _locked, export
from cloud.export.source import ExportError, FilterSpec, Kind, PageTooLarge, UsageError
from cloud.export.state import STATE_NAME, load_state
from cloud.export.writers import TABULAR_COLUMNS, safe_name
from tests.cloud.export.fakes import (
    Boom,
    FakeSource,
    binary,
    fail_at,
    reading,
    run_export,
    tree,
)

TABULAR = (Kind.TABULAR,)
BINARY = (Kind.BINARY,)


def _source(n_records: int = 23, n_items: int = 7) -> FakeSource:
    return FakeSource([reading(i) for i in range(n_records)], [binary(i) for i in range(n_items)])


def _failing(page: int) -> FakeSource:
    source = _source()
    source.on_page = fail_at(page)
    return source


def test_jsonl_has_one_line_per_reading_in_column_order(tmp_path: Path) -> None:
    source = _source()
    outcome = run_export(source, tmp_path, kinds=TABULAR, page_size=5)
    lines = (tmp_path / "tabular.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == source.records
    assert list(json.loads(lines[0])) == list(TABULAR_COLUMNS)
    assert outcome.state.complete
    assert not outcome.already_complete
    assert outcome.state.of(Kind.TABULAR).items == 23
    assert [r[2] for r in source.requests] == [5] * 5


def test_csv_has_a_fixed_header_and_json_cells(tmp_path: Path) -> None:
    source = _source()
    run_export(source, tmp_path, kinds=TABULAR, fmt="csv", page_size=4)
    with (tmp_path / "tabular.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(TABULAR_COLUMNS)
    for row, record in zip(rows, source.records, strict=True):
        assert json.loads(row["data"]) == record["data"]
        assert json.loads(row["tags"]) == record["tags"]
        assert row["time_requested"] == record["time_requested"]
        assert row["component_name"] == record["component_name"]


def test_binary_files_hold_the_exact_bytes_and_the_index_names_them(tmp_path: Path) -> None:
    source = _source()
    run_export(source, tmp_path, kinds=BINARY, page_size=3)
    index = [json.loads(x) for x in (tmp_path / "binary/index.jsonl").read_text().splitlines()]
    assert [e["binary_data_id"] for e in index] == [i.binary_data_id for i in source.items]
    for entry, item in zip(index, source.items, strict=True):
        path = tmp_path / "binary" / entry["file"]
        assert path.read_bytes() == item.payload
        assert path.parent.name == item.component_name
        assert path.name == safe_name(item.binary_data_id) + ".jpg"
    assert not list((tmp_path / "binary").rglob("*.part"))


def test_empty_source_exports_empty_files(tmp_path: Path) -> None:
    outcome = run_export(FakeSource(), tmp_path, fmt="csv")
    assert (tmp_path / "tabular.csv").read_bytes() == ",".join(TABULAR_COLUMNS).encode() + b"\r\n"
    assert (tmp_path / "binary/index.jsonl").read_bytes() == b""
    assert outcome.state.complete


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("fail_page", [0, 1, 3, 4, 5, 6])
def test_failure_after_n_pages_then_resume_equals_one_clean_run(
    tmp_path: Path, fmt: str, fail_page: int
) -> None:
    clean = tmp_path / "clean"
    run_export(_source(), clean, fmt=fmt, page_size=5)
    out = tmp_path / "out"
    # 23 readings in 5 pages, then 7 files in 2 pages: page 5 is binary's first.
    with pytest.raises(Boom):
        run_export(_failing(fail_page), out, fmt=fmt, page_size=5)
    state = load_state(out / STATE_NAME)
    assert state is not None
    assert not state.complete
    resumed = _source()
    run_export(resumed, out, fmt=fmt, page_size=5)
    assert tree(out) == tree(clean)
    # The resumed run asked first for the page after the last one saved.
    pending = Kind.BINARY if state.of(Kind.TABULAR).done else Kind.TABULAR
    assert resumed.requests[0][:2] == (pending.value, state.of(pending).cursor)


def test_a_torn_page_and_stray_part_files_are_discarded_on_resume(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    run_export(_source(), clean, page_size=4)
    out = tmp_path / "out"
    with pytest.raises(Boom):
        run_export(_failing(7), out, page_size=4)
    # A crash while writing page 7: half a line of JSON and half a file after the checkpoint.
    with (out / "binary/index.jsonl").open("ab") as fh:
        fh.write(b'{"file": "cam1/torn')
    (out / "binary/cam0").mkdir(exist_ok=True)
    (out / "binary/cam0/x.jpg.part").write_bytes(b"half")
    run_export(_source(), out, page_size=4)
    assert tree(out) == tree(clean)


def test_a_second_run_says_already_complete_without_connecting(tmp_path: Path) -> None:
    run_export(_source(), tmp_path)
    before = tree(tmp_path)

    def refuse() -> None:
        raise AssertionError("connected although the export was complete")

    plan = ExportPlan(out=tmp_path, spec=FilterSpec())
    outcome = run_asyncio(export(refuse, plan, Progress(io.StringIO(), live=False)))
    assert outcome.already_complete
    assert tree(tmp_path) == before


def test_a_different_query_is_refused_and_restart_replaces_the_export(tmp_path: Path) -> None:
    source = _source()
    with pytest.raises(Boom):
        run_export(_failing(2), tmp_path, page_size=5)
    with pytest.raises(UsageError, match=r"component_name: '' -> 'env'.*--restart"):
        run_export(_source(), tmp_path, spec=FilterSpec(component_name="env"))
    with pytest.raises(UsageError, match=r"format: 'jsonl' -> 'csv'"):
        run_export(_source(), tmp_path, fmt="csv")
    fresh = FakeSource(source.records[:3], [])
    run_export(fresh, tmp_path, kinds=TABULAR, fmt="csv", restart=True)
    assert sorted(tree(tmp_path)) == [STATE_NAME, "tabular.csv"]
    assert len((tmp_path / "tabular.csv").read_text().splitlines()) == 4


def test_a_state_with_nothing_saved_gives_way_to_a_new_query(tmp_path: Path) -> None:
    with pytest.raises(Boom):  # e.g. a wrong key: the state exists, no page was saved
        run_export(_failing(0), tmp_path, fmt="csv")
    assert (tmp_path / STATE_NAME).exists()
    run_export(_source(), tmp_path, spec=FilterSpec(component_name="env"), kinds=TABULAR)
    assert sorted(tree(tmp_path)) == [STATE_NAME, "tabular.jsonl"]


def test_restart_ignores_a_damaged_state(tmp_path: Path) -> None:
    (tmp_path / STATE_NAME).write_text("garbage")
    with pytest.raises(ExportError, match="--restart"):
        run_export(_source(), tmp_path)
    run_export(_source(), tmp_path, restart=True)
    assert len((tmp_path / "tabular.jsonl").read_text().splitlines()) == 23


def test_restart_keeps_the_old_export_until_connected(tmp_path: Path) -> None:
    run_export(_source(), tmp_path)
    before = tree(tmp_path)

    def unreachable() -> None:
        raise ExportError("cannot reach h:1")

    plan = ExportPlan(out=tmp_path, spec=FilterSpec(), restart=True)
    with pytest.raises(ExportError, match="cannot reach"):
        run_asyncio(export(unreachable, plan, Progress(io.StringIO(), live=False)))
    assert tree(tmp_path) == before


def test_output_without_state_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "tabular.jsonl").write_text("mine\n")
    with pytest.raises(UsageError, match="no export state"):
        run_export(_source(), tmp_path)
    assert (tmp_path / "tabular.jsonl").read_text() == "mine\n"


def test_output_shorter_than_the_checkpoint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(Boom):
        run_export(_failing(2), tmp_path, page_size=5)
    (tmp_path / "tabular.jsonl").write_bytes(b"")
    with pytest.raises(ExportError, match="changed since the last run"):
        run_export(_source(), tmp_path, page_size=5)


def test_too_large_binary_pages_are_asked_again_with_half_the_limit(tmp_path: Path) -> None:
    source = FakeSource([], [binary(i, size=100) for i in range(9)], max_page_bytes=250)
    run_export(source, tmp_path, kinds=BINARY, page_size=8)
    assert [limit for _, _, limit in source.requests] == [8, 4, 2, 2, 2, 2, 2]
    assert len((tmp_path / "binary/index.jsonl").read_text().splitlines()) == 9


def test_one_item_over_the_servers_limit_fails(tmp_path: Path) -> None:
    source = FakeSource([], [binary(0, size=100)], max_page_bytes=50)
    with pytest.raises(PageTooLarge):
        run_export(source, tmp_path, kinds=BINARY, page_size=2)


def test_a_repeated_cursor_stops_the_export(tmp_path: Path) -> None:
    class Stuck(FakeSource):
        async def tabular_page(self, last: str, limit: int):  # type: ignore[no-untyped-def]
            page = await super().tabular_page("", limit)
            return type(page)(page.records, "c1")

    with pytest.raises(ExportError, match="twice"):
        run_export(Stuck([reading(i) for i in range(3)]), tmp_path, kinds=TABULAR, page_size=1)


def test_a_second_export_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    with _locked(tmp_path), pytest.raises(ExportError, match="another ferry export"):
        run_export(_source(), tmp_path)
    assert (tmp_path / LOCK_NAME).exists()


def test_an_unwritable_directory_is_an_export_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="cannot write to"):
        run_export(_source(), tmp_path / "file" / "out")


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(
    n_records=st.integers(0, 30),
    n_items=st.integers(0, 8),
    page_size=st.integers(1, 9),
    failures=st.lists(st.integers(0, 12), max_size=4),
    fmt=st.sampled_from(["jsonl", "csv"]),
)
def test_any_sequence_of_failures_resumes_to_the_clean_output(
    n_records: int, n_items: int, page_size: int, failures: list[int], fmt: str
) -> None:
    def source() -> FakeSource:
        return FakeSource(
            [reading(i) for i in range(n_records)], [binary(i) for i in range(n_items)]
        )

    with tempfile.TemporaryDirectory() as tmp:
        clean, out = Path(tmp) / "clean", Path(tmp) / "out"
        run_export(source(), clean, fmt=fmt, page_size=page_size)
        for page in failures:
            failing = source()
            failing.on_page = fail_at(page)
            with contextlib.suppress(Boom):
                run_export(failing, out, fmt=fmt, page_size=page_size)
        run_export(source(), out, fmt=fmt, page_size=page_size)
        assert tree(out) == tree(clean)
