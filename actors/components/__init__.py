"""Components: built-in models, the registry, and the protocol plugins implement.

Public API:

- the protocol (``_protocol``): ``Component``, ``ComponentContext``, ``ResourceName``,
  the results ``Tabular`` / ``Binary`` (``Captured``), and the errors ``SkipReading``,
  ``ComponentConfigError``, ``UnknownMethod``;
- the registry (``_registry``): ``Registry``, ``default_registry()``,
  ``api_for_type()``, ``ENTRY_POINT_GROUP``, ``BUILTIN_MODELS``;
- the built-in models, for direct use in tests and the simulator: ``FakeSensor``,
  ``SystemSensor``, ``FakeCamera``, ``FileCamera``, ``FakeArm``,
  ``FakeMovementSensor``, ``FakeMotor``, ``FakeEncoder``, ``FakePowerSensor``;
- ``InjectedFault``, raised by a built-in model's ``fail_rate`` hook.

Example::

    registry = default_registry()
    ctx = ComponentContext(ResourceName(api_for_type("sensor"), "env", "fake"), {}, rng, clock)
    sensor = registry.create(ctx)
    result = await sensor.capture("Readings", {})

See docs/components.md.
"""

from actors.components._fake_arm import FakeArm
from actors.components._fake_camera import FakeCamera
from actors.components._fake_motor import FakeEncoder, FakeMotor
from actors.components._fake_movement_sensor import FakeMovementSensor
from actors.components._fake_power_sensor import FakePowerSensor
from actors.components._fake_sensor import FakeSensor
from actors.components._file_camera import FileCamera
from actors.components._protocol import (
    Binary,
    Captured,
    Component,
    ComponentConfigError,
    ComponentContext,
    NowaitCapture,
    ResourceName,
    SkipReading,
    Tabular,
    UnknownMethod,
)
from actors.components._registry import (
    BUILTIN_MODELS,
    ENTRY_POINT_GROUP,
    ComponentFactory,
    EntryPointLike,
    Registry,
    api_for_type,
    default_registry,
    installed_entry_points,
)
from actors.components._support import InjectedFault
from actors.components._system_sensor import SystemSensor

__all__ = [
    "BUILTIN_MODELS",
    "ENTRY_POINT_GROUP",
    "Binary",
    "Captured",
    "Component",
    "ComponentConfigError",
    "ComponentContext",
    "ComponentFactory",
    "EntryPointLike",
    "FakeArm",
    "FakeCamera",
    "FakeEncoder",
    "FakeMotor",
    "FakeMovementSensor",
    "FakePowerSensor",
    "FakeSensor",
    "FileCamera",
    "InjectedFault",
    "NowaitCapture",
    "Registry",
    "ResourceName",
    "SkipReading",
    "SystemSensor",
    "Tabular",
    "UnknownMethod",
    "api_for_type",
    "default_registry",
    "installed_entry_points",
]
