"""The fake models: seeded determinism, plausible values, shapes, and the fault hooks."""

from __future__ import annotations

import contextlib
import itertools
import math

import pytest
import trio

from actors.codec import StructEncoder
from actors.components import (
    ComponentConfigError,
    FakeArm,
    FakeEncoder,
    FakeMotor,
    FakeMovementSensor,
    FakePowerSensor,
    FakeSensor,
    InjectedFault,
    UnknownMethod,
)
from actors.components._geometry import UR5E_DH, dh_chain, orientation_vector, rot_z
from tests.components.support import ManualClock, make_ctx, tabular

# (type, model class, tabular methods) for every fake with tabular methods only.
TABULAR_FAKES = [
    ("sensor", FakeSensor, ["Readings"]),
    ("arm", FakeArm, ["JointPositions", "EndPosition"]),
    (
        "movement_sensor",
        FakeMovementSensor,
        [
            "Position",
            "LinearVelocity",
            "AngularVelocity",
            "CompassHeading",
            "LinearAcceleration",
            "Orientation",
            "Readings",
        ],
    ),
    ("motor", FakeMotor, ["Position", "IsPowered"]),
    ("encoder", FakeEncoder, ["TicksCount"]),
    ("power_sensor", FakePowerSensor, ["Voltage", "Current", "Power", "Readings"]),
]
IDS = [t for t, _, _ in TABULAR_FAKES]


async def _series(type_str, cls, methods, seed, steps=5):
    clock = ManualClock()
    component = cls(make_ctx(type_str, "fake", seed=seed, clock=clock))
    out = []
    for _ in range(steps):
        for method in methods:
            out.append(tabular(await component.capture(method, {})))
        clock.advance(0.7)
    return out


@pytest.mark.parametrize(("type_str", "cls", "methods"), TABULAR_FAKES, ids=IDS)
async def test_same_seed_and_clock_give_the_same_readings(type_str, cls, methods):
    assert await _series(type_str, cls, methods, 7) == await _series(type_str, cls, methods, 7)


@pytest.mark.parametrize(("type_str", "cls", "methods"), TABULAR_FAKES, ids=IDS)
async def test_different_seeds_give_different_readings(type_str, cls, methods):
    assert await _series(type_str, cls, methods, 7) != await _series(type_str, cls, methods, 8)


@pytest.mark.parametrize(("type_str", "cls", "methods"), TABULAR_FAKES, ids=IDS)
async def test_capture_methods_are_the_viam_methods_plus_do_command(type_str, cls, methods):
    component = cls(make_ctx(type_str, "fake"))
    assert component.capture_methods() == {*methods, "DoCommand"}


@pytest.mark.parametrize(("type_str", "cls", "methods"), TABULAR_FAKES, ids=IDS)
async def test_every_reading_encodes_as_a_protobuf_struct(type_str, cls, methods):
    encoder = StructEncoder()
    for data in await _series(type_str, cls, methods, 3, steps=2):
        assert encoder.encode(data)


@pytest.mark.parametrize(("type_str", "cls", "methods"), TABULAR_FAKES, ids=IDS)
async def test_unknown_method_raises_unknown_method_naming_it(type_str, cls, methods):
    component = cls(make_ctx(type_str, "fake", name="thing"))
    with pytest.raises(UnknownMethod, match=r"thing.*'ReadImage'"):
        await component.capture("ReadImage", {})


async def test_do_command_echoes_its_input():
    sensor = FakeSensor(make_ctx("sensor", "fake"))
    cmd = {"set": {"gain": 2}, "tags": ["a"]}
    assert tabular(await sensor.capture("DoCommand", {"docommand_input": cmd})) == cmd


async def test_do_command_describe_reports_identity_and_methods():
    arm = FakeArm(make_ctx("arm", "fake", name="left"))
    out = tabular(await arm.capture("DoCommand", {"docommand_input": {"command": "describe"}}))
    assert out == {
        "api": "rdk:component:arm",
        "name": "left",
        "model": "fake",
        "methods": ["DoCommand", "EndPosition", "JointPositions"],
    }


@pytest.mark.parametrize("params", [{}, {"docommand_input": "status"}])
async def test_do_command_without_an_input_object_fails_the_capture(params):
    sensor = FakeSensor(make_ctx("sensor", "fake"))
    with pytest.raises(ValueError, match="docommand_input"):
        await sensor.capture("DoCommand", params)


