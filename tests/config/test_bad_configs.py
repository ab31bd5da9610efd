"""Malformed configs are rejected, each with the JSON path and the problem."""

from __future__ import annotations

import json

import pytest

from actors.config import ConfigError, load_config, parse_config
from tests.config._docs import CLOUD, component, data_manager, method, robot

CM = "components[0].service_configs[0].attributes.capture_methods"
DM = "services[0].attributes"

# (id, document, every problem reported, in order)
BAD_CONFIGS: list[tuple[str, object, list[str]]] = [
    ("root-not-object", [], ["<root>: must be an object (got a list)"]),
    ("components-not-list", {"components": {}}, ["components: must be a list (got an object)"]),
    (
        "frequency-wrong-type",
        robot(component("s1", method(hz="2"))),
        [f'{CM}[0].capture_frequency_hz: must be a number (got "2")'],
    ),
    (
        "queue-size-negative",
        robot(component("s1", method(capture_queue_size=-1))),
        [f"{CM}[0].capture_queue_size: must be >= 0 (got -1)"],
    ),
    (
        "buffer-size-not-integer",
        robot(component("s1", method(capture_buffer_size=4096.5))),
        [f"{CM}[0].capture_buffer_size: must be an integer (got 4096.5)"],
    ),
    (
        "queue-size-bool",
        robot(component("s1", method(capture_queue_size=True))),
        [f"{CM}[0].capture_queue_size: must be an integer (got true)"],
    ),
    (
        "method-missing",
        robot(component("s1", {"capture_frequency_hz": 1})),
        [f"{CM}[0].method: required"],
    ),
    (
        "method-empty",
        robot(component("s1", method(""))),
        [f"{CM}[0].method: must not be empty"],
    ),
    (
        "method-duplicate",
        robot(component("s1", method("Readings"), method("Readings", 2))),
        [f"{CM}[1].method: 'Readings' is already captured for 's1'"],
    ),
    (
        "additional-params-not-object",
        robot(component("s1", method(additional_params=["a"]))),
        [f"{CM}[0].additional_params: must be an object (got a list)"],
    ),
    (
        "docommand-input-missing",
        robot(component("s1", method("DoCommand"))),
        [f"{CM}[0].additional_params.docommand_input: required by DoCommand (an object)"],
    ),
    (
        "method-tags-empty-string",
        robot(component("s1", method(tags=["ok", ""]))),
        [f"{CM}[0].tags[1]: must not be empty"],
    ),
    (
        "method-names-another-resource",
        robot(component("s1", method(name="rdk:component:sensor/s2"))),
        [f"{CM}[0].name: names 'rdk:component:sensor/s2' but belongs to 'rdk:component:sensor/s1'"],
    ),
    (
        "service-config-not-data-manager",
        robot(component("s1", service_configs=[{"type": "vision", "attributes": {}}])),
        ["components[0].service_configs[0].type: must be 'data_manager' (got \"vision\")"],
    ),
    (
        "component-name-duplicate",
        robot(component("arm"), component("arm")),
        ["components[1].name: duplicate name 'arm' (see components[0].name)"],
    ),
    (
        "component-name-with-space",
        robot(component("my cam")),
        [
            "components[0].name: must start with a letter or digit and contain only letters,"
            " digits, '-' and '_' (got \"my cam\")"
        ],
    ),
    (
        "component-model-missing",
        robot({"name": "s1", "type": "sensor"}),
        ["components[0].model: required"],
    ),
    (
        "component-api-and-type-missing",
        robot({"name": "s1", "model": "fake"}),
        ["components[0].api: required (e.g. 'rdk:component:sensor'), or give 'type'"],
    ),
    (
        "component-api-malformed",
        robot(component(api="sensor")),
        [
            "components[0].api: must be 'namespace:type:subtype', e.g. 'rdk:component:sensor'"
            ' (got "sensor")'
        ],
    ),
    (
        "component-api-is-a-service",
        robot(component(api="rdk:service:vision")),
        [
            "components[0].api: must be a component API '<namespace>:component:<subtype>'"
            " (got 'rdk:service:vision')"
        ],
    ),
    (
        "component-type-disagrees-with-api",
        robot(component(type="arm")),
        ["components[0].type: rdk:component:arm disagrees with api 'rdk:component:sensor'"],
    ),
    (
        "component-attributes-not-object",
        robot(component(attributes=[1, 2])),
        ["components[0].attributes: must be an object (got a list)"],
    ),
    (
        "depends-on-unknown",
        robot(component(depends_on=["ghost"])),
        ["components[0].depends_on[0]: no resource is named 'ghost'"],
    ),
    (
        "depends-on-self",
        robot(component(depends_on=["s1"])),
        ["components[0].depends_on[0]: a resource cannot depend on itself"],
    ),
    (
        "depends-on-cycle",
        robot(component("a", depends_on=["b"]), component("b", depends_on=["a"])),
        ["components[0].depends_on: dependency cycle: a -> b -> a"],
    ),
    (
        "capture-file-size-negative",
        robot(services=[data_manager(maximum_capture_file_size_bytes=-1)]),
        [f"{DM}.maximum_capture_file_size_bytes: must be >= 0 (got -1)"],
    ),
    (
        "sync-interval-negative",
        robot(services=[data_manager(sync_interval_mins=-0.5)]),
        [f"{DM}.sync_interval_mins: must be >= 0 (got -0.5)"],
    ),
    (
        "sync-counts-negative",
        robot(
            services=[
                data_manager(
                    file_last_modified_millis=-1,
                    maximum_num_sync_threads=-2,
                    delete_every_nth_when_disk_full=-3,
                )
            ]
        ),
        [
            f"{DM}.file_last_modified_millis: must be >= 0 (got -1)",
            f"{DM}.maximum_num_sync_threads: must be >= 0 (got -2)",
            f"{DM}.delete_every_nth_when_disk_full: must be >= 0 (got -3)",
        ],
    ),
    (
        "thresholds-out-of-range",
        robot(
            services=[
                data_manager(disk_usage_deletion_threshold=1.5, capture_dir_deletion_threshold=0)
            ]
        ),
        [
            f"{DM}.disk_usage_deletion_threshold: must be <= 1 (got 1.5)",
            f"{DM}.capture_dir_deletion_threshold: must be > 0 (got 0)",
        ],
    ),
    (
        "retention-negative",
        robot(services=[data_manager(retention_max_age_hours=-1, min_free_bytes=-1)]),
        [
            f"{DM}.retention_max_age_hours: must be >= 0 (got -1)",
            f"{DM}.min_free_bytes: must be >= 0 (got -1)",
        ],
    ),
    (
        "capture-dir-not-string",
        robot(services=[data_manager(capture_dir=5)]),
        [f"{DM}.capture_dir: must be a string (got 5)"],
    ),
    (
        "additional-sync-paths-not-list",
        robot(services=[data_manager(additional_sync_paths="/data")]),
        [f'{DM}.additional_sync_paths: must be a list (got "/data")'],
    ),
    (
        "additional-sync-paths-not-strings",
        robot(services=[data_manager(additional_sync_paths=["/data", 3])]),
        [f"{DM}.additional_sync_paths[1]: must be a string (got 3)"],
    ),
    (
        "sync-disabled-not-bool",
        robot(services=[data_manager(sync_disabled="yes")]),
        [f'{DM}.sync_disabled: must be true or false (got "yes")'],
    ),
    (
        "selective-syncer-unknown",
        robot(services=[data_manager(selective_syncer_name="gate")]),
        [f"{DM}.selective_syncer_name: no component is named 'gate'"],
    ),
    (
        "selective-syncer-not-a-sensor",
        robot(
            component(api="rdk:component:arm"), services=[data_manager(selective_syncer_name="s1")]
        ),
        [f"{DM}.selective_syncer_name: 's1' is rdk:component:arm, not a sensor"],
    ),
    (
        "two-data-managers",
        robot(services=[data_manager("dm1"), data_manager("dm2")]),
        ["services[1]: only one data_manager service (see services[0])"],
    ),
    (
        "service-not-object",
        robot(services=[{"x": 1}, 5]),
        ["services[0].name: required", "services[1]: must be an object (got 5)"],
    ),
    (
        "cloud-address-with-scheme",
        robot(cloud={**CLOUD, "address": "https://data.example.com:443"}),
        [
            "cloud.address: must be host:port without a scheme or path, e.g."
            " 'app.example.com:443' or '127.0.0.1:8443' (got \"https://data.example.com:443\")"
        ],
    ),
    (
        "cloud-address-without-port",
        robot(cloud={**CLOUD, "address": "data.example.com"}),
        [
            "cloud.address: must be host:port, e.g. 'app.example.com:443' or '127.0.0.1:8443'"
            ' (got "data.example.com")'
        ],
    ),
    (
        "cloud-address-port-out-of-range",
        robot(cloud={**CLOUD, "address": "data.example.com:70000"}),
        ['cloud.address: port must be 1-65535 (got "70000")'],
    ),
    (
        "cloud-fields-missing-or-empty",
        robot(cloud={"address": "bad_host!:1", "part_id": "", "api_key_id": "k"}),
        [
            'cloud.address: "bad_host!" is not a host name or IP address',
            "cloud.part_id: must not be empty",
            "cloud.api_key: required",
        ],
    ),
    (
        "config-source-cloud-without-cloud",
        robot(config_source="cloud"),
        ["cloud: required when config_source is 'cloud'"],
    ),
    (
        "config-source-unknown",
        robot(config_source="remote"),
        ["config_source: must be 'local' or 'cloud' (got \"remote\")"],
    ),
    (
        "problems-everywhere-are-all-reported",
        robot(
            component("s1", method(capture_queue_size=-1)),
            services=[data_manager(sync_interval_mins=-1)],
            cloud={**CLOUD, "insecure": "no"},
        ),
        [
            f"{CM}[0].capture_queue_size: must be >= 0 (got -1)",
            f"{DM}.sync_interval_mins: must be >= 0 (got -1)",
            'cloud.insecure: must be true or false (got "no")',
        ],
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"),
    [(doc, exp) for _, doc, exp in BAD_CONFIGS],
    ids=[c[0] for c in BAD_CONFIGS],
)
def test_malformed_config_is_rejected_naming_each_path_and_problem(document, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(json.dumps(document), source="robot.json")
    assert [str(issue) for issue in info.value.issues] == expected
    assert str(info.value).splitlines()[1:] == [f"  {line}" for line in expected]


def test_bad_config_table_covers_at_least_fifteen_inputs():
    assert len(BAD_CONFIGS) >= 15


def test_error_message_starts_with_source_and_problem_count():
    doc = robot(services=[data_manager(sync_interval_mins=-1, maximum_capture_file_size_bytes=-1)])
    with pytest.raises(ConfigError) as info:
        parse_config(doc, source="robot.json")
    assert str(info.value) == (
        "robot.json: 2 problems\n"
        "  services[0].attributes.sync_interval_mins: must be >= 0 (got -1)\n"
        "  services[0].attributes.maximum_capture_file_size_bytes: must be >= 0 (got -1)"
    )
    assert info.value.source == "robot.json"


def test_json_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "robot.json"
    path.write_text('{\n  "components": [\n    {"name": "a",}\n  ]\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.column) == (3, 18)
    assert str(info.value) == (
        f"{path}:3:18: invalid JSON: Expecting property name enclosed in double quotes"
    )


def test_repeated_json_key_is_an_error_at_its_path():
    text = '{"components": [{"name": "a", "name": "b", "type": "sensor", "model": "fake"}]}'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert [str(i) for i in info.value.issues] == [
        "components[0].name: duplicate key; JSON objects must not repeat a key"
    ]


def test_nan_is_rejected_at_its_path_even_inside_free_form_attributes():
    text = (
        '{"components": [{"name": "a", "type": "sensor", "model": "fake",'
        ' "attributes": {"x": NaN}}]}'
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert [str(i) for i in info.value.issues] == [
        "components[0].attributes.x: NaN is not a JSON number"
    ]


def test_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: 1 problem\n  <root>: cannot read: No such file or directory"


def test_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "robot.json"
    path.write_bytes(b'{"components": ["\xff"]}')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "robot.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(robot()).encode())
    assert load_config(path).warnings == ()


def test_unusual_keys_are_quoted_in_paths():
    with pytest.raises(ConfigError) as info:
        parse_config('{"my key": 1, "my key": 2}')
    assert [str(i) for i in info.value.issues] == [
        '["my key"]: duplicate key; JSON objects must not repeat a key'
    ]


def test_json_given_as_bytes_is_parsed_like_text():
    with pytest.raises(ConfigError) as info:
        parse_config(b'{"components": 1}', source="bytes")
    assert [str(i) for i in info.value.issues] == ["components: must be a list (got 1)"]


def test_long_values_are_shortened_in_messages():
    with pytest.raises(ConfigError) as info:
        parse_config(robot(services=[data_manager(sync_disabled="x" * 100)]))
    [issue] = info.value.issues
    assert issue.message == f'must be true or false (got "{"x" * 56}...)'
