"""Scene dock: the open file, camera visibility, views n and m, and the episode's facts and warnings."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geo4d_studio.session import Session


class SceneDock(QDockWidget):
    """Shows what is open and lets the user choose visible cameras and the generation's two views."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Scene", parent)
        self.setObjectName("SceneDock")
        self.session = session
        self._updating = False
        self.file_label = QLabel("no recording open")
        self.file_label.setObjectName("SceneFile")
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.camera_list = QListWidget()
        self.camera_list.setObjectName("CameraList")
        self.camera_list.setToolTip("Cameras shown in the panes and fused in the 3D view")
        self.ref_combo = QComboBox()
        self.ref_combo.setToolTip("Reference view n: the model predicts both views in n's camera frame")
        self.other_combo = QComboBox()
        self.other_combo.setToolTip("Second view m, cross-attending to view n")
        self.facts = QLabel()
        self.facts.setObjectName("SceneFacts")
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.RichText)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.file_label)
        layout.addWidget(QLabel("Cameras"))
        layout.addWidget(self.camera_list, 1)
        views = QFormLayout()
        views.addRow("view n", self.ref_combo)
        views.addRow("view m", self.other_combo)
        layout.addLayout(views)
        layout.addWidget(self.facts)
        self.setWidget(body)

        self.camera_list.itemChanged.connect(self._on_visibility_edited)
        self.ref_combo.currentTextChanged.connect(self._on_views_edited)
        self.other_combo.currentTextChanged.connect(self._on_views_edited)
        session.scene_changed.connect(self._on_scene)
        session.visible_cameras_changed.connect(self._show_visibility)
        session.views_changed.connect(self._show_views)
        self._on_scene(session.scene)

    def _on_scene(self, scene: object) -> None:
        self._updating = True
        self.camera_list.clear()
        self.ref_combo.clear()
        self.other_combo.clear()
        if scene is None:
            self.file_label.setText("no recording open")
            self.facts.setText("")
        else:
            self.file_label.setText(str(scene.path))
            self.file_label.setToolTip(str(scene.path))
            for name in scene.camera_names:
                cam = scene.cameras[name]
                item = QListWidgetItem(f"{name}  ({cam.width}×{cam.height})")
                item.setData(Qt.ItemDataRole.UserRole, name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                self.camera_list.addItem(item)
            self.ref_combo.addItems(scene.camera_names)
            self.other_combo.addItems(scene.camera_names)
            self.facts.setText(self._facts_html(scene))
        self._updating = False
        self._show_visibility(self.session.visible_cameras)
        self._show_views(self.session.ref_camera, self.session.other_camera)

    @staticmethod
    def _facts_html(scene: object) -> str:
        duration = float(scene.timestamps[-1] - scene.timestamps[0]) if scene.num_frames else 0.0
        rows = [
            ("frames", f"{scene.num_frames}"),
            ("fps", f"{scene.fps:g}"),
            ("duration", f"{duration:.2f} s"),
            ("task", escape(scene.task or "—")),
            ("source", escape(scene.source or "—")),
            ("robot", "ground-truth gripper pose" if scene.ee_pose is not None else "no gripper pose"),
        ]
        html = (
            "<table>"
            + "".join(f"<tr><td><b>{k}</b>&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
            + "</table>"
        )
        if scene.warnings:
            items = "".join(f"<li>{escape(w)}</li>" for w in scene.warnings)
            html += f"<p style='color:#ffb300'><b>Validation warnings</b></p><ul>{items}</ul>"
        else:
            html += "<p style='color:#8bc34a'>validation: no warnings</p>"
        return html

    def _show_visibility(self, visible: list[str]) -> None:
        self._updating = True
        for row in range(self.camera_list.count()):
            item = self.camera_list.item(row)
            name = item.data(Qt.ItemDataRole.UserRole)
            item.setCheckState(Qt.CheckState.Checked if name in visible else Qt.CheckState.Unchecked)
        self._updating = False

    def _show_views(self, ref: str, other: str) -> None:
        self._updating = True
        self.ref_combo.setCurrentText(ref)
        self.other_combo.setCurrentText(other)
        self._updating = False

    def _on_visibility_edited(self, _item: QListWidgetItem) -> None:
        if self._updating:
            return
        checked = [
            self.camera_list.item(row).data(Qt.ItemDataRole.UserRole)
            for row in range(self.camera_list.count())
            if self.camera_list.item(row).checkState() == Qt.CheckState.Checked
        ]
        self.session.set_visible_cameras(checked)

    def _on_views_edited(self, _text: str) -> None:
        ref, other = self.ref_combo.currentText(), self.other_combo.currentText()
        if not self._updating and ref and other:
            self.session.set_views(ref, other)
