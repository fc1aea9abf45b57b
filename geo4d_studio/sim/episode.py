"""Run one scripted episode in pybullet, render every camera per recorded frame, write a geo4d-scene file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo4d_studio.errors import Geo4DError
from geo4d_studio.sim.cameras import SimCamera, make_rig, render
from geo4d_studio.sim.panda import GRIPPER_LINKS, Panda
from geo4d_studio.sim.tasks import TASKS, TaskSetup, Waypoint
from geo4d_studio.sim.world import PHYSICS_HZ, connect, load_cell

DEFAULT_FPS = 10.0
DEFAULT_FRAMES = 64
DEFAULT_SIZE = (120, 160)
DEPTH_SCALE_M = 1e-4
SETTLE_S = 0.3
"""Physics time before the first frame so props come to rest."""
MIN_TIME_SCALE = 0.8
"""A plan may be played at most 1/0.8 = 1.25× faster than scripted; faster grasps slip."""
MAX_CAMERAS = 32
MIN_SIZE = 16


@dataclass
class EpisodeData:
    """Everything recorded in one episode (arrays per camera keyed by camera name)."""

    task: str
    description: str
    fps: float
    timestamps: np.ndarray  # (T,) float64 s
    cameras: list[SimCamera]
    rgb: dict[str, np.ndarray] = field(default_factory=dict)  # (T, H, W, 3) uint8
    depth: dict[str, np.ndarray] = field(default_factory=dict)  # (T, H, W) float32 m, 0 invalid
    gripper_mask: dict[str, np.ndarray] = field(default_factory=dict)  # (T, H, W) bool
    ee_pose: np.ndarray | None = None  # (T, 4, 4) T_world_tool
    gripper_width: np.ndarray | None = None  # (T,) float32 m
    # gripper mesh in the tool frame: vertices (V, 3) float32, faces (F, 3) int32
    mesh: tuple[np.ndarray, np.ndarray] | None = None
    success: bool = False


def check_arguments(task: str, cameras: int, size: tuple[int, int], frames: int, fps: float) -> None:
    """Raise Geo4DError for arguments the simulator cannot honour."""
    if task not in TASKS:
        raise Geo4DError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not 0 <= cameras <= MAX_CAMERAS:
        raise Geo4DError(f"cameras is {cameras}, expected 0..{MAX_CAMERAS}")
    if len(size) != 2 or min(size) < MIN_SIZE:
        raise Geo4DError(f"image size {size} too small, expected (H, W) with both >= {MIN_SIZE} pixels")
    if frames < 2 or not fps > 0:
        raise Geo4DError(f"frames={frames}, fps={fps}: need at least 2 frames and fps > 0")


def time_scale(plan: list[Waypoint], frames: int, fps: float) -> float:
    """Factor that stretches the plan to exactly (frames − 1) / fps seconds; raise if that is too fast."""
    scripted = sum(w.duration_s for w in plan)
    available = (frames - 1) / fps
    scale = available / scripted
    if scale < MIN_TIME_SCALE:
        raise Geo4DError(
            f"frames={frames} at fps={fps:g} lasts {available:.2f} s, but the task needs at least "
            f"{scripted * MIN_TIME_SCALE:.2f} s; record more frames or lower --fps"
        )
    return scale


class PlanFollower:
    """Tool target at time t: smooth (cubic ease) interpolation between consecutive waypoints."""

    def __init__(self, start: np.ndarray, start_yaw: float, plan: list[Waypoint], scale: float) -> None:
        self.positions = np.array([start, *(w.position for w in plan)])
        self.yaws = np.array([start_yaw, *(w.yaw for w in plan)])
        self.closed = [w.closed for w in plan]
        self.ends = np.cumsum([w.duration_s * scale for w in plan])

    def target(self, t: float) -> tuple[np.ndarray, float, bool]:
        """(position (3,), yaw, gripper closed) at time t seconds after the start."""
        k = min(int(np.searchsorted(self.ends, t, side="right")), len(self.ends) - 1)
        begin = self.ends[k - 1] if k else 0.0
        u = float(np.clip((t - begin) / (self.ends[k] - begin), 0.0, 1.0))
        s = u * u * (3 - 2 * u)
        position = (1 - s) * self.positions[k] + s * self.positions[k + 1]
        yaw = (1 - s) * self.yaws[k] + s * self.yaws[k + 1]
        return position, float(yaw), self.closed[k]


def gripper_mask(segmentation: np.ndarray, robot_uid: int) -> np.ndarray:
    """Pixels showing the Panda's hand or fingers, from an object-and-link segmentation buffer."""
    body = segmentation & ((1 << 24) - 1)
    link = (segmentation >> 24) - 1
    return (body == robot_uid) & np.isin(link, GRIPPER_LINKS) & (segmentation >= 0)


