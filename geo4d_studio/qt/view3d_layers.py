"""VTK layers of the 3D view: each owns one actor whose data is replaced in place (never re-added).

Geometry helpers build line segments for camera frustums, trajectories and pose axes, all as
`(S, 2, 3)` float arrays of segment end points in the world (metres).
"""

from __future__ import annotations

import numpy as np
import pyvista as pv
import vtk
from vtkmodules.util.numpy_support import numpy_to_vtk


def _point_mesh_at(
    mesh: vtk.vtkPolyData, points: np.ndarray, colors: np.ndarray, segments: bool
) -> tuple[np.ndarray, ...]:
    """Make `mesh` read (N, 3) points and uint8 colours without copies: per point as vertices, or per
    segment as lines joining point pairs. Returns the arrays VTK reads; the caller keeps them alive."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    colors = np.ascontiguousarray(colors, dtype=np.uint8)
    n = len(points)
    ids = np.arange(n, dtype=np.int64)
    offsets = np.arange(0, n + 1, 2, dtype=np.int64) if segments else np.array([0, n], dtype=np.int64)
    vtk_points = vtk.vtkPoints()
    vtk_points.SetData(numpy_to_vtk(points))
    cells = vtk.vtkCellArray()
    if n:
        cells.SetData(numpy_to_vtk(offsets), numpy_to_vtk(ids))
    rgb = numpy_to_vtk(colors)
    rgb.SetName("rgb")
    mesh.SetPoints(vtk_points)
    if segments:
        mesh.SetLines(cells)
        mesh.GetCellData().SetScalars(rgb)
    else:
        mesh.SetVerts(cells)
        mesh.GetPointData().SetScalars(rgb)
    return points, colors, offsets, ids


def decimation_stride(n: int, every: int, max_count: int) -> int:
    """Stride that keeps every `every`-th of `n` points and at most `max_count` of them."""
    return max(1, every, -(-n // max(max_count, 1)))


class PointCloudLayer:
    """Coloured points with level of detail: the full cloud, or a decimated one while interacting.

    The decimated cloud keeps every `decimate_every`-th point, at most `max_decimated` of them.
    The actor's data points at numpy arrays (one poly-vertex cell), never copied into VTK.
    """

    def __init__(
        self, renderer: vtk.vtkRenderer, point_size: float, max_decimated: int, decimate_every: int
    ) -> None:
        self.mesh = pv.PolyData()
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputData(self.mesh)
        mapper.SetColorModeToDirectScalars()
        mapper.SetScalarModeToUsePointData()
        self.actor = vtk.vtkActor()
        self.actor.SetMapper(mapper)
        prop = self.actor.GetProperty()
        prop.SetRepresentationToPoints()
        prop.SetPointSize(point_size)
        prop.LightingOff()
        renderer.AddActor(self.actor)
        self.max_decimated = max_decimated
        self.decimate_every = decimate_every
        self.decimated = False
        self._points = np.zeros((0, 3), np.float32)
        self._colors = np.zeros((0, 3), np.uint8)
        self._shown: tuple[np.ndarray, ...] = ()  # arrays VTK reads without copying: kept alive here

    @property
    def num_points_total(self) -> int:
        """Points in the full cloud."""
        return len(self._points)

    @property
    def num_points_shown(self) -> int:
        """Points currently in the actor's data."""
        return self.mesh.n_points

    def set_data(self, points: np.ndarray, colors: np.ndarray) -> None:
        """Replace the cloud: (N, 3) float32 world points, (N, 3) uint8 colours."""
        self._points, self._colors = points, colors
        self._show()

    def set_decimation(self, max_points: int, every: int) -> None:
        """Change the decimated cloud's size limit and stride (re-decimates when shown decimated)."""
        self.max_decimated, self.decimate_every = max_points, max(1, every)
        if self.decimated:
            self._show()

    def _stride(self) -> int:
        return decimation_stride(len(self._points), self.decimate_every, self.max_decimated)

    def set_decimated(self, decimated: bool) -> bool:
        """Show the decimated (True) or the full (False) cloud; returns whether the shown data changed."""
        if decimated == self.decimated:
            return False
        self.decimated = decimated
        if self._stride() == 1:  # the decimated cloud is the full one
            return False
        self._show()
        return True

    def set_visible(self, visible: bool) -> None:
        """Show or hide the layer."""
        self.actor.SetVisibility(visible)

    def _show(self) -> None:
        stride = self._stride() if self.decimated else 1
        self._shown = _point_mesh_at(self.mesh, self._points[::stride], self._colors[::stride], False)


