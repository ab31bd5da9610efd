"""The checker's view of a capture file: the keys of its complete records, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.codec import CaptureFileWriter, RecordEncoder
from sim.checker import read_keys, reading_key
from tests.codec.test_writer import HEADER, WALL_NS  # a tabular sensor file's header

if TYPE_CHECKING:
    from pathlib import Path


def _file(directory: Path, n: int) -> tuple[Path, list[int]]:
    """A finished file of ``n`` keyed readings, and the offset where each record ends."""
    encoder = RecordEncoder()
    writer = CaptureFileWriter.create(directory, WALL_NS, HEADER)
    ends = []
    for seq in range(1, n + 1):
        writer.append(encoder.tabular(seq, seq, {"readings": {"src": "s1", "seq": seq}}))
        writer.flush()
        ends.append(writer.size)
    return writer.finish(), ends


def test_every_complete_record_is_read_in_order(tmp_path: Path) -> None:
    """A Struct number is a double, so ``seq`` 1 reads back as ``1.0`` (as in the cloud)."""
    path, _ends = _file(tmp_path, 5)
    assert read_keys(path) == [f"s1#{seq}.0" for seq in range(1, 6)]


def test_a_torn_tail_ends_the_keys_at_the_last_whole_record(tmp_path: Path) -> None:
    """What a power cut leaves: the cut record is not a reading the robot kept."""
    path, ends = _file(tmp_path, 5)
    with path.open("r+b") as f:
        f.truncate(ends[2] + 3)
    assert read_keys(path) == ["s1#1.0", "s1#2.0", "s1#3.0"]


def test_a_limit_keeps_only_the_records_durable_within_it(tmp_path: Path) -> None:
    """``survived_power_cut``: records past the durable offset do not count as captured."""
    path, ends = _file(tmp_path, 5)
    assert read_keys(path, ends[1]) == ["s1#1.0", "s1#2.0"]
    assert read_keys(path, ends[1] - 1) == ["s1#1.0"]


def test_a_missing_file_has_no_keys(tmp_path: Path) -> None:
    assert read_keys(tmp_path / "gone.capture") == []


def test_the_writer_and_the_file_give_a_reading_the_same_key(tmp_path: Path) -> None:
    """The accepted-readings check compares the key of what the writer took (``seq`` an
    int) with the key read back from the file (``seq`` a double): they must agree."""
    path, _ends = _file(tmp_path, 3)
    taken = [reading_key(None, {"readings": {"src": "s1", "seq": seq}}) for seq in (1, 2, 3)]
    assert taken == read_keys(path)
    assert reading_key(b"cam#7\nJPEG", None) == "cam#7"
    assert reading_key(None, {"other": 1}) is None
