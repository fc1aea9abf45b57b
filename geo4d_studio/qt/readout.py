"""Read-out labels that change with the time cursor without relayouting the window."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel


def fit_readout(label: QLabel, widest: str) -> None:
    """Fix `label`'s size to its size hint for the text `widest` (style-sheet font and padding included).

    A label whose size may change invalidates its window's layout on every new text, and the main
    window's relayout costs more than the repaint; a fixed-size label only repaints itself.
    """
    text = label.text()
    label.ensurePolished()
    label.setMinimumSize(0, 0)
    label.setMaximumSize(16_777_215, 16_777_215)  # QWIDGETSIZE_MAX: the hint of the text, not the old fix
    label.setText(widest)
    label.setFixedSize(label.sizeHint())
    label.setText(text)
