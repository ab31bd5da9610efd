"""`ferry inspect`: what it prints for good, truncated and corrupt capture files."""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from actors.codec import (
    CaptureFileWriter,
    RecordEncoder,
    StructEncoder,
    collector_dir,
    encode_header,
)
from actors.inspect_cmd import dumps, format_rfc3339
from protos.gen.viam.app.data import v1 as data
from tests.cli.captures import (
    MS,
    T0,
    T0_TEXT,
    camera_header,
    parse_lines,
    tabular_header,
    write_binary,
    write_tabular,
)

READINGS = [
    {"readings": {"temp_c": 21.5, "ok": True, "label": "hall", "none": None}},
    {"readings": {"temp_c": -3.25, "list": [1.0, "two", False, None, {"n": 3.0}]}},
    {"readings": {"nested": {"deep": {"x": 1e300}}, "empty": {}, "empty_list": []}},
]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_header_and_tabular_records_round_trip_as_json_lines(ferry, sensor_dir) -> None:
    path = write_tabular(sensor_dir, READINGS)

    result = ferry("inspect", path)

    assert result.status == 0
    assert result.stderr == []
    header, *records = result.lines
    assert header == {
        "kind": "header",
        "path": str(path),
        "component_type": "rdk:component:sensor",
        "component_name": "env",
        "method_name": "Readings",
        "type": "DATA_TYPE_TABULAR_SENSOR",
        "file_extension": ".dat",
        "tags": ["t1", "t2"],
        "mime_type": "",
        "method_parameters": {},
    }
    assert [r["data"] for r in records] == READINGS
    assert all(r["kind"] == "record" and r["path"] == str(path) for r in records)
    offsets = [r["offset"] for r in records]
    assert offsets == sorted(offsets)
    # Each record starts where the previous one ends, and the last ends the file.
    assert [r["offset"] + r["bytes"] for r in records[:-1]] == offsets[1:]
    assert records[-1]["offset"] + records[-1]["bytes"] == path.stat().st_size


def test_times_are_rfc3339_utc_with_nanoseconds(ferry, sensor_dir) -> None:
    path = write_tabular(sensor_dir, READINGS[:2])

    records = ferry("inspect", path).lines[1:]

    assert records[0]["time_requested"] == T0_TEXT
    assert records[0]["time_received"] == "2023-11-14T22:13:20.124456789Z"
    assert records[1]["time_requested"] == "2023-11-14T22:13:20.124456789Z"
    assert format_rfc3339(0) == "1970-01-01T00:00:00.000000000Z"
    assert format_rfc3339(-1) == "1969-12-31T23:59:59.999999999Z"


def test_binary_record_shows_size_sha256_and_mime_not_bytes(ferry, camera_dir) -> None:
    payload = _jpeg()
    path = write_binary(camera_dir, payload)

    header, record = ferry("inspect", path).lines

    assert header["type"] == "DATA_TYPE_BINARY_SENSOR"
    assert header["mime_type"] == "image/jpeg"
    assert record["binary"] == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "mime_type": "image/jpeg",
    }
    assert "data" not in record
    assert "binary_path" not in record


def test_method_parameters_show_type_url_base64_value_and_decoded_value(ferry, camera_dir) -> None:
    path = write_binary(camera_dir, b"\xff\xd8")

    header = ferry("inspect", path).lines[0]

    param = header["method_parameters"]["mime_type"]
    assert param["type_url"] == "type.googleapis.com/google.protobuf.Value"
    assert base64.b64decode(param["value"]) == b"\x1a\x0aimage/jpeg"
    assert param["decoded"] == "image/jpeg"


def test_binary_out_writes_identical_bytes_named_stem_offset_ext(
    ferry, camera_dir, tmp_path
) -> None:
    payload = _jpeg()
    path = write_binary(camera_dir, payload)
    out = tmp_path / "out"

    result = ferry("inspect", "--binary-out", out, path)

    assert result.status == 0
    record = result.lines[1]
    written = out / f"{path.stem}-{record['offset']}.jpeg"
    assert record["binary_path"] == str(written)
    assert written.read_bytes() == payload
    assert os.listdir(out) == [written.name]


