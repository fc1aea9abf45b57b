"""Generation dock: sampling settings, Run/Cancel with progress in a worker, and earlier runs.

The pipeline runs in a thread-pool worker that opens its own handle on the recording; the GUI keeps
repainting. Finished clips are saved to the results file beside the recording and listed.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from geo4d_studio.errors import Geo4DError
from geo4d_studio.generation import Generation, results_path_for, save_generation
from geo4d_studio.qt.dialogs import show_error
from geo4d_studio.qt.style import load_form
from geo4d_studio.qt.workers import Cancelled, Worker
from geo4d_studio.session import Session

PIPELINE_MODULE = "geo4d_studio.diffusion.pipeline"


def model_problem(model_dir: Path) -> str | None:
    """Why generation is unavailable (no diffusion package, no checkpoint), or None when it is."""
    if importlib.util.find_spec(PIPELINE_MODULE) is None:
        return "the diffusion package is not installed in this build"
    if not (model_dir / "model_index.json").is_file():
        return f"no model in {model_dir} (model_index.json is missing)"
    return None


def available_devices() -> list[str]:
    """Torch devices to offer, CUDA first when a GPU is usable (imports torch: call off the GUI thread)."""
    import torch

    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return [*cuda, "cpu"]


class PipelineCache:
    """The loaded pipeline, reused while the model folder and device stay the same (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._pipe: Any = None

    def get(self, model_dir: Path, device: str) -> Any:
        """Load (or reuse) `Geo4DPipeline.from_pretrained(model_dir)` on `device`."""
        from geo4d_studio.diffusion.pipeline import Geo4DPipeline

        key = (str(model_dir), device)
        with self._lock:
            if self._key != key:
                self._pipe, self._key = None, None
                self._pipe = Geo4DPipeline.from_pretrained(model_dir, device=device)
                self._key = key
            return self._pipe


class GenerationDock(QDockWidget):
    """Runs the 4D model from the chosen start frame and lists the runs saved beside the recording."""

    device_changed = Signal(str)
    run_state_changed = Signal(bool)  # True while a generation runs

    def __init__(
        self,
        session: Session,
        model_dir: Path,
        pool: QThreadPool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Generation", parent)
        self.setObjectName("GenerationDock")
        self.session, self.model_dir, self.pool = session, Path(model_dir), pool
        self.window = window = session.generation_window
        self.pipelines = PipelineCache()
        self.worker: Worker | None = None
        self._closing = False
        self._started_at = 0.0

        form = load_form("generation_panel", self)
        self.setWidget(form)
        self.availability: QLabel = form.findChild(QLabel, "availability")
        self.views_label: QLabel = form.findChild(QLabel, "viewsLabel")
        self.steps: QSpinBox = form.findChild(QSpinBox, "steps")
        self.guidance: QDoubleSpinBox = form.findChild(QDoubleSpinBox, "guidance")
        self.seed: QSpinBox = form.findChild(QSpinBox, "seed")
        self.device: QComboBox = form.findChild(QComboBox, "device")
        self.horizon: QSpinBox = form.findChild(QSpinBox, "horizon")
        self.autoencoders_only: QCheckBox = form.findChild(QCheckBox, "autoencodersOnly")
        self.run_button: QPushButton = form.findChild(QPushButton, "runButton")
        self.cancel_button: QPushButton = form.findChild(QPushButton, "cancelButton")
        self.progress: QProgressBar = form.findChild(QProgressBar, "progress")
        self.status: QLabel = form.findChild(QLabel, "statusLabel")
        self.runs: QTreeWidget = form.findChild(QTreeWidget, "runs")
        self.run_button.setToolTip("Generate the next frames of views n and m (Ctrl+G)")
        self.cancel_button.setToolTip("Stop the running generation after the current step (Esc)")

        self.problem = model_problem(self.model_dir)
        if self.problem is None:
            self._read_model_config()
        self.device.addItem("cpu")
        self.availability.setText(
            f"Generation unavailable: {self.problem}." if self.problem else f"model: {self.model_dir}"
        )
        self.horizon.setValue(window.horizon)
        self.horizon.valueChanged.connect(lambda v: window.set(horizon=v))
        window.changed.connect(self._on_window)
        self.run_button.clicked.connect(self.start)
        self.autoencoders_only.toggled.connect(self._update_enabled)
        self.cancel_button.clicked.connect(self.cancel)
        self.runs.itemClicked.connect(self._on_run_clicked)
        self.device.currentTextChanged.connect(self.device_changed.emit)
        session.scene_changed.connect(self._update_enabled)
        session.views_changed.connect(self._update_enabled)
        session.generations_changed.connect(self.refresh_runs)
        session.generation_selected.connect(self._show_selected)
        self._update_enabled()
        self.refresh_runs()
        if self.problem is None:
            self._detect_devices()

    # -- state ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a generation is running now."""
        return self.worker is not None and not self.worker.done

    def _update_enabled(self, *_: object) -> None:
        ready = self.problem is None and self.session.scene is not None and not self.running
        self.run_button.setEnabled(ready)
        self.cancel_button.setEnabled(self.running)
        settable = self.problem is None and not self.running
        for widget in (self.device, self.horizon, self.autoencoders_only):
            widget.setEnabled(settable)
        for widget in (self.steps, self.guidance, self.seed):  # sampling settings
            widget.setEnabled(settable and not self.autoencoders_only.isChecked())
        s = self.session
        self.views_label.setText(
            f"views: n = {s.ref_camera}, m = {s.other_camera}; from frame {self.window.start}"
            if s.scene is not None
            else "views: –"
        )

    def _read_model_config(self) -> None:
        """Horizon and frame stride of the model (its geo4d_config.json; read without torch)."""
        from geo4d_studio.diffusion.config import ModelConfig

        try:
            config = ModelConfig.load(self.model_dir / "geo4d_config.json")
        except (OSError, ValueError, TypeError) as err:
            self.problem = f"{self.model_dir / 'geo4d_config.json'}: unreadable ({err})"
            return
        self.window.set(horizon=config.num_future_frames, stride=config.frame_stride)

    def _on_window(self, start: int, horizon: int) -> None:
        self.horizon.blockSignals(True)
        self.horizon.setValue(horizon)
        self.horizon.blockSignals(False)
        self._update_enabled()

    def _detect_devices(self) -> None:
        worker = Worker(lambda _cancelled, _report: available_devices())
        worker.signals.finished.connect(self._set_devices)
        self._device_worker = worker
        self.pool.start(worker)

    def _set_devices(self, devices: list[str]) -> None:
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItems(devices)
        self.device.blockSignals(False)
        self.device_changed.emit(self.device.currentText())

    # -- runs list -----------------------------------------------------------------------------
    def refresh_runs(self, *_: object) -> None:
        """List the generations saved beside the recording."""
        self.runs.clear()
        try:
            summaries = self.session.list_generations()
        except Geo4DError as err:
            self.status.setText(f"results file unreadable: {err}")
            summaries = []
        for summary in summaries:
            params, frames = summary["params"], summary["frame_indices"]
            elapsed = params.get("elapsed_s")
            item = QTreeWidgetItem(
                [
                    summary["id"],
                    f"{summary['ref_camera']} / {summary['other_camera']}",
                    f"{frames[0]}–{frames[-1]}" if len(frames) else "–",
                    "VAEs only" if params.get("autoencoders_only") else str(params.get("steps", "–")),
                    str(params.get("seed", "–")),
                    f"{elapsed:.1f} s" if isinstance(elapsed, (int, float)) else "–",
                ]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, summary["id"])
            self.runs.addTopLevelItem(item)
        self._show_selected(self.session.generation)

    def _on_run_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        gen_id = item.data(0, Qt.ItemDataRole.UserRole)
        try:
            self.session.select_generation(gen_id)
        except Geo4DError as err:
            show_error(self, "Cannot open the generation", str(err))

    def _show_selected(self, generation: Generation | None) -> None:
        wanted = None if generation is None else generation.id
        for index in range(self.runs.topLevelItemCount()):
            item = self.runs.topLevelItem(index)
            item.setSelected(item.data(0, Qt.ItemDataRole.UserRole) == wanted)

    # -- running -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a generation with the current settings (no-op while one runs or without a model)."""
        scene = self.session.scene
        if self.running or self.problem is not None or scene is None:
            return
        request = {
            "model_dir": self.model_dir,
            "device": self.device.currentText(),
            "scene_path": Path(scene.path),
            "ref": self.session.ref_camera,
            "other": self.session.other_camera,
            "start_frame": min(self.window.start, scene.num_frames - 1),
            "num_frames": self.window.horizon,
            "steps": self.steps.value(),
            "guidance": self.guidance.value(),
            "seed": self.seed.value(),
            "autoencoders_only": self.autoencoders_only.isChecked(),
        }
        self.worker = Worker(lambda cancelled, report: self._generate(request, cancelled, report))
        self.worker.signals.progress.connect(self._on_progress)
        self.worker.signals.finished.connect(lambda gen: self._on_finished(request["scene_path"], gen))
        self.worker.signals.failed.connect(self._on_failed)
        self.worker.signals.cancelled.connect(self._on_cancelled)
        self.progress.setRange(0, 0)
        self.status.setText("loading the model…")
        self._started_at = time.perf_counter()
        self.pool.start(self.worker)
        self._update_enabled()
        self.run_state_changed.emit(True)

    def _generate(self, request: dict, is_cancelled: Any, report: Any) -> Generation:
        """Worker thread: load the pipeline, open the recording, sample with a cancellable callback."""
        from geo4d_studio.diffusion.sampler import GenerationCancelled
        from geo4d_studio.scene import open_scene

        pipe = self.pipelines.get(request["model_dir"], request["device"])
        if is_cancelled():
            raise Cancelled

        def on_step_end(step: int, num_steps: int, _preview: object) -> bool:
            report(step + 1, num_steps, f"sampling step {step + 1}/{num_steps}")
            return not is_cancelled()

        with open_scene(request["scene_path"]) as scene:
            if request["autoencoders_only"]:
                report(0, 0, "encoding and decoding the recorded future")
                return pipe.reconstruct(
                    scene, request["ref"], request["other"], request["start_frame"], request["num_frames"]
                )
            try:
                return pipe(
                    scene,
                    request["ref"],
                    request["other"],
                    request["start_frame"],
                    request["num_frames"],
                    steps=request["steps"],
                    guidance=request["guidance"],
                    seed=request["seed"],
                    callback_on_step_end=on_step_end,
                )
            except GenerationCancelled as err:
                raise Cancelled from err

    def cancel(self) -> None:
        """Ask the running generation to stop after its current step."""
        if self.running:
            self.worker.cancel()
            self.status.setText("cancelling…")

    def shutdown(self, timeout_s: float = 60.0) -> bool:
        """Cancel any run and wait for it (window closing); later results are discarded."""
        self._closing = True
        if self.worker is None:
            return True
        self.worker.cancel()
        return self.worker.wait(timeout_s)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.status.setText(f"{text} · {time.perf_counter() - self._started_at:.1f} s")

    def _finish(self, text: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(text)
        self._update_enabled()
        self.run_state_changed.emit(False)

    def _on_finished(self, scene_path: Path, generation: Generation) -> None:
        if self._closing:
            return
        elapsed = time.perf_counter() - self._started_at
        generation.params.setdefault("elapsed_s", round(elapsed, 3))
        try:
            if self.session.scene is not None and Path(self.session.scene.path) == scene_path:
                gen_id = self.session.add_generation(generation)
            else:  # the user opened another recording meanwhile: keep the run beside its own
                gen_id = save_generation(results_path_for(scene_path), generation)
        except Geo4DError as err:
            self._finish("not saved")
            show_error(self, "Cannot save the generation", str(err))
            return
        self._finish(
            f"{gen_id}: {generation.num_frames} frames in {elapsed:.1f} s, saved beside the recording"
        )

    def _on_failed(self, message: str) -> None:
        if self._closing:
            return
        self._finish("failed")
        show_error(self, "Generation failed", message)

    def _on_cancelled(self) -> None:
        if not self._closing:
            self._finish("cancelled: nothing was saved")