class LineSetLayer:
    """Coloured line segments (frustums, trajectories, pose axes) in one actor."""

    def __init__(self, renderer: vtk.vtkRenderer, line_width: float) -> None:
        self.mesh = pv.PolyData()
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputData(self.mesh)
        mapper.SetColorModeToDirectScalars()
        mapper.SetScalarModeToUseCellData()
        self.actor = vtk.vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetLineWidth(line_width)
        self.actor.GetProperty().LightingOff()
        renderer.AddActor(self.actor)
        self._shown: tuple[np.ndarray, ...] = ()  # arrays VTK reads without copying: kept alive here

    @property
    def num_segments(self) -> int:
        """Segments currently shown."""
        return self.mesh.n_cells

    def set_segments(self, segments: np.ndarray, colors: np.ndarray) -> None:
        """Replace the segments: (S, 2, 3) end points and (S, 3) uint8 colours."""
        points = np.asarray(segments, dtype=np.float32).reshape(-1, 3)
        self._shown = _point_mesh_at(self.mesh, points, np.asarray(colors).reshape(-1, 3), True)

    def set_visible(self, visible: bool) -> None:
        """Show or hide the layer."""
        self.actor.SetVisibility(visible)


class MarkerLayer:
    """A sphere marking one world point (e.g. the hovered pixel's 3D point)."""

    def __init__(self, renderer: vtk.vtkRenderer, color: tuple[float, float, float]) -> None:
        self._source = vtk.vtkSphereSource()
        self._source.SetThetaResolution(16)
        self._source.SetPhiResolution(16)
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputConnection(self._source.GetOutputPort())
        self.actor = vtk.vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetColor(*color)
        self.actor.VisibilityOff()
        renderer.AddActor(self.actor)
        self.enabled = True
        self.point: np.ndarray | None = None

    def set_radius(self, radius_m: float) -> None:
        """Sphere radius in metres."""
        self._source.SetRadius(radius_m)

    def set_point(self, point_world: np.ndarray | None) -> None:
        """Move the marker (None hides it)."""
        self.point = None if point_world is None else np.asarray(point_world, dtype=np.float64)
        if self.point is not None:
            self.actor.SetPosition(*self.point)
        self._update_visibility()

    def set_visible(self, visible: bool) -> None:
        """Enable or disable the layer (it still hides itself while there is no point)."""
        self.enabled = visible
        self._update_visibility()

    def _update_visibility(self) -> None:
        self.actor.SetVisibility(self.enabled and self.point is not None)


