"""The Studio's main window: docks around the camera panes, menus, shortcuts, status bar, layout.

Every dock observes the one `Session`; the window only routes user commands (open, screenshot,
export) and shows errors. Layout, geometry and recent files persist in QSettings ("Geo4D", "Studio").
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThreadPool
from PySide6.QtGui import QAction, QCloseEvent, QImage, QKeySequence, QPainter, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geo4d_studio.atomic import atomic_path
from geo4d_studio.errors import Geo4DError, OutputPathError
from geo4d_studio.paths import DEFAULT_MODEL_DIR
from geo4d_studio.qt.camera_panes import CameraPanes
from geo4d_studio.qt.dialogs import show_error
from geo4d_studio.qt.generation_panel import GenerationDock
from geo4d_studio.qt.gui_gc import GcHold
from geo4d_studio.qt.metrics_dock import MetricsDock
from geo4d_studio.qt.plots_dock import PlotsDock
from geo4d_studio.qt.scene_dock import SceneDock
from geo4d_studio.qt.status import StatusBar
from geo4d_studio.qt.style import app_icon
from geo4d_studio.qt.tasks import Tasks
from geo4d_studio.qt.timeline import TimelineDock
from geo4d_studio.session import Session

MAX_RECENT = 10
SCENE_FILTER = "Geo4D recordings (*.h5 *.hdf5);;All files (*)"
RESULTS_FILTER = "Geo4D results (*.results.h5);;All files (*)"
LAYOUT_VERSION = 1


def default_settings() -> QSettings:
    """The user's Studio settings (organisation "Geo4D", application "Studio")."""
    return QSettings("Geo4D", "Studio")


