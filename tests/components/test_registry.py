"""The registry resolves built-in, ``python:`` and entry-point models, and explains failures."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import pytest

from actors.components import (
    BUILTIN_MODELS,
    ENTRY_POINT_GROUP,
    ComponentConfigError,
    FakeSensor,
    Registry,
    SystemSensor,
    api_for_type,
    default_registry,
    installed_entry_points,
)
from tests.components import plugins
from tests.components.support import PLUGINS_DIR, make_ctx, tabular


@dataclass
class FakeEntryPoint:
    """Stands in for ``importlib.metadata.EntryPoint``; counts loads."""

    name: str
    target: object
    loads: list[str] = field(default_factory=list)

    def load(self) -> object:
        self.loads.append(self.name)
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


def _attributes_for(api: str, model: str, tmp_path) -> dict[str, object]:
    return {"folder": str(tmp_path)} if (api, model) == (api_for_type("camera"), "file") else {}


@pytest.mark.parametrize(("api", "model"), sorted(BUILTIN_MODELS))
async def test_every_builtin_model_is_created_with_do_command_and_closes(api, model, tmp_path):
    registry = default_registry(entry_points=list)
    component = registry.create(make_ctx(api, model, _attributes_for(api, model, tmp_path)))
    methods = component.capture_methods()
    assert "DoCommand" in methods
    assert len(methods) >= 2
    await component.aclose()


def test_builtin_models_cover_the_issue_list():
    assert {(api.rsplit(":", 1)[1], model) for api, model in BUILTIN_MODELS} == {
        ("sensor", "fake"),
        ("sensor", "system"),
        ("camera", "fake"),
        ("camera", "file"),
        ("arm", "fake"),
        ("movement_sensor", "fake"),
        ("motor", "fake"),
        ("encoder", "fake"),
        ("power_sensor", "fake"),
    }


def test_viam_style_builtin_model_name_means_the_builtin():
    registry = default_registry(entry_points=list)
    assert isinstance(registry.create(make_ctx("sensor", "rdk:builtin:fake")), FakeSensor)
    assert isinstance(registry.create(make_ctx("sensor", "system")), SystemSensor)


def test_unknown_model_error_lists_the_known_models_for_that_api():
    registry = default_registry(entry_points=list)
    with pytest.raises(ComponentConfigError) as info:
        registry.create(make_ctx("sensor", "thermo3000"))
    message = str(info.value)
    assert "'thermo3000'" in message
    assert "rdk:component:sensor" in message
    assert "'fake', 'system'" in message
    assert "python:package.module:Class" in message


def test_unknown_api_error_says_there_are_no_known_models():
    with pytest.raises(ComponentConfigError, match="known models: none"):
        default_registry(entry_points=list).create(make_ctx("gripper", "fake"))


async def test_python_model_string_loads_the_example_plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    registry = default_registry(entry_points=list)
    thermo = registry.create(make_ctx("sensor", "python:my_robot.sensors:Thermometer"))
    assert thermo.capture_methods() == {"Readings", "DoCommand"}
    assert set(tabular(await thermo.capture("Readings", {}))) == {"temperature_c"}


async def test_python_model_string_accepts_a_factory_function():
    registry = default_registry(entry_points=list)
    counter = registry.create(make_ctx("generic", "python:tests.components.plugins:make_counter"))
    assert tabular(await counter.capture("Count", {})) == {"count": 1}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("python:no_such_package.sensors:Thermo", "cannot import module 'no_such_package.sensors'"),
        ("python:tests.components.plugins:Missing", "has no attribute 'Missing'"),
        ("python:tests.components.plugins", "expected 'python:package.module:Class'"),
        ("python::Thermo", "expected 'python:package.module:Class'"),
        ("python:collections:OrderedDict", "is not a Ferry component (missing"),
        ("python:tests.components.plugins:SyncCapture", "not 'async def': ['capture']"),
        ("python:tests.components.plugins:NoContext", "must be callable with one argument"),
        ("python:tests.components.plugins:NOT_CALLABLE", "is not a class or callable"),
        ("python:tests.components.plugins:make_nothing", "which is not a Ferry component"),
    ],
)
def test_broken_python_plugin_gives_a_config_error_naming_the_model_string(model, expected):
    with pytest.raises(ComponentConfigError) as info:
        default_registry(entry_points=list).create(make_ctx("sensor", model))
    assert repr(model) in str(info.value)
    assert expected in str(info.value)


def test_plugin_constructor_failure_becomes_a_config_error_with_its_cause():
    model = "python:tests.components.plugins:DeviceMissing"
    with pytest.raises(ComponentConfigError) as info:
        default_registry(entry_points=list).create(make_ctx("sensor", model, name="probe"))
    assert "rdk:component:sensor/probe" in str(info.value)
    assert "failed to start: FileNotFoundError" in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_attribute_error_names_the_component_model_and_attribute():
    with pytest.raises(ComponentConfigError) as info:
        default_registry(entry_points=list).create(
            make_ctx("sensor", "fake", {"fail_rate": 2}, name="env")
        )
    message = str(info.value)
    assert message.startswith("rdk:component:sensor/env (model 'fake'): attribute 'fail_rate'")
    assert "[0, 1]" in message


async def test_entry_point_plugin_is_found_by_name_and_loaded_only_when_used():
    ep = FakeEntryPoint("rdk:component:sensor/counter", plugins.Counter)
    other = FakeEntryPoint("rdk:component:sensor/unused", plugins.Counter)
    registry = default_registry(entry_points=lambda: [ep, other])
    assert registry.models("rdk:component:sensor") == ["counter", "fake", "system", "unused"]
    assert ep.loads == []
    counter = registry.create(make_ctx("sensor", "counter"))
    assert tabular(await counter.capture("Count", {})) == {"count": 1}
    assert ep.loads == ["rdk:component:sensor/counter"]
    assert other.loads == []


def test_entry_point_is_scoped_to_its_api():
    ep = FakeEntryPoint("rdk:component:camera/counter", plugins.Counter)
    registry = default_registry(entry_points=lambda: [ep])
    with pytest.raises(ComponentConfigError, match="unknown model 'counter'"):
        registry.create(make_ctx("sensor", "counter"))


def test_entry_point_that_fails_to_load_gives_a_config_error_naming_it():
    ep = FakeEntryPoint("rdk:component:sensor/broken", ImportError("no module named 'smbus'"))
    registry = default_registry(entry_points=lambda: [ep])
    with pytest.raises(ComponentConfigError) as info:
        registry.create(make_ctx("sensor", "broken"))
    assert "'broken'" in str(info.value)
    assert "'rdk:component:sensor/broken'" in str(info.value)
    assert "smbus" in str(info.value)


def test_entry_point_that_is_not_a_component_is_rejected():
    ep = FakeEntryPoint("rdk:component:sensor/dict", dict)
    with pytest.raises(ComponentConfigError, match="is not a Ferry component"):
        default_registry(entry_points=lambda: [ep]).create(make_ctx("sensor", "dict"))


def test_malformed_entry_point_names_are_ignored():
    eps = [FakeEntryPoint("no-slash", plugins.Counter), FakeEntryPoint("/x", plugins.Counter)]
    assert default_registry(entry_points=lambda: eps).models("rdk:component:sensor") == [
        "fake",
        "system",
    ]


def test_builtin_model_wins_over_an_entry_point_with_the_same_name():
    ep = FakeEntryPoint("rdk:component:sensor/fake", plugins.Counter)
    registry = default_registry(entry_points=lambda: [ep])
    assert isinstance(registry.create(make_ctx("sensor", "fake")), FakeSensor)
    assert ep.loads == []


def test_entry_points_are_listed_once_per_registry():
    calls: list[int] = []

    def source() -> list[FakeEntryPoint]:
        calls.append(1)
        return []

    registry = default_registry(entry_points=source)
    registry.models("rdk:component:sensor")
    registry.models("rdk:component:camera")
    assert calls == [1]


def test_default_registry_reads_the_installed_entry_point_group():
    assert ENTRY_POINT_GROUP == "ferry.components"
    assert isinstance(installed_entry_points(), list)
    assert "fake" in default_registry().models("rdk:component:sensor")


def test_registries_are_independent():
    first, second = default_registry(entry_points=list), default_registry(entry_points=list)
    first.register("rdk:component:sensor", "counter", plugins.Counter)
    assert "counter" in first.models("rdk:component:sensor")
    assert "counter" not in second.models("rdk:component:sensor")


def test_register_refuses_a_duplicate_unless_replacing():
    registry = Registry()
    registry.register("rdk:component:sensor", "counter", plugins.Counter)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("rdk:component:sensor", "counter", plugins.make_counter)
    registry.register("rdk:component:sensor", "counter", plugins.make_counter, replace=True)
    assert registry.resolve("rdk:component:sensor", "counter") is plugins.make_counter


def test_empty_registry_knows_nothing():
    assert Registry().models("rdk:component:sensor") == []


@pytest.mark.parametrize(
    ("type_str", "api"),
    [
        ("sensor", "rdk:component:sensor"),
        ("camera", "rdk:component:camera"),
        ("movement_sensor", "rdk:component:movement_sensor"),
        ("movementsensor", "rdk:component:movement_sensor"),
        ("powersensor", "rdk:component:power_sensor"),
        ("rdk:component:arm", "rdk:component:arm"),
        ("acme:component:lidar", "acme:component:lidar"),
    ],
)
def test_api_for_type_maps_config_types_to_apis(type_str, api):
    assert api_for_type(type_str) == api


def test_api_for_type_uses_the_namespace():
    assert api_for_type("lidar", namespace="acme") == "acme:component:lidar"


@pytest.mark.parametrize("bad", ["", "rdk:sensor", "rdk::sensor", "a:b:c:d"])
def test_api_for_type_rejects_malformed_types(bad):
    with pytest.raises(ComponentConfigError):
        api_for_type(bad)


def test_builtin_models_follow_the_protocol_shape():
    for factory in BUILTIN_MODELS.values():
        assert isinstance(factory, type)
        assert inspect.iscoroutinefunction(factory.capture)
        assert inspect.iscoroutinefunction(factory.aclose)
