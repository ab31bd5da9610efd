"""The ``fake`` arm: a six-joint arm (UR5e kinematics) sweeping smoothly through its workspace.

Each joint follows its own slow sine around a seeded centre, driven by the
injected wall clock, so ``JointPositions`` and ``EndPosition`` captured at the
same instant agree (the pose is the forward kinematics of the joints) and the
motion speed does not depend on how often it is captured. Under the simulator
the clock is virtual, so runs replay exactly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, final

from actors.components._geometry import UR5E_DH, dh_chain, orientation_vector
from actors.components._protocol import Tabular
from actors.components._support import DispatchedComponent, Dispatcher, number_attr

if TYPE_CHECKING:
    import random

    from actors.codec import JsonValue
    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params
    from actors.ports import WallClock

JOINTS = 6


@final
class FakeArm(DispatchedComponent):
    """``rdk:component:arm`` model ``fake``: smooth, seeded joint motion.

    Attributes (all optional):
        speed: multiplies every joint's angular frequency (default 1.0; 0 holds still).
        noise_deg: standard deviation of the encoder noise added to ``JointPositions``
            (default 0.01).
        fail_rate, latency_ms: the shared fault hooks.

    Methods:
        ``JointPositions`` → ``{"positions": {"values": [6 angles in degrees]}}``;
        ``EndPosition`` → ``{"pose": {"x", "y", "z" (mm), "o_x", "o_y", "o_z",
        "theta" (degrees)}}``, Viam's orientation-vector pose of the flange;
        ``DoCommand``.

    Example::

        arm = FakeArm(ctx)
        result = await arm.capture("JointPositions", {})
        assert len(result.data["positions"]["values"]) == 6
    """

    def __init__(self, ctx: ComponentContext) -> None:
        speed = number_attr(ctx.attributes, "speed", 1.0, lo=0.0)
        self._noise = number_attr(ctx.attributes, "noise_deg", 0.01, lo=0.0)
        self._rng: random.Random = ctx.rng
        self._clock: WallClock = ctx.clock
        self._t0_ns = ctx.clock.now_ns()
        # Per joint: centre, amplitude (degrees), angular frequency (rad/s), phase.
        self._centre = [self._rng.uniform(-60.0, 60.0) for _ in range(JOINTS)]
        self._amplitude = [self._rng.uniform(10.0, 40.0) for _ in range(JOINTS)]
        self._omega = [speed * 2 * math.pi / self._rng.uniform(8.0, 30.0) for _ in range(JOINTS)]
        self._phase = [self._rng.uniform(0.0, 2 * math.pi) for _ in range(JOINTS)]
        self._dispatch = Dispatcher(
            ctx, {"JointPositions": self._joint_positions, "EndPosition": self._end_position}
        )

    def joints_deg(self) -> list[float]:
        """The noise-free joint angles now, in degrees."""
        t = (self._clock.now_ns() - self._t0_ns) / 1e9
        return [
            c + a * math.sin(w * t + p)
            for c, a, w, p in zip(
                self._centre, self._amplitude, self._omega, self._phase, strict=True
            )
        ]

    async def _joint_positions(self, params: Params) -> Captured:
        del params  # passed as ``extra`` by Viam; unused.
        values: list[JsonValue] = [
            round(j + self._rng.gauss(0.0, self._noise), 4) if self._noise else round(j, 4)
            for j in self.joints_deg()
        ]
        return Tabular({"positions": {"values": values}})

    async def _end_position(self, params: Params) -> Captured:
        del params
        rot, (x, y, z) = dh_chain([math.radians(j) for j in self.joints_deg()], UR5E_DH)
        o_x, o_y, o_z, theta = orientation_vector(rot)
        pose: dict[str, JsonValue] = {
            "x": round(x * 1000, 3),
            "y": round(y * 1000, 3),
            "z": round(z * 1000, 3),
            "o_x": round(o_x, 6),
            "o_y": round(o_y, 6),
            "o_z": round(o_z, 6),
            "theta": round(theta, 4),
        }
        return Tabular({"pose": pose})
