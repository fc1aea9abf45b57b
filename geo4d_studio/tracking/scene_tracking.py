"""Track the gripper in a recording or a generation, in several views, and combine the views in the world.

Each view is tracked on its own (`track_view`), its poses moved to the world with that view's camera
pose, and per frame the views are combined by confidence: `"best"` keeps the most confident view
(as the paper does); `"fuse"` (the default, more accurate) averages, weighted by confidence, the
views that agree with the most confident one (within 2 cm and 10 degrees).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geo4d_studio.errors import Geo4DError, SceneFormatError
from geo4d_studio.generation import Generation
from geo4d_studio.geometry.camera import depth_to_pointmap
from geo4d_studio.geometry.se3 import invert
from geo4d_studio.tracking.metrics import rotation_angle_deg
from geo4d_studio.tracking.model import GripperModel, gripper_model
from geo4d_studio.tracking.tracker import FrameTrack, TrackerConfig, track_view
from geo4d_studio.trajectory import Trajectory

FRAME_CONVENTION = "T_world_tool, OpenCV cameras, z-up world"
COMBINE_MODES = ("best", "fuse")
Progress = Callable[[int, int], None]
"""Called with (frames done, frames in all) over all views."""


def scene_model(scene) -> GripperModel:
    """The tracker's model of the gripper mesh stored in the scene; SceneFormatError if there is none."""
    if scene.gripper_mesh is None:
        raise SceneFormatError(scene.path, "/robot/gripper_mesh", "missing: tracking needs the gripper mesh")
    vertices, faces = scene.gripper_mesh
    try:
        return gripper_model(vertices, faces)
    except Geo4DError as err:
        raise SceneFormatError(scene.path, "/robot/gripper_mesh", str(err)) from None


def _select_frames(scene, frames: Sequence[int] | slice | None) -> np.ndarray:
    if frames is None:
        frames = slice(None)
    if isinstance(frames, slice):
        return np.arange(scene.num_frames)[frames]
    idx = np.asarray(frames, dtype=np.int64).reshape(-1)
    bad = idx[(idx < 0) | (idx >= scene.num_frames)]
    if bad.size:
        raise Geo4DError(f"{scene.path}: frame {bad[0]} out of range 0..{scene.num_frames - 1}")
    return idx