def test_binary_out_never_overwrites_a_different_payload_with_the_same_name(
    ferry, tmp_path
) -> None:
    # Two cameras' files made in the same microsecond share a stem and an offset.
    capture = tmp_path / "capture"
    a = write_binary(collector_dir(capture, "rdk:component:camera", "a", "ReadImage"), b"AAAA")
    b = write_binary(collector_dir(capture, "rdk:component:camera", "b", "ReadImage"), b"BBBB")
    assert a.name == b.name
    out = tmp_path / "out"

    first = ferry("inspect", "--binary-out", out, capture)
    again = ferry("inspect", "--binary-out", out, capture)

    paths = [line["binary_path"] for line in first.lines if line["kind"] == "record"]
    assert len(set(paths)) == 2
    assert sorted(Path(p).read_bytes() for p in paths) == [b"AAAA", b"BBBB"]
    # Re-running reuses the files that already hold the same bytes.
    assert [line["binary_path"] for line in again.lines if line["kind"] == "record"] == paths
    assert len(os.listdir(out)) == 2


def test_summary_counts_records_bytes_payload_and_time_range(ferry, sensor_dir, camera_dir) -> None:
    tabular = write_tabular(sensor_dir, [{"readings": {"x": float(i)}} for i in range(5)])
    payload = _jpeg()
    binary = write_binary(camera_dir, payload)

    result = ferry("inspect", "--summary", tabular, binary)

    assert result.status == 0
    first, second, totals = result.lines
    assert first["kind"] == "summary"
    assert (first["path"], first["records"], first["bytes"]) == (
        str(tabular),
        5,
        tabular.stat().st_size,
    )
    assert (first["component_name"], first["method_name"]) == ("env", "Readings")
    assert first["first_time_requested"] == T0_TEXT
    assert first["last_time_requested"] == format_rfc3339(T0 + 4 * MS)
    # payload_bytes counts each record's serialized Struct.
    assert first["payload_bytes"] == 5 * len(_struct_bytes())
    assert (second["records"], second["payload_bytes"]) == (1, len(payload))
    assert "error" not in first
    assert totals == {
        "kind": "totals",
        "files": 2,
        "records": 6,
        "bytes": tabular.stat().st_size + binary.stat().st_size,
        "payload_bytes": first["payload_bytes"] + len(payload),
        "errors": 0,
    }


def _struct_bytes() -> bytes:
    return StructEncoder().encode({"readings": {"x": 1.0}})


def test_directory_is_walked_recursively_in_sorted_order_for_capture_and_prog_files(
    ferry, tmp_path
) -> None:
    root = tmp_path / "capture"
    b = write_tabular(collector_dir(root, "rdk:component:sensor", "b", "Readings"), READINGS[:1])
    a = write_tabular(collector_dir(root, "rdk:component:sensor", "a", "Readings"), READINGS[:2])
    a_later = write_tabular(a.parent, READINGS[:1], wall_ns=T0 + 10**9)
    writer = CaptureFileWriter.create(a.parent, T0 + 2 * 10**9, encode_header(tabular_header()))
    writer.append(RecordEncoder().tabular(T0, T0, READINGS[0]))
    writer.sync()
    writer.close_unfinished()
    prog = writer.path
    (a.parent / "notes.txt").write_text("not a capture file")

    result = ferry("inspect", "--summary", root)

    assert result.status == 0
    summaries = [line for line in result.lines if line["kind"] == "summary"]
    assert [s["path"] for s in summaries] == [str(a), str(a_later), str(prog), str(b)]
    assert [s["records"] for s in summaries] == [2, 1, 1, 1]


def test_truncated_file_prints_intact_records_then_one_stderr_line_with_offset(
    ferry, sensor_dir, camera_dir
) -> None:
    path = write_tabular(sensor_dir, READINGS)
    os.truncate(path, path.stat().st_size - 3)
    after = write_binary(camera_dir, b"\x01\x02")

    result = ferry("inspect", path, after)

    assert result.status == 1
    records = [line for line in result.lines if line["path"] == str(path)][1:]
    assert [r["data"] for r in records] == READINGS[:2]
    end_of_intact = records[-1]["offset"] + records[-1]["bytes"]
    assert len(result.stderr) == 1
    assert re.fullmatch(
        rf"ferry inspect: {re.escape(str(path))}: offset {end_of_intact}: "
        r"record declares \d+ bytes but only \d+ remain",
        result.stderr[0],
    )
    # The next PATH is still inspected in full.
    assert [line["kind"] for line in result.lines if line["path"] == str(after)] == [
        "header",
        "record",
    ]


