"""6-DoF gripper tracking in one view: a sequence of camera-frame pointmaps -> T_cam_tool per frame.

Per frame: constant-velocity prediction (plus the last pose while the gripper moves), crop the
observed points near the predicted model (only gripper-mask pixels when a mask is given; without one,
not the arm behind the model's back end), multi-scale point-to-plane ICP onto the camera-facing
samples of the model re-posed at the current finger width, re-crop tightly, fit the finger width,
polish; then score the pose: confidence = ICP fitness x depth support (fraction of the posed model's
pixels that the observed depth agrees with). A low score triggers re-centring on the mask (without
one: ICP from the prediction shifted on a grid) and global registration (FPFH + RANSAC); a frame that
still scores low is *lost*: its pose is NaN, never invented, and after lost frames a pose needs a
higher score (`reacquire_above`) to be accepted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry.se3 import invert, transform_points
from geo4d_studio.tracking.metrics import rotation_angle_deg
from geo4d_studio.tracking.model import GripperModel
from geo4d_studio.tracking.registration import (
    FINE_SCALES,
    FeatureTarget,
    Registration,
    feature_target,
    global_registration,
    icp_multiscale,
)
from geo4d_studio.tracking.support import depth_support, render_point_depth


@dataclass(frozen=True)
class TrackerConfig:
    """Tuning of `track_view` (metres)."""

    crop_m: float = 0.05
    """Keep observed points within this distance of the predicted model surface."""
    fine_crop_m: float = 0.01
    """After the coarse ICP, keep only points this close to the registered model."""
    reinit_radius_m: float = 0.15
    """Without a mask, global registration searches this far from the last known tool position."""
    min_points: int = 15
    """Fewer cropped points than this and the frame cannot be registered."""
    support_tol_m: float = 0.01
    reinit_below: float = 0.7
    """Confidence under which re-initialisation (grid search, global registration) is tried."""
    masked_reinit_below: float = 0.6
    """The same with a gripper mask (re-centring on it, global registration): the masked points are
    the gripper's, so a mediocre fit is still on the gripper and rarely bettered."""
    lost_below: float = 0.5
    """Confidence under which a frame is reported lost."""
    reacquire_above: float = 0.75
    """After lost frames, the confidence a pose needs to be accepted again (the prior is stale)."""
    max_reinit_turn_deg: float = 60.0
    """Global registration results turned further than this from the last tracked pose are rejected."""
    max_turn_deg: float = 45.0
    """Local (ICP, re-centred, searched) results turned further than this from the prediction are
    rejected; the bound grows by as much again for every lost frame since the last tracked one."""
    global_voxel_m: float = 0.01
    global_min_points: int = 50
    """Fewer observed points than this and global registration is not tried: FPFH features of so
    small a cloud do not tell the gripper's pose."""
    wrist_cut_m: float = 0.02
    """Without a mask, points less than this in front of the model's back end along the approach axis
    are cropped away too: the arm link the gripper is mounted on, which otherwise drags ICP off."""
    search_step_m: float = 0.04
    """Without a mask, re-initialisation also runs ICP from the prediction shifted by this step on a
    3 x 3 x 3 grid (the gripper can move several centimetres between predicted frames)."""
    fit_width: bool = True


@dataclass(frozen=True)
class FrameTrack:
    """One frame of one view: `T_cam_tool` (4, 4) (NaN when lost), finger width (NaN unknown),
    confidence in [0, 1], ICP fitness / RMSE, depth support, points used, and how it was obtained."""

    T_cam_tool: np.ndarray
    width_m: float
    confidence: float
    fitness: float
    rmse_m: float
    support: float
    num_points: int
    lost: bool
    method: str  # "icp", "recentred", "searched", "global", "lost: <reason>"


WIDTH_STEP_M = 0.0005
"""Fitted finger widths are rounded to this step (so the re-posed model is rebuilt rarely)."""
_SYMMETRY = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Half turn about the tool's approach (z) axis: a parallel gripper looks the same after it."""