def _rotation_mean(R: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted chordal mean of rotations (V, 3, 3): the rotation nearest to sum(w R)."""
    U, _, Vt = np.linalg.svd(np.einsum("v,vij->ij", w, R))
    D = np.diag([1.0, 1.0, np.linalg.det(U @ Vt)])
    return U @ D @ Vt


FUSE_MAX_OFFSET_M = 0.02
FUSE_MAX_TURN_DEG = 10.0
"""Views further than this from the most confident view's pose are left out of the fused pose."""


def _agrees(poses: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(V, N) whether each view's pose (V, N, 4, 4) is near the reference pose (N, 4, 4)."""
    with np.errstate(invalid="ignore"):
        offset = np.linalg.norm(poses[..., :3, 3] - reference[None, :, :3, 3], axis=-1)
        turn = rotation_angle_deg(poses[..., :3, :3], reference[None, :, :3, :3])
        return (offset <= FUSE_MAX_OFFSET_M) & (turn <= FUSE_MAX_TURN_DEG)


def combine_views(
    names: Sequence[str], poses: np.ndarray, confidence: np.ndarray, width: np.ndarray, mode: str = "best"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Per frame one world pose from V views: poses (V, N, 4, 4) (NaN where lost), confidence and
    width (V, N). Returns poses (N, 4, 4), confidence (N,), width (N,), source view names."""
    if mode not in COMBINE_MODES:
        raise Geo4DError(f"unknown view combination {mode!r} (choose from {', '.join(COMBINE_MODES)})")
    tracked = np.isfinite(poses).all(axis=(2, 3))
    conf = np.where(tracked, confidence, -1.0)
    best = conf.argmax(axis=0)
    n = poses.shape[1]
    cols = np.arange(n)
    out_pose = poses[best, cols].copy()
    out_conf = np.clip(conf[best, cols], 0.0, None)
    out_width = width[best, cols].copy()
    source = [names[v] if tracked[v, i] else "" for i, v in enumerate(best)]
    if mode == "fuse":
        agree = tracked & _agrees(poses, out_pose)
        for i in np.flatnonzero(agree.sum(axis=0) > 1):
            use = agree[:, i]
            w = confidence[use, i] / confidence[use, i].sum()
            out_pose[i, :3, 3] = np.einsum("v,vi->i", w, poses[use, i, :3, 3])
            out_pose[i, :3, :3] = _rotation_mean(poses[use, i, :3, :3], w)
            finite = np.isfinite(width[use, i])
            if finite.any():
                out_width[i] = np.average(width[use, i][finite], weights=w[finite])
            source[i] = "+".join(np.asarray(names)[use])
    return out_pose, out_conf.astype(np.float32), out_width.astype(np.float32), source


def _views_to_trajectory(
    names: list[str],
    tracks: list[list[FrameTrack]],
    T_world_cam: list[np.ndarray],
    frames: np.ndarray,
    timestamps: np.ndarray,
    combine: str,
    metadata: dict,
) -> Trajectory:
    """Move each view's camera-frame poses to the world (T_world_cam (N, 4, 4) per view), combine."""
    poses = np.stack(
        [T @ np.stack([f.T_cam_tool for f in track]) for T, track in zip(T_world_cam, tracks, strict=True)]
    )
    confidence = np.array([[f.confidence for f in track] for track in tracks])
    width = np.array([[f.width_m for f in track] for track in tracks])
    pose, conf, w, source = combine_views(names, poses, confidence, width, combine)
    lost = ~np.isfinite(pose).all(axis=(1, 2))
    pose[lost] = np.nan
    metadata["per_view"] = {
        name: {
            "lost_frames": int(sum(f.lost for f in track)),
            "mean_confidence": float(np.mean([f.confidence for f in track])),
            "global_registrations": int(sum(f.method == "global" for f in track)),
        }
        for name, track in zip(names, tracks, strict=True)
    }
    return Trajectory(timestamps, pose, w, conf, frames, lost, source, metadata)


def _run_view(pointmaps, masks, K, model, init, width, config, progress_step) -> list[FrameTrack]:
    out = []
    for frame in track_view(pointmaps, masks, K, model, init, init_width_m=width, config=config):
        out.append(frame)
        progress_step()
    return out


def _progress_counter(progress: Progress | None, total: int) -> Callable[[], None]:
    done = [0]

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    return step


def _metadata(scene, source: str, views: list[str], combine: str, config: TrackerConfig) -> dict:
    return {
        "scene": str(Path(scene.path).name),
        "source": source,
        "cameras": views,
        "combine": combine,
        "tracker": asdict(config),
        "units": "m",
        "frame_convention": FRAME_CONVENTION,
        "quaternion_order": "xyzw",
    }


def track_recorded(
    scene,
    views: Sequence[str] | None = None,
    frames: Sequence[int] | slice | None = None,
    *,
    init: str = "recorded",
    combine: str = "fuse",
    config: TrackerConfig | None = None,
    progress: Progress | None = None,
) -> Trajectory:
    """Track the gripper on the recorded RGB-D of `views` (default: all cameras) over `frames`
    (default: all; a slice or recorded frame indices, in order).

    `init="recorded"` starts from the recorded first-frame pose (/robot/ee_pose) when there is one,
    else (or with `init="global"`) from global registration inside the first frame's gripper mask.
    """
    if init not in ("recorded", "global"):
        raise Geo4DError(f"tracking: init {init!r} is not 'recorded' or 'global'")
    config = config or TrackerConfig()
    views = list(views) if views else list(scene.camera_names)
    for v in views:
        if v not in scene.cameras:
            raise Geo4DError(f"{scene.path}: no camera {v!r} (cameras: {', '.join(scene.camera_names)})")
    idx = _select_frames(scene, frames)
    if idx.size == 0:
        raise Geo4DError(f"{scene.path}: no frames selected")
    model = scene_model(scene)
    known = init == "recorded" and scene.ee_pose is not None
    width0 = None if scene.gripper_width is None else float(scene.gripper_width[idx[0]])
    step = _progress_counter(progress, len(views) * len(idx))
    tracks, T_world = [], []
    for v in views:
        cam = scene.cameras[v]
        start = invert(cam.pose(int(idx[0]))) @ scene.ee_pose[idx[0]] if known else None
        if start is None and not scene.has_gripper_mask(v):
            raise SceneFormatError(
                scene.path,
                f"/cameras/{v}/gripper_mask",
                "missing: needed to find the gripper without ee_pose",
            )
        pointmaps = (depth_to_pointmap(scene.depth(v, int(t)), cam.K) for t in idx)
        masks = (scene.gripper_mask(v, int(t)) for t in idx) if scene.has_gripper_mask(v) else None
        try:
            tracks.append(_run_view(pointmaps, masks, cam.K, model, start, width0, config, step))
        except Geo4DError as err:
            raise Geo4DError(f"{scene.path}: camera {v}: {err}") from None
        T_world.append(cam.T_world_cam[idx])
    meta = _metadata(scene, "recorded", views, combine, config)
    meta["init"] = "recorded ee_pose" if known else "global registration"
    return _views_to_trajectory(views, tracks, T_world, idx, scene.timestamps[idx], combine, meta)


def _check_generation(path: Path, gen: Generation, role: str) -> tuple[np.ndarray, np.ndarray]:
    """The pointmaps (F, H, W, 3) in the view's own camera frame and its K; NaN/inf raise."""
    pointmaps = gen.pointmap_ref if role == "ref" else gen.pointmap_other
    field = f"/generations/{gen.id}/{'pointmap_ref' if role == 'ref' else 'pointmap_other'}"
    bad = ~np.isfinite(pointmaps)
    if bad.any():
        frame = int(np.flatnonzero(bad.any(axis=(1, 2, 3)))[0])
        raise SceneFormatError(path, field, f"frame {frame} has {int(bad[frame].sum())} NaN/inf values")
    return pointmaps, (gen.K_ref if role == "ref" else gen.K_other)


def track_generation(
    scene,
    generation: Generation,
    views: Sequence[str] = ("ref", "other"),
    *,
    combine: str = "fuse",
    config: TrackerConfig | None = None,
    progress: Progress | None = None,
) -> Trajectory:
    """Track the gripper on a generation's predicted pointmaps of view n ("ref") and/or m ("other").

    Both views start from the recorded tool pose at the generation's start frame (the condition
    frame; the predicted frames themselves are never looked up in the recording) and the recorded
    finger width there. View m is tracked on its pointmap in its own frame (the model's output moved
    with the recorded extrinsics), so `T_world_other @ T_other_tool` equals using view m's pointmap in
    view n's frame with view n's extrinsics.
    """
    config = config or TrackerConfig()
    for role in views:
        if role not in ("ref", "other"):
            raise Geo4DError(f"generation {generation.id}: view {role!r} is not 'ref' or 'other'")
    if scene.ee_pose is None:
        raise SceneFormatError(scene.path, "/robot/ee_pose", "missing: needed as the generation's start pose")
    model = scene_model(scene)
    from geo4d_studio.generation import results_path_for

    results = results_path_for(scene.path)
    T_world_tool0 = scene.ee_pose[generation.start_frame]
    width0 = None if scene.gripper_width is None else float(scene.gripper_width[generation.start_frame])
    step = _progress_counter(progress, len(views) * generation.num_frames)
    names, tracks, T_world = [], [], []
    for role in views:
        pointmaps, K = _check_generation(results, generation, role)
        T_world_cam = generation.T_world_ref if role == "ref" else generation.T_world_other
        camera = generation.ref_camera if role == "ref" else generation.other_camera
        start = invert(T_world_cam) @ T_world_tool0
        tracks.append(_run_view(pointmaps, None, K, model, start, width0, config, step))
        T_world.append(np.broadcast_to(T_world_cam, (generation.num_frames, 4, 4)))
        names.append(camera)
    meta = _metadata(scene, f"generation {generation.id}", names, combine, config)
    meta["generation"] = {
        "id": generation.id,
        "start_frame": generation.start_frame,
        "params": generation.params,
    }
    frames = np.asarray(generation.frame_indices, dtype=np.int64)
    return _views_to_trajectory(names, tracks, T_world, frames, generation.timestamps, combine, meta)
