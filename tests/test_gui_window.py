"""The Studio's main window on a shipped sample episode: panes, timeline, plots, errors, layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QTableWidget  # noqa: E402

from geo4d_studio.qt.camera_panes import BACKGROUND, CameraPanes, PaneCell  # noqa: E402
from geo4d_studio.qt.main_window import MainWindow  # noqa: E402
from geo4d_studio.qt.pane_images import colorize, pixel_to_world, world_to_pixel  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def recording(sample_path: Path, tmp_path: Path) -> Path:
    """A writable copy of the default sample episode."""
    path = tmp_path / sample_path.name
    shutil.copyfile(sample_path, path)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """Settings in a temporary INI file, so tests never touch the user's layout."""
    return QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Error dialogs the app shows, captured instead of blocking the test."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr("geo4d_studio.qt.dialogs.QMessageBox.critical", lambda _p, t, m: shown.append((t, m)))
    return shown


def make_window(qtbot, settings: QSettings, tmp_path: Path) -> MainWindow:
    window = MainWindow(model_dir=tmp_path / "no-model", settings=settings, with_3d=False)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, recording: Path, settings: QSettings, tmp_path: Path, errors) -> MainWindow:
    """The main window (without the 3D dock, which has its own tests) on the sample copy."""
    win = make_window(qtbot, settings, tmp_path)
    assert win.open_file(recording)
    yield win
    win.close()


def viewport_rgb(panes: CameraPanes) -> np.ndarray:
    """The camera panes' graphics viewport as an (H, W, 3) uint8 array."""
    image = panes.canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8).reshape(h, stride)[:, : w * 3].reshape(h, w, 3).copy()


