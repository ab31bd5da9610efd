"""Ferry's capture files and Google's protobuf implementation agree, in both directions.

(a) Files written by Ferry (``CaptureFileWriter`` + ``RecordEncoder`` +
``encode_header``) parse with the ``protoc --python_out`` classes, field for field.
(b) Files written with the protoc classes (``SerializeToString`` plus varint
length prefixes, as Viam's pbutil.WriteDelimited does) read back through
``CaptureFileReader`` with identical values.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.codec import (
    CaptureFileReader,
    CaptureFileWriter,
    RecordEncoder,
    decode_sensor_data,
    encode_header,
)
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.google.protobuf import Value
from protos.gen.viam.app.data import v1 as data
from protos.gen.viam.app.datasync import v1 as datasync
from tests.codec import strategies as cst
from tests.codec.protoc_classes import (
    canon,
    join_delimited,
    read_capture,
    split_delimited,
    struct_to_python,
    timestamp_ns,
    value_to_python,
)
from tests.codec.strategies import (
    AnnotationsSpec,
    BoxSpec,
    ClassificationSpec,
    HeaderSpec,
    ReadingSpec,
)

if TYPE_CHECKING:
    import pytest

    from tests.codec.protoc_classes import ProtocClasses

WALL_NS = 1_787_000_000_123_456_789
VALUE_URL = "type.googleapis.com/google.protobuf.Value"

EXAMPLE_HEADER = HeaderSpec(
    component_type="rdk:component:camera",
    component_name="front cam",
    method_name="ReadImage",
    data_type=1,  # DATA_TYPE_BINARY_SENSOR
    params={
        "mime_type": "image/png",
        "filter": {"names": ["left", "right"], "min": 0.5, "on": True, "none": None},
    },
    file_extension=".png",
    tags=("field-test", "ünïcode", "\U0001f916"),
    mime_type="image/png",
)
EXAMPLE_READINGS = (
    ReadingSpec(
        requested_ns=1_787_000_000_000_000_001,
        received_ns=1_787_000_000_999_999_999,
        struct={
            "readings": {
                "temp_c": 21.5,
                "count": 3,
                "ok": False,
                "label": "\u00e9\U0001f600",
                "empty": {},
                "list": [1, "two", None, [], {"deep": [True]}],
                "neg_zero": -0.0,
            }
        },
    ),
    ReadingSpec(
        requested_ns=-1_500_000_001,  # before 1970: seconds -2, nanos 499999999
        received_ns=0,
        binary=bytes(range(256)) * 3,
        annotations=AnnotationsSpec(
            boxes=(
                BoxSpec("b1", "cat", 0.1, 0.2, 0.3, 0.4, 0.9),
                BoxSpec("", "", 0, 0, 1, 1, None),
            ),
            classifications=(
                ClassificationSpec("dog", 0.5, "c1"),
                ClassificationSpec("x", None, ""),
            ),
        ),
    ),
    ReadingSpec(requested_ns=5, received_ns=6, binary=b""),
    ReadingSpec(requested_ns=7, received_ns=8, struct={}),
)


def _listify(value: object) -> object:
    """Tuples as lists (betterproto2's ``Value.from_dict`` takes lists only)."""
    if isinstance(value, (list, tuple)):
        return [_listify(item) for item in value]
    if isinstance(value, dict):
        return {key: _listify(item) for key, item in value.items()}
    return value


# --- building files the Ferry way ----------------------------------------------------


def _ferry_header(spec: HeaderSpec) -> datasync.DataCaptureMetadata:
    return datasync.DataCaptureMetadata(
        component_type=spec.component_type,
        component_name=spec.component_name,
        method_name=spec.method_name,
        type=datasync.DataType(spec.data_type),
        method_parameters={
            k: PbAny.pack(Value.from_dict(_listify(v))) for k, v in spec.params.items()
        },
        file_extension=spec.file_extension,
        tags=list(spec.tags),
        mime_type=spec.mime_type,
    )


def _ferry_annotations(spec: AnnotationsSpec) -> bytes:
    return bytes(
        data.Annotations(
            bboxes=[
                data.BoundingBox(
                    id=b.id,
                    label=b.label,
                    x_min_normalized=b.x_min,
                    y_min_normalized=b.y_min,
                    x_max_normalized=b.x_max,
                    y_max_normalized=b.y_max,
                    confidence=b.confidence,
                )
                for b in spec.boxes
            ],
            classifications=[
                data.Classification(label=c.label, confidence=c.confidence, id=c.id)
                for c in spec.classifications
            ],
        )
    )


def _write_with_ferry(
    directory: Path,
    header: HeaderSpec,
    readings: tuple[ReadingSpec, ...] | list[ReadingSpec],
    *,
    flush_bytes: int = 64 * 1024,
) -> Path:
    writer = CaptureFileWriter.create(
        directory, WALL_NS, encode_header(_ferry_header(header)), flush_bytes=flush_bytes
    )
    encoder = RecordEncoder()
    for r in readings:
        ann = _ferry_annotations(r.annotations)
        if r.binary is not None:
            prefix = encoder.binary_prefix(r.requested_ns, r.received_ns, len(r.binary), ann)
            writer.append_parts(prefix, r.binary)
        else:
            assert r.struct is not None
            writer.append(encoder.tabular(r.requested_ns, r.received_ns, r.struct, ann))
    return writer.finish()


# --- building files the protoc way ----------------------------------------------------


def _protoc_value(protoc: ProtocClasses, value: object) -> Any:
    holder = protoc.struct_pb2.Struct()
    holder.update({"v": value})
    return holder.fields["v"]


def _protoc_header(protoc: ProtocClasses, spec: HeaderSpec) -> Any:
    header = protoc.datasync.DataCaptureMetadata(
        component_type=spec.component_type,
        component_name=spec.component_name,
        method_name=spec.method_name,
        type=spec.data_type,
        file_extension=spec.file_extension,
        tags=list(spec.tags),
        mime_type=spec.mime_type,
    )
    for key, value in spec.params.items():
        header.method_parameters[key].Pack(_protoc_value(protoc, value))
    return header


def _protoc_annotations(protoc: ProtocClasses, spec: AnnotationsSpec) -> Any:
    ann = protoc.data.Annotations()
    for b in spec.boxes:
        box = ann.bboxes.add(
            id=b.id,
            label=b.label,
            x_min_normalized=b.x_min,
            y_min_normalized=b.y_min,
            x_max_normalized=b.x_max,
            y_max_normalized=b.y_max,
        )
        if b.confidence is not None:
            box.confidence = b.confidence
    for c in spec.classifications:
        cls = ann.classifications.add(label=c.label, id=c.id)
        if c.confidence is not None:
            cls.confidence = c.confidence
    return ann


def _protoc_record(protoc: ProtocClasses, r: ReadingSpec) -> Any:
    record = protoc.datasync.SensorData()
    record.metadata.time_requested.FromNanoseconds(r.requested_ns)
    record.metadata.time_received.FromNanoseconds(r.received_ns)
    if r.annotations != AnnotationsSpec():
        record.metadata.annotations.CopyFrom(_protoc_annotations(protoc, r.annotations))
    if r.binary is not None:
        record.binary = r.binary
    else:
        assert r.struct is not None
        record.struct.SetInParent()  # an empty Struct is still "struct", not "no data"
        record.struct.update(r.struct)
    return record


# --- checks ---------------------------------------------------------------------------


def _check_protoc_header(protoc: ProtocClasses, got: Any, spec: HeaderSpec) -> None:
    assert got.component_type == spec.component_type
    assert got.component_name == spec.component_name
    assert got.method_name == spec.method_name
    assert got.type == spec.data_type
    assert got.file_extension == spec.file_extension
    assert tuple(got.tags) == spec.tags
    assert got.mime_type == spec.mime_type
    assert set(got.method_parameters) == set(spec.params)
    for key, expected in spec.params.items():
        packed = got.method_parameters[key]
        assert packed.type_url == VALUE_URL
        value = protoc.struct_pb2.Value()
        assert packed.Unpack(value)
        assert canon(value_to_python(value)) == canon(expected)


def _check_protoc_annotations(got: Any, spec: AnnotationsSpec) -> None:
    boxes = [
        BoxSpec(
            b.id,
            b.label,
            b.x_min_normalized,
            b.y_min_normalized,
            b.x_max_normalized,
            b.y_max_normalized,
            b.confidence if b.HasField("confidence") else None,
        )
        for b in got.bboxes
    ]
    classes = [
        ClassificationSpec(c.label, c.confidence if c.HasField("confidence") else None, c.id)
        for c in got.classifications
    ]
    assert AnnotationsSpec(tuple(boxes), tuple(classes)) == spec


def _check_protoc_record(got: Any, spec: ReadingSpec) -> None:
    assert timestamp_ns(got.metadata.time_requested) == spec.requested_ns
    assert timestamp_ns(got.metadata.time_received) == spec.received_ns
    _check_protoc_annotations(got.metadata.annotations, spec.annotations)
    if spec.binary is not None:
        assert got.WhichOneof("data") == "binary"
        assert got.binary == spec.binary
    else:
        assert got.WhichOneof("data") == "struct"
        assert canon(struct_to_python(got.struct)) == canon(spec.struct)


def _check_ferry_header(
    protoc: ProtocClasses, got: datasync.DataCaptureMetadata, sent: Any
) -> None:
    assert got.component_type == sent.component_type
    assert got.component_name == sent.component_name
    assert got.method_name == sent.method_name
    assert int(got.type) == sent.type
    assert got.file_extension == sent.file_extension
    assert got.tags == list(sent.tags)
    assert got.mime_type == sent.mime_type
    assert set(got.method_parameters) == set(sent.method_parameters)
    for key, packed in sent.method_parameters.items():
        assert got.method_parameters[key].type_url == packed.type_url
        assert got.method_parameters[key].value == packed.value


def _check_ferry_record(protoc: ProtocClasses, got: Any, sent: Any, spec: ReadingSpec) -> None:
    assert got.time_requested_ns == spec.requested_ns
    assert got.time_received_ns == spec.received_ns
    assert got.annotations == sent.metadata.annotations.SerializeToString()
    parsed = data.Annotations.parse(got.annotations)
    assert [b.label for b in parsed.bboxes] == [b.label for b in spec.annotations.boxes]
    assert [c.label for c in parsed.classifications] == [
        c.label for c in spec.annotations.classifications
    ]
    assert not got.unknown_fields
    if spec.binary is not None:
        assert got.struct is None
        assert got.binary == spec.binary
    else:
        assert got.binary is None
        assert got.struct is not None
        assert canon(got.struct) == canon(struct_to_python(sent.struct)) == canon(spec.struct)


def _fresh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))


