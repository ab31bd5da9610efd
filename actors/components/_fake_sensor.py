"""The ``fake`` sensor: plausible environmental readings, reproducible from a seed.

Each channel is a mean-reverting random walk (an Ornstein-Uhlenbeck process in
discrete steps): it drifts like a real room's temperature but never wanders off
to impossible values. One step is taken per ``Readings`` call, and every random
draw comes from ``ctx.rng``, so the same seed gives the same series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from actors.components._protocol import ComponentConfigError, Tabular
from actors.components._support import DispatchedComponent, Dispatcher, number_attr, str_list_attr

if TYPE_CHECKING:
    import random

    from actors.codec import JsonValue
    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params


@final
@dataclass(frozen=True, slots=True)
class _Channel:
    """One physical quantity: its reading key, resting value, step noise and bounds."""

    key: str
    mean: float
    sigma: float
    lo: float
    hi: float


# Reversion per step; the stationary spread is sigma / sqrt(1 - (1 - _THETA)^2) ≈ 3.2 sigma.
_THETA: Final = 0.05

CHANNELS: Final[dict[str, _Channel]] = {
    "temperature": _Channel("temperature_c", 21.0, 0.1, -40.0, 85.0),
    "humidity": _Channel("humidity_pct", 45.0, 0.5, 0.0, 100.0),
    "pressure": _Channel("pressure_hpa", 1013.25, 0.2, 870.0, 1085.0),
    "co2": _Channel("co2_ppm", 420.0, 5.0, 0.0, 40000.0),
    "light": _Channel("illuminance_lux", 300.0, 10.0, 0.0, 120000.0),
}
DEFAULT_CHANNELS: Final = ("temperature", "humidity", "pressure")


@final
class FakeSensor(DispatchedComponent):
    """``rdk:component:sensor`` model ``fake``: seeded environmental readings.

    Attributes (all optional):
        channels: which quantities to report, from ``temperature`` (``temperature_c``),
            ``humidity`` (``humidity_pct``), ``pressure`` (``pressure_hpa``), ``co2``
            (``co2_ppm``) and ``light`` (``illuminance_lux``); default the first three.
        noise: multiplies every channel's step noise (default 1.0; 0 makes them constant).
        constant: an object merged into every reading as is, e.g.
            ``{"should_sync": true}`` for a selective syncer that a config edit flips.
        fail_rate, latency_ms: the shared fault hooks.

    Methods: ``Readings`` → ``{"temperature_c": 21.3, "humidity_pct": 44.8, ...}``
    (the collector wraps it as ``{"readings": ...}``) and ``DoCommand``.

    Example::

        sensor = FakeSensor(ctx)
        result = await sensor.capture("Readings", {})
        assert isinstance(result, Tabular) and "temperature_c" in result.data
    """

    def __init__(self, ctx: ComponentContext) -> None:
        attrs = ctx.attributes
        names = str_list_attr(attrs, "channels", DEFAULT_CHANNELS, choices=list(CHANNELS))
        self._noise = number_attr(attrs, "noise", 1.0, lo=0.0)
        constant = attrs.get("constant", {})
        if not isinstance(constant, dict):
            raise ComponentConfigError(f"attribute 'constant' must be an object, got {constant!r}")
        self._constant: dict[str, JsonValue] = dict(constant)
        self._rng: random.Random = ctx.rng
        self._channels = [CHANNELS[n] for n in names]
        spread = math.sqrt(1.0 - (1.0 - _THETA) ** 2)
        self._state = [
            _clamp(c, c.mean + self._rng.gauss(0.0, c.sigma * self._noise / spread))
            for c in self._channels
        ]
        self._dispatch = Dispatcher(ctx, {"Readings": self._readings})

    async def _readings(self, params: Params) -> Captured:
        del params  # Viam passes them as ``extra``; the fake has no use for them.
        out: dict[str, JsonValue] = {}
        for i, channel in enumerate(self._channels):
            x = self._state[i]
            x += _THETA * (channel.mean - x) + self._rng.gauss(0.0, channel.sigma * self._noise)
            self._state[i] = x = _clamp(channel, x)
            out[channel.key] = round(x, 3)
        out.update(self._constant)
        return Tabular(out)


def _clamp(channel: _Channel, x: float) -> float:
    return min(channel.hi, max(channel.lo, x))