async def test_fail_rate_one_fails_every_capture():
    sensor = FakeSensor(make_ctx("sensor", "fake", {"fail_rate": 1}))
    for _ in range(5):
        with pytest.raises(InjectedFault, match="fail_rate=1"):
            await sensor.capture("Readings", {})


async def _failure_pattern(seed):
    motor = FakeMotor(make_ctx("motor", "fake", {"fail_rate": 0.5}, seed=seed))
    pattern = []
    for _ in range(40):
        try:
            await motor.capture("Position", {})
        except InjectedFault:
            pattern.append(True)
        else:
            pattern.append(False)
    return pattern


async def test_fail_rate_fails_a_seeded_share_of_captures():
    pattern = await _failure_pattern(1)
    assert 10 <= sum(pattern) <= 30
    assert pattern == await _failure_pattern(1)
    assert pattern != await _failure_pattern(2)


async def test_fail_rate_does_not_change_the_data_sequence():
    plain = FakeSensor(make_ctx("sensor", "fake", seed=5))
    flaky = FakeSensor(make_ctx("sensor", "fake", {"fail_rate": 0.3}, seed=5))
    expected = [tabular(await plain.capture("Readings", {})) for _ in range(10)]
    got = []
    while len(got) < 10:
        with contextlib.suppress(InjectedFault):
            got.append(tabular(await flaky.capture("Readings", {})))
    assert got == expected


async def test_latency_ms_delays_the_answer_by_exactly_that_long(autojump_clock):
    sensor = FakeSensor(make_ctx("sensor", "fake", {"latency_ms": 250}))
    t0 = trio.current_time()
    await sensor.capture("Readings", {})
    assert trio.current_time() - t0 == pytest.approx(0.25)


async def test_latency_ms_makes_a_hang_a_caller_can_time_out(autojump_clock):
    sensor = FakeSensor(make_ctx("sensor", "fake", {"latency_ms": 60_000}))
    with trio.move_on_after(1) as scope:
        await sensor.capture("Readings", {})
    assert scope.cancelled_caught


@pytest.mark.parametrize(
    ("attrs", "attribute"),
    [
        ({"fail_rate": -0.1}, "fail_rate"),
        ({"fail_rate": True}, "fail_rate"),
        ({"latency_ms": "slow"}, "latency_ms"),
        ({"noise": -1}, "noise"),
        ({"channels": "temperature"}, "channels"),
        ({"channels": ["temperature", "radiation"]}, "channels"),
    ],
)
def test_bad_attribute_fails_construction_naming_it(attrs, attribute):
    with pytest.raises(ComponentConfigError, match=f"attribute '{attribute}'"):
        FakeSensor(make_ctx("sensor", "fake", attrs))


# --- sensor ---------------------------------------------------------------------------------


async def test_fake_sensor_reports_temperature_humidity_pressure_by_default():
    data = tabular(await FakeSensor(make_ctx("sensor", "fake")).capture("Readings", {}))
    assert set(data) == {"temperature_c", "humidity_pct", "pressure_hpa"}


async def test_fake_sensor_channels_attribute_chooses_the_keys():
    sensor = FakeSensor(make_ctx("sensor", "fake", {"channels": ["co2", "light"]}))
    assert set(tabular(await sensor.capture("Readings", {}))) == {"co2_ppm", "illuminance_lux"}


async def test_fake_sensor_random_walk_stays_physically_plausible():
    sensor = FakeSensor(make_ctx("sensor", "fake", seed=11))
    temps = []
    for _ in range(2000):
        data = tabular(await sensor.capture("Readings", {}))
        temps.append(data["temperature_c"])
        assert 0 <= data["humidity_pct"] <= 100
        assert 990 < data["pressure_hpa"] < 1040
    assert min(temps) > 15
    assert max(temps) < 27
    assert max(abs(a - b) for a, b in itertools.pairwise(temps)) < 1.0


async def test_fake_sensor_noise_zero_holds_a_constant_value():
    sensor = FakeSensor(make_ctx("sensor", "fake", {"noise": 0}))
    first = tabular(await sensor.capture("Readings", {}))
    assert first == {"temperature_c": 21.0, "humidity_pct": 45.0, "pressure_hpa": 1013.25}
    assert tabular(await sensor.capture("Readings", {})) == first