def test_the_protoc_classes_leave_no_viam_module_or_path_behind(protoc):
    assert protoc.datasync.SensorData.DESCRIPTOR.full_name == "viam.app.datasync.v1.SensorData"
    assert not [name for name in sys.modules if name == "viam" or name.startswith("viam.")]
    assert not [entry for entry in sys.path if "protoc_out" in entry]


# --- (a) Ferry writes, protoc reads ---------------------------------------------------


def test_ferry_file_parses_with_protoc_classes_field_for_field(protoc, tmp_path):
    path = _write_with_ferry(tmp_path, EXAMPLE_HEADER, EXAMPLE_READINGS)

    header, records = read_capture(protoc, path.read_bytes())

    _check_protoc_header(protoc, header, EXAMPLE_HEADER)
    assert header.type == protoc.datasync.DATA_TYPE_BINARY_SENSOR
    assert len(records) == len(EXAMPLE_READINGS)
    for got, spec in zip(records, EXAMPLE_READINGS, strict=True):
        _check_protoc_record(got, spec)
    # Spot-check values through protoc's own accessors, not only via canon().
    readings = records[0].struct["readings"]
    assert readings["temp_c"] == 21.5
    assert readings["count"] == 3.0
    assert readings["label"] == "\u00e9\U0001f600"
    assert records[1].metadata.time_requested.seconds == -2
    assert records[1].metadata.time_requested.nanos == 499_999_999
    assert records[1].metadata.annotations.bboxes[0].label == "cat"


