"""Writers, the state file and the progress bar, each on its own."""

from __future__ import annotations

import io
import json
import math
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.export.progress import Progress, human_bytes
from cloud.export.source import ExportError, Kind
from cloud.export.state import STATE_NAME, ExportState, load_state, save_state
from cloud.export.writers import (
    AppendFile,
    BinaryWriter,
    JsonlWriter,
    finite,
    json_text,
    safe_ext,
    safe_name,
)
from tests.cloud.export.fakes import binary, reading

if TYPE_CHECKING:
    from pathlib import Path

# -- names and JSON ----------------------------------------------------------------


@given(st.text(max_size=300))
def test_safe_names_are_plain_and_distinct(text: str) -> None:
    name = safe_name(text)
    assert name
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert not name.startswith(".")
    assert len(name) <= 111
    other = text + "x"
    assert safe_name(other) != name


def test_safe_names_keep_plain_text_as_is() -> None:
    assert safe_name("cam-1_front.v2") == "cam-1_front.v2"
    assert safe_name("org/loc/f1").startswith("org_loc_f1-")
    assert safe_name("..") != safe_name(".")


@pytest.mark.parametrize(
    ("ext", "expected"),
    [(".jpg", ".jpg"), ("png", ".png"), (".tar.gz", ".tar.gz"), ("", ""), ("/../x", ""),
     (".a b", ""), ("." + "x" * 17, "")],
)  # fmt: skip
def test_safe_ext(ext: str, expected: str) -> None:
    assert safe_ext(ext) == expected


def test_json_text_spells_non_finite_floats_as_protojson() -> None:
    value = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": ("é",)}
    assert finite(value) == {"a": "NaN", "b": ["Infinity", "-Infinity", 1.5], "c": ["é"]}
    assert json_text(value) == '{"a":"NaN","b":["Infinity","-Infinity",1.5],"c":["é"]}'


# -- files -------------------------------------------------------------------------


def test_append_file_cuts_back_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"keep|drop")
    out = AppendFile(path, 5)
    out.write(b"new")
    assert out.sync() == 8
    out.close()
    assert path.read_bytes() == b"keep|new"


def test_append_file_refuses_a_file_shorter_than_the_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    with pytest.raises(ExportError, match="has 3 bytes but the export state recorded 9"):
        AppendFile(tmp_path / "f", 9)


def test_jsonl_writer_counts_the_bytes_it_writes(tmp_path: Path) -> None:
    writer = JsonlWriter(tmp_path / "t.jsonl", 0)
    nbytes = writer.write([reading(1), reading(2)])
    assert writer.sync() == nbytes == (tmp_path / "t.jsonl").stat().st_size
    writer.close()


def test_binary_writer_keeps_complete_files_and_rewrites_short_ones(tmp_path: Path) -> None:
    items = [binary(0), binary(1), binary(2)]
    first = BinaryWriter(tmp_path, 0)
    first.write(items)
    first.sync()
    first.close()
    index = (tmp_path / "index.jsonl").read_text().splitlines()
    files = [tmp_path / json.loads(line)["file"] for line in index]
    files[1].write_bytes(b"short")
    again = BinaryWriter(tmp_path, 0)
    again.write(items)
    again.sync()
    again.close()
    assert again.skipped == 2
    assert [f.read_bytes() for f in files] == [i.payload for i in items]
    assert (tmp_path / "index.jsonl").read_text().splitlines() == index


# -- state -------------------------------------------------------------------------


def _state() -> ExportState:
    query = {"filter": {"component_name": "cam"}, "kinds": ["tabular"], "format": "jsonl"}
    return ExportState.new(query, (Kind.TABULAR,))


def test_state_round_trips_and_leaves_no_temp_file(tmp_path: Path) -> None:
    state = _state().advanced(Kind.TABULAR, cursor="c1", offset=10, items=2, nbytes=10)
    save_state(tmp_path / STATE_NAME, state)
    assert load_state(tmp_path / STATE_NAME) == state
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_NAME]
    done = state.advanced(Kind.TABULAR, cursor="", offset=20, items=2, nbytes=10)
    assert done.of(Kind.TABULAR).done
    assert done.of(Kind.TABULAR).items == 4
    assert not state.of(Kind.TABULAR).done


def test_missing_state_is_none(tmp_path: Path) -> None:
    assert load_state(tmp_path / STATE_NAME) is None


def _negative(raw: dict) -> dict:
    return {**raw["kinds"]["tabular"], "offset": -1}


@pytest.mark.parametrize(
    "edit",
    [
        lambda raw: "{not json",
        lambda raw: json.dumps({**raw, "version": 99}),
        lambda raw: json.dumps({**raw, "fingerprint": "0" * 64}),
        lambda raw: json.dumps({**raw, "query": {**raw["query"], "format": "csv"}}),
        lambda raw: json.dumps({**raw, "kinds": {"tabular": {"cursor": 1}}}),
        lambda raw: json.dumps({**raw, "kinds": {"tabular": _negative(raw)}}),
    ],
)
def test_a_damaged_state_is_refused_with_a_hint(tmp_path: Path, edit: object) -> None:
    path = tmp_path / STATE_NAME
    save_state(path, _state())
    path.write_text(edit(json.loads(path.read_text())))  # type: ignore[operator]
    with pytest.raises(ExportError, match="--restart"):
        load_state(path)


# -- progress ----------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_live_progress_redraws_one_line_with_counts_bytes_and_rate() -> None:
    out, clock = io.StringIO(), _Clock()
    progress = Progress(out, live=True, clock=clock)
    progress.begin("tabular", total=400, items=100, nbytes=0)
    clock.now += 2.0
    progress.advance(100, 1_500_000)
    progress.end()
    frames = out.getvalue().split("\r")
    assert frames[-1].endswith("\n")
    assert "200/400  50%" in frames[-1]
    assert "1.5 MB 50/s" in frames[-1]
    assert "\n" not in "".join(frames[:-1])


def test_redraws_are_throttled() -> None:
    out, clock = io.StringIO(), _Clock()
    progress = Progress(out, live=True, clock=clock, min_interval=1.0)
    progress.begin("binary", total=10, items=0, nbytes=0)
    for _ in range(5):
        progress.advance(1, 1)
    assert out.getvalue().count("\r") == 1
    clock.now += 1.0
    progress.advance(1, 1)
    assert out.getvalue().count("\r") == 2


def test_quiet_progress_prints_only_the_summary() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False)
    progress.begin("tabular", total=3, items=0, nbytes=0)
    progress.advance(3, 10)
    progress.end()
    progress.summary("done")
    assert out.getvalue() == "done\n"


def test_progress_never_shows_more_than_all() -> None:
    progress = Progress(io.StringIO(), live=False, clock=_Clock())
    progress.begin("tabular", total=2, items=0, nbytes=0)
    progress.advance(3, 0)
    assert "3/3 100%" in progress.line()


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1 kB"), (1_234_567, "1.23 MB"), (5e15, "5e+03 TB")],
)
def test_human_bytes(n: float, text: str) -> None:
    assert human_bytes(n) == text