def simulate_episode(
    task: str,
    *,
    cameras: int = 4,
    size: tuple[int, int] = DEFAULT_SIZE,
    frames: int = DEFAULT_FRAMES,
    seed: int = 0,
    fps: float = DEFAULT_FPS,
    on_frame: Callable[[int], None] | None = None,
) -> EpisodeData:
    """Simulate `task` with props and cameras drawn from `seed`; record `frames` frames at `fps`.

    The scripted plan is stretched to span the recording; physics runs at 240 Hz in between frames.
    `cameras=0` simulates without rendering (fast success checks). `on_frame(t)` is called per frame.
    """
    import pybullet as pb

    check_arguments(task, cameras, tuple(size), frames, fps)
    client = connect()
    try:
        load_cell(client)
        panda = Panda(client)
        setup: TaskSetup = TASKS[task](client, np.random.default_rng([seed, 0]))
        rig = make_rig(np.random.default_rng([seed, 1]), cameras, (int(size[0]), int(size[1])))
        mesh = panda.gripper_mesh()
        follower = PlanFollower(
            panda.tool_pose()[:3, 3], 0.0, setup.plan, time_scale(setup.plan, frames, fps)
        )
        for _ in range(round(SETTLE_S * PHYSICS_HZ)):
            pb.stepSimulation(physicsClientId=client)
        data = EpisodeData(task, setup.description, fps, np.arange(frames) / fps, rig, mesh=mesh)
        views: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {cam.name: [] for cam in rig}
        poses, widths = [], []
        capture_steps = np.round(np.arange(frames) * PHYSICS_HZ / fps).astype(int)
        step = 0
        for t, capture_step in enumerate(capture_steps):
            while step < capture_step:
                _drive(panda, follower, step / PHYSICS_HZ)
                pb.stepSimulation(physicsClientId=client)
                step += 1
            poses.append(panda.tool_pose())
            widths.append(panda.gripper_width())
            for cam in rig:
                rgb, depth, seg = render(client, cam)
                views[cam.name].append((rgb, depth, gripper_mask(seg, panda.uid)))
            if on_frame is not None:
                on_frame(t)
        data.ee_pose = np.stack(poses)
        # contact jitter can push a finger joint a hair below 0
        data.gripper_width = np.maximum(np.asarray(widths, dtype=np.float32), 0.0)
        for name, frames_of_view in views.items():
            data.rgb[name] = np.stack([f[0] for f in frames_of_view])
            data.depth[name] = np.stack([f[1] for f in frames_of_view])
            data.gripper_mask[name] = np.stack([f[2] for f in frames_of_view])
        data.success = setup.succeeded()
        return data
    finally:
        pb.disconnect(physicsClientId=client)


def _drive(panda: Panda, follower: PlanFollower, t: float) -> None:
    """Command the arm (IK towards the plan's target) and the gripper for the step starting at t."""
    import pybullet as pb

    position, yaw, closed = follower.target(t)
    quat = pb.getQuaternionFromEuler([np.pi, 0.0, yaw])
    panda.hold_arm(panda.solve_ik(position, np.asarray(quat)))
    panda.command_gripper(closed=closed)


def write_episode(data: EpisodeData, out: str | Path, *, seed: int, overwrite: bool = False) -> Path:
    """Write an EpisodeData as a geo4d-scene file (depth as uint16 × DEPTH_SCALE_M)."""
    import pybullet as pb

    from geo4d_studio.scene import SceneWriter

    if not data.cameras:
        raise Geo4DError(f"{out}: an episode file needs at least one camera")
    source = f"geo4d-studio sim (pybullet {pb.getAPIVersion()}, seed {seed}): {data.description}"
    with SceneWriter(
        out,
        fps=data.fps,
        timestamps=data.timestamps,
        task=data.task,
        source=source,
        overwrite=overwrite,
        depth_scale=DEPTH_SCALE_M,
    ) as writer:
        for cam in data.cameras:
            writer.add_camera(
                cam.name,
                cam.K,
                cam.T_world_cam,
                data.rgb[cam.name],
                data.depth[cam.name],
                data.gripper_mask[cam.name],
            )
        writer.set_robot(data.ee_pose, data.gripper_width, *data.mesh)
    return Path(out)


def generate_episode(
    task: str,
    out: str | Path,
    *,
    cameras: int = 4,
    size: tuple[int, int] = DEFAULT_SIZE,
    frames: int = DEFAULT_FRAMES,
    seed: int = 0,
    fps: float = DEFAULT_FPS,
    overwrite: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> Path:
    """Simulate and write one episode to `out` (atomic); returns the path."""
    from geo4d_studio.atomic import check_writable

    check_writable(out, overwrite=overwrite)
    if cameras < 1:
        raise Geo4DError(f"{out}: cameras is {cameras}, an episode file needs at least one")
    data = simulate_episode(
        task, cameras=cameras, size=size, frames=frames, seed=seed, fps=fps, on_frame=on_frame
    )
    return write_episode(data, out, seed=seed, overwrite=overwrite)
