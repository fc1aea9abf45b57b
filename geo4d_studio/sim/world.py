"""The simulated work cell: floor, table (top at world z = 0), a fixed-base Panda at the origin, and props.

World frame: z up, origin at the robot base on the table top, x pointing away from the robot over the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TABLE_TOP_Z = 0.0
TABLE_URDF_TOP_M = 0.625
"""`table/table.urdf` has its top surface 0.625 m above its base."""
TABLE_CENTER_XY = (0.45, 0.0)
FLOOR_Z = -TABLE_URDF_TOP_M
GRAVITY = -9.81
PHYSICS_HZ = 240
FLOOR_RGBA = (0.45, 0.47, 0.52, 1.0)
TABLE_RGBA = (0.76, 0.6, 0.42, 1.0)


@dataclass(frozen=True)
class Prop:
    """A body loaded into the world: pybullet uid and what it is."""

    uid: int
    kind: str


def connect() -> int:
    """A fresh DIRECT pybullet client with pybullet_data on the search path, gravity and a 240 Hz step."""
    import pybullet as pb
    import pybullet_data

    client = pb.connect(pb.DIRECT)
    pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
    pb.setGravity(0, 0, GRAVITY, physicsClientId=client)
    pb.setTimeStep(1.0 / PHYSICS_HZ, physicsClientId=client)
    pb.setPhysicsEngineParameter(
        numSolverIterations=80, deterministicOverlappingPairs=1, physicsClientId=client
    )
    return client


def load_cell(client: int) -> None:
    """Floor and table, untextured (flat colours keep the shipped episodes small: half the bytes)."""
    import pybullet as pb

    floor = pb.loadURDF("plane.urdf", [0, 0, FLOOR_Z], physicsClientId=client)
    table = pb.loadURDF(
        "table/table.urdf",
        [*TABLE_CENTER_XY, TABLE_TOP_Z - TABLE_URDF_TOP_M],
        useFixedBase=True,
        physicsClientId=client,
    )
    for uid, rgba in ((floor, FLOOR_RGBA), (table, TABLE_RGBA)):
        for visual in pb.getVisualShapeData(uid, physicsClientId=client):
            pb.changeVisualShape(
                uid, visual[1], textureUniqueId=-1, rgbaColor=list(rgba), physicsClientId=client
            )


def yaw_quat(yaw: float) -> list[float]:
    """Quaternion xyzw of a rotation by `yaw` radians about world z."""
    return [0.0, 0.0, float(np.sin(yaw / 2)), float(np.cos(yaw / 2))]


def load_prop(
    client: int,
    urdf: str,
    xy: np.ndarray,
    yaw: float,
    *,
    z: float = TABLE_TOP_Z,
    scale: float = 1.0,
    rgba: tuple[float, float, float, float] | None = None,
    mass_kg: float | None = None,
    friction: float = 1.0,
    fixed: bool = False,
    kind: str = "",
) -> Prop:
    """Load a pybullet_data URDF at (x, y, z) with a yaw, optionally recoloured and re-massed."""
    import pybullet as pb

    uid = pb.loadURDF(
        urdf,
        [float(xy[0]), float(xy[1]), z],
        yaw_quat(yaw),
        globalScaling=scale,
        useFixedBase=fixed,
        physicsClientId=client,
    )
    if rgba is not None:
        pb.changeVisualShape(uid, -1, rgbaColor=list(rgba), physicsClientId=client)
    dynamics: dict[str, float] = {
        "lateralFriction": friction,
        "spinningFriction": 0.001,
        "rollingFriction": 0.0001,
    }
    if mass_kg is not None:
        dynamics["mass"] = mass_kg
    pb.changeDynamics(uid, -1, physicsClientId=client, **dynamics)
    return Prop(uid, kind or urdf)


def add_marker(client: int, xy: np.ndarray, radius_m: float, rgba: tuple[float, float, float, float]) -> Prop:
    """A flat visual-only disc on the table (a target spot): rendered, never collides."""
    import pybullet as pb

    shape = pb.createVisualShape(
        pb.GEOM_CYLINDER, radius=radius_m, length=0.002, rgbaColor=list(rgba), physicsClientId=client
    )
    uid = pb.createMultiBody(
        baseMass=0,
        baseVisualShapeIndex=shape,
        basePosition=[float(xy[0]), float(xy[1]), TABLE_TOP_Z + 0.001],
        physicsClientId=client,
    )
    return Prop(uid, "marker")


def body_pose(client: int, uid: int) -> np.ndarray:
    """World pose (4, 4) of a body's base."""
    import pybullet as pb

    pos, quat = pb.getBasePositionAndOrientation(uid, physicsClientId=client)
    T = np.eye(4)
    T[:3, :3] = np.asarray(pb.getMatrixFromQuaternion(quat)).reshape(3, 3)
    T[:3, 3] = pos
    return T