class MainWindow(QMainWindow):
    """Camera panes in the centre; scene, generation, 3D, metrics, plots and timeline docks around."""

    def __init__(
        self,
        session: Session | None = None,
        *,
        model_dir: Path = DEFAULT_MODEL_DIR,
        settings: QSettings | None = None,
        with_3d: bool = True,
    ) -> None:
        super().__init__()
        # Before any dock starts a worker: cyclic GC must not run in worker threads (see gui_gc).
        self._gc_hold = GcHold()
        self.setObjectName("Geo4DStudioMainWindow")
        self.setWindowTitle("Geo4D Studio")
        self.setWindowIcon(app_icon())
        self.session = session or Session()
        self.settings = settings or default_settings()
        self.pool = QThreadPool(self)

        self.panes = CameraPanes(self.session)
        self.setCentralWidget(self.panes)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks
            | QMainWindow.DockOption.AllowTabbedDocks
            | QMainWindow.DockOption.AllowNestedDocks
        )
        self.scene_dock = SceneDock(self.session, self)
        self.generation_dock = GenerationDock(self.session, model_dir, self.pool, self)
        self.timeline = TimelineDock(self.session, self)
        self.plots = PlotsDock(self.session, self)
        self.metrics = MetricsDock(self.session, self)
        self.view3d = self._optional_dock("geo4d_studio.qt.view3d", "View3DDock") if with_3d else None
        self._place_docks()
        self.status = StatusBar(self.session, self)
        self.setStatusBar(self.status)
        self.generation_dock.device_changed.connect(self.status.set_device)
        self.status.set_device(self.generation_dock.device.currentText())
        self.tasks = Tasks(self.session, self.pool, self)
        self.tasks.message.connect(lambda text: self.status.showMessage(text, 10_000))

        self.recent_menu = QMenu("Open &recent", self)
        self._build_menus()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self.restore_layout()
        self.session.scene_changed.connect(self._on_scene_changed)
        self._on_scene_changed(self.session.scene)
        self.panes.canvas.setFocus()  # space and arrows drive the timeline from the start

    # -- construction --------------------------------------------------------------------------
    def _optional_dock(self, module: str, name: str) -> QDockWidget | None:
        """A dock from a module that may not exist yet; the window works without it."""
        import importlib

        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            return None
        except Exception as err:  # a broken optional dock must not take the window down
            print(f"geo4d-studio: {module} unavailable: {type(err).__name__}: {err}", file=sys.stderr)
            return None
        return cls(self.session, self)

    def _place_docks(self) -> None:
        left, right, bottom = (
            Qt.DockWidgetArea.LeftDockWidgetArea,
            Qt.DockWidgetArea.RightDockWidgetArea,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        self.addDockWidget(left, self.scene_dock)
        self.addDockWidget(left, self.generation_dock)
        self.tabifyDockWidget(self.scene_dock, self.generation_dock)
        self.scene_dock.raise_()
        if self.view3d is not None:
            self.addDockWidget(right, self.view3d)
        self.addDockWidget(right, self.metrics)
        if self.view3d is not None:
            self.tabifyDockWidget(self.view3d, self.metrics)
            self.view3d.raise_()
        self.addDockWidget(bottom, self.plots)
        self.splitDockWidget(self.plots, self.timeline, Qt.Orientation.Vertical)
        self.resizeDocks([self.scene_dock], [300], Qt.Orientation.Horizontal)
        if self.view3d is not None:
            self.resizeDocks([self.view3d], [520], Qt.Orientation.Horizontal)
        self.resizeDocks([self.plots], [230], Qt.Orientation.Vertical)

    def docks(self) -> list[QDockWidget]:
        """Every dock the window holds."""
        return [d for d in self.findChildren(QDockWidget) if d.parent() is self]

    def _action(
        self, menu: QMenu, text: str, slot: object, shortcut: str | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text.replace("&", "").rstrip("…"))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open recording…", self.choose_file, "Ctrl+O")
        file_menu.addMenu(self.recent_menu)
        self._action(file_menu, "Reopen &results…", self.choose_results, "Ctrl+Shift+O")
        self.export_menu = file_menu.addMenu("&Export")
        file_menu.addSeparator()
        self._action(file_menu, "&Screenshot of the window…", self.choose_screenshot_path, "Ctrl+Shift+S")
        view_shots = file_menu.addMenu("Screenshot of &one view")
        self._action(view_shots, "Camera panes…", lambda: self.choose_screenshot_path(self.panes))
        for dock in self.docks():
            self._action(
                view_shots, f"{dock.windowTitle()}…", lambda _=False, d=dock: self.choose_screenshot_path(d)
            )
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")

        playback = bar.addMenu("&Playback")
        playback.addActions(self.timeline.actions_)
        for action in self.timeline.actions_:
            self.addAction(action)  # shortcuts work wherever the focus is in the window
        generate = bar.addMenu("&Generate")
        self._action(generate, "&Run generation", self.generation_dock.start, "Ctrl+G")
        self._action(generate, "&Cancel generation", self.generation_dock.cancel, "Esc")
        self._action(generate, "Next generation starts at the &cursor", self._start_at_cursor, "Ctrl+B")

        self.tasks.fill_menus(bar.addMenu("&Track"), self.export_menu)

        view_menu = bar.addMenu("&View")
        for dock in self.docks():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self._action(view_menu, "&Reset layout", self.reset_layout, "Ctrl+Shift+R")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._rebuild_recent_menu()

    def _start_at_cursor(self) -> None:
        self.session.generation_window.set(start=self.session.frame)

    # -- files ---------------------------------------------------------------------------------
    def open_file(self, path: str | Path) -> bool:
        """Open a recording; on a bad file show the error and keep the previous scene."""
        try:
            self.session.open(path)
        except Geo4DError as err:
            show_error(self, "Cannot open the recording", str(err))
            return False
        except OSError as err:
            show_error(self, "Cannot open the recording", f"{path}: {err.strerror or err}")
            return False
        self._remember_recent(Path(path))
        return True

    def choose_file(self) -> None:
        """Ask for a recording and open it."""
        start = str(self.session.scene.path.parent) if self.session.scene else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open recording", start, SCENE_FILTER)
        if path:
            self.open_file(path)

    def open_results(self, results_path: str | Path) -> bool:
        """Open the recording a results file belongs to and select its newest generation."""
        results_path = Path(results_path)
        suffix = ".results.h5"
        if not results_path.name.endswith(suffix):
            show_error(self, "Not a results file", f"{results_path}: expected a name ending in {suffix}")
            return False
        recording = results_path.with_name(results_path.name[: -len(suffix)] + ".h5")
        if not recording.is_file():
            show_error(
                self, "Recording not found", f"{results_path}: its recording {recording.name} is missing"
            )
            return False
        if (self.session.scene is None or self.session.scene.path != recording) and not self.open_file(
            recording
        ):
            return False
        try:
            runs = self.session.list_generations()
            if runs:
                self.session.select_generation(runs[-1]["id"])
        except Geo4DError as err:
            show_error(self, "Cannot read the results", str(err))
            return False
        return True

    def choose_results(self) -> None:
        """Ask for a results file and reopen its runs."""
        start = str(self.session.scene.path.parent) if self.session.scene else ""
        path, _ = QFileDialog.getOpenFileName(self, "Reopen results", start, RESULTS_FILTER)
        if path:
            self.open_results(path)

    def recent_files(self) -> list[str]:
        """Recently opened recordings, newest first."""
        value = self.settings.value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember_recent(self, path: Path) -> None:
        path_text = str(path.resolve())
        recent = [path_text, *(p for p in self.recent_files() if p != path_text)][:MAX_RECENT]
        self.settings.setValue("recent_files", recent)
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for index, path in enumerate(self.recent_files(), start=1):
            action = self.recent_menu.addAction(f"&{index % 10} {Path(path).name}")
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def _on_scene_changed(self, scene: object) -> None:
        name = f" — {scene.path.name}" if scene is not None else ""
        self.setWindowTitle(f"Geo4D Studio{name}")

    # -- screenshots ---------------------------------------------------------------------------
    def grab_window(self) -> QImage:
        """The whole window as shown, with the 3D view's GL framebuffer painted in."""
        image = self.grab().toImage()
        if self.view3d is not None and self.view3d.isVisible() and not self.view3d.visibleRegion().isEmpty():
            painter = QPainter(image)
            scale = image.devicePixelRatio()
            top_left = self.view3d.plotter.mapTo(self, self.view3d.plotter.rect().topLeft())
            view = self.view3d.grab_image()
            painter.drawImage(top_left.x() * scale, top_left.y() * scale, view)
            painter.end()
        return image

    def grab_view(self, widget: QWidget) -> QImage:
        """One view (a dock or the camera panes) as an image."""
        if widget is self.view3d:
            return self.view3d.grab_image()
        return widget.grab().toImage()

    def save_screenshot(
        self, path: str | Path, widget: QWidget | None = None, *, overwrite: bool = True
    ) -> Path:
        """Save the window (or one view) as PNG atomically; raises OutputPathError if it cannot."""
        path = Path(path)
        image = self.grab_window() if widget is None else self.grab_view(widget)
        with atomic_path(path, overwrite=overwrite) as tmp:
            if not image.save(str(tmp), "PNG"):
                raise OutputPathError(path, "could not encode the PNG image")
        return path

    def choose_screenshot_path(self, widget: QWidget | None = None) -> None:
        """Ask where to save a screenshot of the window (or one view) and save it."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", "geo4d-studio.png", "PNG images (*.png)"
        )
        if path:
            try:
                saved = self.save_screenshot(path, widget if isinstance(widget, QWidget) else None)
            except Geo4DError as err:
                show_error(self, "Cannot save the screenshot", str(err))
            else:
                self.statusBar().showMessage(f"saved {saved}", 5000)

    # -- layout --------------------------------------------------------------------------------
    def restore_layout(self) -> None:
        """Restore the saved window geometry and dock layout, if any."""
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1600, 1000)
        if state is not None:
            self.restoreState(state, LAYOUT_VERSION)

    def save_layout(self) -> None:
        """Persist the window geometry and dock layout."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def reset_layout(self) -> None:
        """Back to the default arrangement of docks."""
        for dock in self.docks():
            dock.show()
        self.restoreState(self._default_state, LAYOUT_VERSION)

    # -- help ----------------------------------------------------------------------------------
    def shortcut_table(self) -> list[tuple[str, str]]:
        """(key sequence, action) for every action with a shortcut, sorted by action name."""
        rows = {
            (a.shortcut().toString(QKeySequence.SequenceFormat.NativeText), a.text().replace("&", ""))
            for a in self.findChildren(QAction)
            if not a.shortcut().isEmpty()
        }
        return sorted(rows, key=lambda row: row[1].lower())

    def show_shortcuts(self) -> QDialog:
        """Non-modal dialog listing the keyboard shortcuts."""
        dialog = QDialog(self)
        dialog.setObjectName("ShortcutsDialog")
        dialog.setWindowTitle("Keyboard shortcuts")
        rows = self.shortcut_table()
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["keys", "action"])
        for row, (keys, text) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.verticalHeader().hide()
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel("Also: hover a pixel to mark its 3D point everywhere; drag a plot cursor."))
        layout.addWidget(table)
        dialog.resize(460, 520)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # -- showing and closing -------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        """Take the GUI-thread-GC hold again if a closed window is shown again."""
        self._gc_hold.acquire()
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel any running work and wait for it, save the layout, release the 3D view."""
        self.timeline.stop()
        if self.generation_dock.running:
            self.statusBar().showMessage("cancelling the running generation…")
        self.generation_dock.shutdown()
        self.tasks.cancel()
        self.pool.waitForDone()
        self.metrics.wait()
        self.save_layout()
        if self.view3d is not None:
            self.view3d.shutdown()
        self.status.stop()
        super().closeEvent(event)
        self._gc_hold.release()  # every worker of this window has ended
