"""The ``fake`` motor and ``fake`` encoder: shafts turning at a steady rate on the wall clock.

Both are driven by the injected wall clock (virtual under the simulator), so
positions grow with elapsed time, not with how often they are captured. The
motor can run a duty cycle (on for the first half of each period, off for the
second) so ``IsPowered`` changes over time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, final

from actors.components._protocol import Tabular
from actors.components._support import DispatchedComponent, Dispatcher, int_attr, number_attr

if TYPE_CHECKING:
    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params
    from actors.ports import WallClock


@final
class FakeMotor(DispatchedComponent):
    """``rdk:component:motor`` model ``fake``: a motor at constant power, optionally cycling.

    Attributes (all optional):
        max_rpm: speed at full power (default 100).
        power_pct: power while on, -1..1 (default 0.5; negative turns backwards).
        duty_period_s: 0 (default) runs continuously; otherwise the motor is on for the
            first half of each period and off for the second.
        fail_rate, latency_ms: the shared fault hooks.

    Methods:
        ``Position`` → ``{"position": revolutions}``;
        ``IsPowered`` → ``{"is_on": bool, "power_pct": float}``;
        ``DoCommand``.

    Example::

        motor = FakeMotor(ctx)
        result = await motor.capture("IsPowered", {})
        assert result.data == {"is_on": True, "power_pct": 0.5}
    """

    def __init__(self, ctx: ComponentContext) -> None:
        attrs = ctx.attributes
        self._max_rpm = number_attr(attrs, "max_rpm", 100.0, lo=0.0)
        self._power = number_attr(attrs, "power_pct", 0.5, lo=-1.0, hi=1.0)
        self._period = number_attr(attrs, "duty_period_s", 0.0, lo=0.0)
        self._clock: WallClock = ctx.clock
        self._t0_ns = ctx.clock.now_ns()
        self._start_revs = round(ctx.rng.uniform(0.0, 1.0), 6)
        self._dispatch = Dispatcher(ctx, {"Position": self._position, "IsPowered": self._powered})

    def _elapsed(self) -> float:
        return (self._clock.now_ns() - self._t0_ns) / 1e9

    def _on_at(self, t: float) -> bool:
        return self._power != 0 and (not self._period or (t % self._period) < self._period / 2)

    def _on_time(self, t: float) -> float:
        if not self._period:
            return t
        half = self._period / 2
        periods = math.floor(t / self._period)
        return periods * half + min(t - periods * self._period, half)

    async def _position(self, params: Params) -> Captured:
        del params
        revs = self._start_revs + self._max_rpm * self._power * self._on_time(self._elapsed()) / 60
        return Tabular({"position": round(revs, 6)})

    async def _powered(self, params: Params) -> Captured:
        del params
        on = self._on_at(self._elapsed())
        return Tabular({"is_on": on, "power_pct": self._power if on else 0.0})


@final
class FakeEncoder(DispatchedComponent):
    """``rdk:component:encoder`` model ``fake``: an incremental encoder on a turning shaft.

    Attributes (all optional):
        rpm: shaft speed (default 60; negative counts down).
        ticks_per_rotation: encoder resolution (default 1024).
        fail_rate, latency_ms: the shared fault hooks.

    Methods:
        ``TicksCount`` → ``{"value": ticks, "position_type": "POSITION_TYPE_TICKS_COUNT"}``;
        ``DoCommand``.

    Example::

        encoder = FakeEncoder(ctx)
        result = await encoder.capture("TicksCount", {})
        assert result.data["position_type"] == "POSITION_TYPE_TICKS_COUNT"
    """

    def __init__(self, ctx: ComponentContext) -> None:
        attrs = ctx.attributes
        self._rpm = number_attr(attrs, "rpm", 60.0)
        self._tpr = int_attr(attrs, "ticks_per_rotation", 1024, lo=1)
        self._clock: WallClock = ctx.clock
        self._t0_ns = ctx.clock.now_ns()
        self._start_ticks = ctx.rng.randrange(self._tpr)
        self._dispatch = Dispatcher(ctx, {"TicksCount": self._ticks})

    async def _ticks(self, params: Params) -> Captured:
        del params
        t = (self._clock.now_ns() - self._t0_ns) / 1e9
        ticks = self._start_ticks + math.floor(self._rpm / 60 * t * self._tpr)
        return Tabular({"value": ticks, "position_type": "POSITION_TYPE_TICKS_COUNT"})
