"""Metrics dock: per-clip and per-frame metrics of the selected generation against the recording.

Numbers come from `geo4d_studio.diffusion.evaluate.clip_metrics` (PSNR/SSIM, AbsRel/δ1 of view n and
of view m in n's frame, gripper mask IoU), computed in a worker for the clip and for every frame.
Frames where cross-view geometry or the gripper goes wrong are flagged; clicking a row jumps there.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geo4d_studio.generation import Generation
from geo4d_studio.qt.workers import Worker
from geo4d_studio.session import Session

#: (metric key, column title, digits)
COLUMNS = (
    ("psnr_n", "PSNR n dB", 1),
    ("psnr_m", "PSNR m dB", 1),
    ("ssim_n", "SSIM n", 3),
    ("absrel_n", "AbsRel n", 3),
    ("delta1_n", "δ1 n", 3),
    ("absrel_m", "AbsRel m→n", 3),
    ("delta1_m", "δ1 m→n", 3),
    ("miou_m_to_n", "IoU m→n", 2),
)
CROSSVIEW_ABSREL_LIMIT = 0.10
GRIPPER_IOU_LIMIT = 0.5
FLAG_COLOR = QColor("#5d3a00")


def frame_of(generation: Generation, index: int) -> Generation:
    """A one-frame Generation holding frame `index` of `generation` (per-frame arrays sliced)."""
    count = generation.num_frames
    sliced = {
        f.name: value[index : index + 1]
        for f in dataclasses.fields(generation)
        if isinstance(value := getattr(generation, f.name), np.ndarray)
        and value.ndim >= 1
        and len(value) == count
        and f.name not in ("K_ref", "K_other", "T_world_ref", "T_world_other")
    }
    return dataclasses.replace(generation, **sliced)


def flags_for(metrics: dict[str, float]) -> list[str]:
    """Why a frame looks wrong: cross-view depth inconsistency and/or a misplaced gripper."""
    flags = []
    if metrics.get("absrel_m", math.nan) > CROSSVIEW_ABSREL_LIMIT:
        flags.append(f"cross-view AbsRel > {CROSSVIEW_ABSREL_LIMIT:g}")
    if metrics.get("miou_m_to_n", math.nan) < GRIPPER_IOU_LIMIT:
        flags.append(f"gripper IoU < {GRIPPER_IOU_LIMIT:g}")
    return flags


def generation_metrics(scene_path: Path, generation: Generation) -> tuple[dict, list[dict]]:
    """(clip metrics, per-frame metrics) of a generation against its recording (worker thread)."""
    from geo4d_studio.diffusion.config import ModelConfig
    from geo4d_studio.diffusion.evaluate import clip_metrics
    from geo4d_studio.scene import open_scene

    max_depth_m = ModelConfig().max_depth_m
    with open_scene(scene_path) as scene:
        clip = clip_metrics(scene, generation, max_depth_m)
        frames = [
            clip_metrics(scene, frame_of(generation, i), max_depth_m) for i in range(generation.num_frames)
        ]
    return clip, frames


def runs_metrics(scene_path: Path, results_path: Path) -> list[tuple[str, str, dict]]:
    """(id, "n / m", clip metrics) of every generation saved beside a recording (worker thread)."""
    from geo4d_studio.diffusion.config import ModelConfig
    from geo4d_studio.diffusion.evaluate import clip_metrics
    from geo4d_studio.generation import list_generations, load_generation
    from geo4d_studio.scene import open_scene

    max_depth_m = ModelConfig().max_depth_m
    out = []
    with open_scene(scene_path) as scene:
        for summary in list_generations(results_path):
            gen = load_generation(results_path, summary["id"])
            out.append(
                (gen.id, f"{gen.ref_camera} / {gen.other_camera}", clip_metrics(scene, gen, max_depth_m))
            )
    return out


def _fmt(value: float, digits: int) -> str:
    return (
        "–" if value is None or math.isnan(value) else ("∞" if math.isinf(value) else f"{value:.{digits}f}")
    )


class MetricsDock(QDockWidget):
    """Per-clip summary and a per-frame table of the selected generation; rows jump the time cursor."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Metrics", parent)
        self.setObjectName("MetricsDock")
        self.session = session
        self.pool = QThreadPool(self)
        self.worker: Worker | None = None
        self._compare_worker: Worker | None = None
        self.frame_metrics: list[dict] = []
        self.clip: dict = {}
        self.summary = QLabel("select a generation to see its metrics")
        self.summary.setObjectName("ClipMetrics")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(0, 3 + len(COLUMNS))
        self.table.setObjectName("FrameMetrics")
        self.table.setHorizontalHeaderLabels(["frame", "t s", *(title for _, title, _ in COLUMNS), "flags"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setToolTip(
            f"Flagged (amber): AbsRel of view m in n's frame > {CROSSVIEW_ABSREL_LIMIT:g} or gripper mask "
            f"IoU m→n < {GRIPPER_IOU_LIMIT:g}. Click a row to jump to that frame."
        )
        self.compare_button = QPushButton("Compare all runs")
        self.compare_button.setToolTip("Per-clip metrics of every generation saved beside the recording")
        self.runs_table = QTableWidget(0, 2 + len(COLUMNS))
        self.runs_table.setObjectName("RunMetrics")
        self.runs_table.setHorizontalHeaderLabels(["run", "views n / m", *(title for _, title, _ in COLUMNS)])
        self.runs_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.runs_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.runs_table.verticalHeader().hide()
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.compare_button)
        layout.addWidget(self.runs_table, 1)
        self.setWidget(body)
        self.table.cellClicked.connect(self._on_cell_clicked)
        self.compare_button.clicked.connect(self.compare_runs)
        self.runs_table.cellClicked.connect(self._on_run_clicked)
        session.generations_changed.connect(lambda: self.runs_table.setRowCount(0))
        session.generation_selected.connect(self.compute)
        session.frame_changed.connect(self._highlight_frame)

    def compute(self, generation: Generation | None) -> None:
        """Start computing the metrics of `generation` in a worker (cancels the previous one)."""
        if self.worker is not None:
            self.worker.cancel()
        self.table.setRowCount(0)
        self.frame_metrics, self.clip = [], {}
        if generation is None or self.session.scene is None:
            self.summary.setText("select a generation to see its metrics")
            self.worker = None
            return
        self.summary.setText(f"computing the metrics of {generation.id}…")
        worker = Worker(lambda _c, _r, p=Path(self.session.scene.path): generation_metrics(p, generation))
        worker.signals.finished.connect(lambda result, w=worker, g=generation: self._show(w, g, *result))
        worker.signals.failed.connect(lambda message: self.summary.setText(f"metrics unavailable: {message}"))
        self.worker = worker
        self.pool.start(worker)

    def compare_runs(self) -> Worker | None:
        """Compute the clip metrics of every saved run in a worker and list them."""
        results = self.session.results_path
        if results is None or not results.exists():
            return None
        self.compare_button.setEnabled(False)
        worker = Worker(lambda _c, _r, p=Path(self.session.scene.path): runs_metrics(p, results))
        worker.signals.finished.connect(self._show_runs)
        worker.signals.failed.connect(lambda message: self.summary.setText(f"comparison failed: {message}"))
        worker.signals.failed.connect(lambda _m: self.compare_button.setEnabled(True))
        self._compare_worker = worker
        self.pool.start(worker)
        return worker

    def _show_runs(self, runs: list[tuple[str, str, dict]]) -> None:
        self.compare_button.setEnabled(True)
        self.runs_table.setRowCount(len(runs))
        for row, (gen_id, views, clip) in enumerate(runs):
            for col, text in enumerate([gen_id, views, *(_fmt(clip[k], d) for k, _, d in COLUMNS)]):
                self.runs_table.setItem(row, col, QTableWidgetItem(text))
        self.runs_table.resizeColumnsToContents()

    def _on_run_clicked(self, row: int, _col: int) -> None:
        self.session.select_generation(self.runs_table.item(row, 0).text())

    def wait(self, timeout_ms: int = -1) -> bool:
        """Wait for the metrics worker (tests, closing)."""
        return self.pool.waitForDone(timeout_ms)

    def _show(self, worker: Worker, generation: Generation, clip: dict, frames: list[dict]) -> None:
        if worker is not self.worker:
            return  # a newer selection superseded this result
        self.clip, self.frame_metrics = clip, frames
        flagged = 0
        self.table.setRowCount(len(frames))
        for row, (frame, t, metrics) in enumerate(
            zip(generation.frame_indices, generation.timestamps, frames, strict=True)
        ):
            flags = flags_for(metrics)
            flagged += bool(flags)
            cells = [
                str(int(frame)),
                f"{t:.2f}",
                *(_fmt(metrics[k], d) for k, _, d in COLUMNS),
                "; ".join(flags),
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, int(frame))
                if flags:
                    item.setBackground(FLAG_COLOR)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        parts = " · ".join(f"{title} <b>{_fmt(clip[k], d)}</b>" for k, title, d in COLUMNS)
        miou_n_m = _fmt(clip.get("miou_n_to_m", math.nan), 2)
        self.summary.setText(
            f"<b>{generation.id}</b> ({generation.ref_camera} / {generation.other_camera}, "
            f"{generation.num_frames} frames): {parts} · IoU n→m <b>{miou_n_m}</b> · "
            f"<span style='color:#ffb300'>{flagged} flagged frame(s)</span>"
        )
        self._highlight_frame(self.session.frame)

    def _on_cell_clicked(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.session.set_frame(item.data(Qt.ItemDataRole.UserRole))

    def _highlight_frame(self, frame: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == frame:
                self.table.selectRow(row)
                return
        self.table.clearSelection()
