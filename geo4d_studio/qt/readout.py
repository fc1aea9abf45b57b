"""Read-out labels that change with the time cursor without relayouting the window."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

PADDING_PX = 8


def fit_readout(label: QLabel, widest: str) -> None:
    """Fix `label`'s size to fit `widest` in its (style-sheet) font.

    A label whose size may change invalidates its window's layout on every new text, and the main
    window's relayout costs more than the repaint; a fixed-size label only repaints itself.
    """
    label.ensurePolished()
    height = max(label.sizeHint().height(), label.fontMetrics().height())
    label.setFixedSize(label.fontMetrics().horizontalAdvance(widest) + PADDING_PX, height)