# --- arm ------------------------------------------------------------------------------------


async def test_fake_arm_reports_six_joint_angles_and_a_pose():
    arm = FakeArm(make_ctx("arm", "fake"))
    joints = tabular(await arm.capture("JointPositions", {}))["positions"]["values"]
    assert len(joints) == 6
    assert all(-180 <= j <= 180 for j in joints)
    pose = tabular(await arm.capture("EndPosition", {}))["pose"]
    assert set(pose) == {"x", "y", "z", "o_x", "o_y", "o_z", "theta"}
    assert math.hypot(pose["o_x"], pose["o_y"], pose["o_z"]) == pytest.approx(1, abs=1e-5)
    # A UR5e reaches at most ~850 mm from its shoulder.
    assert math.hypot(pose["x"], pose["y"], pose["z"] - 162.5) < 1000


async def test_fake_arm_moves_smoothly_with_the_clock():
    clock = ManualClock()
    arm = FakeArm(make_ctx("arm", "fake", {"noise_deg": 0}, clock=clock))
    before = tabular(await arm.capture("JointPositions", {}))["positions"]["values"]
    clock.advance(0.1)
    after = tabular(await arm.capture("JointPositions", {}))["positions"]["values"]
    assert before != after
    assert max(abs(a - b) for a, b in zip(before, after, strict=True)) < 5


async def test_fake_arm_pose_is_the_forward_kinematics_of_its_joints():
    arm = FakeArm(make_ctx("arm", "fake", {"noise_deg": 0}))
    joints = tabular(await arm.capture("JointPositions", {}))["positions"]["values"]
    pose = tabular(await arm.capture("EndPosition", {}))["pose"]
    _, (x, y, z) = dh_chain([math.radians(j) for j in joints], UR5E_DH)
    assert (pose["x"], pose["y"], pose["z"]) == pytest.approx((x * 1e3, y * 1e3, z * 1e3), abs=0.1)


def test_ur5e_home_pose_matches_its_published_kinematics():
    _, (x, y, z) = dh_chain([0.0] * 6, UR5E_DH)
    assert (x, y, z) == pytest.approx((-0.8172, -0.2329, 0.0628), abs=1e-4)


@pytest.mark.parametrize("yaw", [0.0, 30.0, 135.0, -90.0])
def test_orientation_vector_of_a_pure_yaw_points_up_with_theta_the_yaw(yaw):
    assert orientation_vector(rot_z(math.radians(yaw))) == pytest.approx((0, 0, 1, yaw))


# --- movement sensor ------------------------------------------------------------------------


async def test_movement_sensor_methods_describe_one_consistent_motion():
    ms = FakeMovementSensor(make_ctx("movement_sensor", "fake", {"gps_noise_m": 0}))
    heading = tabular(await ms.capture("CompassHeading", {}))["value"]
    orientation = tabular(await ms.capture("Orientation", {}))["orientation"]
    assert heading == pytest.approx((90 - orientation["theta"]) % 360, abs=1e-3)
    assert tabular(await ms.capture("LinearVelocity", {}))["linear_velocity"]["y"] == 1.5
    yaw_rate = tabular(await ms.capture("AngularVelocity", {}))["angular_velocity"]["z"]
    assert yaw_rate == pytest.approx(math.degrees(1.5 / 20), abs=1e-5)
    accel = tabular(await ms.capture("LinearAcceleration", {}))["linear_acceleration"]
    assert accel["x"] == pytest.approx(-(1.5**2) / 20)
    assert accel["z"] == pytest.approx(9.80665)


async def test_movement_sensor_drives_a_circle_of_the_configured_radius():
    clock = ManualClock()
    attrs = {"gps_noise_m": 0, "radius_m": 50, "latitude": 10.0, "longitude": 20.0}
    ms = FakeMovementSensor(make_ctx("movement_sensor", "fake", attrs, clock=clock))
    for _ in range(10):
        fix = tabular(await ms.capture("Position", {}))
        north = (fix["coordinate"]["latitude"] - 10.0) * 111_195
        east = (fix["coordinate"]["longitude"] - 20.0) * 111_195 * math.cos(math.radians(10))
        assert math.hypot(north, east) == pytest.approx(50, abs=0.01)
        assert fix["altitude_m"] == 10.0
        clock.advance(7)


