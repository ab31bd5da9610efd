"""The example configs in config/ load cleanly and configure what they say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
EXAMPLES = sorted(p.name for p in CONFIG_DIR.glob("*.json") if p.name != "ferry.schema.json")
HOME = {"HOME": "/home/robot"}


def test_every_expected_example_exists():
    assert set(EXAMPLES) >= {
        "demo.json",
        "camera_arm.json",
        "system_metrics.json",
        "plugin_example.json",
    }


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_config_loads_without_warnings(name):
    loaded = load_config(CONFIG_DIR / name)
    assert loaded.warnings == ()
    assert loaded.resolve(environ=HOME).capture_methods


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_config_points_editors_at_the_schema(name):
    assert json.loads((CONFIG_DIR / name).read_text())["$schema"] == "ferry.schema.json"


def _captures(name: str) -> set[tuple[str, str, str, str, float]]:
    resolved = load_config(CONFIG_DIR / name).resolve(environ=HOME)
    return {
        (m.api, m.name, m.model, m.method, m.capture_frequency_hz) for m in resolved.capture_methods
    }


def test_demo_captures_fake_sensor_arm_camera_and_system_sensor():
    assert _captures("demo.json") == {
        ("rdk:component:sensor", "thermo", "fake", "Readings", 2.0),
        ("rdk:component:arm", "arm", "fake", "JointPositions", 1.0),
        ("rdk:component:arm", "arm", "fake", "EndPosition", 0.5),
        ("rdk:component:camera", "cam", "fake", "ReadImage", 0.2),
        ("rdk:component:sensor", "host", "system", "Readings", 1.0),
    }


def test_demo_uses_default_capture_dir_and_local_insecure_cloud():
    resolved = load_config(CONFIG_DIR / "demo.json").resolve(environ=HOME)
    assert resolved.data_manager is not None
    assert resolved.data_manager.capture_dir == Path("/home/robot/.ferry/capture")
    assert resolved.data_manager.sync_interval_mins == 0.1
    assert resolved.cloud is not None
    assert (resolved.cloud.host, resolved.cloud.port, resolved.cloud.insecure) == (
        "127.0.0.1",
        8443,
        True,
    )


def test_camera_arm_captures_images_at_30_hz_and_joints_at_1_hz():
    assert _captures("camera_arm.json") == {
        ("rdk:component:camera", "picker-cam", "file", "ReadImage", 30.0),
        ("rdk:component:arm", "picker-arm", "fake", "JointPositions", 1.0),
    }


def test_system_metrics_captures_only_the_system_sensor():
    assert _captures("system_metrics.json") == {
        ("rdk:component:sensor", "host", "system", "Readings", 1.0),
    }


def test_plugin_example_names_a_python_plugin_model():
    [(_, _, model, _, _)] = _captures("plugin_example.json")
    assert model == "python:my_robot.sensors:Thermometer"
