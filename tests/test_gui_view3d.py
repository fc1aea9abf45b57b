"""The 3D view dock under Xvfb: rendering, look-through, in-place updates, camera path, LOD, layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from geo4d_studio.generation import Generation
from geo4d_studio.geometry.camera import depth_to_pointmap
from geo4d_studio.geometry.crossview import pointmap_to_frame
from geo4d_studio.geometry.fusion import fuse_frame
from geo4d_studio.geometry.se3 import is_rigid
from geo4d_studio.qt.view3d import (
    BACKGROUND_RGB,
    FRUSTUM_RGB,
    GENERATED_OTHER_TINT,
    GENERATED_REF_TINT,
    View3DDock,
)
from geo4d_studio.qt.view3d_camera import fit_view, project_to_display
from geo4d_studio.qt.view3d_layers import FRUSTUM_SEGMENTS
from geo4d_studio.scene import SceneWriter
from geo4d_studio.scene.synthetic import (
    intrinsics,
    make_synthetic_scene,
    render_frame,
    ring_pose,
)
from geo4d_studio.session import Session
from geo4d_studio.trajectory import Trajectory

pytestmark = pytest.mark.gui

SIZE = (60, 80)  # image height, width
FRAMES = 4
MAX_DEPTH_M = 1.45  # beyond this the floor is invalid (0), like the paper's 2 m cut-off


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three ring cameras see a checkered floor (cut off at MAX_DEPTH_M) and a red box sliding along x."""
    path = tmp_path_factory.mktemp("view3d") / "ring.h5"
    h, w = SIZE
    K = intrinsics(h, w)
    box_xy = np.stack([np.linspace(-0.15, 0.15, FRAMES), np.zeros(FRAMES)], axis=-1)
    ee_pose = np.tile(np.eye(4), (FRAMES, 1, 1))
    ee_pose[:, :2, 3], ee_pose[:, 2, 3] = box_xy, 0.2
    with SceneWriter(path, fps=10.0, timestamps=np.arange(FRAMES) / 10.0, task="ring") as writer:
        for index, angle in enumerate((0.3, 2.2, 4.1)):
            pose = ring_pose(angle)
            frames = [render_frame(K, pose, xy, h, w) for xy in box_xy]
            depth = [np.where(d < MAX_DEPTH_M, d, 0).astype(np.float32) for _, d in frames]
            writer.add_camera(f"cam{index}", K, pose, [rgb for rgb, _ in frames], depth)
        writer.set_robot(ee_pose, np.full(FRAMES, 0.04))
    return path


@pytest.fixture
def view(qtbot, scene_path: Path):
    session = Session()
    dock = View3DDock(session)
    qtbot.addWidget(dock)
    dock.resize(560, 440)
    dock.show()
    qtbot.waitExposed(dock)
    session.open(scene_path)
    dock.render_now()
    yield dock
    dock.shutdown()
    session.close()


