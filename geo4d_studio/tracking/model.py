"""The gripper model the tracker registers against: points and normals sampled from the mesh (tool frame).

The fingers slide along the tool's opening axis; points sampled on them are tagged with their side
(+1 / -1) so the model can be re-posed for any finger separation (`points_at_width`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo4d_studio.errors import Geo4DError


@dataclass(frozen=True)
class GripperModel:
    """Surface samples of the gripper mesh in the tool frame.

    points/normals (N, 3) float64, finger_side (N,) int8 (0 palm, +1/-1 finger on the +/- side of the
    opening axis), `mesh_width_m` the finger separation the mesh was made at (None: rigid model); the
    arm is mounted on the side of low `approach_axis` coordinates.
    """

    vertices: np.ndarray
    faces: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    finger_side: np.ndarray
    opening_axis: int
    mesh_width_m: float | None
    spacing_m: float
    approach_axis: int = 2

    @property
    def radius_m(self) -> float:
        """Radius of the sphere about the tool origin that holds the model (fingers fully open + 5 cm)."""
        return float(np.linalg.norm(self.points, axis=1).max()) + 0.05

    def points_at_width(self, width_m: float | None) -> np.ndarray:
        """(N, 3) model points with the fingers moved to separation `width_m` (unchanged if unknown)."""
        if width_m is None or self.mesh_width_m is None or not np.isfinite(width_m):
            return self.points
        shift = np.zeros(3)
        shift[self.opening_axis] = 0.5 * (float(width_m) - self.mesh_width_m)
        return self.points + self.finger_side[:, None] * shift


def _o3d_mesh(vertices: np.ndarray, faces: np.ndarray):
    import open3d as o3d

    return o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices.astype(np.float64)),
        o3d.utility.Vector3iVector(faces.astype(np.int32)),
    )


def _sample_surface(
    vertices: np.ndarray, faces: np.ndarray, spacing_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """About one sample per `spacing_m`² of surface (uniform, deterministic) with the face normals."""
    import open3d as o3d

    mesh = _o3d_mesh(vertices, faces)
    mesh.remove_degenerate_triangles()
    mesh.compute_triangle_normals()
    count = int(np.clip(mesh.get_surface_area() / spacing_m**2, 50, 20000))
    o3d.utility.random.seed(0)
    cloud = mesh.sample_points_uniformly(count, use_triangle_normal=True)
    return np.asarray(cloud.points), np.asarray(cloud.normals)


def finger_faces(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    opening_axis: int = 1,
    approach_axis: int = 2,
    finger_min_depth_m: float,
) -> np.ndarray:
    """(F,) bool: faces of connected mesh parts that lie wholly beyond `finger_min_depth_m` along the
    approach axis and wholly on one side of the opening axis (the fingers of a parallel gripper)."""
    labels = np.asarray(_o3d_mesh(vertices, faces).cluster_connected_triangles()[0])
    corner = vertices[faces]  # (F, 3, 3)
    depth_min = np.full(labels.max() + 1, np.inf)
    np.minimum.at(depth_min, labels, corner[:, :, approach_axis].min(axis=1))
    side_min = np.full(labels.max() + 1, np.inf)
    side_max = np.full(labels.max() + 1, -np.inf)
    np.minimum.at(side_min, labels, corner[:, :, opening_axis].min(axis=1))
    np.maximum.at(side_max, labels, corner[:, :, opening_axis].max(axis=1))
    is_finger = (depth_min > finger_min_depth_m) & ((side_min > 0) | (side_max < 0))
    return is_finger[labels]


def gripper_model(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    spacing_m: float = 0.004,
    opening_axis: int = 1,
    approach_axis: int = 2,
    finger_min_depth_m: float | None = -0.05,
    mesh_width_m: float | None = None,
) -> GripperModel:
    """Build the model from a mesh in the tool frame (defaults: the Panda hand of `geo4d_studio.sim`,
    z approach, y opening, fingers beyond z = -5 cm).

    Mesh parts found by `finger_faces` are the fingers; their samples are tagged by side so the model
    can be re-posed. `mesh_width_m` (the opening the mesh was made at) defaults to the gap between the
    fingers' inner faces. Without fingers (or `finger_min_depth_m=None`) the model is rigid.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int32)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
        raise Geo4DError(f"gripper mesh: vertices have shape {vertices.shape}, expected (V>=4, 3)")
    if (
        faces.ndim != 2
        or faces.shape[1] != 3
        or len(faces) == 0
        or faces.min() < 0
        or faces.max() >= len(vertices)
    ):
        raise Geo4DError(
            f"gripper mesh: faces have shape {faces.shape} or index outside {len(vertices)} vertices"
        )
    fingers = np.zeros(len(faces), dtype=bool)
    if finger_min_depth_m is not None:
        fingers = finger_faces(
            vertices,
            faces,
            opening_axis=opening_axis,
            approach_axis=approach_axis,
            finger_min_depth_m=finger_min_depth_m,
        )
    palm_pts, palm_normals = _sample_surface(vertices, faces[~fingers], spacing_m)
    side = np.zeros(len(palm_pts), dtype=np.int8)
    points, normals = palm_pts, palm_normals
    if fingers.any():
        finger_pts, finger_normals = _sample_surface(vertices, faces[fingers], spacing_m)
        points = np.concatenate([palm_pts, finger_pts])
        normals = np.concatenate([palm_normals, finger_normals])
        side = np.concatenate([side, np.where(finger_pts[:, opening_axis] > 0, 1, -1).astype(np.int8)])
        if mesh_width_m is None:
            finger_coord = vertices[np.unique(faces[fingers]), opening_axis]
            pos, neg = finger_coord[finger_coord > 0], finger_coord[finger_coord < 0]
            if pos.size and neg.size:
                mesh_width_m = float(pos.min() - neg.max())
    return GripperModel(
        vertices=vertices,
        faces=faces,
        points=points,
        normals=normals,
        finger_side=side,
        opening_axis=opening_axis,
        mesh_width_m=mesh_width_m if side.any() else None,
        spacing_m=spacing_m,
        approach_axis=approach_axis,
    )
