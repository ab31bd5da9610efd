"""An example user component: a thermometer, as a Ferry plugin.

It implements Ferry's component protocol (``actors.components.Component``):
constructed with a ``ComponentContext``, it lists its capture methods, performs
captures, and closes. Config::

    {
      "name": "room",
      "api": "rdk:component:sensor",
      "model": "python:my_robot.sensors:Thermometer",
      "attributes": {"path": "/sys/class/thermal/thermal_zone0/temp", "offset_c": -1.5}
    }

With ``path`` it reads a Linux thermal-zone file (millidegrees Celsius); without
it, it simulates a room near 20 °C from the seeded ``ctx.rng``, so runs replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from actors.components import (
    Captured,
    ComponentConfigError,
    ComponentContext,
    SkipReading,
    Tabular,
    UnknownMethod,
)

if TYPE_CHECKING:
    from actors.codec import JsonValue


@final
class Thermometer:
    """A sensor with ``Readings`` → ``{"temperature_c": float}`` and ``DoCommand``.

    Attributes:
        path: a file holding the temperature in millidegrees (optional).
        offset_c: calibration offset added to every reading (default 0).

    Example::

        thermo = Thermometer(ctx)
        result = await thermo.capture("Readings", {})
        assert "temperature_c" in result.data
    """

    def __init__(self, ctx: ComponentContext) -> None:
        path = ctx.attributes.get("path")
        offset = ctx.attributes.get("offset_c", 0.0)
        if path is not None and not isinstance(path, str):
            raise ComponentConfigError(f"attribute 'path' must be a string, got {path!r}")
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ComponentConfigError(f"attribute 'offset_c' must be a number, got {offset!r}")
        self._path = Path(path) if path else None
        self._offset = float(offset)
        self._rng = ctx.rng  # the only source of randomness: seeded, so runs replay
        self._simulated = 20.0

    def capture_methods(self) -> frozenset[str]:
        """The methods a ``capture_methods`` config entry may name."""
        return frozenset({"Readings", "DoCommand"})

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        """Returns the bare response; Ferry wraps it as ``{"readings": ...}``."""
        if method == "Readings":
            return Tabular({"temperature_c": round(await self._read() + self._offset, 2)})
        if method == "DoCommand":
            command = params.get("docommand_input")
            if not isinstance(command, Mapping):
                raise ValueError("DoCommand needs additional_params.docommand_input (an object)")
            return Tabular({"echo": dict(command)})
        raise UnknownMethod(f"Thermometer has no capture method {method!r}")

    async def aclose(self) -> None:
        """Nothing to release: the file is opened per reading."""

    async def _read(self) -> float:
        if self._path is None:
            self._simulated += self._rng.gauss(0.0, 0.05)
            return self._simulated
        # File reads block: keep them off the event loop.
        text = await trio.to_thread.run_sync(self._path.read_text)
        if not text.strip():
            raise SkipReading  # the driver has no value yet: skip quietly
        return int(text) / 1000.0
