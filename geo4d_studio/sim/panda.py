"""The Franka Panda in pybullet: inverse kinematics with the null space, gripper control, tool pose, mesh.

Tool frame (`T_world_tool`, stored as /robot/ee_pose): the `panda_grasptarget` link, 0.105 m from the hand
frame along its z axis, i.e. between the fingertip pads. z points along the approach direction (out of the
flange, through the fingers), y is the axis along which the fingers open, x = y × z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geo4d_studio.sim.objmesh import merge_meshes, read_obj

PANDA_URDF = "franka_panda/panda.urdf"
ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
HAND_LINK = 8
TOOL_LINK = 11
GRIPPER_LINKS = (HAND_LINK, *FINGER_JOINTS)
"""Links whose pixels form the gripper mask: the hand and both fingers (finger joint i moves link i)."""

HOME_Q = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
LOWER = (-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671, 0.0, 0.0)
UPPER = (2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671, 0.04, 0.04)
ARM_FORCES_N = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
FINGER_OPEN_M = 0.04
"""Each finger's travel; the gripper opening (`gripper_width`) is the sum of both, 0 .. 0.08 m."""
FINGER_FORCE_N = 40.0
FINGER_SPEED_MPS = 0.08


class Panda:
    """A fixed-base Panda at the world origin, driven by position control towards IK solutions."""

    def __init__(self, client: int) -> None:
        import pybullet as pb

        self._pb, self.client = pb, client
        self.uid = pb.loadURDF(PANDA_URDF, [0, 0, 0], useFixedBase=True, physicsClientId=client)
        for joint, q in zip(ARM_JOINTS, HOME_Q, strict=True):
            pb.resetJointState(self.uid, joint, q, physicsClientId=client)
        for joint in FINGER_JOINTS:
            pb.resetJointState(self.uid, joint, FINGER_OPEN_M, physicsClientId=client)
            pb.changeDynamics(
                self.uid, joint, lateralFriction=1.5, spinningFriction=0.01, physicsClientId=client
            )
        self.hold_arm(np.asarray(HOME_Q))
        self.command_gripper(closed=False)

    def tool_pose(self) -> np.ndarray:
        """T_world_tool (4, 4): the grasp-target frame between the fingertips."""
        return self.link_pose(TOOL_LINK)

    def link_pose(self, link: int) -> np.ndarray:
        """World pose (4, 4) of a link's URDF frame."""
        state = self._pb.getLinkState(
            self.uid, link, computeForwardKinematics=True, physicsClientId=self.client
        )
        T = np.eye(4)
        T[:3, :3] = np.asarray(self._pb.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        T[:3, 3] = state[4]
        return T

    def gripper_width(self) -> float:
        """Opening in metres: the sum of both finger joint positions."""
        states = self._pb.getJointStates(self.uid, FINGER_JOINTS, physicsClientId=self.client)
        return float(sum(s[0] for s in states))

    def solve_ik(self, position: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
        """Arm joint angles (7,) that put the tool at `position` with `quat_xyzw`, near the home posture."""
        q = self._pb.calculateInverseKinematics(
            self.uid,
            TOOL_LINK,
            [float(v) for v in position],
            [float(v) for v in quat_xyzw],
            lowerLimits=list(LOWER),
            upperLimits=list(UPPER),
            jointRanges=[u - lo for u, lo in zip(UPPER, LOWER, strict=True)],
            restPoses=[*HOME_Q, FINGER_OPEN_M, FINGER_OPEN_M],
            maxNumIterations=50,
            residualThreshold=1e-5,
            physicsClientId=self.client,
        )
        return np.asarray(q[: len(ARM_JOINTS)])

    def hold_arm(self, q: np.ndarray) -> None:
        """Position-control the arm joints towards `q` (7,)."""
        self._pb.setJointMotorControlArray(
            self.uid,
            list(ARM_JOINTS),
            self._pb.POSITION_CONTROL,
            targetPositions=[float(v) for v in q],
            forces=list(ARM_FORCES_N),
            physicsClientId=self.client,
        )

    def command_gripper(self, *, closed: bool) -> None:
        """Drive both fingers open (0.04 m each) or closed (squeezing with FINGER_FORCE_N each)."""
        target = 0.0 if closed else FINGER_OPEN_M
        for joint in FINGER_JOINTS:
            self._pb.setJointMotorControl2(
                self.uid,
                joint,
                self._pb.POSITION_CONTROL,
                targetPosition=target,
                force=FINGER_FORCE_N,
                maxVelocity=FINGER_SPEED_MPS,
                physicsClientId=self.client,
            )

    def gripper_mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Hand + both fingers (visual meshes) at the current opening, in the tool frame.

        Vertices (V, 3) float32 metres, faces (F, 3) int32.
        """
        import pybullet_data

        T_tool_world = np.linalg.inv(self.tool_pose())
        visuals = {v[1]: v for v in self._pb.getVisualShapeData(self.uid, physicsClientId=self.client)}
        parts = []
        for link in GRIPPER_LINKS:
            _, _, _, scale, mesh_file, origin, quat = visuals[link][:7]
            vertices, faces = read_obj(self._resolve_mesh(mesh_file, Path(pybullet_data.getDataPath())))
            T_link_visual = np.eye(4)
            T_link_visual[:3, :3] = np.asarray(self._pb.getMatrixFromQuaternion(quat)).reshape(3, 3)
            T_link_visual[:3, 3] = origin
            T = T_tool_world @ self.link_pose(link) @ T_link_visual
            parts.append(((vertices * np.asarray(scale, np.float32)) @ T[:3, :3].T + T[:3, 3], faces))
        return merge_meshes(parts)

    @staticmethod
    def _resolve_mesh(mesh_file: bytes, data_dir: Path) -> Path:
        """pybullet reports absolute mesh paths; fall back to the pybullet_data Panda folder."""
        path = Path(mesh_file.decode())
        return path if path.is_file() else data_dir / "franka_panda" / "meshes" / "visual" / path.name
