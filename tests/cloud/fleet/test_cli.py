"""``ferry cloud config|fragment|parts``, driven in-process against a store in tmp_path."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from actors import cli
from cloud.fleet.port import PartReport
from cloud.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from pathlib import Path

    from actors.codec import JsonObject

NOON_NS = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z
FREQ_PATH = (
    "components.{c}.service_configs.data_manager.attributes.capture_methods.Readings"
    ".capture_frequency_hz"
)
DATA_MANAGER: JsonObject = {
    "name": "dm",
    "api": "rdk:service:data_manager",
    "attributes": {"sync_interval_mins": 0.1},
}


def sensor(name: str, hz: object) -> JsonObject:
    return {
        "name": name,
        "api": "rdk:component:sensor",
        "model": "fake",
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {
                    "capture_methods": [
                        {"method": "Readings", "capture_frequency_hz": hz},
                        {"method": "Other", "capture_frequency_hz": 1},
                    ]
                },
            }
        ],
    }


SENSORS: JsonObject = {"components": [sensor("temp", 2), sensor("hum", 1)]}
PART: JsonObject = {"fragments": ["sensors"], "services": [DATA_MANAGER]}


class Ferry:
    """Runs ``ferry cloud ...`` in-process on one data dir and captures its output."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.capsys = capsys

    def __call__(self, *argv: str, org: str = "acme") -> tuple[int, str, str]:
        self.capsys.readouterr()
        status = cli.main(["cloud", *argv, "--org", org, "--data-dir", str(self.data_dir)])
        out, err = self.capsys.readouterr()
        return status, out, err

    def file(self, name: str, document: object) -> str:
        path = self.tmp_path / name
        path.write_text(json.dumps(document))
        return str(path)

    def store(self, wall_ns: int = NOON_NS) -> SqliteStore:
        return SqliteStore(self.data_dir, wall_ns=lambda: wall_ns)


@pytest.fixture
def ferry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Ferry:
    return Ferry(tmp_path, capsys)


def with_sensors(ferry: Ferry, *parts: str) -> None:
    assert ferry("fragment", "set", "sensors", ferry.file("sensors.json", SENSORS))[0] == 0
    for part in parts:
        assert ferry("config", "set", "--part", part, ferry.file("part.json", PART))[0] == 0


def test_config_set_then_get_round_trips_and_each_set_is_a_new_version(ferry: Ferry) -> None:
    with_sensors(ferry)
    status, out, _ = ferry("config", "set", "--part", "p1", ferry.file("a.json", PART))
    assert status == 0
    assert out.startswith("part p1: config v1 stored; merged revision ")
    assert out.rstrip().endswith("(part p1 v1 + fragment sensors v1)")
    second: JsonObject = {"fragments": [{"name": "sensors", "version": 1}]}
    status, out, _ = ferry("config", "set", "--part", "p1", ferry.file("b.json", second))
    assert (status, out.split(";")[0]) == (0, "part p1: config v2 stored")

    status, out, _ = ferry("config", "get", "--part", "p1")
    assert status == 0
    assert out == json.dumps(second, indent=2, sort_keys=True) + "\n"
    assert json.loads(ferry("config", "get", "--part", "p1", "--version", "1")[1]) == PART


def test_get_merged_prints_exactly_the_stores_merged_config_with_revision_on_stderr(
    ferry: Ferry,
) -> None:
    with_sensors(ferry, "p1")
    status, out, err = ferry("config", "get", "--part", "p1", "--merged")
    store = ferry.store()
    try:
        merged = store.merged_config("acme", "p1")
    finally:
        store.close()
    assert merged is not None
    assert status == 0
    assert json.loads(out) == merged.document
    assert err == f"revision {merged.revision} ({merged.label})\n"


def test_rejected_part_config_prints_the_problem_path_exits_2_and_stores_nothing(
    ferry: Ferry,
) -> None:
    with_sensors(ferry, "p1")
    bad = {"components": [sensor("extra", "fast")], **PART}
    path = ferry.file("bad.json", bad)
    status, out, err = ferry("config", "set", "--part", "p1", path)
    assert (status, out) == (2, "")
    assert err.startswith(f"ferry cloud config set: {path}: rejected\n")
    assert (
        "part config components[0].service_configs[0].attributes.capture_methods[0]"
        ".capture_frequency_hz: must be a number" in err
    )
    _, out, _ = ferry("config", "get", "--part", "p1")
    assert json.loads(out) == PART
    assert ferry("parts", "--json")[1].count('"config_version": 1') == 1


def test_every_problem_of_a_malformed_part_config_is_listed_by_path(ferry: Ferry) -> None:
    path = ferry.file("bad.json", {"cloud": {}, "fragments": [3]})
    status, _, err = ferry("config", "set", "--part", "p1", path)
    assert status == 2
    assert "  cloud: belongs in the robot's bootstrap config" in err
    assert "  fragments[0]: must be a name" in err
    assert ferry("config", "get", "--part", "p1")[0] == 1


