"""Shared plumbing for the built-in models: attributes, method dispatch, fault injection.

Every built-in model reads its attributes with the ``*_attr`` helpers (so a bad
value fails construction with a ``ComponentConfigError`` naming the attribute),
and routes ``capture`` through a ``Dispatcher``, which rejects unknown methods
and applies the two test hooks every model accepts:

- ``latency_ms`` (number ≥ 0, default 0): ``trio.sleep`` this long before answering,
  to exercise capture timeouts and slow devices;
- ``fail_rate`` (number in [0, 1], default 0): the probability that a capture raises
  ``InjectedFault``, drawn from a ``random.Random`` seeded once from ``ctx.rng`` so
  the failures are reproducible and do not shift the model's own data.

Unknown attributes are ignored, as Viam ignores unknown config keys (spec §1.1),
so configs written for Viam's ``fake`` models keep working.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeVar, final

import trio

from actors.components._protocol import (
    ComponentConfigError,
    ComponentContext,
    ResourceName,
    Tabular,
    UnknownMethod,
)

if TYPE_CHECKING:
    from actors.codec import JsonValue
    from actors.components._protocol import Captured
    from actors.ports import BlockingRunner

T = TypeVar("T")

Params = Mapping[str, "JsonValue"]
Handler = Callable[[Params], Awaitable["Captured"]]

DO_COMMAND: Final = "DoCommand"


class InjectedFault(RuntimeError):
    """A capture failure injected by the ``fail_rate`` attribute of a built-in model."""


# --- attributes ---------------------------------------------------------------------------------


def _is_number(value: JsonValue) -> bool:
    # bool is an int subclass; ``true`` is not a number in a config.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo:g}, {hi:g}]"
    if lo is not None:
        return f" >= {lo:g}"
    if hi is not None:
        return f" <= {hi:g}"
    return ""


def number_attr(
    attrs: Mapping[str, JsonValue],
    name: str,
    default: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
) -> float:
    """Reads a finite number attribute, checking its range.

    Args:
        attrs: the component's attributes.
        name: the attribute's key.
        default: the value when the key is absent.
        lo: inclusive lower bound, if any.
        hi: inclusive upper bound, if any.

    Returns:
        The value as a float.

    Raises:
        ComponentConfigError: the value is not a number or is out of range.

    Example::

        rate = number_attr({"fail_rate": 0.1}, "fail_rate", 0.0, lo=0, hi=1)
    """
    value = attrs.get(name, default)
    if not _is_number(value):
        msg = f"attribute {name!r} must be a number{_range_text(lo, hi)}, got {value!r}"
        raise ComponentConfigError(msg)
    assert isinstance(value, int | float)  # narrowed by _is_number
    number = float(value)
    bad = not math.isfinite(number) or (lo is not None and number < lo)
    if bad or (hi is not None and number > hi):
        msg = f"attribute {name!r} must be a number{_range_text(lo, hi)}, got {value!r}"
        raise ComponentConfigError(msg)
    return number


def int_attr(
    attrs: Mapping[str, JsonValue],
    name: str,
    default: int,
    *,
    lo: int | None = None,
    hi: int | None = None,
) -> int:
    """Reads an integer attribute (``3`` or ``3.0``), checking its range.

    Raises:
        ComponentConfigError: the value is not an integer or is out of range.

    Example::

        width = int_attr({"width": 320}, "width", 64, lo=1)
    """
    value = attrs.get(name, default)
    integral = _is_number(value) and isinstance(value, int | float) and float(value).is_integer()
    if not integral:
        msg = f"attribute {name!r} must be an integer{_range_text(lo, hi)}, got {value!r}"
        raise ComponentConfigError(msg)
    assert isinstance(value, int | float)  # narrowed above
    number = int(value)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        msg = f"attribute {name!r} must be an integer{_range_text(lo, hi)}, got {value!r}"
        raise ComponentConfigError(msg)
    return number


def bool_attr(attrs: Mapping[str, JsonValue], name: str, default: bool) -> bool:
    """Reads a boolean attribute.

    Raises:
        ComponentConfigError: the value is not ``true``/``false``.

    Example::

        threaded = bool_attr({}, "encode_in_thread", True)
    """
    value = attrs.get(name, default)
    if not isinstance(value, bool):
        raise ComponentConfigError(f"attribute {name!r} must be true or false, got {value!r}")
    return value


def str_attr(attrs: Mapping[str, JsonValue], name: str, default: str | None = None) -> str:
    """Reads a non-empty string attribute; ``default=None`` makes it required.

    Raises:
        ComponentConfigError: the value is missing (when required), empty or not a string.

    Example::

        folder = str_attr({"folder": "/data/images"}, "folder")
    """
    if name not in attrs and default is None:
        raise ComponentConfigError(f"attribute {name!r} is required")
    value = attrs.get(name, default)
    if not isinstance(value, str) or not value:
        raise ComponentConfigError(f"attribute {name!r} must be a non-empty string, got {value!r}")
    return value


def str_list_attr(
    attrs: Mapping[str, JsonValue],
    name: str,
    default: Sequence[str],
    *,
    choices: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """Reads a list-of-strings attribute, optionally restricted to ``choices``.

    Raises:
        ComponentConfigError: the value is not a list of strings, or names an unknown choice.

    Example::

        channels = str_list_attr({}, "channels", ["temperature"], choices=["temperature"])
    """
    value = attrs.get(name, list(default))
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ComponentConfigError(f"attribute {name!r} must be a list of strings, got {value!r}")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            msg = f"attribute {name!r} must be a list of strings, got item {item!r}"
            raise ComponentConfigError(msg)
        if choices is not None and item not in choices:
            msg = f"attribute {name!r}: unknown value {item!r}; choose from {sorted(choices)}"
            raise ComponentConfigError(msg)
        items.append(item)
    return tuple(items)


# --- capture parameters -------------------------------------------------------------------------


def docommand_input(params: Params) -> Mapping[str, JsonValue]:
    """The ``docommand_input`` object of a ``DoCommand`` capture (spec §1.2).

    Raises:
        ValueError: the key is missing or is not an object; Viam fails every such capture.

    Example::

        cmd = docommand_input({"docommand_input": {"command": "describe"}})
    """
    cmd = params.get("docommand_input")
    if not isinstance(cmd, Mapping):
        msg = f"DoCommand needs additional_params.docommand_input as an object, got {cmd!r}"
        raise ValueError(msg)
    return cmd


def describe_or_echo(
    resource: ResourceName, methods: frozenset[str], cmd: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """The built-in models' shared ``DoCommand`` behaviour.

    ``{"command": "describe"}`` returns the component's identity and capture methods;
    anything else is echoed back unchanged, like many of Viam's fakes.

    Example::

        out = describe_or_echo(resource, frozenset({"Readings"}), {"command": "describe"})
        assert out["methods"] == ["Readings"]
    """
    if cmd.get("command") == "describe":
        return {
            "api": resource.api,
            "name": resource.name,
            "model": resource.model,
            "methods": sorted(methods),
        }
    return dict(cmd)


# --- blocking work -----------------------------------------------------------------------------


async def run_blocking(runner: BlockingRunner | None, fn: Callable[[], T]) -> T:
    """Runs blocking ``fn`` off the event loop: on ``ctx.runner`` if given, else a worker thread.

    The simulator injects an inline runner (no threads on the sim path, STYLE §17).

    Example::

        payload = await run_blocking(ctx.runner, lambda: path.read_bytes())
    """
    if runner is None:
        return await trio.to_thread.run_sync(fn)
    return await runner.run(fn)


# --- dispatch and faults ------------------------------------------------------------------------


@final
class Faults:
    """The ``latency_ms`` and ``fail_rate`` hooks shared by every built-in model.

    Example::

        faults = Faults.from_context(ctx)
        await faults.inject("Readings")  # may sleep, may raise InjectedFault
    """

    def __init__(self, *, latency_s: float, fail_rate: float, rng: random.Random) -> None:
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self._rng = rng

    @classmethod
    def from_context(cls, ctx: ComponentContext) -> Faults:
        """Reads ``latency_ms`` and ``fail_rate`` and seeds a private RNG from ``ctx.rng``.

        Raises:
            ComponentConfigError: either attribute is out of range.
        """
        latency_ms = number_attr(ctx.attributes, "latency_ms", 0.0, lo=0.0)
        fail_rate = number_attr(ctx.attributes, "fail_rate", 0.0, lo=0.0, hi=1.0)
        # One draw from ctx.rng, always, so a model's data does not depend on fail_rate.
        rng = random.Random(ctx.rng.getrandbits(64))
        return cls(latency_s=latency_ms / 1000.0, fail_rate=fail_rate, rng=rng)

    async def inject(self, method: str) -> None:
        """Sleeps ``latency_ms``, then fails with probability ``fail_rate``.

        Raises:
            InjectedFault: this capture was chosen to fail.
        """
        if self.latency_s > 0:
            await trio.sleep(self.latency_s)
        if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
            raise InjectedFault(f"{method}: injected failure (fail_rate={self.fail_rate:g})")


@final
class Dispatcher:
    """Routes ``capture(method, params)`` to a model's handlers, after the fault hooks.

    Every component has ``DoCommand`` (spec §1.2); unless ``handlers`` provides one,
    the dispatcher adds the shared ``describe_or_echo`` behaviour.

    Example::

        dispatch = Dispatcher(ctx, {"Readings": self._readings})
        result = await dispatch.capture("Readings", {})
        assert dispatch.methods == {"Readings", "DoCommand"}
    """

    def __init__(self, ctx: ComponentContext, handlers: Mapping[str, Handler]) -> None:
        self.resource = ctx.resource
        self._handlers = dict(handlers)
        self._handlers.setdefault(DO_COMMAND, self._do_command)
        self.methods = frozenset(self._handlers)
        self.faults = Faults.from_context(ctx)

    async def _do_command(self, params: Params) -> Captured:
        cmd = docommand_input(params)
        return Tabular(describe_or_echo(self.resource, self.methods, cmd))

    async def capture(self, method: str, params: Params) -> Captured:
        """Runs one capture of ``method``.

        Raises:
            UnknownMethod: the model has no such method.
            InjectedFault: ``fail_rate`` chose this capture to fail.
        """
        handler = self._handlers.get(method)
        if handler is None:
            res = self.resource
            msg = (
                f"{res.api}/{res.name} (model {res.model!r}) has no capture method {method!r};"
                f" it has {sorted(self.methods)}"
            )
            raise UnknownMethod(msg)
        await self.faults.inject(method)
        return await handler(params)


class DispatchedComponent:
    """Base of the built-in models: capture methods come from ``self._dispatch``.

    A model builds its ``Dispatcher`` in ``__init__``; this class answers the rest
    of the ``Component`` protocol from it. Models holding resources override ``aclose``.
    """

    _dispatch: Dispatcher

    def capture_methods(self) -> frozenset[str]:
        """The dispatcher's methods, ``DoCommand`` included."""
        return self._dispatch.methods

    async def capture(self, method: str, params: Params) -> Captured:
        """Captures ``method``; see the model's docstring for shapes."""
        return await self._dispatch.capture(method, params)

    async def aclose(self) -> None:
        """Nothing to release."""
