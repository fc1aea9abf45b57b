"""Camera panes: a grid of visible cameras × (recorded RGB, depth, generated RGB, depth, error map).

Image items are built once per layout (scene, visible cameras, generation) and only get new pixels
when the time cursor moves. Hovering a pixel reports its depth and world point to the session, which
every pane (and the 3D view) marks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from geo4d_studio.qt.pane_images import (
    colorize,
    depth_error,
    depth_for_display,
    mask_outline,
    pixel_to_world,
    rgb_error,
    world_to_pixel,
)
from geo4d_studio.session import Session

RECORDED_ROWS = ("RGB", "depth")
GENERATED_ROWS = ("gen RGB", "gen depth", "error")
BACKGROUND = (0x16, 0x18, 0x1C)  # the canvas colour, also shown where a pixel has no data
DEPTH_COLORMAP = "viridis"
ERROR_COLORMAP = "inferno"


@dataclass
class PaneCell:
    """One viewport: an image, an optional mask outline and the hover marker."""

    row: str
    camera: str
    view: pg.ViewBox
    image: pg.ImageItem
    outline: pg.ImageItem
    marker: pg.ScatterPlotItem
    shape: tuple[int, int] = (0, 0)

    def set_image(self, image: np.ndarray) -> None:
        """New uint8 RGB pixels, drawn as they are; the view is fitted when the image size changes."""
        self.image.setImage(image, autoLevels=False, levels=None, lut=None)
        if image.shape[:2] != self.shape:
            self.shape = image.shape[:2]
            self.view.setRange(xRange=(0, self.shape[1]), yRange=(0, self.shape[0]), padding=0)


def _lut(name: str) -> np.ndarray:
    return pg.colormap.get(name).getLookupTable(nPts=256, alpha=False)


class CameraPanes(QWidget):
    """Central widget: recorded and generated RGB-D of every visible camera at the time cursor."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CameraPanes")
        self.session = session
        self.cells: dict[tuple[str, str], PaneCell] = {}  # the cells shown now
        self._pool: dict[tuple[str, str], PaneCell] = {}  # every cell ever made, by (row, camera)
        self._labels: dict[tuple[int, int], pg.LabelItem] = {}  # row and column titles, by position
        self._depth_lut, self._error_lut = _lut(DEPTH_COLORMAP), _lut(ERROR_COLORMAP)

        self.depth_min = self._spin(0.0, 0.05, "Depth colour map: metres at the first colour")
        self.depth_max = self._spin(2.0, 0.05, "Depth colour map: metres at the last colour")
        self.error_max = self._spin(0.10, 0.01, "Error map: |Δdepth| metres (or ΔRGB/255) at the last colour")
        self.error_mode = QComboBox()
        self.error_mode.addItems(["|Δdepth|", "|ΔRGB|"])
        self.error_mode.setToolTip("What the error row shows: depth or colour difference to the recording")
        self.show_outline = QCheckBox("gripper outline")
        self.show_outline.setToolTip("Outline the recorded gripper mask on the recorded panes")
        self.readout = QLabel("hover a pixel for its depth and 3D point")
        self.readout.setObjectName("HoverReadout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        bar = QHBoxLayout()
        for label, widget in (
            ("depth", self.depth_min),
            ("–", self.depth_max),
            ("error max", self.error_max),
        ):
            bar.addWidget(QLabel(label))
            bar.addWidget(widget)
        bar.addWidget(self.error_mode)
        bar.addWidget(self.show_outline)
        bar.addStretch(1)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(BACKGROUND)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(bar)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)

        for spin in (self.depth_min, self.depth_max, self.error_max):
            spin.valueChanged.connect(self.redraw)
        self.error_mode.currentIndexChanged.connect(self.redraw)
        self.show_outline.toggled.connect(self.redraw)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        session.scene_changed.connect(self._fit_depth_range)
        session.scene_changed.connect(self.rebuild)
        session.visible_cameras_changed.connect(self.rebuild)
        session.generation_selected.connect(self.rebuild)
        session.views_changed.connect(self.rebuild)
        session.frame_changed.connect(self.redraw)
        session.hover_point_changed.connect(self._show_hover_marker)
        self.rebuild()

    @staticmethod
    def _spin(value: float, step: float, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 100.0)
        spin.setDecimals(2)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setSuffix(" m" if "metres at" in tip else "")
        spin.setToolTip(tip)
        return spin

    def _fit_depth_range(self, scene: object) -> None:
        """Colour-map range of a new recording: 0 to the farthest valid depth of its first frame."""
        if scene is None:
            return
        far = max(float(scene.depth(cam, 0).max()) for cam in scene.camera_names)
        for spin, value in ((self.depth_min, 0.0), (self.depth_max, np.ceil(max(far, 0.1) * 10) / 10)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    # -- layout --------------------------------------------------------------------------------
    def rows(self) -> tuple[str, ...]:
        """Row kinds shown now: recorded rows, plus generated rows when a generation is selected."""
        return RECORDED_ROWS + (GENERATED_ROWS if self.session.generation is not None else ())

    def rebuild(self, *_: object) -> None:
        """Lay the grid out again (only when the scene, visible cameras or generation change).

        Labels and cells are made once per grid position and (row, camera), and reused: deleting
        pyqtgraph items while their graphics scene lives can crash Qt, so none is ever deleted.
        """
        for item in list(self.canvas.ci.items):
            self.canvas.ci.removeItem(item)
        for cell in self.cells.values():
            cell.image.clear()  # hidden cells keep no pixels
            cell.outline.clear()
        self.cells = {}
        scene = self.session.scene
        if scene is not None:
            cameras = self.session.visible_cameras
            for col, cam in enumerate(cameras, start=1):
                self._place_label(self._column_title(cam), row=0, col=col)
            for row_index, row in enumerate(self.rows(), start=1):
                self._place_label(row, row=row_index, col=0, angle=-90)
                for col, cam in enumerate(cameras, start=1):
                    cell = self._pool.get((row, cam)) or self._make_cell(row, cam)
                    self._pool[(row, cam)] = self.cells[(row, cam)] = cell
                    self.canvas.addItem(cell.view, row=row_index, col=col)
        self.redraw()

    def _place_label(self, text: str, row: int, col: int, angle: int = 0) -> None:
        label = self._labels.get((row, col))
        if label is None:
            label = self._labels[(row, col)] = pg.LabelItem(text, angle=angle)
        else:
            label.setText(text)
        self.canvas.addItem(label, row=row, col=col)

    def _column_title(self, cam: str) -> str:
        role = {self.session.ref_camera: " (n)", self.session.other_camera: " (m)"}.get(cam, "")
        return f"<b>{cam}</b>{role}"

    @staticmethod
    def _make_cell(row: str, cam: str) -> PaneCell:
        view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        view.disableAutoRange()
        view.setObjectName(f"{row}:{cam}")
        image = pg.ImageItem(axisOrder="row-major")
        outline = pg.ImageItem(axisOrder="row-major")
        marker = pg.ScatterPlotItem(size=14, symbol="+", pen=pg.mkPen("#00e5ff", width=2), brush=None)
        for item in (image, outline, marker):
            view.addItem(item)
        outline.setZValue(1)
        marker.setZValue(2)
        return PaneCell(row, cam, view, image, outline, marker)

    # -- per-frame drawing ---------------------------------------------------------------------
    def redraw(self, *_: object) -> None:
        """Put the current frame's pixels into every image item (no widgets are created)."""
        scene, t = self.session.scene, self.session.frame
        if scene is None:
            return
        recorded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for cam in self.session.visible_cameras:
            recorded[cam] = (scene.rgb(cam, t), scene.depth(cam, t))
        outline_on = self.show_outline.isChecked()
        for (row, cam), cell in self.cells.items():
            rgb, depth = recorded[cam]
            if row == "RGB":
                cell.set_image(rgb)
            elif row == "depth":
                self._set_depth(cell, depth)
            else:
                self._draw_generated(cell, rgb, depth)
            mask = scene.gripper_mask(cam, t) if outline_on and row in RECORDED_ROWS else None
            if mask is None:
                cell.outline.clear()
            else:
                cell.outline.setImage(mask_outline(mask), autoLevels=False, levels=(0, 255))
        self._show_hover_marker(self.session.hover_point)

    def _set_depth(self, cell: PaneCell, depth_m: np.ndarray) -> None:
        lo, hi = self.depth_min.value(), max(self.depth_max.value(), self.depth_min.value() + 1e-3)
        cell.set_image(colorize(depth_for_display(depth_m), lo, hi, self._depth_lut, BACKGROUND))

    def _generated_frame(self, cam: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rgb, depth) the selected generation predicts for `cam` at the time cursor, if any."""
        gen = self.session.generation
        if gen is None or cam not in (gen.ref_camera, gen.other_camera):
            return None
        slot = gen.frame_slot(self.session.frame)
        if slot is None:
            return None
        if cam == gen.ref_camera:
            return gen.rgb_ref[slot], gen.depth_ref[slot]
        return gen.rgb_other[slot], gen.depth_other[slot]

    def _draw_generated(self, cell: PaneCell, rgb: np.ndarray, depth: np.ndarray) -> None:
        frame = self._generated_frame(cell.camera)
        if frame is None:
            cell.image.clear()
            return
        gen_rgb, gen_depth = frame
        if cell.row == "gen RGB":
            cell.set_image(gen_rgb)
            return
        if cell.row == "gen depth":
            self._set_depth(cell, gen_depth)
            return
        if self.error_mode.currentIndex() == 0:
            error, top = depth_error(gen_depth, depth), self.error_max.value()
        else:
            error, top = rgb_error(gen_rgb, rgb), 255 * self.error_max.value()
        cell.set_image(colorize(error, 0.0, top, self._error_lut, BACKGROUND))

    # -- hover ---------------------------------------------------------------------------------
    def _camera_model(self, cell: PaneCell) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        """(K, T_world_cam, height, width) of the image a cell shows, or None for an empty cell."""
        scene, t = self.session.scene, self.session.frame
        if cell.row in RECORDED_ROWS:
            cam = scene.cameras[cell.camera]
            return cam.K, cam.pose(t), cam.height, cam.width
        gen = self.session.generation
        if self._generated_frame(cell.camera) is None:
            return None
        h, w = gen.depth_ref.shape[1:3] if cell.camera == gen.ref_camera else gen.depth_other.shape[1:3]
        if cell.camera == gen.ref_camera:
            return gen.K_ref, gen.T_world_ref, h, w
        return gen.K_other, gen.T_world_other, h, w

    def _depth_at(self, cell: PaneCell, u: int, v: int) -> float:
        if cell.row in RECORDED_ROWS:
            return float(self.session.scene.depth(cell.camera, self.session.frame)[v, u])
        _, gen_depth = self._generated_frame(cell.camera)
        return float(gen_depth[v, u])

    def cell_at(self, scene_pos: QPointF) -> PaneCell | None:
        """The cell under a position in the canvas's graphics scene."""
        for cell in self.cells.values():
            if cell.view.sceneBoundingRect().contains(scene_pos):
                return cell
        return None

    def hover_pixel(self, cell: PaneCell, u: int, v: int) -> np.ndarray | None:
        """Report pixel (u, v) of a cell: readout text and the session's hover point (None if invalid)."""
        model = self._camera_model(cell)
        if model is None:
            return None
        K, T_world_cam, h, w = model
        if not (0 <= u < w and 0 <= v < h):
            return None
        depth_m = self._depth_at(cell, u, v)
        where = f"{cell.camera} {cell.row} pixel ({u}, {v})"
        if depth_m <= 0:
            self.readout.setText(f"{where}: no depth")
            self.session.set_hover_point(None)
            return None
        point = pixel_to_world(u, v, depth_m, K, T_world_cam)
        x, y, z = point
        self.readout.setText(f"{where}: depth {depth_m:.3f} m, world ({x:.3f}, {y:.3f}, {z:.3f}) m")
        self.session.set_hover_point(point)
        return point

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        if cell is None:
            return
        pos = cell.view.mapSceneToView(scene_pos)
        self.hover_pixel(cell, int(np.floor(pos.x())), int(np.floor(pos.y())))

    def _show_hover_marker(self, point: np.ndarray | None) -> None:
        for cell in self.cells.values():
            model = None if point is None else self._camera_model(cell)
            uv = None if model is None else world_to_pixel(point, *model)
            if uv is None:
                cell.marker.clear()
            else:
                cell.marker.setData([uv[0] + 0.5], [uv[1] + 0.5])
            cell.marker.setVisible(uv is not None)  # an empty marker still costs a paint per frame
