"""Which code builds a component: the registry keyed by API and model.

A component's config names its API (``rdk:component:sensor``) and model. The
registry resolves the model, in this order:

1. ``python:package.module:Class``: import the module and use the class (or any
   callable taking a ``ComponentContext``), checked to look like a ``Component``;
2. a factory registered for ``(api, model)``: the built-in models, or any added
   with ``Registry.register``;
3. an installed entry point in the group ``ferry.components`` named
   ``"<api>/<model>"`` (e.g. ``rdk:component:sensor/my_thermo``), loaded only
   when first needed.

A model written the Viam way, ``rdk:builtin:fake``, means the built-in ``fake``.
There is no module-level registry: ``default_registry()`` builds a fresh one, and
whoever builds the robot passes it down (STYLE §9).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, Protocol, TypeGuard, final

from actors.components._fake_arm import FakeArm
from actors.components._fake_camera import FakeCamera
from actors.components._fake_motor import FakeEncoder, FakeMotor
from actors.components._fake_movement_sensor import FakeMovementSensor
from actors.components._fake_power_sensor import FakePowerSensor
from actors.components._fake_sensor import FakeSensor
from actors.components._file_camera import FileCamera
from actors.components._protocol import ComponentConfigError
from actors.components._system_sensor import SystemSensor

if TYPE_CHECKING:
    from actors.components._protocol import Component, ComponentContext

LOGGER: Final = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "ferry.components"
PYTHON_PREFIX: Final = "python:"
BUILTIN_NAMESPACE: Final = "rdk:builtin:"

ComponentFactory = Callable[["ComponentContext"], "Component"]

# Go package names used in Viam's docs and code, mapped to the API subtype names.
_TYPE_ALIASES: Final = {"movementsensor": "movement_sensor", "powersensor": "power_sensor"}
_COMPONENT_MEMBERS: Final = ("capture_methods", "capture", "aclose")
_ASYNC_MEMBERS: Final = ("capture", "aclose")


class EntryPointLike(Protocol):
    """What the registry needs of an ``importlib.metadata.EntryPoint``."""

    @property
    def name(self) -> str:
        """``"<api>/<model>"``."""
        ...

    def load(self) -> object:
        """Imports and returns the object the entry point names."""
        ...


EntryPointSource = Callable[[], Iterable[EntryPointLike]]


def installed_entry_points() -> list[EntryPointLike]:
    """The installed distributions' entry points in the ``ferry.components`` group.

    Example::

        names = [ep.name for ep in installed_entry_points()]
    """
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def api_for_type(type_str: str, namespace: str = "rdk") -> str:
    """The component API for a config ``type``, e.g. ``"sensor"`` → ``"rdk:component:sensor"``.

    A full API string (``"acme:component:lidar"``) is returned unchanged; Viam's Go
    package names ``movementsensor`` and ``powersensor`` mean ``movement_sensor``
    and ``power_sensor``.

    Raises:
        ComponentConfigError: the type is empty or a malformed API string.

    Example::

        assert api_for_type("sensor") == "rdk:component:sensor"
        assert api_for_type("movementsensor") == "rdk:component:movement_sensor"
    """
    if ":" in type_str:
        parts = type_str.split(":")
        if len(parts) != 3 or not all(parts):
            msg = f"component type {type_str!r} must be a name or 'namespace:type:subtype'"
            raise ComponentConfigError(msg)
        return type_str
    if not type_str:
        raise ComponentConfigError("component type must not be empty")
    return f"{namespace}:component:{_TYPE_ALIASES.get(type_str, type_str)}"


def _api(subtype: str) -> str:
    return f"rdk:component:{subtype}"


BUILTIN_MODELS: Final[dict[tuple[str, str], ComponentFactory]] = {
    (_api("sensor"), "fake"): FakeSensor,
    (_api("sensor"), "system"): SystemSensor,
    (_api("camera"), "fake"): FakeCamera,
    (_api("camera"), "file"): FileCamera,
    (_api("arm"), "fake"): FakeArm,
    (_api("movement_sensor"), "fake"): FakeMovementSensor,
    (_api("motor"), "fake"): FakeMotor,
    (_api("encoder"), "fake"): FakeEncoder,
    (_api("power_sensor"), "fake"): FakePowerSensor,
}


@final
class Registry:
    """Maps ``(api, model)`` to the factory that builds the component.

    Args:
        entry_points: where plugin entry points come from; defaults to none, and
            ``default_registry()`` passes the installed ones. Tests pass fakes.

    Example::

        registry = default_registry()
        sensor = registry.create(ctx)  # ctx.resource = ResourceName(api, "env", "fake")
        assert "fake" in registry.models("rdk:component:sensor")
    """

    def __init__(self, *, entry_points: EntryPointSource | None = None) -> None:
        self._factories: dict[tuple[str, str], ComponentFactory] = {}
        self._entry_point_source = entry_points
        self._entry_points: dict[tuple[str, str], EntryPointLike] | None = None

    def register(
        self, api: str, model: str, factory: ComponentFactory, *, replace: bool = False
    ) -> None:
        """Adds a factory for ``(api, model)``.

        Raises:
            ValueError: one is already registered and ``replace`` is false.

        Example::

            registry.register("rdk:component:sensor", "thermo", Thermometer)
        """
        key = (api, model)
        if key in self._factories and not replace:
            raise ValueError(f"model {model!r} of {api} is already registered")
        self._factories[key] = factory

    def models(self, api: str) -> list[str]:
        """The models known for ``api`` (registered and entry points), sorted.

        Example::

            assert registry.models("rdk:component:camera") == ["fake", "file"]
        """
        known = {model for (a, model) in self._factories if a == api}
        known |= {model for (a, model) in self._plugin_entry_points() if a == api}
        return sorted(known)

    def resolve(self, api: str, model: str) -> ComponentFactory:
        """The factory for ``(api, model)``; may import the plugin's module.

        Raises:
            ComponentConfigError: the model is unknown, or its plugin cannot be
                imported or is not a component; the message names the model string.

        Example::

            factory = registry.resolve(api, "python:my_robot.sensors:Thermometer")
        """
        if model.startswith(PYTHON_PREFIX):
            return _python_factory(model)
        short = model.removeprefix(BUILTIN_NAMESPACE)
        factory = self._factories.get((api, short)) or self._factories.get((api, model))
        if factory is not None:
            return factory
        entry_point = self._plugin_entry_points().get((api, model))
        if entry_point is not None:
            return _entry_point_factory(entry_point, model)
        known = ", ".join(repr(m) for m in self.models(api)) or "none"
        msg = (
            f"unknown model {model!r} for {api}; known models: {known}"
            f" (or 'python:package.module:Class', or a {ENTRY_POINT_GROUP!r} entry point"
            f" named '{api}/<model>')"
        )
        raise ComponentConfigError(msg)

    def create(self, ctx: ComponentContext) -> Component:
        """Builds the component ``ctx.resource`` names.

        Resolving may import a plugin and constructing may touch the file system
        (the ``file`` camera checks its folder), so call it while building the
        robot, not on a hot path.

        Raises:
            ComponentConfigError: unknown model, broken plugin, invalid attributes, or
                a constructor that raised (chained as ``__cause__``); the message names
                the component and its model.

        Example::

            camera = registry.create(ComponentContext(
                ResourceName("rdk:component:camera", "cam", "fake"), {}, random.Random(1), clock))
        """
        res = ctx.resource
        try:
            factory = self.resolve(res.api, res.model)
        except ComponentConfigError as exc:
            raise ComponentConfigError(f"{res.api}/{res.name}: {exc}") from exc
        where = f"{res.api}/{res.name} (model {res.model!r})"
        try:
            component = factory(ctx)
        except ComponentConfigError as exc:
            raise ComponentConfigError(f"{where}: {exc}") from exc
        except Exception as exc:
            # A plugin's constructor may fail any way (a missing device is an OSError);
            # to the caller it is one more component that cannot start from its config.
            msg = f"{where}: failed to start: {type(exc).__name__}: {exc}"
            raise ComponentConfigError(msg) from exc
        return _checked(component, res.model)

    def _plugin_entry_points(self) -> dict[tuple[str, str], EntryPointLike]:
        if self._entry_points is None:
            found: dict[tuple[str, str], EntryPointLike] = {}
            for ep in self._entry_point_source() if self._entry_point_source else ():
                api, sep, model = ep.name.partition("/")
                if not sep or not api or not model:
                    LOGGER.warning(
                        "ignoring %s entry point %r: its name must be '<api>/<model>'",
                        ENTRY_POINT_GROUP,
                        ep.name,
                    )
                    continue
                found.setdefault((api, model), ep)
            self._entry_points = found
        return self._entry_points


def default_registry(*, entry_points: EntryPointSource | None = installed_entry_points) -> Registry:
    """A new registry holding the built-in models and the installed plugin entry points.

    Example::

        registry = default_registry()
        assert "system" in registry.models("rdk:component:sensor")
    """
    registry = Registry(entry_points=entry_points)
    for (api, model), factory in BUILTIN_MODELS.items():
        registry.register(api, model, factory)
    return registry


# --- plugins ------------------------------------------------------------------------------------


def _python_factory(model: str) -> ComponentFactory:
    target = model.removeprefix(PYTHON_PREFIX)
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        msg = f"model {model!r}: expected 'python:package.module:Class'"
        raise ComponentConfigError(msg)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        msg = f"model {model!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        raise ComponentConfigError(msg) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            msg = f"model {model!r}: module {module_name!r} has no attribute {attr!r}"
            raise ComponentConfigError(msg) from exc
    return _plugin_factory(obj, model)


def _entry_point_factory(entry_point: EntryPointLike, model: str) -> ComponentFactory:
    try:
        obj = entry_point.load()
    except Exception as exc:
        msg = (
            f"model {model!r}: cannot load {ENTRY_POINT_GROUP!r} entry point"
            f" {entry_point.name!r}: {type(exc).__name__}: {exc}"
        )
        raise ComponentConfigError(msg) from exc
    return _plugin_factory(obj, model)


def _plugin_factory(obj: object, model: str) -> ComponentFactory:
    """Checks what a plugin names and wraps it as a factory that checks its product."""
    if isinstance(obj, type):
        missing = [m for m in _COMPONENT_MEMBERS if not callable(getattr(obj, m, None))]
        not_async = [
            m
            for m in _ASYNC_MEMBERS
            if m not in missing and not inspect.iscoroutinefunction(getattr(obj, m))
        ]
        if missing or not_async:
            detail = f"missing {missing}" if missing else f"not 'async def': {not_async}"
            msg = (
                f"model {model!r}: {obj.__qualname__} is not a Ferry component ({detail});"
                " see docs/components.md"
            )
            raise ComponentConfigError(msg)
    if not callable(obj):
        msg = f"model {model!r}: {obj!r} is not a class or callable taking a ComponentContext"
        raise ComponentConfigError(msg)
    _check_signature(obj, model)
    maker: Callable[..., object] = obj

    def factory(ctx: ComponentContext) -> Component:
        return _checked(maker(ctx), model)

    return factory


def _check_signature(obj: Callable[..., object], model: str) -> None:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return
    try:
        signature.bind(object())
    except TypeError as exc:
        msg = f"model {model!r}: must be callable with one argument, the ComponentContext: {exc}"
        raise ComponentConfigError(msg) from exc


def _is_component(obj: object) -> TypeGuard[Component]:
    return all(callable(getattr(obj, m, None)) for m in _COMPONENT_MEMBERS)


def _checked(component: object, model: str) -> Component:
    if not _is_component(component):
        msg = (
            f"model {model!r} built {type(component).__qualname__}, which is not a Ferry"
            f" component (needs {', '.join(_COMPONENT_MEMBERS)})"
        )
        raise ComponentConfigError(msg)
    return component
