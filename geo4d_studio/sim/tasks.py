"""Task variants: where the props go (from a seeded numpy Generator), the scripted tool path, success.

Every plan is a list of waypoints for the tool frame (see `panda.py`): the tool points straight down,
turned by `yaw` about world z, and moves to `position` during `duration_s` with the gripper commanded
open or closed for that phase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from geo4d_studio.sim.world import TABLE_TOP_Z, add_marker, body_pose, load_prop

CUBE_M = 0.05
"""Edge of `cube_small.urdf` at scale 1."""
TRAY_SCALE = 0.5
TRAY_INNER_HALF_M = 0.11
"""Half the usable floor of `tray/traybox.urdf` at TRAY_SCALE."""
MUG_SCALE = 0.8
MUG_HEIGHT_M = 0.1 * MUG_SCALE
CARRY_Z = 0.22
"""Tool height while carrying, above the table top."""


@dataclass(frozen=True)
class Waypoint:
    """Move the tool to `position` (world, m) with `yaw` (rad) over `duration_s`, gripper `closed` or open."""

    phase: str
    position: tuple[float, float, float]
    yaw: float
    closed: bool
    duration_s: float


@dataclass
class TaskSetup:
    """A task instance: its plan and a success test evaluated on the final physics state."""

    task: str
    plan: list[Waypoint]
    succeeded: Callable[[], bool]
    description: str


def grasp_yaw(object_yaw: float) -> float:
    """A gripper yaw equivalent to `object_yaw` modulo 90° (a cube's symmetry), within ±45°."""
    return float((object_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def _wp(phase: str, xy: np.ndarray, z: float, yaw: float, closed: bool, duration_s: float) -> Waypoint:
    return Waypoint(phase, (float(xy[0]), float(xy[1]), float(z)), float(yaw), closed, duration_s)


def pick_block(client: int, rng: np.random.Generator) -> TaskSetup:
    """Pick a red cube off the table and put it into the tray."""
    block_xy = np.array([rng.uniform(0.42, 0.58), rng.uniform(-0.22, -0.08)])
    block_yaw = rng.uniform(-np.pi / 4, np.pi / 4)
    tray_xy = np.array([rng.uniform(0.47, 0.57), rng.uniform(0.17, 0.23)])
    tray = load_prop(
        client, "tray/traybox.urdf", tray_xy, 0.0, z=TABLE_TOP_Z + 0.003, scale=TRAY_SCALE, fixed=True
    )
    block = load_prop(
        client,
        "cube_small.urdf",
        block_xy,
        block_yaw,
        z=TABLE_TOP_Z + CUBE_M / 2,
        rgba=(0.85, 0.15, 0.1, 1.0),
        mass_kg=0.1,
        kind="block",
    )
    yaw = grasp_yaw(block_yaw)
    grasp_z = TABLE_TOP_Z + CUBE_M / 2
    plan = [
        _wp("approach", block_xy, grasp_z + 0.12, yaw, False, 1.2),
        _wp("descend", block_xy, grasp_z, yaw, False, 0.8),
        _wp("grasp", block_xy, grasp_z, yaw, True, 0.6),
        _wp("lift", block_xy, CARRY_Z, yaw, True, 0.8),
        _wp("move", tray_xy, CARRY_Z, 0.0, True, 1.3),
        _wp("place", tray_xy, TABLE_TOP_Z + 0.1, 0.0, True, 0.5),
        _wp("release", tray_xy, TABLE_TOP_Z + 0.1, 0.0, False, 0.5),
        _wp("retreat", tray_xy, CARRY_Z + 0.05, 0.0, False, 0.6),
    ]

    def succeeded() -> bool:
        offset = body_pose(client, block.uid)[:3, 3] - body_pose(client, tray.uid)[:3, 3]
        return bool(np.all(np.abs(offset[:2]) < TRAY_INNER_HALF_M) and offset[2] < 0.06)

    return TaskSetup("pick_block", plan, succeeded, "pick the red block and place it in the tray")


def move_mug(client: int, rng: np.random.Generator) -> TaskSetup:
    """Grasp a mug around its body (fingers across, clear of the handle) and set it down on a green spot."""
    mug_xy = np.array([rng.uniform(0.42, 0.56), rng.uniform(-0.2, -0.06)])
    mug_yaw = rng.uniform(-np.pi, np.pi)
    spot_xy = np.array([rng.uniform(0.44, 0.58), rng.uniform(0.1, 0.2)])
    add_marker(client, spot_xy, 0.05, (0.1, 0.7, 0.2, 1.0))
    mug = load_prop(
        client,
        "objects/mug.urdf",
        mug_xy,
        mug_yaw,
        z=TABLE_TOP_Z + 0.002,
        scale=MUG_SCALE,
        mass_kg=0.2,
        kind="mug",
    )
    # fingers open along the mug's local x, perpendicular to the handle (local +y): tool y = (sin ψ, −cos ψ)
    yaw = float((mug_yaw + np.pi / 2 + np.pi / 2) % np.pi - np.pi / 2)
    grasp_z = TABLE_TOP_Z + 0.6 * MUG_HEIGHT_M
    plan = [
        _wp("approach", mug_xy, grasp_z + 0.12, yaw, False, 1.2),
        _wp("descend", mug_xy, grasp_z, yaw, False, 0.8),
        _wp("grasp", mug_xy, grasp_z, yaw, True, 0.7),
        _wp("lift", mug_xy, CARRY_Z, yaw, True, 0.8),
        _wp("move", spot_xy, CARRY_Z, yaw, True, 1.3),
        _wp("place", spot_xy, grasp_z + 0.004, yaw, True, 0.8),
        _wp("release", spot_xy, grasp_z + 0.004, yaw, False, 0.5),
        _wp("retreat", spot_xy, CARRY_Z, yaw, False, 0.6),
    ]

    def succeeded() -> bool:
        pose = body_pose(client, mug.uid)
        upright = pose[2, 2] > 0.95
        return bool(
            upright and np.linalg.norm(pose[:2, 3] - spot_xy) < 0.03 and pose[2, 3] < TABLE_TOP_Z + 0.01
        )

    return TaskSetup("move_mug", plan, succeeded, "move the mug onto the green spot")


def push_object(client: int, rng: np.random.Generator) -> TaskSetup:
    """Push a blue cube along the table with the closed fingers, away from the robot."""
    scale = 1.2
    half = CUBE_M * scale / 2
    start_xy = np.array([rng.uniform(0.40, 0.48), rng.uniform(-0.12, 0.12)])
    angle = rng.uniform(-np.pi / 6, np.pi / 6)
    distance = rng.uniform(0.14, 0.18)
    direction = np.array([np.cos(angle), np.sin(angle)])
    block = load_prop(
        client,
        "cube_small.urdf",
        start_xy,
        angle,
        z=TABLE_TOP_Z + half,
        scale=scale,
        rgba=(0.15, 0.3, 0.85, 1.0),
        mass_kg=0.2,
        friction=0.4,
        kind="block",
    )
    contact_gap = half + 0.015
    pre = start_xy - direction * (contact_gap + 0.05)
    end = start_xy + direction * (distance - contact_gap)
    push_z = TABLE_TOP_Z + 0.026  # fingertips 2 cm above the table, the palm clear of the block's top
    yaw = float(angle)
    plan = [
        _wp("close", pre, CARRY_Z, yaw, True, 1.2),
        _wp("approach", pre, push_z + 0.08, yaw, True, 0.8),
        _wp("descend", pre, push_z, yaw, True, 0.7),
        _wp("push", end, push_z, yaw, True, 2.2),
        _wp("retreat", end - direction * 0.04, push_z + 0.02, yaw, True, 0.6),
        _wp("lift", end - direction * 0.04, CARRY_Z, yaw, False, 0.8),
    ]

    def succeeded() -> bool:
        pose = body_pose(client, block.uid)
        return bool(pose[2, 2] > 0.95 and (pose[:2, 3] - start_xy) @ direction > 0.6 * distance)

    return TaskSetup("push_object", plan, succeeded, "push the blue block away from the robot")


TASKS: dict[str, Callable[[int, np.random.Generator], TaskSetup]] = {
    "pick_block": pick_block,
    "move_mug": move_mug,
    "push_object": push_object,
}