async def test_movement_sensor_readings_use_rdk_tagged_values():
    ms = FakeMovementSensor(make_ctx("movement_sensor", "fake"))
    data = tabular(await ms.capture("Readings", {}))
    assert set(data) == {
        "position",
        "altitude",
        "linear_velocity",
        "linear_acceleration",
        "angular_velocity",
        "compass",
        "orientation",
    }
    assert data["position"]["_type"] == "geopoint"
    assert set(data["position"]) == {"_type", "lat", "lng"}
    assert data["linear_velocity"]["_type"] == "vector3"
    assert data["angular_velocity"]["_type"] == "angular_velocity"
    assert data["orientation"]["_type"] == "orientation_vector_degrees"
    assert set(data["orientation"]) == {"_type", "ox", "oy", "oz", "theta"}


# --- motor and encoder ----------------------------------------------------------------------


async def test_motor_position_grows_at_its_rpm_and_stops_while_off():
    clock = ManualClock()
    attrs = {"max_rpm": 120, "power_pct": 0.5, "duty_period_s": 10}
    motor = FakeMotor(make_ctx("motor", "fake", attrs, clock=clock))
    start = tabular(await motor.capture("Position", {}))["position"]
    assert tabular(await motor.capture("IsPowered", {})) == {"is_on": True, "power_pct": 0.5}
    clock.advance(5)  # 5 s on at 60 rpm: one revolution per second
    assert tabular(await motor.capture("Position", {}))["position"] == pytest.approx(start + 5)
    assert tabular(await motor.capture("IsPowered", {})) == {"is_on": False, "power_pct": 0.0}
    clock.advance(4.9)  # still in the off half
    assert tabular(await motor.capture("Position", {}))["position"] == pytest.approx(start + 5)
    clock.advance(0.1)
    assert tabular(await motor.capture("IsPowered", {}))["is_on"] is True


async def test_encoder_counts_ticks_per_rotation():
    clock = ManualClock()
    encoder = FakeEncoder(
        make_ctx("encoder", "fake", {"rpm": 60, "ticks_per_rotation": 100}, clock=clock)
    )
    first = tabular(await encoder.capture("TicksCount", {}))
    assert first["position_type"] == "POSITION_TYPE_TICKS_COUNT"
    clock.advance(2.5)
    assert tabular(await encoder.capture("TicksCount", {}))["value"] == first["value"] + 250


# --- power sensor ---------------------------------------------------------------------------


async def test_power_sensor_power_is_voltage_times_current():
    power = FakePowerSensor(make_ctx("power_sensor", "fake"))
    data = tabular(await power.capture("Readings", {}))
    assert set(data) == {"voltage", "current", "is_ac", "power"}
    assert data["power"] == pytest.approx(data["voltage"] * data["current"], rel=1e-3)
    assert 12 < data["voltage"] < 12.7
    assert set(tabular(await power.capture("Voltage", {}))) == {"volts", "is_ac"}
    assert set(tabular(await power.capture("Current", {}))) == {"amperes", "is_ac"}
    assert set(tabular(await power.capture("Power", {}))) == {"watts"}


async def test_power_sensor_reports_ac_when_configured():
    power = FakePowerSensor(make_ctx("power_sensor", "fake", {"is_ac": True, "voltage": 230}))
    assert tabular(await power.capture("Voltage", {}))["is_ac"] is True


async def test_the_sensors_constant_attribute_is_merged_into_every_reading():
    """A fake sensor can serve as a selective syncer: ``constant`` values appear in each reading."""
    sensor = FakeSensor(make_ctx("sensor", "fake", {"constant": {"should_sync": True}}))
    for _ in range(3):
        data = tabular(await sensor.capture("Readings", {}))
        assert data["should_sync"] is True
        assert "temperature_c" in data


def test_a_constant_that_is_not_an_object_is_a_config_error_naming_it():
    with pytest.raises(ComponentConfigError, match="'constant' must be an object"):
        FakeSensor(make_ctx("sensor", "fake", {"constant": [1]}))
