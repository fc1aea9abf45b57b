"""Numpy helpers behind the camera panes, checked against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from geo4d_studio.qt.pane_images import (
    colorize,
    depth_error,
    depth_for_display,
    mask_outline,
    pixel_to_world,
    resize_nearest,
    rgb_error,
    world_to_pixel,
)

K = np.array([[100.0, 0.0, 31.5], [0.0, 110.0, 23.5], [0.0, 0.0, 1.0]])


def pose(yaw: float, t: tuple[float, float, float]) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    T[:3, 3] = t
    return T


def test_pixel_to_world_and_back_round_trip_and_match_the_pinhole_model():
    T = pose(0.7, (0.2, -0.1, 0.5))
    rng = np.random.default_rng(0)
    for u, v, z in zip(
        rng.integers(0, 64, 20), rng.integers(0, 48, 20), rng.uniform(0.2, 3.0, 20), strict=True
    ):
        p = pixel_to_world(int(u), int(v), float(z), K, T)
        cam = np.linalg.inv(T) @ np.append(p, 1.0)
        assert cam[2] == pytest.approx(z)
        assert (cam[0] * K[0, 0] / z + K[0, 2], cam[1] * K[1, 1] / z + K[1, 2]) == pytest.approx((u, v))
        assert world_to_pixel(p, K, T, 48, 64) == pytest.approx((u, v))


def test_world_to_pixel_rejects_points_behind_or_outside():
    T = np.eye(4)
    assert world_to_pixel(np.array([0.0, 0.0, -1.0]), K, T, 48, 64) is None
    assert world_to_pixel(np.array([10.0, 0.0, 1.0]), K, T, 48, 64) is None
    assert world_to_pixel(np.array([0.0, 0.0, 1.0]), K, T, 48, 64) == pytest.approx((31.5, 23.5))


def test_depth_display_and_errors_mask_invalid_pixels():
    recorded = np.array([[1.0, 0.0], [2.0, 3.0]], np.float32)
    generated = np.array([[1.5, 1.0], [0.0, 2.5]], np.float32)
    shown = depth_for_display(recorded)
    assert np.isnan(shown[0, 1]) and shown[1, 1] == 3.0
    err = depth_error(generated, recorded)
    assert err[0, 0] == pytest.approx(0.5) and err[1, 1] == pytest.approx(0.5)
    assert np.isnan(err[0, 1]) and np.isnan(err[1, 0])
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 30, np.uint8)
    b[0, 0] = (0, 0, 90)
    np.testing.assert_allclose(rgb_error(a, b), [[30, 30], [30, 30]])


def test_colorize_maps_the_range_onto_the_table_and_marks_nan():
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    values = np.array([[1.0, 1.5], [3.0, np.nan]], np.float32)
    rgb = colorize(values, 1.0, 2.0, lut, no_data=(1, 2, 3))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], [[0, 127], [255, 1]])  # clipped above the range
    np.testing.assert_array_equal(rgb[1, 1], (1, 2, 3))


def test_errors_resize_the_recording_to_the_generated_size():
    recorded = np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    small = resize_nearest(recorded, 2, 2)
    np.testing.assert_array_equal(small, recorded[[1, 3]][:, [1, 3]])
    assert depth_error(small, recorded).max() == 0.0


def test_mask_outline_is_the_boundary_only():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 2:5] = True
    outline = mask_outline(mask)[..., 3] > 0
    assert outline.sum() == mask.sum() - mask[2:5, 3:4].sum()
    assert not outline[3, 3] and outline[1, 2] and outline[5, 4] and not outline[0].any()
