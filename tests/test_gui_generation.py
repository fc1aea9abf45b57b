"""The generation panel with a real tiny model: runs in a worker, saves, lists, cancels, fails cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from geo4d_studio.qt.camera_panes import BACKGROUND  # noqa: E402
from geo4d_studio.qt.main_window import MainWindow  # noqa: E402
from geo4d_studio.qt.pane_images import colorize  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny Geo4D model saved in the diffusers layout."""
    from geo4d_studio.diffusion.config import ModelConfig
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline

    directory = tmp_path_factory.mktemp("tiny-model")
    Geo4DPipeline.from_model_config(ModelConfig.tiny()).save_pretrained(directory)
    return directory


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Error dialogs the app shows, captured instead of blocking the test."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr("geo4d_studio.qt.dialogs.QMessageBox.critical", lambda _p, t, m: shown.append((t, m)))
    return shown


def open_window(qtbot, model_dir: Path, sample_path: Path, tmp_path: Path) -> MainWindow:
    recording = tmp_path / sample_path.name
    shutil.copyfile(sample_path, recording)
    settings = QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    window = MainWindow(model_dir=model_dir, settings=settings, with_3d=False)
    qtbot.addWidget(window)
    window.show()
    assert window.open_file(recording)
    qtbot.waitUntil(lambda: window.generation_dock.device.count() >= 1)
    window.generation_dock.device.setCurrentText("cpu")
    return window


def test_generation_runs_in_a_worker_and_is_saved_listed_and_shown(
    qtbot, tiny_model, sample_path, tmp_path, errors
):
    window = open_window(qtbot, tiny_model, sample_path, tmp_path)
    session, dock = window.session, window.generation_dock
    assert dock.run_button.isEnabled() and "tiny-model" in dock.availability.text()
    assert dock.horizon.value() == 3 == window.timeline.horizon.value(), "the model's horizon is the default"
    window.timeline.start.setValue(1)
    dock.steps.setValue(2)
    progress: list[int] = []
    dock.progress.valueChanged.connect(progress.append)
    dock.start()
    assert dock.running and not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dock.running and dock.runs.topLevelItemCount() == 1, timeout=60_000)
    assert errors == []
    gen = session.generation
    assert gen is not None and gen.id == dock.runs.topLevelItem(0).text(0)
    assert gen.params["steps"] == 2 and gen.start_frame == 1 and gen.num_frames == 3
    np.testing.assert_array_equal(gen.frame_indices, window.timeline.coverage.planned)
    assert max(progress) == 2
    assert session.results_path.exists()
    frame = int(gen.frame_indices[0])
    session.set_frame(frame)
    cells = window.panes.cells
    np.testing.assert_array_equal(cells[("gen RGB", gen.ref_camera)].image.image, gen.rgb_ref[0])
    np.testing.assert_array_equal(cells[("gen RGB", gen.other_camera)].image.image, gen.rgb_other[0])
    recorded = session.scene.depth(gen.ref_camera, frame)
    error = np.where(
        (gen.depth_ref[0] > 0) & (recorded > 0), np.abs(gen.depth_ref[0] - recorded), np.nan
    ).astype(np.float32)
    panes = window.panes
    expected = colorize(error, 0.0, panes.error_max.value(), panes._error_lut, BACKGROUND)
    np.testing.assert_array_equal(cells[("error", gen.ref_camera)].image.image, expected)
    np.testing.assert_array_equal(window.timeline.coverage.covered, gen.frame_indices)
    third = session.scene.camera_names[2]
    assert cells[("gen RGB", third)].image.image is None, "no generation for a third view"
    session.select_generation(None)
    assert ("gen RGB", gen.ref_camera) not in window.panes.cells
    dock.runs.itemClicked.emit(dock.runs.topLevelItem(0), 0)
    assert session.generation.id == gen.id
    window.close()


def test_autoencoders_only_run_reconstructs_the_recorded_future(
    qtbot, tiny_model, sample_path, tmp_path, errors
):
    """The "autoencoders only" run passes the recorded future through the VAEs (no sampling settings)
    and is saved, listed and shown like a generation."""
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline

    window = open_window(qtbot, tiny_model, sample_path, tmp_path)
    session, dock = window.session, window.generation_dock
    dock.autoencoders_only.setChecked(True)
    assert not dock.steps.isEnabled() and not dock.seed.isEnabled() and dock.horizon.isEnabled()
    window.timeline.start.setValue(2)
    dock.start()
    qtbot.waitUntil(lambda: not dock.running and dock.runs.topLevelItemCount() == 1, timeout=60_000)
    assert errors == []
    gen = session.generation
    assert gen.params["autoencoders_only"] and "steps" not in gen.params
    assert dock.runs.topLevelItem(0).text(3) == "VAEs only"
    expected = Geo4DPipeline.from_pretrained(tiny_model, device="cpu").reconstruct(
        session.scene, gen.ref_camera, gen.other_camera, 2, dock.horizon.value()
    )
    np.testing.assert_array_equal(gen.frame_indices, expected.frame_indices)
    np.testing.assert_allclose(gen.pointmap_other_in_ref, expected.pointmap_other_in_ref, atol=1e-5)
    dock.autoencoders_only.setChecked(False)
    assert dock.steps.isEnabled()
    window.close()


def test_cancel_stops_the_run_and_saves_nothing(qtbot, tiny_model, sample_path, tmp_path, errors):
    window = open_window(qtbot, tiny_model, sample_path, tmp_path)
    dock = window.generation_dock
    dock.steps.setValue(200)
    dock.start()
    qtbot.waitUntil(lambda: dock.progress.value() >= 1, timeout=60_000)
    dock.cancel_button.click()
    qtbot.waitUntil(lambda: not dock.running and "cancelled" in dock.status.text(), timeout=30_000)
    assert dock.progress.maximum() == 1, "the progress bar is reset"
    assert not window.session.results_path.exists() and errors == []
    assert dock.run_button.isEnabled()
    window.close()


def test_closing_during_a_run_cancels_it_and_leaves_no_files(
    qtbot, tiny_model, sample_path, tmp_path, errors
):
    window = open_window(qtbot, tiny_model, sample_path, tmp_path)
    dock = window.generation_dock
    dock.steps.setValue(200)
    dock.start()
    qtbot.waitUntil(lambda: dock.progress.value() >= 1, timeout=60_000)
    results = window.session.results_path
    window.close()
    assert dock.worker.done and not dock.running
    qtbot.wait(50)
    assert not results.exists() and errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [results.name.replace(".results", ""), "studio.ini"]
    )


def test_a_failing_model_shows_a_message_and_the_app_stays_usable(
    qtbot, tiny_model, sample_path, tmp_path, errors
):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    for weights in broken.rglob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])
    window = open_window(qtbot, broken, sample_path, tmp_path)
    dock = window.generation_dock
    dock.start()
    qtbot.waitUntil(lambda: not dock.running and bool(errors), timeout=60_000)
    assert errors[0][0] == "Generation failed" and "broken-model" in errors[0][1]
    assert dock.run_button.isEnabled() and dock.status.text() == "failed"
    window.timeline.step(1)
    assert window.session.frame == 1
    window.close()
