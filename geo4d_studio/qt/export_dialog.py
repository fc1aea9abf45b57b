"""Export dialog: format, frames and path of one export, with an explicit choice to overwrite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from geo4d_studio.atomic import check_writable
from geo4d_studio.errors import OutputPathError


@dataclass(frozen=True)
class ExportChoice:
    """What the user chose: the output path (its suffix is the format's), the format (a file suffix
    without the dot), the frames to write (empty when the export has no frame choice) and whether
    existing files may be replaced."""

    path: Path
    fmt: str
    frames: list[int]
    overwrite: bool


class ExportDialog(QDialog):
    """Ask for format, frame range and path; OK only when every target file can be written.

    `formats` are (label, suffix) pairs; choosing one changes the path's suffix. `frames` are the
    frames that can be exported (none: no frame choice), `selected` the initially chosen (first, last).
    `targets` lists the files a choice writes (default: its path), checked before the dialog closes.
    """

    def __init__(
        self,
        parent: QWidget | None,
        title: str,
        path: Path,
        formats: Sequence[tuple[str, str]],
        frames: Sequence[int] = (),
        selected: tuple[int, int] | None = None,
        targets: Callable[[ExportChoice], list[Path]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.frames = sorted(int(f) for f in frames)
        self._targets = targets or (lambda choice: [choice.path])
        self.format = QComboBox()
        for label, suffix in formats:
            self.format.addItem(f"{label} (.{suffix})", suffix)
        self.format.setEnabled(len(formats) > 1)
        low, high = (self.frames[0], self.frames[-1]) if self.frames else (0, 0)
        self.first, self.last = QSpinBox(), QSpinBox()
        for spin, value in zip((self.first, self.last), selected or (low, high), strict=True):
            spin.setRange(low, high)
            spin.setValue(value)
        self.path = QLineEdit(str(path))
        self.path.setMinimumWidth(420)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.overwrite = QCheckBox("overwrite existing files")
        self.problem = QLabel()
        self.problem.setObjectName("ExportProblem")
        self.problem.setStyleSheet("color: #ef5350")
        self.problem.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow("format", self.format)
        if self.frames:
            frame_row = QHBoxLayout()
            for widget in (self.first, QLabel("to"), self.last):
                frame_row.addWidget(widget)
            frame_row.addStretch(1)
            form.addRow("frames", frame_row)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        form.addRow("file", path_row)
        form.addRow("", self.overwrite)
        form.addRow(self.problem)
        ok_cancel = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        buttons = QDialogButtonBox(ok_cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.format.currentIndexChanged.connect(self._apply_suffix)
        self._apply_suffix()

    def choice(self) -> ExportChoice:
        """The export as the fields describe it now."""
        first, last = sorted((self.first.value(), self.last.value()))
        frames = [f for f in self.frames if first <= f <= last]
        fmt = self.format.currentData()
        path = Path(self.path.text().strip()).expanduser()
        if path.name:
            path = path.with_suffix(f".{fmt}")
        return ExportChoice(path, fmt, frames, self.overwrite.isChecked())

    def problem_with(self, choice: ExportChoice) -> str:
        """Why `choice` cannot be written ('' when it can)."""
        if not self.path.text().strip():
            return "choose a file"
        if self.frames and not choice.frames:
            return "no frames in the chosen range"
        for target in self._targets(choice):
            if target.is_file() and not choice.overwrite:
                return f"{target} already exists: tick “overwrite existing files” to replace it"
            try:
                check_writable(target, overwrite=choice.overwrite)
            except OutputPathError as err:
                return str(err)
        return ""

    def accept(self) -> None:
        """Close with OK only when the choice can be written; otherwise say why and stay open."""
        problem = self.problem_with(self.choice())
        self.problem.setText(problem)
        if not problem:
            super().accept()

    def _apply_suffix(self) -> None:
        suffix = self.format.currentData()
        text = self.path.text().strip()
        if suffix and text:
            self.path.setText(str(Path(text).with_suffix(f".{suffix}")))

    def _browse(self) -> None:
        suffix = self.format.currentData()
        path, _ = QFileDialog.getSaveFileName(
            self, self.windowTitle(), self.path.text(), f"{suffix.upper()} (*.{suffix})"
        )
        if path:
            self.path.setText(path)
            self._apply_suffix()
            if Path(path).exists():  # the file dialog has asked whether to replace it
                self.overwrite.setChecked(True)


def ask_export(dialog: ExportDialog) -> ExportChoice | None:
    """Run `dialog` modally; the choice, or None when cancelled."""
    return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None