@settings(max_examples=30, deadline=None)
@given(
    header=cst.headers,
    readings=st.lists(cst.readings, max_size=5),
    flush_bytes=st.integers(1, 128 * 1024),
)
def test_any_ferry_file_parses_with_protoc_classes(
    protoc, tmp_path_factory, header, readings, flush_bytes
):
    path = _write_with_ferry(
        _fresh_dir(tmp_path_factory), header, readings, flush_bytes=flush_bytes
    )

    parsed_header, records = read_capture(protoc, path.read_bytes())

    _check_protoc_header(protoc, parsed_header, header)
    assert len(records) == len(readings)
    for got, spec in zip(records, readings, strict=True):
        _check_protoc_record(got, spec)


# --- (b) protoc writes, Ferry reads ---------------------------------------------------


def _write_with_protoc(
    protoc: ProtocClasses, path: Path, header: HeaderSpec, readings: Any
) -> tuple[Any, list[Any]]:
    sent_header = _protoc_header(protoc, header)
    sent = [_protoc_record(protoc, r) for r in readings]
    path.write_bytes(join_delimited([m.SerializeToString() for m in [sent_header, *sent]]))
    return sent_header, sent


def _read_with_ferry(path: Path) -> tuple[datasync.DataCaptureMetadata, list[Any], int]:
    with CaptureFileReader(path) as reader:
        records = [record for _, record in reader.records()]
        return reader.header, records, reader.good_offset


