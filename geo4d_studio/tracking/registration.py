"""Open3D registration of an observed partial gripper cloud onto the gripper model.

The observed points are the *source* and the model the *target*: every observed point lies on the
model surface, while much of the model (its far side) is never seen, so correspondences from the
observation to the model are the right direction, and the model's exact normals serve point-to-plane.
All functions return `T_tool_obs` (observation frame -> tool frame), its fitness and inlier RMSE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Registration:
    """`transform` maps observation coordinates to the tool frame; fitness in [0, 1]; rmse in metres."""

    transform: np.ndarray
    fitness: float
    rmse_m: float


ICP_SCALES: tuple[tuple[float, int], ...] = ((0.05, 15), (0.02, 10), (0.008, 10))
"""(max correspondence distance m, iterations) from coarse to fine."""
FINE_SCALES: tuple[tuple[float, int], ...] = ((0.005, 10),)
"""The polishing pass on the tightly cropped points."""


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run Open3D single-threaded: its parallel reductions sum in a varying order, and the tiny
    differences between runs can send a track down another path. The clouds here are small (tens to
    thousands of points), so one thread is as fast."""
    import open3d as o3d

    before = o3d.utility.get_max_threads()
    o3d.utility.set_max_threads(1)
    try:
        yield
    finally:
        o3d.utility.set_max_threads(before)


def _cloud(points: np.ndarray, normals: np.ndarray | None = None):
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(np.asarray(normals, dtype=np.float64))
    return cloud


def icp_multiscale(
    observed: np.ndarray,
    model_points: np.ndarray,
    model_normals: np.ndarray,
    init: np.ndarray,
    scales: tuple[tuple[float, int], ...] = ICP_SCALES,
) -> Registration:
    """Point-to-plane ICP from coarse to fine correspondence distances, starting at `init`."""
    import open3d as o3d

    source, target = _cloud(observed), _cloud(model_points, model_normals)
    estimation = o3d.pipelines.registration.TransformationEstimationPointToPlane()
    transform = np.asarray(init, dtype=np.float64)
    result = None
    with _one_thread():
        for max_dist, iterations in scales:
            criteria = o3d.pipelines.registration.ICPConvergenceCriteria(1e-5, 1e-5, iterations)
            result = o3d.pipelines.registration.registration_icp(
                source, target, max_dist, transform, estimation, criteria
            )
            transform = np.asarray(result.transformation)
    return Registration(transform.copy(), float(result.fitness), float(result.inlier_rmse))


def _fpfh(cloud, voxel_m: float):
    import open3d as o3d

    with _one_thread():
        return o3d.pipelines.registration.compute_fpfh_feature(
            cloud, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel_m, max_nn=100)
        )


@dataclass(frozen=True)
class FeatureTarget:
    """The model cloud voxel-downsampled to `voxel_m`, with its FPFH features: what
    `global_registration` matches an observation against (build it once per model shape)."""

    cloud: Any
    features: Any
    voxel_m: float


def feature_target(
    model_points: np.ndarray, model_normals: np.ndarray, voxel_m: float = 0.01
) -> FeatureTarget:
    """The `FeatureTarget` of a model (tool-frame points and their normals)."""
    cloud = _cloud(model_points, model_normals).voxel_down_sample(voxel_m)
    return FeatureTarget(cloud, _fpfh(cloud, voxel_m), voxel_m)


def global_registration(observed: np.ndarray, target: FeatureTarget, *, seed: int = 0) -> Registration:
    """FPFH features + RANSAC (Open3D) of the observed cloud (observation frame, camera at the origin)
    against the model's `target`, without any initial guess. Deterministic for a given `seed`."""
    import open3d as o3d

    reg = o3d.pipelines.registration
    voxel_m = target.voxel_m
    source = _cloud(observed).voxel_down_sample(voxel_m)
    if len(source.points) < 5:
        return Registration(np.eye(4), 0.0, np.inf)
    source.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2.5 * voxel_m, max_nn=30))
    source.orient_normals_towards_camera_location(np.zeros(3))
    o3d.utility.random.seed(seed)
    with _one_thread():
        result = reg.registration_ransac_based_on_feature_matching(
            source,
            target.cloud,
            _fpfh(source, voxel_m),
            target.features,
            mutual_filter=False,
            max_correspondence_distance=1.5 * voxel_m,
            estimation_method=reg.TransformationEstimationPointToPoint(False),
            ransac_n=3,
            checkers=[
                reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
                reg.CorrespondenceCheckerBasedOnDistance(1.5 * voxel_m),
            ],
            criteria=reg.RANSACConvergenceCriteria(100000, 0.999),
        )
    return Registration(
        np.asarray(result.transformation).copy(), float(result.fitness), float(result.inlier_rmse)
    )
