"""Usable-but-odd configs load, and every oddity is a warning with its path."""

from __future__ import annotations

import pytest

from actors.config import parse_config
from tests.config._docs import CLOUD, component, data_manager, method, robot

CM = "components[0].service_configs[0].attributes.capture_methods"
DM = "services[0].attributes"

# (id, document, every warning, in order)
WARNINGS: list[tuple[str, object, list[str]]] = [
    (
        "unknown-keys-at-every-level",
        robot(
            component("s1", method(frequency=2), colour="red"),
            services=[data_manager(sync_interval=5)],
            bogus=1,
        ),
        [
            f"{CM}[0].frequency: unknown key; ignored",
            "components[0].colour: unknown key; ignored",
            f"{DM}.sync_interval: unknown key; ignored",
            "bogus: unknown key; ignored",
        ],
    ),
    (
        "viam-keys-ferry-does-not-use",
        robot(
            component("s1", method(retention_policy={"days": 3}), frame={"parent": "world"}),
            services=[data_manager(delete_data_on_part_deletion=True)],
            modules=[],
        ),
        [
            f"{CM}[0].retention_policy: Viam setting that Ferry does not use; ignored",
            "components[0].frame: Viam setting that Ferry does not use; ignored",
            f"{DM}.delete_data_on_part_deletion: Viam setting that Ferry does not use; ignored",
            "modules: Viam setting that Ferry does not use; ignored",
        ],
    ),
    (
        "frequency-zero-negative-tiny-or-unset-disables",
        robot(
            component(
                "s1",
                method("A", 0),
                method("B", -1),
                method("C", 1e-7),
                {"method": "D"},
                method("E", 0, disabled=True),
            )
        ),
        [
            f"{CM}[0].capture_frequency_hz: <= 0 disables this method (got 0)",
            f"{CM}[1].capture_frequency_hz: <= 0 disables this method (got -1)",
            f"{CM}[2].capture_frequency_hz: below 1e-06 Hz disables this method (got 1e-07)",
            f"{CM}[3].capture_frequency_hz: not set, so this method is disabled",
        ],
    ),
    (
        "capture-methods-without-data-manager",
        robot(component("s1", method(), method("Other")), services=[]),
        ["services: no data_manager service, so the 2 capture method(s) are not captured"],
    ),
    (
        "other-services-are-ignored",
        robot(services=[{"name": "v", "type": "vision", "anything": 1}, data_manager()]),
        ["services[0]: rdk:service:vision is not run by Ferry; ignored"],
    ),
    (
        "tiny-sync-interval-means-default",
        robot(services=[data_manager(sync_interval_mins=0.00005)]),
        [f"{DM}.sync_interval_mins: within 1e-4 of 0, so the default 0.1 is used (got 5e-05)"],
    ),
    (
        "unsupported-viam-features",
        robot(
            services=[
                data_manager(
                    mongo_capture_config={"uri": "mongodb://db"},
                    capture_control_sensor={"name": "ctl", "key": "k"},
                )
            ]
        ),
        [
            f"{DM}.mongo_capture_config: not supported by Ferry; ignored",
            f"{DM}.capture_control_sensor: not supported by Ferry; ignored",
        ],
    ),
    (
        "insecure-cloud-off-loopback",
        robot(cloud={**CLOUD, "address": "data.example.com:443", "tls_ca_file": "/ca.pem"}),
        [
            "cloud.tls_ca_file: ignored because insecure is true",
            "cloud.insecure: the API key is sent unencrypted to 'data.example.com',"
            " which is not loopback",
        ],
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"),
    [(doc, exp) for _, doc, exp in WARNINGS],
    ids=[c[0] for c in WARNINGS],
)
def test_odd_config_loads_with_a_warning_per_oddity_at_its_path(document, expected):
    loaded = parse_config(document)
    assert [str(w) for w in loaded.warnings] == expected


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.53"])
def test_insecure_cloud_on_loopback_is_not_warned_about(host):
    loaded = parse_config(robot(cloud={**CLOUD, "address": f"{host}:8443"}))
    assert loaded.warnings == ()


def test_explicitly_disabled_method_with_zero_frequency_is_silent():
    loaded = parse_config(robot(component("s1", method(hz=0, disabled=True))))
    assert loaded.warnings == ()


def test_config_without_data_manager_is_valid_and_captures_nothing():
    loaded = parse_config(robot(component("s1"), services=[]))
    assert loaded.warnings == ()
    resolved = loaded.resolve(environ={"HOME": "/home/r"})
    assert resolved.data_manager is None
    assert resolved.capture_methods == ()
    assert [c.name for c in resolved.components] == ["s1"]