def _image(dock: View3DDock) -> np.ndarray:
    image = dock.grab_image()
    array = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return array[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def _foreground(image: np.ndarray) -> np.ndarray:
    return np.abs(image.astype(int) - BACKGROUND_RGB).sum(axis=-1) > 12


def test_renders_coloured_points(view: View3DDock) -> None:
    image = _image(view)
    foreground = _foreground(image)
    assert foreground.mean() > 0.04  # measured 0.07: three 60x80 views of a floor seen from afar
    colours = np.unique(image[foreground] // 16, axis=0)
    assert len(colours) > 10
    box_red = np.all(np.abs(image.astype(int) - (200, 60, 40)) < 30, axis=-1)
    assert box_red.sum() > 20  # the red box is drawn in its own colour
    assert view.cloud.num_points_total == len(fuse_frame(view.session.scene, 0)[0])


def test_pyvista_keys_do_not_close_or_zoom_the_view(view: View3DDock, qtbot) -> None:
    before = _image(view)
    for key in (Qt.Key.Key_Up, Qt.Key.Key_Q, Qt.Key.Key_Minus):
        qtbot.keyClick(view.plotter, key)
    assert np.array_equal(_image(view), before)


def test_look_through_matches_camera_silhouette_and_colours(view: View3DDock) -> None:
    """Seen through cam1 with only cam1's points, the view reproduces cam1's valid-depth mask and RGB."""
    session, scene = view.session, view.session.scene
    session.set_visible_cameras(["cam1"])
    for layer in ("frustums", "gt_trajectory", "tracks", "hover"):
        view.set_layer_visible(layer, False)
    view.plotter.hide_axes()
    view.look_through("cam1", animate=False)
    view.render_now()
    assert view.frustums.num_segments == 10 and list(view.labels.actors) == ["cam1"]
    assert view.camera_path_names == ["cam1"]
    camera = scene.cameras["cam1"]
    viewport = tuple(view.plotter.renderer.GetSize())
    _, _, _, scale = fit_view(camera.K, (camera.width, camera.height), viewport)
    view.set_point_size(float(np.ceil(scale)) + 1.0)
    view._end_interaction()  # full cloud
    image = _image(view)
    # Sample the rendering at the centre of each camera pixel (letter-boxed, centred).
    h, w = SIZE
    offset = 0.5 * (np.array(viewport) - scale * np.array([w, h]))
    v, u = np.mgrid[0:h, 0:w]
    rows = np.clip((offset[1] + scale * (v + 0.5)).astype(int), 0, image.shape[0] - 1)
    cols = np.clip((offset[0] + scale * (u + 0.5)).astype(int), 0, image.shape[1] - 1)
    rendered = image[rows, cols]
    silhouette = _foreground(rendered)
    valid = scene.depth("cam1", 0) > 0
    assert 0.3 < valid.mean() < 0.9  # the cut-off makes the mask a real shape
    iou = (silhouette & valid).sum() / (silhouette | valid).sum()
    error = np.abs(rendered.astype(int) - scene.rgb("cam1", 0).astype(int))[silhouette & valid]
    exact = (error.max(axis=1) <= 10).mean()
    # Measured 1.000 for both: every pixel centre shows its own point. The margin allows for splat
    # rounding on mask borders; a half-pixel error in the intrinsics drops the colour match to ~0.72.
    assert iou > 0.97
    assert exact > 0.97


def test_frame_change_updates_points_in_place(view: View3DDock) -> None:
    renderer = view.plotter.renderer
    actor, mesh = view.cloud.actor, view.cloud.mesh
    actors_before = renderer.GetActors().GetNumberOfItems()
    before = np.array(mesh.points)
    view.session.set_frame(3)
    view.render_now()
    assert view.cloud.actor is actor and actor.GetMapper().GetInput() is mesh
    assert renderer.GetActors().GetNumberOfItems() == actors_before
    expected, _ = fuse_frame(view.session.scene, 3)
    assert view.cloud.num_points_shown == len(expected[:: view.lod_every])  # decimated while scrubbing
    view._end_interaction()
    view.render_now()
    after = np.array(mesh.points)
    assert len(after) == len(expected) and np.allclose(np.sort(after, axis=0), np.sort(expected, axis=0))
    assert len(before) != len(after) or not np.allclose(before, after)
    gt = view.session.scene.ee_pose[3, :3, 3]
    assert np.allclose(np.array(view.gt_axes.mesh.points)[0], gt, atol=1e-6)  # pose axes at frame 3


def test_reference_and_second_view_frustums_wear_their_layer_colours(view: View3DDock) -> None:
    view.session.set_views("cam2", "cam0")
    view.render_now()
    colours = np.asarray(view.frustums.mesh.cell_data["rgb"]).reshape(3, FRUSTUM_SEGMENTS, 3)
    assert np.array_equal(colours[0], np.broadcast_to(GENERATED_OTHER_TINT, (FRUSTUM_SEGMENTS, 3)))
    assert np.array_equal(colours[1], np.broadcast_to(FRUSTUM_RGB, (FRUSTUM_SEGMENTS, 3)))
    assert np.array_equal(colours[2], np.broadcast_to(GENERATED_REF_TINT, (FRUSTUM_SEGMENTS, 3)))


def test_camera_path_ends_are_the_first_and_last_cameras(view: View3DDock) -> None:
    session, scene = view.session, view.session.scene
    assert sorted(view.camera_path_names) == ["cam0", "cam1", "cam2"]
    for s, index in ((1.0, -1), (0.0, 0)):
        view.set_path_position(s)
        view.render_now()
        expected = scene.cameras[view.camera_path_names[index]].pose(0)
        assert np.allclose(session.active_camera, expected, atol=1e-9)
        assert np.allclose(view.camera_pose(), expected, atol=1e-6)
    view.set_path_position(0.5)
    middle = session.active_camera
    assert is_rigid(middle, atol=1e-6)
    distances = [np.linalg.norm(middle[:3, 3] - scene.cameras[n].pose(0)[:3, 3]) for n in scene.camera_names]
    assert min(distances) > 0.05  # strictly between cameras, not snapped to one
    assert np.isclose(np.linalg.norm(middle[:2, 3]), 1.0, atol=0.15)  # stays near the ring


def test_level_of_detail_while_interacting(view: View3DDock, qtbot) -> None:
    total = view.cloud.num_points_total
    view.session.set_frame(2)  # decimated by stride alone: every `lod_every`-th point
    assert view.interacting and view.lod_every == 4
    view.render_now()
    assert view.cloud.num_points_shown == len(range(0, view.cloud.num_points_total, 4))
    qtbot.waitUntil(lambda: not view.interacting, timeout=3000)
    view.session.set_frame(0)
    qtbot.waitUntil(lambda: not view.interacting, timeout=3000)
    view.lod_max_points = 1000
    assert total > 5000 and view.cloud.num_points_shown == total
    view.session.set_frame(1)  # scrubbing time counts as interaction
    view.render_now()
    assert view.interacting and 500 < view.cloud.num_points_shown <= 1000
    qtbot.waitUntil(lambda: not view.interacting, timeout=3000)
    assert view.cloud.num_points_shown == view.cloud.num_points_total
    centre = view.plotter.rect().center()
    qtbot.mousePress(view.plotter, Qt.MouseButton.LeftButton, pos=centre)
    assert view.interacting and 500 < view.cloud.num_points_shown <= 1000
    qtbot.mouseMove(view.plotter, centre + QPoint(40, 10))
    qtbot.mouseRelease(view.plotter, Qt.MouseButton.LeftButton, pos=centre + QPoint(40, 10))
    qtbot.waitUntil(lambda: view.cloud.num_points_shown == view.cloud.num_points_total, timeout=3000)


def test_double_click_on_frustum_looks_through_it(view: View3DDock, qtbot) -> None:
    view.reset_view()
    view.render_now()
    segments = view._frustum_lines[view._frustum_owners == 2]  # cam2's frustum
    middle = segments[4:8].mean(axis=1)  # midpoints of its image rectangle
    size = tuple(view.plotter.renderer.GetSize())
    xy, in_front = project_to_display(view.plotter.camera, middle, size)
    inside = in_front & np.all((xy > 5) & (xy < np.array(size) - 5), axis=1)
    assert inside.any()
    x, y = xy[np.flatnonzero(inside)[0]]
    ratio = view.plotter.devicePixelRatioF()
    qt_pos = QPoint(round(x / ratio), round((size[1] - y) / ratio))
    assert view.frustum_at((x, y)) == "cam2"
    qtbot.mouseDClick(view.plotter, Qt.MouseButton.LeftButton, pos=qt_pos)
    expected = view.session.scene.cameras["cam2"].pose(0)
    qtbot.waitUntil(
        lambda: view.session.active_camera is not None and np.allclose(view.session.active_camera, expected),
        timeout=3000,
    )
    assert np.allclose(view.camera_pose(), expected, atol=1e-6)


def test_generated_views_are_mapped_into_the_world(view: View3DDock, tmp_path: Path) -> None:
    """A 'generation' made of the recorded geometry must land exactly on the recorded cloud."""
    session, scene = view.session, view.session.scene
    frames = np.array([1, 2])
    cams = {name: scene.cameras[name] for name in ("cam0", "cam1")}
    depth = {name: np.stack([scene.depth(name, t) for t in frames]) for name in cams}
    rgb = {name: np.stack([scene.rgb(name, t) for t in frames]) for name in cams}
    pm = {name: np.stack([depth_to_pointmap(d, cams[name].K) for d in depth[name]]) for name in cams}
    T0, T1 = cams["cam0"].pose(0), cams["cam1"].pose(0)
    generation = Generation(
        id="",
        ref_camera="cam0",
        other_camera="cam1",
        start_frame=0,
        frame_indices=frames,
        timestamps=scene.timestamps[frames],
        rgb_ref=rgb["cam0"],
        rgb_other=rgb["cam1"],
        depth_ref=depth["cam0"],
        pointmap_ref=pm["cam0"],
        pointmap_other_in_ref=np.stack([pointmap_to_frame(p, T1, T0) for p in pm["cam1"]]),
        pointmap_other=pm["cam1"],
        depth_other=depth["cam1"],
        K_ref=cams["cam0"].K,
        K_other=cams["cam1"].K,
        T_world_ref=T0,
        T_world_other=T1,
    )
    session.add_generation(generation)
    assert view.generated_ref.num_points_total == 0  # frame 0 is not covered
    session.set_frame(2)
    view.render_now()
    for layer, name in ((view.generated_ref, "cam0"), (view.generated_other, "cam1")):
        expected, _ = fuse_frame(scene, 2, cameras=[name])
        got = np.array(layer._points)
        assert len(got) == len(expected)
        assert np.allclose(np.sort(got, axis=0), np.sort(expected, axis=0), atol=1e-4)
    colours = view.generated_other._colors
    assert np.all(colours[:, 2] >= colours[:, 0])  # cyan-tinted, distinct from view n's orange
    view.set_layer_visible("generated_other", False)
    assert not view.generated_other.actor.GetVisibility()
    assert not view.layer_actions["generated_other"].isChecked()
    session.set_frame(0)
    view.render_now()
    assert view.generated_ref.num_points_total == 0


def test_viewpoints_hover_marker_and_tracks(view: View3DDock) -> None:
    session = view.session
    view.plotter.camera.Azimuth(35.0)
    view.plotter.camera.Elevation(10.0)
    saved = view.camera_pose()
    view.save_viewpoint("above left")
    assert view.viewpoint_combo.findText("above left") >= 0
    view.reset_view()
    assert not np.allclose(view.camera_pose(), saved, atol=1e-3)
    view.go_to_viewpoint("above left")
    assert np.allclose(view.camera_pose(), saved, atol=1e-6)

    point = np.array([0.1, -0.05, 0.02])
    session.set_hover_point(point)
    assert view.hover.actor.GetVisibility() and np.allclose(view.hover.actor.GetPosition(), point)
    session.set_hover_point(None)
    assert not view.hover.actor.GetVisibility()

    n = 4
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 0, 3] = np.linspace(0, 0.3, n)
    poses[2] = np.nan
    track = Trajectory(
        timestamps=np.arange(n) / 10,
        poses=poses,
        gripper_width=np.full(n, 0.04),
        confidence=np.ones(n),
        frames=np.arange(n),
        lost=np.arange(n) == 2,
        source_view=["cam0"] * n,
    )
    session.add_trajectory("tracked", track)
    view.render_now()
    assert view.tracks.num_segments == 1  # 0-1 only: the lost frame 2 breaks the line
    assert view.track_axes.num_segments == 3  # current frame 0 pose as x/y/z axes
    assert np.allclose(np.array(view.track_axes.mesh.points)[0], poses[0, :3, 3])


def test_switching_and_closing_scenes(view: View3DDock, tmp_path: Path) -> None:
    renderer = view.plotter.renderer
    actor = view.cloud.actor
    other = make_synthetic_scene(tmp_path / "pair.h5", cameras=2, frames=3, size=(24, 32))
    view.session.open(other)
    view.render_now()
    assert view.cloud.actor is actor
    assert view.cloud.num_points_total == len(fuse_frame(view.session.scene, 0)[0])
    assert sorted(view.labels.actors) == ["cam0", "cam1"] and view.frustums.num_segments == 20
    assert [view.look_combo.itemText(i) for i in range(view.look_combo.count())] == ["cam0", "cam1"]
    actors, props = renderer.GetActors().GetNumberOfItems(), renderer.GetViewProps().GetNumberOfItems()
    view.session.close()
    view.render_now()
    assert view.cloud.num_points_total == 0 and view.frustums.num_segments == 0
    assert view.camera_path is None and not view.path_slider.isEnabled()
    assert renderer.GetActors().GetNumberOfItems() == actors  # layers keep their actors
    assert renderer.GetViewProps().GetNumberOfItems() == props - 2 and not view.labels.actors
    assert _foreground(_image(view)).mean() < 0.02  # just the axes widget is left
