"""Resolution turns what the file says into the values the runtime uses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from actors.config import load_config, parse_config
from tests.config._docs import CLOUD, component, data_manager, method, robot

ENV = {"HOME": "/home/robot"}


def settings(cpu_count: int = 8, environ: dict[str, str] | None = None, **attributes):
    loaded = parse_config(robot(services=[data_manager(**attributes)]))
    resolved = loaded.resolve(environ=ENV if environ is None else environ, cpu_count=cpu_count)
    assert resolved.data_manager is not None
    return resolved.data_manager


def only_method(*, services_attrs=None, base_dir=None, environ=None, **method_keys):
    doc = robot(
        component("s1", method(**method_keys)),
        services=[data_manager(**(services_attrs or {}))],
    )
    resolved = parse_config(doc, base_dir=base_dir).resolve(environ=environ or ENV)
    [spec] = resolved.capture_methods
    return spec


# (setting, value in the file (None: absent), effective value)
SERVICE_DEFAULTS = [
    ("sync_interval_mins", None, 0.1),
    ("sync_interval_mins", 0, 0.1),
    ("sync_interval_mins", 0.00009, 0.1),
    ("sync_interval_mins", 0.5, 0.5),
    ("file_last_modified_millis", None, 10000),
    ("file_last_modified_millis", 0, 10000),
    ("file_last_modified_millis", 250, 250),
    ("maximum_num_sync_threads", None, 4),
    ("maximum_num_sync_threads", 0, 4),
    ("maximum_num_sync_threads", 2, 2),
    ("delete_every_nth_when_disk_full", None, 5),
    ("delete_every_nth_when_disk_full", 0, 5),
    ("delete_every_nth_when_disk_full", 3, 3),
    ("disk_usage_deletion_threshold", None, 0.9),
    ("disk_usage_deletion_threshold", 0.75, 0.75),
    ("capture_dir_deletion_threshold", None, 0.5),
    ("capture_dir_deletion_threshold", 1, 1.0),
    ("maximum_capture_file_size_bytes", None, 262144),
    ("maximum_capture_file_size_bytes", 0, 262144),
    ("maximum_capture_file_size_bytes", 1024, 1024),
    ("capture_disabled", None, False),
    ("sync_disabled", None, False),
    ("sync_disabled", True, True),
    ("tags", None, ()),
    ("additional_sync_paths", None, ()),
    ("selective_syncer_name", None, None),
    ("selective_syncer_name", "", None),
    ("mongo_capture_config", None, None),
    ("mongo_capture_config", {"uri": ""}, None),
    ("retention_max_capture_dir_bytes", None, None),
    ("retention_max_capture_dir_bytes", 0, None),
    ("retention_max_capture_dir_bytes", 10**9, 10**9),
    ("retention_max_age_hours", None, None),
    ("retention_max_age_hours", 0, None),
    ("retention_max_age_hours", 24, 24.0),
    ("min_free_bytes", None, 0),
    ("min_free_bytes", 5_000_000, 5_000_000),
]


@pytest.mark.parametrize(("key", "value", "effective"), SERVICE_DEFAULTS)
def test_service_setting_resolves_to_its_effective_value(key, value, effective):
    attrs = {} if value is None else {key: value}
    resolved = settings(cpu_count=8, **attrs)
    resolved_key = "mongo_capture" if key == "mongo_capture_config" else key
    assert getattr(resolved, resolved_key) == effective


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (3, 1), (8, 4), (16, 8)])
def test_default_sync_threads_is_half_the_cpus_and_never_zero(cpus, threads):
    assert settings(cpu_count=cpus).maximum_num_sync_threads == threads


def test_sync_interval_is_truncated_to_whole_milliseconds_like_viam():
    resolved = settings(sync_interval_mins=0.00012345)
    assert resolved.sync_interval_ms == 7
    assert resolved.sync_interval_s == 0.007


def test_mongo_capture_keeps_viam_defaults_for_database_and_collection():
    resolved = settings(mongo_capture_config={"uri": "mongodb://db"})
    assert resolved.mongo_capture is not None
    assert (resolved.mongo_capture.database, resolved.mongo_capture.collection) == (
        "sensorData",
        "readings",
    )


# (method keys, effective queue size, effective buffer size)
METHOD_DEFAULTS = [
    ({}, 250, 4096),
    ({"capture_queue_size": 0, "capture_buffer_size": 0}, 250, 4096),
    ({"capture_queue_size": 1, "capture_buffer_size": 65536}, 1, 65536),
]


@pytest.mark.parametrize(("keys", "queue", "buffer"), METHOD_DEFAULTS)
def test_method_queue_and_buffer_sizes_are_honoured_with_zero_meaning_default(keys, queue, buffer):
    spec = only_method(**keys)
    assert (spec.capture_queue_size, spec.capture_buffer_size) == (queue, buffer)


def test_method_tags_are_merged_after_service_tags_without_duplicates():
    spec = only_method(tags=["cam", "demo", "cam"], services_attrs={"tags": ["demo", "site-a"]})
    assert spec.tags == ("demo", "site-a", "cam")


def test_service_tags_are_deduplicated_in_order():
    assert settings(tags=["b", "a", "b"]).tags == ("b", "a")


def test_method_capture_directory_overrides_the_service_capture_dir():
    spec = only_method(capture_directory="~/fast-disk", services_attrs={"capture_dir": "/data"})
    assert spec.capture_directory == Path("/home/robot/fast-disk")


def test_method_without_capture_directory_uses_the_service_capture_dir():
    spec = only_method(services_attrs={"capture_dir": "~/captures"})
    assert spec.capture_directory == Path("/home/robot/captures")


def test_default_capture_dir_is_under_dot_ferry_not_dot_viam():
    assert settings().capture_dir == Path("/home/robot/.ferry/capture")


def test_ferry_home_replaces_the_base_of_the_default_capture_dir():
    resolved = settings(environ={"HOME": "/home/robot", "FERRY_HOME": "/var/lib/ferry"})
    assert resolved.capture_dir == Path("/var/lib/ferry/capture")


def test_ferry_home_does_not_override_an_explicit_capture_dir():
    resolved = settings(environ={"FERRY_HOME": "/var/lib/ferry"}, capture_dir="/data/cap")
    assert resolved.capture_dir == Path("/data/cap")


def test_ferry_home_from_the_process_environment_is_used_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("FERRY_HOME", str(tmp_path / "ferry-home"))
    resolved = parse_config(robot()).resolve()
    assert resolved.data_manager is not None
    assert resolved.data_manager.capture_dir == tmp_path / "ferry-home" / "capture"


def test_home_from_the_process_environment_gives_the_default_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FERRY_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    resolved = parse_config(robot()).resolve()
    assert resolved.data_manager is not None
    assert resolved.data_manager.capture_dir == tmp_path / ".ferry" / "capture"


def test_empty_ferry_home_counts_as_unset():
    assert settings(environ={"HOME": "/h", "FERRY_HOME": ""}).capture_dir == Path(
        "/h/.ferry/capture"
    )


def test_relative_paths_are_relative_to_the_config_files_folder(tmp_path):
    doc = robot(
        services=[data_manager(capture_dir="cap", additional_sync_paths=["more", "/abs"])],
        cloud={**CLOUD, "tls_ca_file": "certs/ca.pem", "insecure": False},
    )
    path = tmp_path / "robot.json"
    path.write_text(json.dumps(doc))
    resolved = load_config(path).resolve(environ=ENV)
    assert resolved.data_manager is not None
    assert resolved.data_manager.capture_dir == tmp_path / "cap"
    assert resolved.data_manager.additional_sync_paths == (tmp_path / "more", Path("/abs"))
    assert resolved.cloud is not None
    assert resolved.cloud.tls_ca_file == tmp_path / "certs" / "ca.pem"


@pytest.mark.parametrize(
    ("hz", "disabled", "interval"),
    [(2.0, False, 0.5), (0.0, True, None), (-1.0, True, None), (1e-7, True, None)],
)
def test_frequency_at_or_below_1e6_hz_disables_the_method(hz, disabled, interval):
    spec = only_method(hz=hz)
    assert (spec.disabled, spec.interval_s) == (disabled, interval)


def test_capture_disabled_leaves_no_active_methods_but_keeps_the_specs():
    doc = robot(component("s1", method()), services=[data_manager(capture_disabled=True)])
    resolved = parse_config(doc).resolve(environ=ENV)
    assert len(resolved.capture_methods) == 1
    assert resolved.active_capture_methods == ()


def test_active_methods_exclude_disabled_ones():
    doc = robot(component("s1", method("Readings"), method("Other", disabled=True)))
    resolved = parse_config(doc).resolve(environ=ENV)
    assert [m.method for m in resolved.active_capture_methods] == ["Readings"]


def test_api_comes_from_api_or_from_namespace_and_type():
    doc = robot(
        {"name": "a", "api": "acme:component:lidar", "model": "x"},
        {"name": "b", "type": "camera", "model": "fake"},
        {"name": "c", "namespace": "acme", "type": "lidar", "model": "x"},
        {"name": "d", "type": "movementsensor", "model": "fake"},
    )
    resolved = parse_config(doc).resolve(environ=ENV)
    assert [c.api for c in resolved.components] == [
        "acme:component:lidar",
        "rdk:component:camera",
        "acme:component:lidar",
        "rdk:component:movement_sensor",
    ]


def test_data_manager_is_found_by_api_as_well_as_by_type():
    doc = robot(
        component("s1", method()),
        services=[{"name": "dm", "api": "rdk:service:data_manager"}],
    )
    resolved = parse_config(doc).resolve(environ=ENV)
    assert resolved.data_manager is not None
    assert resolved.data_manager.service_name == "dm"
    assert len(resolved.capture_methods) == 1


def test_capture_key_identifies_api_name_and_method():
    spec = only_method(method_name="Readings")
    assert spec.key == ("rdk:component:sensor", "s1", "Readings")


def test_resolved_values_are_frozen_and_read_only():
    spec = only_method(additional_params={"filter": {"kinds": ["a"]}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.capture_queue_size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.additional_params["x"] = 1  # type: ignore[index]
    assert spec.additional_params["filter"]["kinds"] == ("a",)
    assert hash(spec) == hash(only_method(additional_params={"filter": {"kinds": ["a"]}}))


def test_component_attributes_and_dependencies_are_passed_through():
    doc = robot(
        component("cam", attributes={"width": 64, "modes": ["a", "b"]}, depends_on=["s2"]),
        component("s2"),
    )
    [cam, _] = parse_config(doc).resolve(environ=ENV).components
    assert (cam.model, dict(cam.attributes), cam.depends_on) == (
        "fake",
        {"width": 64, "modes": ("a", "b")},
        ("s2",),
    )


def test_api_key_is_not_shown_in_reprs():
    loaded = parse_config(robot(cloud=CLOUD))
    assert "secret" not in repr(loaded.config)
    assert "secret" not in repr(loaded.resolve(environ=ENV).cloud)


def test_durability_window_and_file_age_are_configurable_with_defaults():
    from actors.config import parse_config

    def settings(attributes):
        doc = {
            "services": [
                {"name": "dm", "api": "rdk:service:data_manager", "attributes": attributes}
            ]
        }
        return parse_config(doc).resolve().data_manager

    default = settings({})
    assert default.capture_fsync_interval_s == 1.0
    assert default.maximum_capture_file_age_s == 300.0
    tuned = settings({"capture_fsync_interval_secs": 0.25, "maximum_capture_file_age_secs": 60})
    assert tuned.capture_fsync_interval_s == 0.25
    assert tuned.maximum_capture_file_age_s == 60
    assert settings({"capture_fsync_interval_secs": 0}).capture_fsync_interval_s == 1.0


def test_sync_chunk_defaults_to_two_mib_and_zero_means_the_default():
    """2 MiB chunks halve the cloud's per-chunk commits (docs/performance.md, row 4)."""
    from actors.config import parse_config

    def chunk(attributes):
        doc = {
            "services": [
                {"name": "dm", "api": "rdk:service:data_manager", "attributes": attributes}
            ]
        }
        return parse_config(doc).resolve().data_manager.sync_chunk_bytes

    assert chunk({}) == 2 * 1024 * 1024
    assert chunk({"sync_chunk_size_bytes": 0}) == 2 * 1024 * 1024
    assert chunk({"sync_chunk_size_bytes": 65_536}) == 65_536
