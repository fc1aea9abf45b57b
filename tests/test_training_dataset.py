"""The training dataset: camera split, item layout, cross-view pointmaps, errors for unusable episodes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.dataset import (
    Episode,
    PairDataset,
    episode_paths,
    load_episodes,
    model_batch,
    split_cameras,
    window_frames,
)
from geo4d_studio.errors import SceneFormatError


@pytest.fixture(scope="module")
def tiny_episodes(sample_path: Path) -> list[Episode]:
    """The sample episode decoded once at the tiny config's size."""
    return load_episodes([sample_path], ModelConfig.tiny())


def test_split_holds_out_four_of_sixteen_spread_over_the_ring() -> None:
    names = [f"cam{i:02d}" for i in range(16)]
    train, held_out = split_cameras(names)
    assert held_out == ["cam02", "cam06", "cam10", "cam14"]
    assert len(train) == 12 and not set(train) & set(held_out)
    assert split_cameras(names) == (train, held_out)


def test_split_of_four_cameras_keeps_two_for_training() -> None:
    train, held_out = split_cameras(["a", "b", "c", "d"])
    assert (train, held_out) == (["a", "c"], ["b", "d"])


def test_item_layout(tiny_episodes: list[Episode]) -> None:
    cfg = ModelConfig.tiny()
    ds = PairDataset([], cfg, seed=3, episodes=tiny_episodes)
    frames, (h, w) = cfg.num_future_frames + 1, cfg.image_size
    compact = ds[0]  # what a loader process sends: small integer arrays
    assert compact["rgb_n"].dtype == torch.uint8 and compact["rgb_n"].shape == (frames, h, w, 3)
    assert compact["depth_m"].dtype == torch.uint16 and compact["T_n_m"].shape == (frames, 4, 4)
    item = model_batch(compact, cfg)
    for key in ("rgb_n", "rgb_m", "pm_n", "pm_m_in_n"):
        assert item[key].shape == (frames, 3, h, w)
    for key in ("mask_n", "mask_m", "valid_n", "valid_m"):
        assert item[key].shape == (frames, 1, h, w)
        assert set(np.unique(item[key].numpy())) <= {0.0, 1.0}
    assert float(item["rgb_n"].min()) >= -1.0 and float(item["rgb_n"].max()) <= 1.0
    assert float(item["valid_n"].mean()) > 0.5  # the table and robot fill most of the view
    batch = ds.batch(4, 2)
    assert batch["rgb_m"].shape == (2, frames, 3, h, w)


def test_pairs_use_training_cameras_and_are_reproducible(tiny_episodes: list[Episode]) -> None:
    cfg = ModelConfig.tiny()
    ds = PairDataset([], cfg, seed=1, episodes=tiny_episodes)
    train, _ = split_cameras(ds.episodes[0].camera_names)
    train_idx = {ds.episodes[0].camera_index(c) for c in train}
    picks = [ds.pick(i) for i in range(40)]
    assert all(n in train_idx and m in train_idx and n != m for _, n, m, _ in picks)
    assert picks == [ds.pick(i) for i in range(40)]
    assert picks != [PairDataset([], cfg, seed=2, episodes=ds.episodes).pick(i) for i in range(40)]
    last_start = ds.episodes[0].num_frames - 1 - cfg.num_future_frames * cfg.frame_stride
    assert max(s for *_, s in picks) <= last_start


def test_cross_view_pointmap_equals_geometry_transform(sample_path: Path) -> None:
    """At the recording's own size, pm_m_in_n is the recorded view m moved into n's frame."""
    from geo4d_studio.diffusion.normalize import model_to_pointmap
    from geo4d_studio.geometry.camera import depth_to_pointmap
    from geo4d_studio.geometry.crossview import pointmap_to_frame
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        cam0 = scene.cameras[scene.camera_names[0]]
        cfg = dataclasses.replace(ModelConfig.tiny(), image_size=(cam0.height, cam0.width), frame_stride=2)
        ds = PairDataset([sample_path], cfg, split="held_out", seed=0)
        _, n, m, start = ds.pick(7)
        item = model_batch(ds[7], cfg)
        name_n, name_m = ds.episodes[0].camera_names[n], ds.episodes[0].camera_names[m]
        frames = window_frames(start, cfg.num_future_frames, cfg.frame_stride)
        depth_m = np.stack([scene.depth(name_m, t) for t in frames])
        depth_m[depth_m > cfg.max_depth_m] = 0
        expected = pointmap_to_frame(
            depth_to_pointmap(depth_m, scene.cameras[name_m].K),
            np.stack([scene.cameras[name_m].pose(t) for t in frames]),
            np.stack([scene.cameras[name_n].pose(t) for t in frames]),
        )
    valid = depth_m > 0
    got = model_to_pointmap(item["pm_m_in_n"], cfg)
    assert np.array_equal(item["valid_m"][:, 0].numpy() > 0, valid)
    np.testing.assert_allclose(got[valid], expected[valid], atol=1e-3)  # depth kept in 0.1 mm steps
    assert np.ptp(expected[valid][:, 2]) > 0.1  # a real 3D scene, not a constant plane


def test_episode_with_too_few_cameras_is_rejected(sample_path: Path, tmp_path: Path) -> None:
    from geo4d_studio.scene import open_scene
    from geo4d_studio.scene.writer import SceneWriter

    out = tmp_path / "three_cams.h5"
    with (
        open_scene(sample_path) as scene,
        SceneWriter(out, fps=scene.fps, timestamps=scene.timestamps[:6]) as w,
    ):
        for name in scene.camera_names[:3]:
            cam = scene.cameras[name]
            rgb = np.stack([scene.rgb(name, t) for t in range(6)])
            depth = np.stack([scene.depth(name, t) for t in range(6)])
            w.add_camera(name, cam.K, cam.T_world_cam[:6], rgb, depth)
    with pytest.raises(SceneFormatError, match=r"three_cams\.h5: /cameras: has 3 cameras"):
        PairDataset([out], ModelConfig.tiny())


def test_episode_too_short_for_the_clip_is_rejected(tiny_episodes: list[Episode]) -> None:
    cfg = dataclasses.replace(ModelConfig.tiny(), num_future_frames=40, frame_stride=5)
    with pytest.raises(SceneFormatError, match=r"/timestamps: has \d+ frames; .* needs at least 201"):
        PairDataset([], cfg, episodes=tiny_episodes)


def test_episode_paths_errors(tmp_path: Path) -> None:
    with pytest.raises(SceneFormatError, match="holds no episode files"):
        episode_paths(tmp_path)
    with pytest.raises(SceneFormatError, match="does not exist"):
        episode_paths(tmp_path / "missing")
