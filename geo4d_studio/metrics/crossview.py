"""Cross-view consistency of predicted geometry: the paper's gripper mask IoU (mIoU).

The gripper mask of a source view is lifted to 3D with a pointmap (the model's prediction),
moved into a destination camera, projected with its intrinsics and compared with that camera's
own gripper mask:

1. take the points of `pointmap_src` (H, W, 3) under `mask_src` that are valid (not all-zero);
2. map them with `T_dst_src` (4, 4) into the destination camera frame (identity when the pointmap
   is already in that frame, e.g. the model's view-m pointmap expressed in view n's frame);
3. project with `K_dst`; every point in front of the camera and inside the image marks the pixel
   it rounds to (no occlusion test: nothing else is known about the predicted scene);
4. fill the holes between splatted pixels with a 3 x 3 binary closing, added to the splat (so it
   never removes a splatted pixel and grows a solid region only by filling gaps);
5. IoU of that mask with `mask_dst`.

For a Generation: lift view n's mask with `pointmap_ref` and use `T_dst_src = inv(T_world_other) @
T_world_ref`, K_other and view m's mask; or lift view m's mask with `pointmap_other_in_ref` into
view n with the identity and K_ref. mIoU is the mean over frames.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_closing

from geo4d_studio.geometry.se3 import transform_points

_CLOSING = np.ones((3, 3), dtype=bool)


def reproject_mask(
    mask_src: np.ndarray,
    pointmap_src: np.ndarray,
    K_dst: np.ndarray,
    T_dst_src: np.ndarray,
    shape_dst: tuple[int, int],
) -> np.ndarray:
    """Steps 1-4: the source mask as seen from the destination camera, (H_dst, W_dst) bool."""
    mask_src = np.asarray(mask_src, dtype=bool)
    pointmap_src = np.asarray(pointmap_src)
    lifted = pointmap_src[mask_src & np.any(pointmap_src != 0, axis=-1)]
    points = transform_points(np.asarray(T_dst_src, dtype=np.float64), lifted.astype(np.float64))
    h, w = shape_dst
    out = np.zeros(h * w, dtype=bool)
    z = points[:, 2]
    front = z > 0
    pixels = points[front] @ np.asarray(K_dst, dtype=np.float64).T
    u = np.floor(pixels[:, 0] / pixels[:, 2] + 0.5)
    v = np.floor(pixels[:, 1] / pixels[:, 2] + 0.5)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    out[v[inside].astype(np.int64) * w + u[inside].astype(np.int64)] = True
    out = out.reshape(h, w)
    padded = np.pad(out, 1)  # closing must not erode splats at the image border
    return out | binary_closing(padded, structure=_CLOSING)[1:-1, 1:-1]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks; NaN when both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else float("nan")


def gripper_iou(
    mask_src: np.ndarray,
    pointmap_src: np.ndarray,
    mask_dst: np.ndarray,
    K_dst: np.ndarray,
    T_dst_src: np.ndarray | None = None,
) -> float:
    """IoU of the source gripper mask reprojected through `pointmap_src` with the destination mask."""
    T = np.eye(4) if T_dst_src is None else T_dst_src
    mask_dst = np.asarray(mask_dst, dtype=bool)
    return mask_iou(reproject_mask(mask_src, pointmap_src, K_dst, T, mask_dst.shape), mask_dst)


def gripper_miou(
    masks_src: np.ndarray,
    pointmaps_src: np.ndarray,
    masks_dst: np.ndarray,
    K_dst: np.ndarray,
    T_dst_src: np.ndarray | None = None,
) -> float:
    """Mean `gripper_iou` over frames: masks (F, H, W), pointmaps (F, H, W, 3); `T_dst_src` (4, 4)
    for all frames or (F, 4, 4). Frames where neither mask has a gripper pixel are skipped."""
    T = np.broadcast_to(np.eye(4) if T_dst_src is None else T_dst_src, (len(masks_src), 4, 4))
    ious = [
        gripper_iou(m_src, pm, m_dst, K_dst, T_f)
        for m_src, pm, m_dst, T_f in zip(masks_src, pointmaps_src, masks_dst, T, strict=True)
    ]
    return float(np.nanmean(ious)) if not np.all(np.isnan(ious)) else float("nan")
