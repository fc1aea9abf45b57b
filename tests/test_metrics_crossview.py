"""Gripper mask IoU (the paper's mIoU): exact geometry scores high, perturbed geometry scores low."""

from __future__ import annotations

import numpy as np
import pytest

from geo4d_studio.geometry import se3
from geo4d_studio.geometry.camera import depth_to_pointmap, pixel_rays
from geo4d_studio.metrics.crossview import gripper_iou, gripper_miou, mask_iou, reproject_mask

K = np.array([[120.0, 0, 79.5], [0, 120.0, 59.5], [0, 0, 1]])
BOX_MIN, BOX_MAX = np.array([-0.06, -0.04, 0.0]), np.array([0.06, 0.04, 0.1])


def box_depth(T_world_cam, h=120, w=160):
    """Exact depth of an axis-aligned box (the 'gripper') floating in empty space, by slab ray casting."""
    rays = pixel_rays(K, h, w).astype(np.float64) @ T_world_cam[:3, :3].T
    origin = T_world_cam[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (BOX_MIN - origin) / rays, (BOX_MAX - origin) / rays
    near = np.nanmax(np.minimum(t1, t2), axis=-1)
    far = np.nanmin(np.maximum(t1, t2), axis=-1)
    return np.where((near < far) & (near > 0), near, 0).astype(np.float32)


def test_reproject_mask_identity_and_hole_filling():
    T = se3.look_at([0.5, -0.4, 0.45], [0, 0, 0.05])
    depth = box_depth(T)
    mask = depth > 0
    same = reproject_mask(mask, depth_to_pointmap(depth, K), K, np.eye(4), mask.shape)
    assert np.array_equal(same, mask)
    sparse = mask.copy()
    sparse[::2, ::2] = False  # missing splats inside the mask are closed
    filled = reproject_mask(sparse, depth_to_pointmap(depth, K), K, np.eye(4), mask.shape)
    assert mask_iou(filled, mask) > 0.97
    assert np.isnan(mask_iou(np.zeros((2, 2)), np.zeros((2, 2))))


def test_gripper_iou_synthetic_two_views():
    T_src = se3.look_at([0.5, -0.4, 0.45], [0, 0, 0.05])
    T_dst = se3.look_at([-0.3, -0.5, 0.4], [0, 0, 0.05])
    depth_src, depth_dst = box_depth(T_src), box_depth(T_dst)
    pm_src = depth_to_pointmap(depth_src, K)
    T_dst_src = se3.compose(se3.invert(T_dst), T_src)
    exact = gripper_iou(depth_src > 0, pm_src, depth_dst > 0, K, T_dst_src)
    moved = gripper_iou(
        depth_src > 0, pm_src + np.float32([0.06, 0, 0]) * (pm_src[..., 2:] > 0), depth_dst > 0, K, T_dst_src
    )
    assert exact > 0.7  # the far faces seen only by dst cannot be lifted from src
    assert moved < exact - 0.3
    # the pointmap may already be in the destination frame (model output for view m in view n's frame)
    pm_in_dst = se3.transform_points(T_dst_src, pm_src) * (pm_src[..., 2:] > 0)
    assert gripper_iou(depth_src > 0, pm_in_dst, depth_dst > 0, K) == pytest.approx(exact)


def sample_pair_miou(scene, ref, other, frames, perturb=None):
    cam_n, cam_m = scene.cameras[ref], scene.cameras[other]
    masks_n = np.stack([scene.gripper_mask(ref, t) for t in frames])
    masks_m = np.stack([scene.gripper_mask(other, t) for t in frames])
    pms = np.stack([depth_to_pointmap(scene.depth(ref, t), cam_n.K) for t in frames])
    if perturb is not None:
        pms = perturb(pms)
    T_m_n = np.stack([se3.compose(se3.invert(cam_m.pose(t)), cam_n.pose(t)) for t in frames])
    return gripper_miou(masks_n, pms, masks_m, cam_m.K, T_m_n)


def test_gripper_miou_on_shipped_sample_episode(sample_path):
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        frames = list(range(0, scene.num_frames, 6))
        names = scene.camera_names
        exact = [
            sample_pair_miou(scene, a, b, frames) for a, b in zip(names, names[1:] + names[:1], strict=True)
        ]
        deeper = [
            sample_pair_miou(scene, a, b, frames, perturb=lambda pm: pm * np.float32(1.15))
            for a, b in zip(names, names[1:] + names[:1], strict=True)
        ]
    # measured on move_mug_s0000 (frames 0, 6, ...): 0.72 / 0.42 / 0.50 / 0.65; pairs score low where the
    # other camera sees far more of the gripper than the reference (not an error: precision is ~0.9)
    assert min(exact) > 0.35 and np.mean(exact) > 0.5, exact
    # depth 15 % too far: measured 0.19 / 0.01 / 0.16 / 0.07
    assert max(d - e for d, e in zip(deeper, exact, strict=True)) < -0.25, (exact, deeper)