class ViewTracker:
    """Stateful tracker of one view; feed frames in order with `step`."""

    def __init__(self, model: GripperModel, K: np.ndarray, config: TrackerConfig | None = None) -> None:
        self.model = model
        self.K = np.asarray(K, dtype=np.float64)
        self.config = config or TrackerConfig()
        self._history: list[np.ndarray] = []  # last two tracked T_cam_tool (consecutive frames)
        self._width: float | None = model.mesh_width_m
        self._tree_width: float | None = None
        self._tree: cKDTree | None = None
        self._palm_tree = cKDTree(model.points[model.finger_side == 0])
        self._back = model.points[:, model.approach_axis].min()  # the same at any finger width
        step = np.array([-1.0, 0.0, 1.0]) * self.config.search_step_m
        self._search = np.stack(np.meshgrid(step, step, step, indexing="ij"), axis=-1).reshape(-1, 3)
        self._lost_streak = 0  # frames lost since the last tracked one
        self._targets: dict[float | None, FeatureTarget] = {}

    def _model_at(self, width: float | None) -> tuple[np.ndarray, cKDTree]:
        """Model points at finger width `width` and their KD-tree (cached for the last width)."""
        if self._tree is None or width != self._tree_width:
            self._tree = cKDTree(self.model.points_at_width(width))
            self._tree_width = width
        return self._tree.data, self._tree

    def _feature_target(self, width: float | None) -> FeatureTarget:
        """The model at finger width `width` for global registration (cached per width)."""
        if width not in self._targets:
            points = self.model.points_at_width(width)
            self._targets[width] = feature_target(points, self.model.normals, self.config.global_voxel_m)
        return self._targets[width]

    def reset(self, T_cam_tool: np.ndarray | None, width_m: float | None = None) -> None:
        """Restart from a known pose (or from nothing) and finger width."""
        self._history = [] if T_cam_tool is None else [np.asarray(T_cam_tool, dtype=np.float64)]
        self._lost_streak = 0
        if width_m is not None and np.isfinite(width_m):
            self._width = float(width_m)

    def predicted_pose(self) -> np.ndarray | None:
        """Constant-velocity prediction from the last two tracked frames (None before any)."""
        if not self._history:
            return None
        if len(self._history) == 1:
            return self._history[-1]
        prev, last = self._history[-2:]
        return last @ invert(prev) @ last

    def _starts(self) -> list[np.ndarray]:
        """ICP starting poses: the constant-velocity prediction and, when the gripper was moving
        (more than 5 mm or 2 degrees a frame), the last pose too."""
        prediction = self.predicted_pose()
        if len(self._history) < 2:
            return [prediction]
        prev, last = self._history
        moved = np.linalg.norm(last[:3, 3] - prev[:3, 3]) > 0.005
        turned = np.trace(last[:3, :3] @ prev[:3, :3].T) < 1 + 2 * np.cos(np.radians(2.0))
        return [prediction, last] if moved or turned else [prediction]

    def _centroid_start(self, pts: np.ndarray, prior: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """`prior` moved so that the centroid of the model surface it shows the camera matches the
        centroid of the (masked) observed points: a start for ICP after a jump or a gap."""
        start = prior.copy()
        rays = np.linalg.inv(self.K)
        for _ in range(2):
            model_depth = render_point_depth(
                transform_points(start, self.model.points_at_width(self._width)), self.K, *shape
            )
            v, u = np.nonzero(model_depth)
            if len(u) == 0:
                break
            visible = (np.stack([u, v, np.ones_like(u)], axis=1) @ rays.T) * model_depth[v, u, None]
            start[:3, 3] += pts.mean(axis=0) - visible.mean(axis=0)
        return start

    def _crop(
        self,
        points: np.ndarray,
        T_cam_tool: np.ndarray,
        width: float | None,
        dist_m: float,
        wrist_cut_m: float | None = None,
    ) -> np.ndarray:
        """Observed points (camera frame) within `dist_m` of the model posed at `T_cam_tool`; with
        `wrist_cut_m`, only those more than that in front of the model's back end (not the arm)."""
        centre = T_cam_tool[:3, 3]
        near = np.einsum("ij,ij->i", points - centre, points - centre) < self.model.radius_m**2
        pts = points[near]
        if len(pts) == 0:
            return pts
        _, tree = self._model_at(width)
        pts_tool = transform_points(invert(T_cam_tool), pts)
        d, _ = tree.query(pts_tool, distance_upper_bound=dist_m)
        keep = np.isfinite(d)
        if wrist_cut_m is not None:
            keep &= pts_tool[:, self.model.approach_axis] > self._back + wrist_cut_m
        return pts[keep]

    def _refine(
        self, pts: np.ndarray, T_init: np.ndarray, width: float | None
    ) -> tuple[Registration, float | None]:
        """ICP from `T_init` (T_cam_tool) onto the model samples that face the camera, re-crop tightly
        around the result (dropping arm and object points next to the gripper), fit the finger
        width, polish at that width."""
        model_pts, tree = self._model_at(width)
        normals = self.model.normals
        facing = self._facing(T_init, model_pts)
        reg = icp_multiscale(pts, model_pts[facing], normals[facing], invert(T_init))
        d, _ = tree.query(transform_points(reg.transform, pts), distance_upper_bound=self.config.fine_crop_m)
        if np.isfinite(d).sum() >= self.config.min_points:
            pts = pts[np.isfinite(d)]
        if self.config.fit_width and self.model.mesh_width_m is not None:
            width = self._fit_width(transform_points(reg.transform, pts), width)
            model_pts, _ = self._model_at(width)
        facing = self._facing(invert(reg.transform), model_pts)
        reg = icp_multiscale(pts, model_pts[facing], normals[facing], reg.transform, scales=FINE_SCALES)
        return reg, width

    def _facing(self, T_cam_tool: np.ndarray, model_pts: np.ndarray) -> np.ndarray:
        """(N,) bool: model samples whose normal points towards the camera (or nearly: within 100°)."""
        camera_in_tool = invert(T_cam_tool)[:3, 3]
        to_camera = camera_in_tool - model_pts
        return np.einsum("ij,ij->i", to_camera, self.model.normals) > -0.17 * np.linalg.norm(
            to_camera, axis=1
        )

    def _fit_width(self, pts_tool: np.ndarray, width: float | None) -> float | None:
        """Finger separation that best explains the observed finger points (tool frame): per side,
        the median point-to-plane offset, along the opening axis, to the nearest finger faces that
        face along that axis, iterated until it settles (one visible finger counts twice: both
        fingers move symmetrically)."""
        axis, side_of = self.model.opening_axis, self.model.finger_side
        finger = side_of != 0
        finger_normals = self.model.normals[finger]
        near_palm, _ = self._palm_tree.query(pts_tool, distance_upper_bound=0.005)
        candidates = pts_tool[~np.isfinite(near_palm)]
        for _ in range(10):
            finger_pts = self.model.points_at_width(width)[finger]
            d, idx = cKDTree(finger_pts).query(candidates, distance_upper_bound=0.025)
            hit = np.isfinite(d)
            hit[hit] = np.abs(finger_normals[idx[hit], axis]) > 0.7  # faces across the opening axis
            side = side_of[finger][idx[hit]]
            normal = finger_normals[idx[hit]]
            gap = np.einsum("ij,ij->i", candidates[hit] - finger_pts[idx[hit]], normal)
            offset = gap / normal[:, axis]  # point-to-plane distance, measured along the opening axis
            pos, neg = offset[side == 1], offset[side == -1]
            if len(pos) >= 3 and len(neg) >= 3:
                shift = np.median(pos) - np.median(neg)
            elif len(pos) >= 3 or len(neg) >= 3:
                shift = 2 * np.median(pos) if len(pos) >= 3 else -2 * np.median(neg)
            else:
                return width
            current = width if width is not None else self.model.mesh_width_m
            width = round(float(np.clip(current + shift, 0.0, 0.2)) / WIDTH_STEP_M) * WIDTH_STEP_M
            if abs(width - current) < WIDTH_STEP_M:
                break
        return width

    def _score(self, reg: Registration, depth: np.ndarray, width: float | None) -> tuple[float, float]:
        """(confidence, depth support) of a registration (its transform is T_tool_cam)."""
        model_cam = transform_points(invert(reg.transform), self.model.points_at_width(width))
        model_depth = render_point_depth(model_cam, self.K, *depth.shape)
        support, counted = depth_support(model_depth, depth, self.config.support_tol_m)
        return (reg.fitness * support if counted else 0.0), support

    def _global(self, pts: np.ndarray, depth: np.ndarray, width: float | None, prior: np.ndarray | None):
        """Global registration, ICP-polished; of the pose and its symmetric twin keep the better one
        (the one nearer the prior rotation when both score alike)."""
        glob = global_registration(pts, self._feature_target(width))
        if not np.isfinite(glob.rmse_m):
            return None
        candidates = []
        for T_cam_tool in (invert(glob.transform), invert(glob.transform) @ _SYMMETRY):
            reg, w = self._refine(pts, T_cam_tool, width)
            conf, support = self._score(reg, depth, w)
            angle = _turn_deg(reg, prior)
            if angle <= self.config.max_reinit_turn_deg:
                candidates.append((conf, angle, reg, w, support))
        if not candidates:
            return None
        top = max(c[0] for c in candidates)
        # the pose and its twin fit alike: take the one nearer the prior rotation among the near-best
        conf, _, reg, w, support = min((c for c in candidates if c[0] >= top - 0.1), key=lambda c: c[1])
        return reg, w, conf, support

    def _search_around(
        self, points: np.ndarray, prediction: np.ndarray, depth: np.ndarray, width: float | None
    ) -> list[tuple[Registration, float | None, float, float, int, str]]:
        """Mask-free re-initialisation: ICP from the prediction shifted on the search grid, each on the
        points cropped (arm cut away) around its start."""
        cfg = self.config
        found = []
        for offset in self._search:
            start = prediction.copy()
            start[:3, 3] += offset
            pts = self._crop(points, start, width, cfg.crop_m, cfg.wrist_cut_m)
            if len(pts) >= cfg.min_points:
                reg, w = self._refine(pts, start, width)
                conf, support = self._score(reg, depth, w)
                found.append((reg, w, conf, support, len(pts), "searched"))
        return found

    def step(self, pointmap: np.ndarray, mask: np.ndarray | None = None) -> FrameTrack:
        """Track one frame: `pointmap` (H, W, 3) camera frame (invalid pixels zero), optional gripper
        `mask` (H, W) bool. With a mask only its pixels are used (an empty one means "not seen")."""
        cfg = self.config
        depth = pointmap[..., 2]
        valid = depth > 0
        if not valid.any():
            return self._lost("no valid depth")
        points = pointmap[valid if mask is None else valid & mask].astype(np.float64)
        prediction = self.predicted_pose()
        width = self._width
        candidates: list[tuple[Registration, float | None, float, float, int, str]] = []
        if prediction is not None:
            pts = (
                self._crop(points, prediction, width, cfg.crop_m, cfg.wrist_cut_m)
                if mask is None
                else self._crop(points, prediction, width, 2 * cfg.crop_m)
            )
            if len(pts) >= cfg.min_points:
                for start in self._starts():
                    reg, w = self._refine(pts, start, width)
                    conf, support = self._score(reg, depth, w)
                    candidates.append((reg, w, conf, support, len(pts), "icp"))
        reinit_below = cfg.reinit_below if mask is None else cfg.masked_reinit_below
        if not candidates or max(c[2] for c in candidates) < reinit_below:
            if mask is None and prediction is not None:
                centre = prediction[:3, 3]
                pts = points[np.linalg.norm(points - centre, axis=1) < cfg.reinit_radius_m]
            else:
                pts = points if mask is not None else np.empty((0, 3))
            if mask is None and prediction is not None:
                candidates += self._search_around(points, prediction, depth, width)
            if len(pts) >= cfg.min_points and mask is not None and prediction is not None:
                reg, w = self._refine(pts, self._centroid_start(pts, prediction, depth.shape), width)
                conf, support = self._score(reg, depth, w)
                candidates.append((reg, w, conf, support, len(pts), "recentred"))
            best = max((c[2] for c in candidates), default=0.0)
            if len(pts) >= cfg.global_min_points and best < reinit_below:  # re-centring did not do
                found = self._global(pts, depth, width, prediction)
                if found is not None:
                    reg, w, conf, support = found
                    candidates.append((reg, w, conf, support, len(pts), "global"))
        if not candidates:
            return self._lost("too few gripper points")
        candidates = [c for c in candidates if c[5] == "global" or self._plausible_turn(c[0], prediction)]
        if not candidates:
            return self._lost("every fit turned implausibly far from the prediction")
        reg, w, conf, support, n, method = max(candidates, key=lambda c: c[2])
        needed = cfg.reacquire_above if self._lost_streak else cfg.lost_below
        if conf < needed:
            return self._lost(f"confidence {conf:.2f} < {needed}", reg, support, n)
        self._lost_streak = 0
        T_cam_tool = invert(reg.transform)
        self._history = [*self._history[-1:], T_cam_tool]
        self._width = w
        return FrameTrack(
            T_cam_tool=T_cam_tool,
            width_m=float("nan") if w is None else w,
            confidence=float(np.clip(conf, 0, 1)),
            fitness=reg.fitness,
            rmse_m=reg.rmse_m,
            support=support,
            num_points=n,
            lost=False,
            method=method,
        )

    def _plausible_turn(self, reg: Registration, prediction: np.ndarray | None) -> bool:
        """Whether the registered pose turned at most `max_turn_deg` (more after lost frames) from the
        prediction: a gripper does not spin round between frames, a fit onto the wrong blob can."""
        return _turn_deg(reg, prediction) <= self.config.max_turn_deg * (1 + self._lost_streak)

    def _lost(
        self, reason: str, reg: Registration | None = None, support: float = 0.0, n: int = 0
    ) -> FrameTrack:
        """A lost frame: NaN pose; the velocity is dropped, the last pose kept as the next prediction."""
        self._history = self._history[-1:]
        self._lost_streak += 1
        return FrameTrack(
            T_cam_tool=np.full((4, 4), np.nan),
            width_m=float("nan"),
            confidence=0.0,
            fitness=0.0 if reg is None else reg.fitness,
            rmse_m=float("nan") if reg is None else reg.rmse_m,
            support=support,
            num_points=n,
            lost=True,
            method=f"lost: {reason}",
        )


def _turn_deg(reg: Registration, prior: np.ndarray | None) -> float:
    """Degrees between the registered tool rotation (`reg.transform` maps the camera to the tool) and
    the `prior` camera-frame pose T_cam_tool; 0 without a prior."""
    if prior is None:
        return 0.0
    return float(rotation_angle_deg(reg.transform[:3, :3].T, prior[:3, :3]))


def track_view(
    pointmaps: Iterable[np.ndarray],
    masks: Iterable[np.ndarray | None] | None,
    K: np.ndarray,
    model: GripperModel,
    init_T_cam_tool: np.ndarray | None = None,
    *,
    init_width_m: float | None = None,
    config: TrackerConfig | None = None,
) -> Iterator[FrameTrack]:
    """Track the gripper through a sequence of one view's camera-frame pointmaps, lazily (one
    `FrameTrack` per input frame, in order).

    `masks`: per-frame gripper masks or None. Without `init_T_cam_tool` the first frame is found by
    global registration, which needs a mask on that frame.
    """
    tracker = ViewTracker(model, K, config)
    tracker.reset(init_T_cam_tool, init_width_m)
    mask_iter = iter(masks) if masks is not None else None
    for i, pointmap in enumerate(pointmaps):
        mask = next(mask_iter, None) if mask_iter is not None else None
        if i == 0 and init_T_cam_tool is None and (mask is None or not mask.any()):
            raise Geo4DError("tracking: the first frame needs an initial pose or a non-empty gripper mask")
        yield tracker.step(pointmap, mask)
