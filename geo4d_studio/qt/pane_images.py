"""Pure numpy helpers behind the camera panes: display images, error maps, outlines, pixel geometry."""

from __future__ import annotations

import numpy as np


def depth_for_display(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) float32 depth with invalid pixels (0) as NaN, which the panes draw transparent."""
    return np.where(depth_m > 0, depth_m, np.nan).astype(np.float32, copy=False)


def colorize(
    values: np.ndarray, lo: float, hi: float, lut: np.ndarray, no_data: tuple[int, int, int]
) -> np.ndarray:
    """(H, W, 3) uint8 RGB of (H, W) values through a (256, 3) uint8 colour table spanning [lo, hi]
    (clipped); NaN pixels get the `no_data` colour. Drawn as is, with no per-paint conversion."""
    finite = np.isfinite(values)
    scale = 255.0 / max(hi - lo, 1e-9)
    index = np.clip((np.where(finite, values, lo) - lo) * scale, 0, 255).astype(np.uint8)
    rgb = lut[index]
    rgb[~finite] = no_data
    return rgb


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, ...) array to (height, width, ...)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    rows = ((np.arange(height) + 0.5) * h / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * w / width).astype(np.intp)
    return image[rows[:, None], cols[None, :]]


def depth_error(generated_m: np.ndarray, recorded_m: np.ndarray) -> np.ndarray:
    """|generated - recorded| in metres where both are valid, NaN elsewhere (recorded resized to fit)."""
    recorded_m = resize_nearest(recorded_m, *generated_m.shape[:2])
    valid = (generated_m > 0) & (recorded_m > 0)
    return np.where(valid, np.abs(generated_m - recorded_m), np.nan).astype(np.float32)


def rgb_error(generated: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """Mean absolute RGB difference per pixel, 0-255 (recorded resized to the generated size)."""
    recorded = resize_nearest(recorded, *generated.shape[:2])
    diff = np.abs(generated.astype(np.int16) - recorded.astype(np.int16))
    return diff.mean(axis=2).astype(np.float32)


def mask_outline(mask: np.ndarray, color: tuple[int, int, int, int] = (255, 60, 60, 255)) -> np.ndarray:
    """(H, W, 4) uint8 RGBA image: `color` on the boundary pixels of a boolean mask, transparent elsewhere."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, mode="constant", constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    outline = mask & ~interior
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[outline] = color
    return rgba


def pixel_to_world(u: int, v: int, depth_m: float, K: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """World point (3,) seen at integer pixel (u, v) (OpenCV: integers are pixel centres) at a depth."""
    point_cam = np.linalg.solve(K, np.array([u, v, 1.0])) * depth_m
    return T_world_cam[:3, :3] @ point_cam + T_world_cam[:3, 3]


def world_to_pixel(
    point_world: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, height: int, width: int
) -> tuple[float, float] | None:
    """Continuous pixel coordinates (u, v) of a world point, or None when behind or outside the image."""
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    point_cam = R.T @ (np.asarray(point_world, float) - t)
    if point_cam[2] <= 1e-6:
        return None
    uvw = K @ point_cam
    u, v = uvw[0] / uvw[2], uvw[1] / uvw[2]
    if not (-0.5 <= u < width - 0.5 and -0.5 <= v < height - 0.5):
        return None
    return float(u), float(v)