class LabelLayer:
    """Screen-aligned text labels anchored at world points, one per name, moved in place.

    2D text actors positioned in world coordinates: drawn on top (always readable) and an order of
    magnitude cheaper to render on software GL than 3D billboard text. Labels whose anchor is behind
    the viewer are hidden before each render.
    """

    def __init__(self, renderer: vtk.vtkRenderer, color: tuple[float, float, float]) -> None:
        self._renderer = renderer
        self._color = color
        self.actors: dict[str, vtk.vtkTextActor] = {}
        self._positions: dict[str, np.ndarray] = {}
        self._visible = True
        renderer.AddObserver("StartEvent", self._hide_behind_viewer)

    def set_names(self, names: list[str]) -> None:
        """Create one label per name (removing labels of names no longer present)."""
        for name in set(self.actors) - set(names):
            self._renderer.RemoveViewProp(self.actors.pop(name))
            self._positions.pop(name, None)
        for name in names:
            if name not in self.actors:
                actor = vtk.vtkTextActor()
                actor.SetInput(name)
                text = actor.GetTextProperty()
                text.SetFontSize(14)
                text.SetColor(*self._color)
                text.SetJustificationToCentered()
                text.SetBackgroundColor(0.0, 0.0, 0.0)
                text.SetBackgroundOpacity(0.55)
                actor.GetPositionCoordinate().SetCoordinateSystemToWorld()
                actor.SetVisibility(self._visible)
                self._renderer.AddViewProp(actor)
                self.actors[name] = actor

    def set_positions(self, positions: dict[str, np.ndarray]) -> None:
        """Move labels to world positions."""
        for name, position in positions.items():
            if name in self.actors:
                self._positions[name] = np.asarray(position, dtype=np.float64)
                self.actors[name].GetPositionCoordinate().SetValue(*self._positions[name])

    def set_visible(self, visible: bool) -> None:
        """Show or hide every label."""
        self._visible = visible
        for actor in self.actors.values():
            actor.SetVisibility(visible)

    def _hide_behind_viewer(self, *_: object) -> None:
        if not self._visible:
            return
        camera = self._renderer.GetActiveCamera()
        eye = np.array(camera.GetPosition())
        forward = np.array(camera.GetDirectionOfProjection())
        for name, actor in self.actors.items():
            position = self._positions.get(name)
            actor.SetVisibility(position is not None and float((position - eye) @ forward) > 0.0)


FRUSTUM_SEGMENTS = 10
"""Segments per camera frustum drawn by `frustum_segments`."""


def frustum_segments(
    K: np.ndarray, T_world_cam: np.ndarray, width: int, height: int, depth_m: float
) -> np.ndarray:
    """(FRUSTUM_SEGMENTS, 2, 3) segments of a camera frustum: apex to corners, the image rectangle
    at `depth_m`, and a small triangle on the top edge that shows which way is up in the image."""
    pixels = np.array(
        [[0, 0], [width, 0], [width, height], [0, height], [0.5 * width, -0.25 * height]], dtype=np.float64
    )
    rays = np.c_[pixels, np.ones(len(pixels))] @ np.linalg.inv(K).T
    T = np.asarray(T_world_cam, dtype=np.float64)
    corners = (rays * depth_m) @ T[:3, :3].T + T[:3, 3]
    apex = T[:3, 3]
    tl, tr, br, bl, up = corners
    return np.array(
        [
            [apex, tl], [apex, tr], [apex, br], [apex, bl],
            [tl, tr], [tr, br], [br, bl], [bl, tl],
            [tl, up], [up, tr],
        ]
    )  # fmt: skip


def polyline_segments(points: np.ndarray) -> np.ndarray:
    """(S, 2, 3) segments joining consecutive (N, 3) points, skipping any with a NaN end."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return np.zeros((0, 2, 3))
    a, b = points[:-1], points[1:]
    finite = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    return np.stack([a[finite], b[finite]], axis=1)


AXIS_COLORS = np.array([[230, 60, 60], [60, 210, 60], [70, 120, 255]], dtype=np.uint8)


def axes_segments(T_world_frame: np.ndarray, length_m: float) -> np.ndarray:
    """(3, 2, 3) segments of a frame's x, y, z axes (draw with `AXIS_COLORS`); empty if NaN."""
    T = np.asarray(T_world_frame, dtype=np.float64)
    if not np.isfinite(T).all():
        return np.zeros((0, 2, 3))
    origin = T[:3, 3]
    return np.stack([np.broadcast_to(origin, (3, 3)), origin + length_m * T[:3, :3].T], axis=1)