def test_bad_json_names_line_and_column_and_a_missing_file_is_named(ferry: Ferry) -> None:
    path = ferry.tmp_path / "broken.json"
    path.write_text('{\n  "fragments": [,]\n}')
    status, _, err = ferry("config", "set", "--part", "p1", str(path))
    assert status == 2
    assert err == f"ferry cloud config set: {path}:2:17: invalid JSON: Expecting value\n"
    missing = str(ferry.tmp_path / "nope.json")
    status, _, err = ferry("fragment", "set", "sensors", missing)
    assert status == 2
    assert err == f"ferry cloud fragment set: {missing}: cannot read: No such file or directory\n"
    status, _, err = ferry("fragment", "set", "sensors", ferry.file("list.json", []))
    assert (status, err.strip().endswith("must be a JSON object, not list")) == (2, True)


def test_unknown_part_fragment_or_version_is_a_clear_exit_1(ferry: Ferry) -> None:
    with_sensors(ferry, "p1")
    assert ferry("config", "get", "--part", "ghost") == (
        1,
        "",
        "ferry cloud config get: part 'ghost' has no config\n",
    )
    assert ferry("config", "get", "--part", "ghost", "--merged")[0] == 1
    assert ferry("config", "get", "--part", "p1", "--version", "9")[2] == (
        "ferry cloud config get: part 'p1' has no config at version 9\n"
    )
    assert ferry("fragment", "get", "ghost") == (
        1,
        "",
        "ferry cloud fragment get: no fragment 'ghost'\n",
    )
    assert ferry("fragment", "get", "sensors", "--version", "2")[0] == 1


def test_fragment_set_versions_and_names_the_parts_using_it(ferry: Ferry) -> None:
    with_sensors(ferry, "p2", "p1")
    status, out, _ = ferry("fragment", "set", "sensors", ferry.file("s.json", SENSORS))
    assert (status, out) == (0, "fragment sensors: v2 stored\nused by: p1, p2\n")
    status, out, _ = ferry("fragment", "set", "lone", ferry.file("l.json", {"components": []}))
    assert (status, out) == (0, "fragment lone: v1 stored\n")
    assert json.loads(ferry("fragment", "get", "sensors", "--version", "1")[1]) == SENSORS


def test_fragment_list_is_a_table_of_latest_version_update_time_and_users(ferry: Ferry) -> None:
    store = ferry.store(NOON_NS)
    try:
        store.put_fragment("acme", "sensors", SENSORS)
        store.put_fragment("acme", "sensors", SENSORS)
        store.put_fragment("acme", "spare", {"components": []})
        store.put_part_config("acme", "p1", PART)
    finally:
        store.close()
    assert ferry("fragment", "list")[1].splitlines() == [
        "NAME     VERSION  UPDATED               USED BY",
        "sensors  v2       2024-05-01T12:00:00Z  p1",
        "spare    v1       2024-05-01T12:00:00Z  -",
    ]


def test_a_fragment_change_that_breaks_a_part_using_it_is_refused_naming_that_part(
    ferry: Ferry,
) -> None:
    with_sensors(ferry, "p1")
    mods = [{"fragment": "sensors", "mods": [{"$set": {FREQ_PATH.format(c="temp"): 7}}]}]
    path = ferry.file("mods.json", {**PART, "fragment_mods": mods})
    assert ferry("config", "set", "--part", "p2", path)[0] == 0
    without_temp = ferry.file("s.json", {"components": [sensor("hum", 1)]})
    status, out, err = ferry("fragment", "set", "sensors", without_temp)
    assert (status, out) == (2, "")
    assert err.startswith(f"ferry cloud fragment set: {without_temp}: rejected\n")
    assert "merged config of part 'p2'" in err
    assert "no item named 'temp'" in err
    assert "'p1'" not in err
    assert json.loads(ferry("fragment", "get", "sensors")[1]) == SENSORS


def test_set_frequency_stores_a_new_version_with_only_that_method_changed(ferry: Ferry) -> None:
    with_sensors(ferry, "p1")
    status, out, _ = ferry(
        "fragment", "set-frequency", "sensors", "--component", "hum", "--method", "Readings",
        "--hz", "0.5",
    )  # fmt: skip
    assert (status, out) == (0, "fragment sensors: v2 stored (hum.Readings at 0.5 Hz)\n")
    expected = {"components": [sensor("temp", 2), sensor("hum", 0.5)]}
    assert json.loads(ferry("fragment", "get", "sensors")[1]) == expected
    assert json.loads(ferry("fragment", "get", "sensors", "--version", "1")[1]) == SENSORS


