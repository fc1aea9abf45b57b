"""The recording packaged as a `Generation`: what a perfect model would predict.

Tests and the tracking benchmark use it as the upper bound for tracking on generated clips, and it
lets the export paths run on any recording without a trained model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geo4d_studio.errors import Geo4DError
from geo4d_studio.generation import Generation
from geo4d_studio.geometry.camera import depth_to_pointmap
from geo4d_studio.geometry.se3 import invert, transform_points


def recorded_clip(scene, ref: str, other: str, start_frame: int, frame_indices: Sequence[int]) -> Generation:
    """A `Generation` whose "predictions" are the recorded frames `frame_indices` of cameras `ref` (n)
    and `other` (m), with calibration at `start_frame`; `params["model"]` is "recording"."""
    for name in (ref, other):
        if name not in scene.cameras:
            raise Geo4DError(f"{scene.path}: no camera {name!r} (cameras: {', '.join(scene.camera_names)})")
    frames = np.asarray(frame_indices, dtype=np.int64)
    cam_n, cam_m = scene.cameras[ref], scene.cameras[other]
    depth_n = np.stack([scene.depth(ref, int(t)) for t in frames])
    depth_m = np.stack([scene.depth(other, int(t)) for t in frames])
    pm_n, pm_m = depth_to_pointmap(depth_n, cam_n.K), depth_to_pointmap(depth_m, cam_m.K)
    T_n, T_m = cam_n.pose(start_frame), cam_m.pose(start_frame)
    pm_m_in_n = np.where(pm_m[..., 2:] > 0, transform_points(invert(T_n) @ T_m, pm_m), 0).astype(np.float32)
    return Generation(
        id="",
        ref_camera=ref,
        other_camera=other,
        start_frame=int(start_frame),
        frame_indices=frames,
        timestamps=scene.timestamps[frames],
        rgb_ref=np.stack([scene.rgb(ref, int(t)) for t in frames]),
        rgb_other=np.stack([scene.rgb(other, int(t)) for t in frames]),
        depth_ref=depth_n,
        pointmap_ref=pm_n,
        pointmap_other_in_ref=pm_m_in_n,
        pointmap_other=pm_m,
        depth_other=depth_m,
        K_ref=cam_n.K,
        K_other=cam_m.K,
        T_world_ref=T_n,
        T_world_other=T_m,
        params={"model": "recording", "note": "recorded frames packaged as a generation"},
    )
