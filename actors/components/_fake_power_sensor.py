"""The ``fake`` power sensor: a battery feeding a load that breathes on a 20-second cycle.

The load current swings ±30 % around its mean on the wall clock, and the battery
voltage sags under it through a small internal resistance, so voltage, current
and power stay consistent (``power = voltage * current``). Measurement noise
comes from ``ctx.rng``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from actors.components._protocol import Tabular
from actors.components._support import DispatchedComponent, Dispatcher, bool_attr, number_attr

if TYPE_CHECKING:
    import random

    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params
    from actors.ports import WallClock

_LOAD_PERIOD_S: Final = 20.0
_INTERNAL_OHMS: Final = 0.05


@final
@dataclass(frozen=True, slots=True)
class _Sample:
    volts: float
    amperes: float

    @property
    def watts(self) -> float:
        return self.volts * self.amperes


@final
class FakePowerSensor(DispatchedComponent):
    """``rdk:component:power_sensor`` model ``fake``: battery voltage, load current, power.

    Attributes (all optional):
        voltage: open-circuit voltage (default 12.6).
        current_a: mean load current (default 1.5).
        is_ac: report alternating current (default false).
        noise: multiplies the measurement noise (default 1.0; 0 removes it).
        fail_rate, latency_ms: the shared fault hooks.

    Methods:
        ``Voltage`` → ``{"volts": v, "is_ac": bool}``;
        ``Current`` → ``{"amperes": a, "is_ac": bool}``;
        ``Power`` → ``{"watts": w}``;
        ``Readings`` → ``{"voltage", "current", "is_ac", "power"}`` (rdk's keys);
        ``DoCommand``.

    Example::

        power = FakePowerSensor(ctx)
        result = await power.capture("Voltage", {})
        assert result.data["is_ac"] is False
    """

    def __init__(self, ctx: ComponentContext) -> None:
        attrs = ctx.attributes
        self._voltage = number_attr(attrs, "voltage", 12.6, lo=0.0)
        self._current = number_attr(attrs, "current_a", 1.5, lo=0.0)
        self._is_ac = bool_attr(attrs, "is_ac", False)
        self._noise = number_attr(attrs, "noise", 1.0, lo=0.0)
        self._rng: random.Random = ctx.rng
        self._clock: WallClock = ctx.clock
        self._t0_ns = ctx.clock.now_ns()
        self._dispatch = Dispatcher(
            ctx,
            {
                "Voltage": self._volts,
                "Current": self._amperes,
                "Power": self._watts,
                "Readings": self._readings,
            },
        )

    def _sample(self) -> _Sample:
        t = (self._clock.now_ns() - self._t0_ns) / 1e9
        amps = self._current * (1 + 0.3 * math.sin(2 * math.pi * t / _LOAD_PERIOD_S))
        amps = max(0.0, amps + self._rng.gauss(0.0, 0.01 * self._noise))
        volts = self._voltage - _INTERNAL_OHMS * amps + self._rng.gauss(0.0, 0.005 * self._noise)
        return _Sample(volts=round(max(0.0, volts), 4), amperes=round(amps, 4))

    async def _volts(self, params: Params) -> Captured:
        del params
        return Tabular({"volts": self._sample().volts, "is_ac": self._is_ac})

    async def _amperes(self, params: Params) -> Captured:
        del params
        return Tabular({"amperes": self._sample().amperes, "is_ac": self._is_ac})

    async def _watts(self, params: Params) -> Captured:
        del params
        return Tabular({"watts": round(self._sample().watts, 4)})

    async def _readings(self, params: Params) -> Captured:
        del params
        s = self._sample()
        return Tabular(
            {
                "voltage": s.volts,
                "current": s.amperes,
                "is_ac": self._is_ac,
                "power": round(s.watts, 4),
            }
        )
