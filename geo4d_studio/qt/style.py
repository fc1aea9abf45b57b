"""Presentation assets from `ui/`: the dark style sheet, the app icon and Qt Designer forms."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFile
from PySide6.QtGui import QIcon
from PySide6.QtUiTools import QUiLoader
from PySide6.QtWidgets import QWidget

from geo4d_studio.paths import UI_DIR

STYLE_SHEET = UI_DIR / "dark.qss"
APP_ICON = UI_DIR / "icons" / "geo4d-studio.svg"


def load_style_sheet(path: Path = STYLE_SHEET) -> str:
    """Text of the style sheet (empty when the file is missing, so the app still starts)."""
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def app_icon() -> QIcon:
    """The Studio's icon (a null icon when the file is missing, so the app still starts)."""
    return QIcon(str(APP_ICON)) if APP_ICON.is_file() else QIcon()


def load_form(name: str, parent: QWidget | None = None) -> QWidget:
    """Build the widget tree of `ui/<name>.ui`; child widgets are found with `findChild`."""
    path = UI_DIR / f"{name}.ui"
    file = QFile(str(path))
    if not file.open(QFile.OpenModeFlag.ReadOnly):
        raise FileNotFoundError(f"{path}: cannot open the form")
    try:
        widget = QUiLoader().load(file, parent)
    finally:
        file.close()
    if widget is None:
        raise RuntimeError(f"{path}: not a valid Qt Designer form")
    return widget
