"""`geo4d-studio gui --screenshot`: the headless evidence path, and its errors on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtGui import QImage  # noqa: E402

from geo4d_studio.cli import main  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_screenshot_of_the_window_on_a_sample_episode(qapp, sample_path: Path, tmp_path: Path):
    out = tmp_path / "studio.png"
    assert main(["gui", str(sample_path), "--screenshot", str(out), "--frame", "5"]) == 0
    image = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB888)
    assert (image.width(), image.height()) == (1800, 1100)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(h, stride)[:, : w * 3].reshape(h, w, 3)
    colours = np.unique(pixels[::4, ::4].reshape(-1, 3), axis=0)
    assert len(colours) > 200, "window chrome alone has a few dozen colours; images and plots add hundreds"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_screenshot_of_a_bad_file_is_a_one_line_error(qapp, sample_path: Path, tmp_path: Path, capsys):
    broken = tmp_path / "cut.h5"
    broken.write_bytes(sample_path.read_bytes()[:5000])
    out = tmp_path / "never.png"
    assert main(["gui", str(broken), "--screenshot", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("geo4d-studio: error:") and "cut.h5" in err and "\n" not in err
    assert not out.exists()


def test_screenshot_of_an_unknown_generation_names_it(qapp, sample_path: Path, tmp_path: Path, capsys):
    copy = tmp_path / sample_path.name
    shutil.copyfile(sample_path, copy)
    assert main(["gui", str(copy), "--screenshot", str(tmp_path / "x.png"), "--generation", "gen-0042"]) == 2
    assert "gen-0042" in capsys.readouterr().err
