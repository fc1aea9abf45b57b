"""SE(3) helpers: property tests against their algebraic definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from geo4d_studio.geometry import se3

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
vec3 = arrays(np.float64, 3, elements=finite)
quat = arrays(np.float64, 4, elements=st.floats(-1, 1)).filter(lambda q: np.linalg.norm(q) > 0.1)


@st.composite
def poses(draw):
    return se3.from_quat_xyzw(draw(vec3), draw(quat))


@settings(max_examples=50, deadline=None)
@given(poses(), poses())
def test_invert_compose_is_identity(A, B):
    T = se3.compose(A, B)
    assert np.allclose(se3.compose(T, se3.invert(T)), np.eye(4), atol=1e-9)
    assert np.allclose(se3.compose(se3.invert(B), se3.invert(A)), se3.invert(T), atol=1e-9)
    assert np.allclose(se3.invert(A), np.linalg.inv(A), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(poses(), arrays(np.float64, (5, 3), elements=finite))
def test_transform_points_matches_homogeneous_product(T, points):
    homogeneous = np.concatenate([points, np.ones((5, 1))], axis=1) @ T.T
    assert np.allclose(se3.transform_points(T, points), homogeneous[:, :3], atol=1e-9)
    batched = se3.transform_points(np.stack([T, se3.invert(T)]), np.stack([points[0], points[1]]))
    assert np.allclose(batched[0], homogeneous[0, :3], atol=1e-9)
    assert np.allclose(se3.transform_points(se3.invert(T), batched[0]), points[0], atol=1e-9)


def test_transform_points_keeps_float32():
    pm = np.ones((4, 5, 3), np.float32)
    out = se3.transform_points(se3.from_quat_xyzw([1, 2, 3], [0, 0, 0, 1]), pm)
    assert out.dtype == np.float32 and out.shape == (4, 5, 3)
    assert np.allclose(out[0, 0], [2, 3, 4])


def _relative_angle(A, B):
    return Rotation.from_matrix(A[:3, :3].T @ B[:3, :3]).magnitude()


@settings(max_examples=50, deadline=None)
@given(poses(), poses())
def test_interpolate_endpoints_and_symmetric_midpoint(A, B):
    assert np.allclose(se3.interpolate(A, B, 0.0), A, atol=1e-9)
    assert np.allclose(se3.interpolate(A, B, 1.0), B, atol=1e-9)
    if _relative_angle(A, B) < np.pi - 1e-3:  # the midpoint of a half turn is ambiguous
        mid = se3.interpolate(A, B, 0.5)
        assert np.allclose(mid, se3.interpolate(B, A, 0.5), atol=1e-7)
        assert np.isclose(_relative_angle(A, mid), _relative_angle(mid, B), atol=1e-7)
        assert np.allclose(mid[:3, 3], (A[:3, 3] + B[:3, 3]) / 2)
    assert se3.is_rigid(se3.interpolate(A, B, np.linspace(0, 1, 7))).all()


def test_interpolate_known_rotation():
    A = np.eye(4)
    B = se3.from_quat_xyzw([2, 0, 0], Rotation.from_euler("z", 90, degrees=True).as_quat())
    quarter = se3.interpolate(A, B, 0.25)
    assert np.isclose(Rotation.from_matrix(quarter[:3, :3]).as_euler("xyz", degrees=True)[2], 22.5)
    assert np.allclose(quarter[:3, 3], [0.5, 0, 0])


@settings(max_examples=50, deadline=None)
@given(vec3, quat)
def test_quaternion_round_trip(t, q):
    T = se3.from_quat_xyzw(t, q)
    t2, q2 = se3.to_quat_xyzw(T)
    q_unit = q / np.linalg.norm(q)
    assert np.allclose(t2, t)
    assert np.allclose(q2, q_unit, atol=1e-9) or np.allclose(q2, -q_unit, atol=1e-9)
    assert q2[3] >= 0
    assert np.allclose(se3.from_quat_xyzw(t2, q2), T, atol=1e-12)


def test_is_rigid_rejects_bad_matrices():
    good = se3.from_quat_xyzw([1, 2, 3], [0.1, 0.2, 0.3, 0.9])
    scaled, reflected, nan, bottom = good.copy(), good.copy(), good.copy(), good.copy()
    scaled[:3, :3] *= 1.01
    reflected[:3, 0] *= -1
    nan[0, 3] = np.nan
    bottom[3, 0] = 0.5
    assert se3.is_rigid(good)
    assert se3.is_rigid(np.stack([good, scaled, reflected, nan, bottom])).tolist() == [True] + [False] * 4


def test_look_at_is_opencv_camera():
    eye, target = np.array([1.0, 0.5, 1.0]), np.array([0.0, 0.0, 0.2])
    T = se3.look_at(eye, target)
    assert se3.is_rigid(T)
    assert np.allclose(T[:3, 3], eye)
    forward = (target - eye) / np.linalg.norm(target - eye)
    assert np.allclose(T[:3, 2], forward)  # z toward target
    assert T[:3, 1] @ [0, 0, 1] < 0  # y points down
    assert np.isclose(T[:3, 0] @ [0, 0, 1], 0)  # x horizontal
    in_cam = se3.transform_points(se3.invert(T), target)
    assert np.allclose(in_cam[:2], 0) and in_cam[2] > 0
    # looking along +x with z up: image right is world -y
    assert np.allclose(se3.look_at([0, 0, 0], [1, 0, 0])[:3, 0], [0, -1, 0])


def test_look_at_degenerate_raises():
    with pytest.raises(ValueError):
        se3.look_at([0, 0, 1], [0, 0, 1])
    with pytest.raises(ValueError):
        se3.look_at([0, 0, 2], [0, 0, 0])
