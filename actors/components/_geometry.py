"""Small rigid-body helpers for the fake arm and movement sensor (pure Python, no numpy).

Rotations are 3x3 row-major tuples. Viam expresses orientations as *orientation
vectors*: the unit vector the frame's z axis points along (``o_x, o_y, o_z``) plus
a roll ``theta`` about it; ``orientation_vector`` follows the convention of rdk's
``spatialmath`` (``QuatToOV``), so a pure yaw ``ψ`` gives ``(0, 0, 1, ψ)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

Vec = tuple[float, float, float]
Mat = tuple[Vec, Vec, Vec]
# A homogeneous transform kept as (rotation, translation).
Transform = tuple[Mat, Vec]

_EPS: Final = 1e-4

# Universal Robots UR5e, standard Denavit-Hartenberg parameters (metres, radians):
# (d, a, alpha) per joint, from the manufacturer's published kinematics table.
UR5E_DH: Final = (
    (0.1625, 0.0, math.pi / 2),
    (0.0, -0.425, 0.0),
    (0.0, -0.3922, 0.0),
    (0.1333, 0.0, math.pi / 2),
    (0.0997, 0.0, -math.pi / 2),
    (0.0996, 0.0, 0.0),
)


def dot(a: Vec, b: Vec) -> float:
    """The dot product."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec, b: Vec) -> Vec:
    """The cross product."""
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a: Vec) -> float:
    """The Euclidean length."""
    return math.sqrt(dot(a, a))


def mat_vec(m: Mat, v: Vec) -> Vec:
    """``m @ v``."""
    return (dot(m[0], v), dot(m[1], v), dot(m[2], v))


def mat_mul(a: Mat, b: Mat) -> Mat:
    """``a @ b``."""
    cols = ((b[0][0], b[1][0], b[2][0]), (b[0][1], b[1][1], b[2][1]), (b[0][2], b[1][2], b[2][2]))
    r0 = (dot(a[0], cols[0]), dot(a[0], cols[1]), dot(a[0], cols[2]))
    r1 = (dot(a[1], cols[0]), dot(a[1], cols[1]), dot(a[1], cols[2]))
    r2 = (dot(a[2], cols[0]), dot(a[2], cols[1]), dot(a[2], cols[2]))
    return (r0, r1, r2)


def rot_z(angle: float) -> Mat:
    """A rotation by ``angle`` radians about z (counter-clockwise seen from above)."""
    c, s = math.cos(angle), math.sin(angle)
    return ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))


def axis_angle(axis: Vec, angle: float) -> Mat:
    """The rotation by ``angle`` radians about the unit vector ``axis`` (Rodrigues)."""
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    t = 1.0 - c
    return (
        (t * x * x + c, t * x * y - s * z, t * x * z + s * y),
        (t * x * y + s * z, t * y * y + c, t * y * z - s * x),
        (t * x * z - s * y, t * y * z + s * x, t * z * z + c),
    )


def dh_chain(joints_rad: Sequence[float], dh: Sequence[tuple[float, float, float]]) -> Transform:
    """Forward kinematics: the flange pose for ``joints_rad`` under standard DH parameters.

    Example::

        rot, (x, y, z) = dh_chain([0.0] * 6, UR5E_DH)
        assert round(x, 4) == -0.8172
    """
    rot: Mat = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    pos: Vec = (0.0, 0.0, 0.0)
    for theta, (d, a, alpha) in zip(joints_rad, dh, strict=True):
        ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
        link: Mat = ((ct, -st * ca, st * sa), (st, ct * ca, -ct * sa), (0.0, sa, ca))
        offset = mat_vec(rot, (a * ct, a * st, d))
        pos = (pos[0] + offset[0], pos[1] + offset[1], pos[2] + offset[2])
        rot = mat_mul(rot, link)
    return rot, pos


def orientation_vector(rot: Mat) -> tuple[float, float, float, float]:
    """Viam's orientation vector of ``rot``: ``(o_x, o_y, o_z, theta_degrees)``.

    Example::

        assert orientation_vector(rot_z(math.radians(30)))[3] == pytest.approx(30)
    """
    new_z: Vec = (rot[0][2], rot[1][2], rot[2][2])
    new_x: Vec = (-rot[0][0], -rot[1][0], -rot[2][0])  # rdk rotates the -x axis
    if 1.0 - abs(new_z[2]) > _EPS:
        plane_local = cross(new_z, new_x)
        plane_global = cross(new_z, (0.0, 0.0, 1.0))
        cos_t = dot(plane_local, plane_global) / (norm(plane_local) * norm(plane_global))
        theta = math.acos(max(-1.0, min(1.0, cos_t)))
        if theta > _EPS:
            # acos loses the sign: undo a rotation of -theta and see which way lands on the plane.
            test_z = mat_vec(axis_angle(new_z, -theta), (0.0, 0.0, 1.0))
            plane_test = cross(new_z, test_z)
            cos_test = dot(plane_local, plane_test) / (norm(plane_local) * norm(plane_test))
            if 1.0 - cos_test < _EPS * _EPS:
                theta = -theta
        else:
            theta = 0.0
    elif new_z[2] > 0:
        theta = -math.atan2(new_x[1], -new_x[0])
    else:
        theta = -math.atan2(new_x[1], new_x[0])
    return (new_z[0], new_z[1], new_z[2], math.degrees(theta))