def rendered_at(panes: CameraPanes, cell: PaneCell, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Screen colours at the centres of image pixels (us, vs) of a cell, (N, 3)."""
    shot = viewport_rgb(panes)
    ratio = panes.canvas.viewport().devicePixelRatioF()
    out = []
    for u, v in zip(us, vs, strict=True):
        p = panes.canvas.mapFromScene(cell.view.mapViewToScene(QPointF(u + 0.5, v + 0.5)))
        out.append(shot[int(p.y() * ratio), int(p.x() * ratio)])
    return np.array(out)


def pixel_grid(h: int, w: int, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    vs, us = np.meshgrid(
        np.linspace(1, h - 2, n).astype(int), np.linspace(1, w - 2, n).astype(int), indexing="ij"
    )
    return us.ravel(), vs.ravel()


def test_window_shows_every_camera_with_recorded_rgb_and_depth(window: MainWindow, qtbot):
    session, panes = window.session, window.panes
    cams = session.scene.camera_names
    assert len(cams) >= 4 and session.visible_cameras == cams
    assert set(panes.cells) == {(row, cam) for row in ("RGB", "depth") for cam in cams}
    qtbot.wait(50)
    for cam in cams:
        rgb = session.scene.rgb(cam, 0)
        us, vs = pixel_grid(*rgb.shape[:2])
        shown = rendered_at(panes, panes.cells[("RGB", cam)], us, vs).astype(int)
        close = np.abs(shown - rgb[vs, us].astype(int)).max(axis=1) <= 8
        assert close.mean() >= 0.9, f"{cam}: only {close.mean():.0%} of sampled pixels show the recorded RGB"
        assert rgb[vs, us].std() > 5, "the sampled pixels should not be a flat colour"


def test_selecting_generations_reuses_the_pane_items_and_still_draws(
    window: MainWindow, oracle_generation, qtbot
):
    """Rebuilding the grid deletes no graphics item (deleting pyqtgraph items while their scene lives
    can crash Qt): the same views come back, the scene does not grow, and the panes draw the frame."""
    session, panes = window.session, window.panes
    recorded = dict(panes.cells)
    gen_id = session.add_generation(
        oracle_generation(session.scene, session.ref_camera, session.other_camera, 0, [1, 2])
    )
    with_generation = dict(panes.cells)
    assert set(with_generation) > set(recorded) and ("gen RGB", session.ref_camera) in with_generation
    items = len(panes.canvas.scene().items())
    for _ in range(3):
        session.select_generation(None)
        assert panes.cells.keys() == recorded.keys()
        assert all(panes.cells[key] is cell for key, cell in recorded.items())
        session.select_generation(gen_id)
        assert all(panes.cells[key] is cell for key, cell in with_generation.items())
        assert len(panes.canvas.scene().items()) == items
    session.select_generation(None)
    session.set_frame(1)
    qtbot.wait(50)
    cam = session.ref_camera
    rgb = session.scene.rgb(cam, 1)
    us, vs = pixel_grid(*rgb.shape[:2])
    shown = rendered_at(panes, panes.cells[("RGB", cam)], us, vs).astype(int)
    assert (np.abs(shown - rgb[vs, us].astype(int)).max(axis=1) <= 8).mean() >= 0.9
    assert with_generation[("gen RGB", cam)].image.image is None, "hidden cells keep no pixels"


def test_depth_pane_uses_the_colour_map_over_the_chosen_range(window: MainWindow, qtbot):
    session, panes = window.session, window.panes
    cam = session.scene.camera_names[0]
    depth = session.scene.depth(cam, 0)
    panes.depth_min.setValue(float(depth[depth > 0].min()))
    panes.depth_max.setValue(float(depth.max()))
    qtbot.wait(50)
    us, vs = pixel_grid(*depth.shape)
    valid = depth[vs, us] > 0
    lo, hi = panes.depth_min.value(), panes.depth_max.value()
    index = np.clip((depth[vs, us] - lo) / (hi - lo) * 255, 0, 255).astype(int)
    expected = panes._depth_lut[index][valid].astype(int)
    shown = rendered_at(panes, panes.cells[("depth", cam)], us[valid], vs[valid]).astype(int)
    assert (np.abs(shown - expected).max(axis=1) <= 12).mean() >= 0.9


def test_slider_moves_every_pane_the_plots_and_the_status(window: MainWindow, qtbot):
    session, panes = window.session, window.panes
    last = session.num_frames - 1
    before = viewport_rgb(panes)
    window.timeline.slider.setValue(last)
    qtbot.wait(50)
    assert session.frame == last
    lo, hi = panes.depth_min.value(), panes.depth_max.value()
    for (row, cam), cell in panes.cells.items():
        if row == "RGB":
            expected = session.scene.rgb(cam, last)
        else:
            depth = session.scene.depth(cam, last)
            expected = colorize(np.where(depth > 0, depth, np.nan), lo, hi, panes._depth_lut, BACKGROUND)
        np.testing.assert_array_equal(cell.image.image, expected, err_msg=f"{row} {cam}")
    assert np.abs(viewport_rgb(panes).astype(int) - before).max() > 40, "the panes did not repaint"
    t = session.scene.timestamps[last]
    if session.scene.ee_pose is not None:
        assert all(c.value() == pytest.approx(t) for c in window.plots.cursors)
    assert window.status.frame_label.text() == f"frame {last}/{last}"
    for label in (window.status.frame_label, window.status.time_label, window.timeline.position):
        assert label.width() >= label.sizeHint().width(), f"{label.text()!r} does not fit its label"
    assert f"{t:.3f}" in window.timeline.position.text()


def test_dragging_a_plot_cursor_moves_the_time_cursor(window: MainWindow):
    session = window.session
    target = session.num_frames // 2
    cursor = window.plots.cursors[1]
    cursor.setValue(float(session.scene.timestamps[target]) + 1e-4)
    cursor.sigDragged.emit(cursor)
    assert session.frame == target
    assert window.timeline.slider.value() == target
    assert window.plots.cursors[0].value() == pytest.approx(session.scene.timestamps[target])


def test_keyboard_steps_and_playback_loop(window: MainWindow, qtbot):
    session, timeline = window.session, window.timeline
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    window.panes.canvas.setFocus()
    qtbot.keyClick(window.windowHandle(), Qt.Key.Key_Right)
    assert session.frame == 1
    timeline.step(-2)
    assert session.frame == session.num_frames - 1, "stepping back from frame 1 with loop on wraps"
    timeline.speed.setCurrentIndex(timeline.speed.count() - 1)
    qtbot.keyClick(window.windowHandle(), Qt.Key.Key_Space)
    assert timeline.timer.isActive() and timeline.play_action.isChecked()
    qtbot.waitUntil(lambda: session.frame == 2, timeout=5000)
    qtbot.keyClick(window.windowHandle(), Qt.Key.Key_Space)
    assert not timeline.timer.isActive() and not timeline.play_action.isChecked()
    icon = window.windowIcon().pixmap(32, 32).toImage()  # ui/icons/geo4d-studio.svg, rendered
    assert not icon.isNull() and len({icon.pixel(x, 16) for x in range(32)}) > 3


def test_hover_marks_the_same_3d_point_in_the_other_views(window: MainWindow):
    session, panes = window.session, window.panes
    scene = session.scene
    cam_a = scene.camera_names[0]
    depth_a = scene.depth(cam_a, 0)
    v, u = np.argwhere(depth_a > 0)[len(np.argwhere(depth_a > 0)) // 2]
    point = panes.hover_pixel(panes.cells[("depth", cam_a)], int(u), int(v))
    expected = pixel_to_world(
        int(u), int(v), float(depth_a[v, u]), scene.cameras[cam_a].K, scene.cameras[cam_a].pose(0)
    )
    np.testing.assert_allclose(point, expected)
    np.testing.assert_allclose(session.hover_point, expected)
    assert f"depth {depth_a[v, u]:.3f} m" in panes.readout.text()
    agreeing = 0
    for cam in scene.camera_names[1:]:
        camera = scene.cameras[cam]
        uv = world_to_pixel(point, camera.K, camera.pose(0), camera.height, camera.width)
        marker = panes.cells[("RGB", cam)].marker
        if uv is None:
            assert len(marker.data) == 0
            continue
        xs, ys = marker.getData()
        assert (xs[0], ys[0]) == pytest.approx((uv[0] + 0.5, uv[1] + 0.5))
        # the other camera sees a surface at the marked pixel at the point's distance (unless occluded)
        z_point = (np.linalg.inv(camera.pose(0)) @ np.append(point, 1))[2]
        z_seen = scene.depth(cam, 0)[int(round(uv[1])), int(round(uv[0]))]
        agreeing += abs(z_seen - z_point) < 0.03
    assert agreeing >= 1
    session.set_hover_point(None)
    assert all(len(c.marker.data) == 0 for c in panes.cells.values())


def test_hiding_a_camera_removes_its_column(window: MainWindow):
    session, dock = window.session, window.scene_dock
    hidden = session.scene.camera_names[1]
    dock.camera_list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert hidden not in session.visible_cameras
    assert {cam for _, cam in window.panes.cells} == set(session.visible_cameras)
    dock.other_combo.setCurrentText(session.scene.camera_names[2])
    assert session.other_camera == session.scene.camera_names[2]


def test_a_truncated_file_shows_an_error_and_keeps_the_scene(
    window: MainWindow, recording: Path, errors, qtbot
):
    before = window.session.scene
    window.session.set_frame(2)
    broken = recording.with_name("truncated.h5")
    broken.write_bytes(recording.read_bytes()[: recording.stat().st_size // 3])
    assert not window.open_file(broken)
    assert len(errors) == 1 and "truncated.h5" in errors[0][1]
    assert window.session.scene is before and window.session.frame == 2
    window.timeline.step(1)
    qtbot.wait(20)
    np.testing.assert_array_equal(
        window.panes.cells[("RGB", before.camera_names[0])].image.image, before.rgb(before.camera_names[0], 3)
    )
    assert not window.open_file(recording.with_name("missing.h5"))
    assert "missing.h5" in errors[-1][1] and window.session.scene is before


def test_generation_panel_says_why_it_is_disabled_without_a_model(window: MainWindow):
    dock = window.generation_dock
    assert not dock.run_button.isEnabled()
    assert "no-model" in dock.availability.text() or "diffusion" in dock.availability.text()


def test_layout_and_recent_files_persist(qtbot, recording: Path, settings: QSettings, tmp_path: Path, errors):
    first = make_window(qtbot, settings, tmp_path)
    first.open_file(recording)
    first.plots.hide()
    first.close()
    second = make_window(qtbot, settings, tmp_path)
    assert not second.plots.isVisible() and second.scene_dock.isVisible()
    assert second.recent_files()[0] == str(recording.resolve())
    assert [a.toolTip() for a in second.recent_menu.actions()][0] == str(recording.resolve())
    second.reset_layout()
    assert second.plots.isVisible()
    second.close()


def test_shortcuts_dialog_lists_playback_keys_and_screenshot_is_written(window: MainWindow, tmp_path: Path):
    table = dict((text, keys) for keys, text in window.shortcut_table())
    assert (
        table["Play/pause"] == "Space" and table["Step forward"] == "Right" and table["Step back"] == "Left"
    )
    dialog = window.show_shortcuts()
    assert dialog.findChild(QTableWidget).rowCount() == len(table)
    dialog.close()
    out = window.save_screenshot(tmp_path / "shot.png")
    image = QImage(str(out))
    assert image.width() == window.width() * window.devicePixelRatio()
    assert (
        len({image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 37)})
        > 20
    )


def test_metrics_of_a_perfect_and_a_wrong_generation_with_flags_and_jumps(
    window: MainWindow, oracle_generation, qtbot
):
    session, metrics = window.session, window.metrics
    scene = session.scene
    ref, other = session.ref_camera, session.other_camera
    frames = [4, 6, 8]
    perfect = oracle_generation(scene, ref, other, 3, frames)
    session.add_generation(perfect)
    qtbot.waitUntil(lambda: metrics.table.rowCount() == 3, timeout=30_000)
    assert [metrics.table.item(r, 0).text() for r in range(3)] == ["4", "6", "8"]
    assert metrics.clip["absrel_n"] == pytest.approx(0.0, abs=1e-6)
    assert metrics.clip["absrel_m"] == pytest.approx(0.0, abs=1e-5)
    assert all(not metrics.table.item(r, metrics.table.columnCount() - 1).text() for r in range(3))

    wrong = oracle_generation(scene, ref, other, 3, frames)
    wrong.pointmap_other_in_ref[1] *= 1.3  # frame 6: view m's geometry 30 % too far in view n's frame
    session.add_generation(wrong)
    qtbot.waitUntil(
        lambda: metrics.table.rowCount() == 3 and metrics.clip.get("absrel_m", 0) > 0, timeout=30_000
    )
    assert metrics.frame_metrics[1]["absrel_m"] == pytest.approx(0.3, rel=1e-3)
    flags = [metrics.table.item(r, metrics.table.columnCount() - 1).text() for r in range(3)]
    assert "cross-view" in flags[1] and not flags[0] and not flags[2]
    metrics.table.cellClicked.emit(1, 3)
    assert session.frame == 6 and window.timeline.slider.value() == 6
    assert window.generation_dock.runs.topLevelItemCount() == 2
    session.select_generation(None)
    assert window.open_results(session.results_path), "File > Reopen results selects the newest run"
    assert session.generation.id == window.generation_dock.runs.topLevelItem(1).text(0)
    metrics.compare_runs()
    qtbot.waitUntil(lambda: metrics.runs_table.rowCount() == 2, timeout=30_000)
    absrel_m = [metrics.runs_table.item(r, 2 + 5).text() for r in range(2)]  # column "AbsRel m→n"
    assert float(absrel_m[0]) == pytest.approx(0.0, abs=1e-3) and float(absrel_m[1]) > 0.05
    metrics.runs_table.cellClicked.emit(0, 0)
    assert session.generation.id == metrics.runs_table.item(0, 0).text()


def test_export_ground_truth_and_tracking_run_in_workers(window: MainWindow, tmp_path: Path, errors, qtbot):
    from geo4d_studio.export.trajectory_io import read_trajectory

    session, tasks = window.session, window.tasks
    assert "ground truth" in tasks.trajectories()
    out = tmp_path / "gt.csv"
    worker = tasks.export_trajectory("ground truth", out)
    qtbot.waitUntil(lambda: not tasks.busy, timeout=20_000)
    back = read_trajectory(out)
    np.testing.assert_allclose(back.positions, session.scene.ee_pose[:, :3, 3], atol=1e-6)
    assert "wrote" in window.statusBar().currentMessage()

    worker = tasks.track_recorded()
    qtbot.waitUntil(
        lambda: "view-frame" in window.statusBar().currentMessage() or worker.done, timeout=60_000
    )
    tasks.cancel()
    qtbot.waitUntil(lambda: not tasks.busy, timeout=60_000)
    assert errors == [], errors
    assert "cancelled" in window.statusBar().currentMessage() and session.trajectories == {}


def test_tracking_a_generation_adds_a_track_to_the_plots(
    window: MainWindow, oracle_generation, errors, qtbot
):
    session, tasks = window.session, window.tasks
    curves_before = len(window.plots.plots[0].listDataItems())
    session.add_generation(
        oracle_generation(session.scene, session.ref_camera, session.other_camera, 10, [11, 12, 13])
    )
    worker = tasks.track_generation()
    qtbot.waitUntil(lambda: worker.done and not tasks.busy, timeout=120_000)
    assert errors == []
    ((name, traj),) = session.trajectories.items()
    assert name.startswith("tracked gen-") and list(traj.frames) == [11, 12, 13]
    assert len(window.plots.plots[0].listDataItems()) == curves_before + 3
    found = ~traj.lost  # tracking accuracy itself is tested in tests/test_tracking.py
    error_m = np.linalg.norm(traj.positions[found] - session.scene.ee_pose[traj.frames[found], :3, 3], axis=1)
    assert np.all(error_m < 0.05), error_m
    assert np.isnan(traj.positions[~found]).all(), "lost frames stay NaN in the session"


def test_export_actions_write_mp4_scene_and_ply_in_workers(
    window: MainWindow, oracle_generation, tmp_path: Path, errors, qtbot
):
    import imageio.v3 as iio

    from geo4d_studio.export.ply import read_ply
    from geo4d_studio.scene import open_scene

    session, tasks = window.session, window.tasks
    frames = [11, 12, 13]
    session.add_generation(
        oracle_generation(session.scene, session.ref_camera, session.other_camera, 10, frames)
    )
    for kind, name in (("mp4", "clip.mp4"), ("scene", "clip.h5"), ("ply", "clip.ply")):
        tasks.export_generation(kind, tmp_path / name)
        qtbot.waitUntil(lambda: not tasks.busy, timeout=60_000)
        assert "wrote" in window.statusBar().currentMessage(), kind
    assert len(iio.imread(tmp_path / "clip.mp4")) == len(frames)
    with open_scene(tmp_path / "clip.h5") as exported:
        assert exported.num_frames == len(frames)
    plys = sorted(tmp_path.glob("clip*.ply"))
    assert len(plys) == len(frames) and all(len(read_ply(p)[0]) > 1000 for p in plys)
    tasks.export_recorded_cloud(tmp_path / "cloud.ply")
    qtbot.waitUntil(lambda: not tasks.busy, timeout=60_000)
    points, colors = read_ply(next(tmp_path.glob("cloud*.ply")))
    assert len(points) > 1000 and colors is not None
    assert errors == [], errors


def test_export_dialog_checks_every_target_before_it_closes(tmp_path: Path, qtbot):
    from PySide6.QtWidgets import QDialog

    from geo4d_studio.qt.export_dialog import ExportDialog

    formats = (("CSV", "csv"), ("TUM", "tum"))
    dialog = ExportDialog(None, "Export", tmp_path / "track.csv", formats, range(10), selected=(2, 4))
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(1)
    choice = dialog.choice()
    assert choice.path == tmp_path / "track.tum" and choice.fmt == "tum" and choice.frames == [2, 3, 4]
    (tmp_path / "track.tum").write_text("keep me")
    dialog.accept()
    assert dialog.result() != QDialog.DialogCode.Accepted and "already exists" in dialog.problem.text()
    assert (tmp_path / "track.tum").read_text() == "keep me"
    dialog.path.setText("")
    dialog.accept()
    assert dialog.problem.text() == "choose a file"
    dialog.path.setText(str(tmp_path / "missing" / "track.tum"))
    dialog.accept()
    assert "does not exist" in dialog.problem.text()
    dialog.path.setText(str(tmp_path / "track.tum"))
    dialog.overwrite.setChecked(True)
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.choice().overwrite


def test_export_dialogs_write_the_chosen_format_and_frames(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors, qtbot
):
    from PySide6.QtWidgets import QDialog

    from geo4d_studio.export.ply import read_ply
    from geo4d_studio.export.trajectory_io import read_trajectory
    from geo4d_studio.qt import tasks as tasks_module

    def answer(path: Path, first: int, last: int, fmt: str | None = None):
        def ask(dialog):
            if fmt is not None:
                dialog.format.setCurrentIndex(dialog.format.findData(fmt))
            dialog.first.setValue(first)
            dialog.last.setValue(last)
            dialog.path.setText(str(path))
            dialog.accept()
            return dialog.choice() if dialog.result() == QDialog.DialogCode.Accepted else None

        monkeypatch.setattr(tasks_module, "ask_export", ask)

    tasks = window.tasks
    answer(tmp_path / "cloud.ply", 2, 4)
    tasks.choose_cloud_export()
    qtbot.waitUntil(lambda: not tasks.busy, timeout=60_000)
    assert sorted(p.name for p in tmp_path.glob("cloud*.ply")) == [f"cloud_{f:04d}.ply" for f in (2, 3, 4)]
    assert len(read_ply(tmp_path / "cloud_0003.ply")[0]) > 1000

    monkeypatch.setattr(tasks_module.QInputDialog, "getItem", lambda *_a: ("ground truth", True))
    answer(tmp_path / "gt.csv", 5, 9, fmt="tum")
    tasks.choose_trajectory_export()
    qtbot.waitUntil(lambda: not tasks.busy, timeout=60_000)
    back = read_trajectory(tmp_path / "gt.tum")
    np.testing.assert_allclose(back.positions, window.session.scene.ee_pose[5:10, :3, 3], atol=1e-6)
    assert errors == [], errors
