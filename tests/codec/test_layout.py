"""Where capture files live and what they are called (spec §2.1-2.3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.codec import (
    BINARY_METHODS,
    collector_dir,
    data_type_for,
    file_extension_for,
    file_stem,
    is_binary_method,
    mime_for_extension,
    stem_time_ns,
)
from protos.gen.viam.app.datasync import v1 as datasync

NS = 1_000_000_000
# Names use a four-digit year: 1000-01-01 to 9999-12-31 (pre-1970 included).
MIN_NAMED_NS = -30_610_224_000 * NS
MAX_NAMED_NS = 253_402_300_799 * NS + NS - 1
STEM = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}_\d{2}_\d{2}\.\d{6}Z")
named_times = st.integers(MIN_NAMED_NS, MAX_NAMED_NS) | st.integers(-3 * NS, 3 * NS)


# --- collector_dir --------------------------------------------------------------------------


def test_collector_dir_replaces_colons_in_the_parts_ferry_adds():
    got = collector_dir(Path("/c:ap"), "rdk:component:camera", "my:cam", "ReadImage")

    assert got == Path("/c:ap/rdk_component_camera/my_cam/ReadImage")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "/abs", "../up", "nul\x00"])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_collector_dir_rejects_components_that_would_leave_the_directory(bad, position):
    parts = ["rdk:component:sensor", "s", "Readings"]
    parts[position] = bad

    with pytest.raises(ValueError, match="invalid path component"):
        collector_dir(Path("/capture"), *parts)


@given(parts=st.lists(st.text(min_size=1), min_size=3, max_size=3))
def test_collector_dir_always_stays_three_levels_under_capture_dir(parts):
    try:
        got = collector_dir(Path("/capture"), *parts)
    except ValueError:
        return
    assert got.parent.parent.parent == Path("/capture")
    assert ".." not in got.parts
    assert ":" not in "".join(got.parts[2:])


# --- file names -------------------------------------------------------------------------------


def test_file_stem_is_the_utc_time_with_microseconds_and_underscores():
    ns = 1_787_324_645_123_456_789  # 2026-08-21T15:04:05.123456789Z

    assert file_stem(ns) == "2026-08-21T15_04_05.123456Z"
    assert file_stem(0) == "1970-01-01T00_00_00.000000Z"
    assert file_stem(-1) == "1969-12-31T23_59_59.999999Z"


@given(ns=named_times)
def test_file_stem_and_stem_time_ns_round_trip_to_the_microsecond(ns):
    stem = file_stem(ns)

    assert STEM.fullmatch(stem), stem
    assert stem_time_ns(stem) == ns - ns % 1000


@given(a=named_times, b=named_times)
def test_file_names_sort_in_time_order(a, b):
    if a // 1000 < b // 1000:
        assert file_stem(a) < file_stem(b)
    elif a // 1000 == b // 1000:
        assert file_stem(a) == file_stem(b)


@pytest.mark.parametrize(
    ("stem", "expected_ns"),
    [
        # Viam's names: local time with a zone offset (spec §2.2).
        ("2026-08-21T20_34_05.123456+05_30", 1_787_324_645_123_456_000),
        ("2026-08-21T08_04_05.123456-07_00", 1_787_324_645_123_456_000),
        # Before March 2026: RFC3339Nano, nine digits or fewer, no trailing zeros.
        ("2026-08-21T15_04_05.123456789Z", 1_787_324_645_123_456_000),
        ("2026-08-21T15_04_05.1Z", 1_787_324_645_100_000_000),
        ("2026-08-21T15_04_05Z", 1_787_324_645_000_000_000),
    ],
)
def test_stem_time_ns_parses_viam_names_too(stem, expected_ns):
    assert stem_time_ns(stem) == expected_ns


@pytest.mark.parametrize(
    "stem", ["", "notes", "2026-08-21T15_04_05.123456", "2026-13-01T00_00_00Z", "data.dat"]
)
def test_stem_time_ns_returns_none_for_names_that_are_not_times(stem):
    assert stem_time_ns(stem) is None


# --- header file_extension and type (spec §2.3, §1.2) ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "ext"),
    [
        ("Readings", None, ".dat"),
        ("DoCommand", {"docommand_input": {}}, ".dat"),
        ("GetEndPosition", {}, ".dat"),
        ("NextPointCloud", None, ".pcd"),
        ("ReadImage", {"mime_type": "image/jpeg"}, ".jpeg"),
        ("ReadImage", {"mime_type": "image/png"}, ".png"),
        ("ReadImage", {"mime_type": "pointcloud/pcd"}, ".pcd"),
        ("ReadImage", None, ".jpeg"),  # mime_type defaults to image/jpeg (spec §1.1)
        ("ReadImage", {"mime_type": "image/gif"}, ""),
        ("ReadImage", {"mime_type": 7}, ""),
        ("GetAudio", {"codec": "pcm16"}, ".wav"),
        ("GetAudio", {"codec": "pcm32"}, ".wav"),
        ("GetAudio", {"codec": "pcm32_float"}, ".wav"),
        ("GetAudio", {"codec": "mp3"}, ".mp3"),
        ("GetAudio", {"codec": "opus"}, ""),
        ("GetAudio", None, ""),
        ("GetImages", None, ""),
        ("CaptureAllFromCamera", {"mime_type": "image/jpeg"}, ""),
        ("PointCloudMap", None, ""),
    ],
)
def test_file_extension_follows_the_spec(method, params, ext):
    assert file_extension_for(method, params) == ext


def test_exactly_the_six_binary_methods_are_binary():
    assert (
        frozenset(
            {
                "NextPointCloud",
                "ReadImage",
                "PointCloudMap",
                "GetImages",
                "CaptureAllFromCamera",
                "GetAudio",
            }
        )
        == BINARY_METHODS
    )
    for method in BINARY_METHODS:
        assert is_binary_method(method)
        assert data_type_for(method) == datasync.DataType.BINARY_SENSOR
    for method in ("Readings", "DoCommand", "readimage", "Position", ""):
        assert not is_binary_method(method)
        assert data_type_for(method) == datasync.DataType.TABULAR_SENSOR


@pytest.mark.parametrize(
    ("ext", "mime"),
    [
        (".png", "image/png"),
        ("png", "image/png"),
        (".JPEG", "image/jpeg"),
        (".pcd", "pointcloud/pcd"),
        (".dep", "image/vnd.viam.dep"),
        (".mp4", "video/mp4"),
        (".txt", "text/plain"),
        ("", ""),
        (".nosuchext", ""),
    ],
)
def test_a_missing_mime_type_is_derived_from_the_extension_as_viam_does(ext, mime):
    assert mime_for_extension(ext) == mime