def test_truncated_file_summary_counts_intact_records_and_names_the_error(
    ferry, sensor_dir
) -> None:
    path = write_tabular(sensor_dir, READINGS)
    os.truncate(path, path.stat().st_size - 3)

    result = ferry("inspect", "--summary", path)

    summary, totals = result.lines
    assert result.status == 1
    assert summary["records"] == 2
    assert summary["error"]["offset"] > 0
    assert f"offset {summary['error']['offset']}:" in result.stderr[0]
    assert totals["errors"] == 1


def test_corrupt_header_exits_1_naming_offset_0(ferry, tmp_path) -> None:
    path = tmp_path / "bad.capture"
    path.write_bytes(b"\x02\x28\xff")  # a header whose enum varint runs off its end
    garbage = tmp_path / "garbage.capture"
    garbage.write_bytes(b"\xff" * 16)  # not even a length prefix

    result = ferry("inspect", path, garbage)

    assert result.status == 1
    assert result.lines == []
    assert [line.split(": ")[:3] for line in result.stderr] == [
        ["ferry inspect", str(path), "offset 0"],
        ["ferry inspect", str(garbage), "offset 0"],
    ]


def test_empty_file_is_an_error_at_offset_0(ferry, tmp_path) -> None:
    path = tmp_path / "empty.prog"
    path.write_bytes(b"")

    result = ferry("inspect", path)

    assert result.status == 1
    assert result.stderr == [f"ferry inspect: {path}: offset 0: empty file: no header"]


def test_missing_path_is_an_error_but_later_paths_are_still_inspected(
    ferry, tmp_path, sensor_dir
) -> None:
    missing = tmp_path / "nope.capture"
    path = write_tabular(sensor_dir, READINGS[:1])

    result = ferry("inspect", missing, path)

    assert result.status == 1
    assert result.stderr == [f"ferry inspect: {missing}: no such file or directory"]
    assert [line["kind"] for line in result.lines] == ["header", "record"]


def test_nan_and_infinities_still_produce_strict_json(ferry, sensor_dir) -> None:
    reading = {"readings": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "ok": 1.5}}
    path = write_tabular(sensor_dir, [reading, {"readings": {"list": [math.nan, 2.0]}}])

    result = ferry("inspect", path)  # the fixture's parser rejects NaN/Infinity tokens

    assert result.status == 0
    assert result.lines[1]["data"] == {
        "readings": {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "ok": 1.5}
    }
    assert result.lines[2]["data"] == {"readings": {"list": ["NaN", 2.0]}}


def test_dumps_writes_one_strict_json_line() -> None:
    text = dumps({"a": [math.nan, {"b": -math.inf}], "c": "x\ny"})

    assert "\n" not in text
    assert parse_lines(text) == [{"a": ["NaN", {"b": "-Infinity"}], "c": "x\ny"}]


def test_annotations_are_decoded_as_proto_json(ferry, sensor_dir) -> None:
    annotations = data.Annotations(
        bboxes=[data.BoundingBox(label="cat", x_min_normalized=0.25, x_max_normalized=0.5)],
        classifications=[data.Classification(label="indoor", confidence=0.875)],
    )
    path = write_tabular(sensor_dir, READINGS[:1], annotations=bytes(annotations))

    record = ferry("inspect", path).lines[1]

    assert record["annotations"] == {
        "bboxes": [{"label": "cat", "xMinNormalized": 0.25, "xMaxNormalized": 0.5}],
        "classifications": [{"label": "indoor", "confidence": 0.875}],
    }


def test_records_without_annotations_have_no_annotations_key(ferry, sensor_dir) -> None:
    path = write_tabular(sensor_dir, READINGS[:1])

    assert "annotations" not in ferry("inspect", path).lines[1]


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg"])
def test_binary_out_extension_follows_the_header(ferry, tmp_path, mime) -> None:
    ext = ".png" if mime == "image/png" else ".jpeg"
    directory = collector_dir(tmp_path / "c", "rdk:component:camera", "cam", "ReadImage")
    path = write_binary(directory, b"xyz", header=camera_header(mime=mime, ext=ext))

    record = ferry("inspect", "--binary-out", tmp_path / "out", path).lines[1]

    assert record["binary_path"].endswith(f"-{record['offset']}{ext}")


def test_binary_out_ignores_an_unsafe_header_extension(ferry, tmp_path) -> None:
    directory = collector_dir(tmp_path / "c", "rdk:component:camera", "cam", "ReadImage")
    path = write_binary(directory, b"xyz", header=camera_header(ext="/../../evil"))
    out = tmp_path / "out"

    record = ferry("inspect", "--binary-out", out, path).lines[1]

    assert record["binary_path"] == str(out / f"{path.stem}-{record['offset']}.jpeg")