def test_protoc_file_reads_with_ferry_identically(protoc, tmp_path):
    path = tmp_path / "protoc.capture"
    sent_header, sent = _write_with_protoc(protoc, path, EXAMPLE_HEADER, EXAMPLE_READINGS)

    header, records, good = _read_with_ferry(path)

    assert good == path.stat().st_size
    _check_ferry_header(protoc, header, sent_header)
    assert header.method_parameters["mime_type"].type_url == VALUE_URL
    assert len(records) == len(EXAMPLE_READINGS)
    for got, message, spec in zip(records, sent, EXAMPLE_READINGS, strict=True):
        _check_ferry_record(protoc, got, message, spec)
    assert records[0].struct == {
        "readings": {
            "temp_c": 21.5,
            "count": 3.0,
            "ok": False,
            "label": "\u00e9\U0001f600",
            "empty": {},
            "list": [1.0, "two", None, [], {"deep": [True]}],
            "neg_zero": -0.0,
        }
    }


@settings(max_examples=30, deadline=None)
@given(header=cst.headers, readings=st.lists(cst.readings, max_size=5))
def test_any_protoc_file_reads_with_ferry_identically(protoc, tmp_path_factory, header, readings):
    path = _fresh_dir(tmp_path_factory) / "protoc.capture"
    sent_header, sent = _write_with_protoc(protoc, path, header, readings)

    got_header, records, good = _read_with_ferry(path)

    assert good == path.stat().st_size
    _check_ferry_header(protoc, got_header, sent_header)
    assert len(records) == len(readings)
    for got, message, spec in zip(records, sent, readings, strict=True):
        _check_ferry_record(protoc, got, message, spec)


def test_header_params_packed_as_string_values_read_with_their_type_and_bytes(protoc, tmp_path):
    # Older rdk releases packed additional_params as Any(StringValue), not Any(Value).
    header = protoc.datasync.DataCaptureMetadata(component_type="rdk:component:camera")
    header.method_parameters["mime_type"].Pack(protoc.wrappers_pb2.StringValue(value="image/png"))
    path = tmp_path / "legacy.capture"
    path.write_bytes(join_delimited([header.SerializeToString()]))

    got, records, _ = _read_with_ferry(path)

    param = got.method_parameters["mime_type"]
    assert param.type_url == "type.googleapis.com/google.protobuf.StringValue"
    assert param.value == b"\x0a\x09image/png"
    assert records == []


def test_protoc_records_ferry_never_writes_still_decode(protoc):
    """No metadata, no data, the deprecated mime_type enum and unknown fields all decode."""
    bare = protoc.datasync.SensorData()
    legacy = protoc.datasync.SensorData(binary=b"\xff\xd8")
    legacy.metadata.mime_type = protoc.datasync.MIME_TYPE_IMAGE_JPEG
    legacy.metadata.time_received.FromNanoseconds(-1)

    got_bare = decode_sensor_data(bare.SerializeToString())
    got_legacy = decode_sensor_data(legacy.SerializeToString())
    # A field number this schema does not know (e.g. from a newer Viam) is skipped.
    got_unknown = decode_sensor_data(legacy.SerializeToString() + b"\xa0\x06\x07")

    assert (got_bare.struct, got_bare.binary, got_bare.time_requested_ns) == (None, None, 0)
    assert got_legacy.binary == b"\xff\xd8"
    assert got_legacy.mime_type == protoc.datasync.MIME_TYPE_IMAGE_JPEG
    assert got_legacy.time_received_ns == -1
    assert got_unknown.unknown_fields
    assert got_unknown.binary == b"\xff\xd8"


def test_ferry_record_bytes_are_a_valid_sensor_data_for_protoc(protoc):
    """Each framed record alone is one delimited SensorData (what the uploader sends)."""
    encoder = RecordEncoder()
    framed = encoder.tabular(1, 2, {"readings": {"a": 1}}) + encoder.binary_prefix(3, 4, 2) + b"hi"

    bodies = split_delimited(framed)

    parsed = [protoc.datasync.SensorData.FromString(b) for b in bodies]
    assert [p.WhichOneof("data") for p in parsed] == ["struct", "binary"]
    assert parsed[1].binary == b"hi"
