"""The session: one time cursor, one selection, results beside the recording; errors keep state."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.session import Session


@pytest.fixture
def session_on_copy(sample_path, tmp_path):
    """A session on a writable copy of a sample episode (results go beside it)."""
    path = tmp_path / sample_path.name
    shutil.copyfile(sample_path, path)
    session = Session()
    session.open(path)
    yield session
    session.close()


def test_open_selects_first_two_cameras_and_all_visible(session_on_copy):
    s = session_on_copy
    names = s.scene.camera_names
    assert (s.ref_camera, s.other_camera) == (names[0], names[1])
    assert s.visible_cameras == names and s.frame == 0 and s.num_frames == s.scene.num_frames


def test_signals_fire_once_per_change_and_frame_is_clamped(session_on_copy):
    s, seen = session_on_copy, []
    s.frame_changed.connect(seen.append)
    s.set_frame(3)
    s.set_frame(3)
    s.set_frame(10_000)
    assert seen == [3, s.num_frames - 1]
    assert s.time_s == pytest.approx(s.scene.timestamps[-1])


def test_selection_rejects_unknown_cameras_and_keeps_file_order(session_on_copy):
    s = session_on_copy
    names = s.scene.camera_names
    with pytest.raises(ValueError, match="nope"):
        s.set_views(names[0], "nope")
    s.set_visible_cameras([names[2], names[0]])
    assert s.visible_cameras == [names[0], names[2]]


def test_failed_open_keeps_previous_scene(session_on_copy, tmp_path):
    s = session_on_copy
    before = s.scene
    broken = tmp_path / "broken.h5"
    broken.write_bytes(s.scene.path.read_bytes()[:4096])
    with pytest.raises(SceneFormatError, match="broken.h5"):
        s.open(broken)
    assert s.scene is before and s.scene.rgb(s.ref_camera, 0).shape[-1] == 3


def test_generation_saved_beside_recording_and_reselected(session_on_copy, oracle_generation):
    s = session_on_copy
    selected = []
    s.generation_selected.connect(selected.append)
    gen = oracle_generation(s.scene, s.ref_camera, s.other_camera, 0, [2, 4])
    gen_id = s.add_generation(gen)
    assert s.results_path.exists() and s.results_path.parent == s.scene.path.parent
    assert [g["id"] for g in s.list_generations()] == [gen_id]
    s.select_generation(None)
    s.select_generation(gen_id)
    assert selected[-1].id == gen_id
    np.testing.assert_array_equal(selected[-1].rgb_ref[1], s.scene.rgb(s.ref_camera, 4))


def test_viewpoints_need_a_pose(session_on_copy):
    s = session_on_copy
    with pytest.raises(ValueError, match="active camera"):
        s.save_viewpoint("top")
    s.set_active_camera(np.eye(4))
    s.save_viewpoint("top")
    np.testing.assert_array_equal(s.viewpoints["top"], np.eye(4))


def test_generation_window_frames_and_change_signal():
    s, seen = Session(), []
    window = s.generation_window
    window.changed.connect(lambda start, horizon: seen.append((start, horizon)))
    window.set(start=5, horizon=4, stride=2)
    window.set(start=5)
    np.testing.assert_array_equal(window.frames(12), [7, 9, 11])
    window.set(start=-3, horizon=0)
    assert (window.start, window.horizon) == (0, 1) and seen == [(5, 4), (0, 1)]
