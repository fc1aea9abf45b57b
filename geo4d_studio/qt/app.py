"""Start the Studio: QApplication with the dark style, the main window, optional headless screenshot."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QSettings
from PySide6.QtWidgets import QApplication

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.paths import default_sample_scene
from geo4d_studio.qt.main_window import MainWindow
from geo4d_studio.qt.style import load_style_sheet

SCREENSHOT_SIZE = (1800, 1100)
SETTLE_MS = 1500


def application() -> QApplication:
    """The process's QApplication, created with the Studio's names and style sheet."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    QCoreApplication.setOrganizationName("Geo4D")
    QCoreApplication.setApplicationName("Studio")
    app.setStyleSheet(load_style_sheet())
    return app


def settle(app: QApplication, ms: int) -> None:
    """Process events for `ms` milliseconds so deferred renders and layouts finish."""
    timer = QElapsedTimer()
    timer.start()
    while timer.elapsed() < ms:
        app.processEvents()


def _close(app: QApplication, window: MainWindow) -> None:
    window.close()
    window.deleteLater()
    settle(app, 50)


def run_studio(
    path: Path | None,
    model_dir: Path,
    *,
    screenshot: Path | None = None,
    frame: int | None = None,
    generation: str | None = None,
) -> int:
    """Show the Studio on `path` (the shipped sample when None). With `screenshot`, render once,
    save the PNG and exit (errors then propagate as Geo4DError instead of dialogs)."""
    app = application()
    if screenshot is None:
        window = MainWindow(model_dir=model_dir)
        window.show()
        try:
            target = path or default_sample_scene()
        except FileNotFoundError as err:
            window.statusBar().showMessage(str(err))
        else:
            window.open_file(target)
        code = app.exec()
        _close(app, window)
        return code

    with tempfile.TemporaryDirectory() as tmp:  # a fixed default layout, not the user's
        settings = QSettings(str(Path(tmp) / "studio.ini"), QSettings.Format.IniFormat)
        window = MainWindow(model_dir=model_dir, settings=settings)
        try:
            window.resize(*SCREENSHOT_SIZE)
            window.show()
            session = window.session
            session.open(path or default_sample_scene())
            if generation is not None:
                runs = [g["id"] for g in session.list_generations()]
                wanted = runs[-1] if generation == "latest" and runs else generation
                if wanted not in runs:
                    known = ", ".join(runs) or "none saved"
                    raise SceneFormatError(
                        session.results_path, f"/generations/{wanted}", f"no such generation ({known})"
                    )
                session.select_generation(wanted)
            if frame is not None:
                session.set_frame(frame)
            elif session.generation is not None:
                session.set_frame(
                    int(session.generation.frame_indices[len(session.generation.frame_indices) // 2])
                )
            settle(app, SETTLE_MS)
            window.save_screenshot(screenshot)
        finally:
            _close(app, window)
    return 0