def test_set_frequency_on_an_unknown_component_or_method_lists_what_exists(
    ferry: Ferry,
) -> None:
    with_sensors(ferry)
    argv = ("fragment", "set-frequency", "sensors", "--hz", "1")
    assert ferry(*argv, "--component", "x", "--method", "Readings") == (
        2,
        "",
        "ferry cloud fragment set-frequency: components: no component 'x' (has: temp, hum)\n",
    )
    status, _, err = ferry(*argv, "--component", "hum", "--method", "Get")
    assert status == 2
    assert "no capture method 'Get' (has: Readings, Other)" in err
    status, _, err = ferry(
        "fragment", "set-frequency", "ghost", "--component", "hum", "--method", "Get", "--hz", "1"
    )
    assert (status, err) == (2, "ferry cloud fragment set-frequency: no fragment 'ghost'\n")
    assert ferry("fragment", "list")[1].splitlines()[1].split()[1] == "v1"


@pytest.mark.parametrize("hz", ["-1", "fast", "nan", "inf"])
def test_set_frequency_refuses_a_negative_or_non_numeric_rate_as_a_usage_error(
    ferry: Ferry, hz: str
) -> None:
    with_sensors(ferry)
    with pytest.raises(SystemExit) as caught:
        ferry("fragment", "set-frequency", "sensors", "--component", "hum", "--method", "Readings",
              "--hz", hz)  # fmt: skip
    assert caught.value.code == 2
    assert "argument --hz" in ferry.capsys.readouterr().err


def test_a_fragment_of_one_org_is_neither_listed_nor_gettable_in_another(ferry: Ferry) -> None:
    with_sensors(ferry)
    assert ferry("fragment", "list", org="other")[1] == ""
    assert ferry("fragment", "get", "sensors", org="other")[0] == 1
    status, _, err = ferry(
        "fragment", "set-frequency", "sensors", "--component", "hum", "--method", "Readings",
        "--hz", "3", org="other",
    )  # fmt: skip
    assert (status, err) == (2, "ferry cloud fragment set-frequency: no fragment 'sensors'\n")


def test_a_part_of_one_org_cannot_be_configured_from_another(ferry: Ferry) -> None:
    with_sensors(ferry, "p1")
    path = ferry.file("empty.json", {})
    status, out, err = ferry("config", "set", "--part", "p1", path, org="other")
    assert (status, out) == (2, "")
    assert err == "ferry cloud config set: part 'p1' belongs to another organization\n"
    assert ferry("config", "get", "--part", "p1", org="other")[0] == 1
    assert json.loads(ferry("config", "get", "--part", "p1")[1]) == PART


def test_parts_shows_what_each_part_applied_whether_current_and_its_backlog(
    ferry: Ferry,
) -> None:
    with_sensors(ferry, "p1", "p2", "p3")
    store = ferry.store(NOON_NS)
    try:
        old = store.merged_config("acme", "p2")
        store.put_fragment("acme", "sensors", {"components": [sensor("temp", 3)]})
        current = store.merged_config("acme", "p1")
        assert old is not None
        assert current is not None
        store.report_part(
            "acme",
            "p1",
            PartReport(current.revision, current.label, pending_files=3, pending_bytes=1_234_567),
        )
        store.report_part(
            "acme",
            "p2",
            PartReport(
                old.revision,
                old.label,
                rejected_revision=current.revision,
                error="components[0].model: unknown\nmore detail",
                pending_files=1,
            ),
        )
    finally:
        store.close()
    status, out, _ = ferry("parts")
    assert status == 0
    noon = "2024-05-01T12:00:00Z"
    lines = out.splitlines()
    assert lines[0].split() == ["PART", "CONFIG", "LAST", "SEEN", "APPLIED", "APPLIED", "AT",
                                "PENDING"]  # fmt: skip
    assert lines[1].split() == [
        "p1", "v1", noon, *current.label.split(), "@", current.revision, "(current)", noon, "3",
        "files,", "1.23", "MB",
    ]  # fmt: skip
    assert lines[2].split() == [
        "p2", "v1", noon, *old.label.split(), "@", old.revision, "(behind:", "current",
        f"{current.revision})", noon, "1", "file,", "0", "B",
    ]  # fmt: skip
    assert lines[3] == f"  rejected {current.revision}: components[0].model: unknown"
    assert lines[4].split() == ["p3", "v1", "never", "-", "-", "-"]
    assert len(lines) == 5


def test_parts_json_has_every_field_of_every_part(ferry: Ferry) -> None:
    with_sensors(ferry, "p1")
    store = ferry.store(NOON_NS)
    try:
        store.report_part("acme", "p9", None)
    finally:
        store.close()
    status, out, _ = ferry("parts", "--json")
    assert status == 0
    rows = json.loads(out)
    assert [r["part_id"] for r in rows] == ["p1", "p9"]
    assert set(rows[0]) == {
        "part_id", "config_version", "current_revision", "last_seen_ns", "applied_revision",
        "applied_label", "applied_ns", "rejected_revision", "error", "pending_files",
        "pending_bytes",
    }  # fmt: skip
    assert rows[0]["config_version"] == 1
    assert rows[0]["last_seen_ns"] is None
    assert (rows[1]["config_version"], rows[1]["last_seen_ns"]) == (None, NOON_NS)
