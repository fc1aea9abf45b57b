"""Message dialogs used across the Studio (one place, so tests can intercept them)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """Modal error dialog; the app stays usable after it is dismissed."""
    QMessageBox.critical(parent, title, message)
