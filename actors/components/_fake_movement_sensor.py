"""The ``fake`` movement sensor: a GPS + IMU on a vehicle driving circles.

The vehicle drives counter-clockwise around a circle at constant speed, driven
by the injected wall clock, so every method describes the same motion at the
same instant: the position moves along the circle, the heading is tangent to it,
the yaw rate is speed/radius and the sideways acceleration is speed²/radius.
GPS noise comes from ``ctx.rng``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

from actors.components._geometry import orientation_vector, rot_z
from actors.components._protocol import Tabular
from actors.components._support import DispatchedComponent, Dispatcher, number_attr

if TYPE_CHECKING:
    import random

    from actors.codec import JsonObject
    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params
    from actors.ports import WallClock

GRAVITY: Final = 9.80665  # m/s², standard gravity
_M_PER_DEG_LAT: Final = 111_195.0  # mean Earth radius * pi/180


@final
@dataclass(frozen=True, slots=True)
class _Motion:
    """Where the vehicle is and how it moves at one instant (noise-free)."""

    latitude: float
    longitude: float
    yaw_deg: float  # counter-clockwise from east, (-180, 180]
    speed: float  # m/s, forward
    yaw_rate_deg: float  # deg/s, counter-clockwise
    lateral_accel: float  # m/s², towards the circle's centre (to the left)

    @property
    def compass_deg(self) -> float:
        """Heading clockwise from north, in [0, 360)."""
        return (90.0 - self.yaw_deg) % 360.0


@final
class FakeMovementSensor(DispatchedComponent):
    """``rdk:component:movement_sensor`` model ``fake``: a vehicle driving circles.

    Attributes (all optional):
        latitude, longitude: the circle's centre (default 40.7484, -73.9857).
        altitude_m: default 10.
        radius_m: default 20 (> 0).
        speed_mps: default 1.5 (0 parks the vehicle).
        gps_noise_m: standard deviation of the position noise (default 0.5).
        fail_rate, latency_ms: the shared fault hooks.

    Methods (shapes of Viam's response messages):
        ``Position`` → ``{"coordinate": {"latitude", "longitude"}, "altitude_m"}``;
        ``LinearVelocity`` → ``{"linear_velocity": {"x", "y", "z"}}`` (m/s, body frame,
        y forward); ``AngularVelocity`` → ``{"angular_velocity": {"x", "y", "z"}}`` (deg/s);
        ``CompassHeading`` → ``{"value": degrees clockwise from north}``;
        ``LinearAcceleration`` → ``{"linear_acceleration": {"x", "y", "z"}}`` (m/s²,
        accelerometer-style: z includes gravity);
        ``Orientation`` → ``{"orientation": {"o_x", "o_y", "o_z", "theta"}}``;
        ``Readings`` → rdk's tagged values: ``position`` (``{"_type": "geopoint", "lat",
        "lng"}``), ``altitude``, ``linear_velocity`` and ``linear_acceleration``
        (``_type`` ``vector3``), ``angular_velocity``, ``compass``, ``orientation``
        (``_type`` ``orientation_vector_degrees``, keys ``ox oy oz theta``);
        ``DoCommand``.

    Example::

        gps = FakeMovementSensor(ctx)
        result = await gps.capture("CompassHeading", {})
        assert 0 <= result.data["value"] < 360
    """

    def __init__(self, ctx: ComponentContext) -> None:
        attrs = ctx.attributes
        self._lat0 = number_attr(attrs, "latitude", 40.7484, lo=-90.0, hi=90.0)
        self._lng0 = number_attr(attrs, "longitude", -73.9857, lo=-180.0, hi=180.0)
        self._altitude = number_attr(attrs, "altitude_m", 10.0)
        self._radius = number_attr(attrs, "radius_m", 20.0, lo=1e-3)
        self._speed = number_attr(attrs, "speed_mps", 1.5, lo=0.0)
        self._gps_noise = number_attr(attrs, "gps_noise_m", 0.5, lo=0.0)
        self._rng: random.Random = ctx.rng
        self._clock: WallClock = ctx.clock
        self._t0_ns = ctx.clock.now_ns()
        self._phase0 = self._rng.uniform(0.0, 2 * math.pi)
        self._dispatch = Dispatcher(
            ctx,
            {
                "Position": self._position,
                "LinearVelocity": self._linear_velocity,
                "AngularVelocity": self._angular_velocity,
                "CompassHeading": self._compass_heading,
                "LinearAcceleration": self._linear_acceleration,
                "Orientation": self._orientation,
                "Readings": self._readings,
            },
        )

    def _motion(self) -> _Motion:
        t = (self._clock.now_ns() - self._t0_ns) / 1e9
        omega = self._speed / self._radius
        phase = self._phase0 + omega * t
        north, east = self._radius * math.sin(phase), self._radius * math.cos(phase)
        yaw = math.degrees(phase + math.pi / 2)
        yaw = (yaw + 180.0) % 360.0 - 180.0
        return _Motion(
            latitude=self._lat0 + north / _M_PER_DEG_LAT,
            longitude=self._lng0 + east / (_M_PER_DEG_LAT * math.cos(math.radians(self._lat0))),
            yaw_deg=yaw,
            speed=self._speed,
            yaw_rate_deg=math.degrees(omega),
            lateral_accel=self._speed * omega,
        )

    def _noisy_fix(self, m: _Motion) -> tuple[float, float]:
        if not self._gps_noise:
            return m.latitude, m.longitude
        dn, de = self._rng.gauss(0, self._gps_noise), self._rng.gauss(0, self._gps_noise)
        cos_lat = math.cos(math.radians(self._lat0))
        return m.latitude + dn / _M_PER_DEG_LAT, m.longitude + de / (_M_PER_DEG_LAT * cos_lat)

    async def _position(self, params: Params) -> Captured:
        del params
        lat, lng = self._noisy_fix(self._motion())
        coordinate: JsonObject = {"latitude": round(lat, 8), "longitude": round(lng, 8)}
        return Tabular({"coordinate": coordinate, "altitude_m": self._altitude})

    async def _linear_velocity(self, params: Params) -> Captured:
        del params
        return Tabular({"linear_velocity": _vec(0.0, self._motion().speed, 0.0)})

    async def _angular_velocity(self, params: Params) -> Captured:
        del params
        return Tabular({"angular_velocity": _vec(0.0, 0.0, self._motion().yaw_rate_deg)})

    async def _compass_heading(self, params: Params) -> Captured:
        del params
        return Tabular({"value": round(self._motion().compass_deg, 4)})

    async def _linear_acceleration(self, params: Params) -> Captured:
        del params
        # Turning left: the centripetal acceleration points to -x in the body frame.
        return Tabular({"linear_acceleration": _vec(-self._motion().lateral_accel, 0.0, GRAVITY)})

    async def _orientation(self, params: Params) -> Captured:
        del params
        return Tabular({"orientation": _orientation(self._motion().yaw_deg)})

    async def _readings(self, params: Params) -> Captured:
        del params
        m = self._motion()
        lat, lng = self._noisy_fix(m)
        o = _orientation(m.yaw_deg)
        return Tabular(
            {
                "position": {"_type": "geopoint", "lat": round(lat, 8), "lng": round(lng, 8)},
                "altitude": self._altitude,
                "linear_velocity": {"_type": "vector3", **_vec(0.0, m.speed, 0.0)},
                "linear_acceleration": {
                    "_type": "vector3",
                    **_vec(-m.lateral_accel, 0.0, GRAVITY),
                },
                "angular_velocity": {"_type": "angular_velocity", **_vec(0.0, 0.0, m.yaw_rate_deg)},
                "compass": round(m.compass_deg, 4),
                "orientation": {
                    "_type": "orientation_vector_degrees",
                    "ox": o["o_x"],
                    "oy": o["o_y"],
                    "oz": o["o_z"],
                    "theta": o["theta"],
                },
            }
        )


def _vec(x: float, y: float, z: float) -> dict[str, float]:
    return {"x": round(x, 6), "y": round(y, 6), "z": round(z, 6)}


def _orientation(yaw_deg: float) -> dict[str, float]:
    o_x, o_y, o_z, theta = orientation_vector(rot_z(math.radians(yaw_deg)))
    return {
        "o_x": round(o_x, 6),
        "o_y": round(o_y, 6),
        "o_z": round(o_z, 6),
        "theta": round(theta, 4),
    }
