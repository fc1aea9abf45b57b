"""The pybullet sample-episode generator: real physics, real rendering, real scene files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry.camera import project
from geo4d_studio.geometry.se3 import invert, transform_points
from geo4d_studio.scene import open_scene, validate_scene
from geo4d_studio.sim import TASKS, EpisodeData, generate_episode, simulate_episode
from geo4d_studio.sim.cameras import RigSpec, SimCamera, gl_projection_matrix, gl_view_matrix, make_rig
from geo4d_studio.sim.episode import write_episode
from geo4d_studio.sim.world import TABLE_CENTER_XY, TABLE_TOP_Z

SMALL = {"cameras": 2, "size": (48, 64), "frames": 12, "fps": 2.0}
"""Small but complete episodes: 12 frames at 2 fps span 5.5 s, the whole pick-and-place."""


@pytest.fixture(scope="module")
def episode() -> EpisodeData:
    return simulate_episode("pick_block", seed=0, **SMALL)


@pytest.fixture(scope="module")
def episode_file(episode: EpisodeData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_episode(episode, tmp_path_factory.mktemp("sim") / "pick_block_s0000.h5", seed=0)


def test_episode_file_validates_and_round_trips(episode: EpisodeData, episode_file: Path) -> None:
    assert validate_scene(episode_file, full=True) == []
    with open_scene(episode_file) as scene:
        assert scene.num_frames == 12 and scene.fps == 2.0 and scene.task == "pick_block"
        np.testing.assert_allclose(scene.timestamps, np.arange(12) / 2.0)
        assert scene.camera_names == ["cam00", "cam01"]
        cam = scene.cameras["cam01"]
        assert (cam.height, cam.width) == (48, 64)
        np.testing.assert_array_equal(cam.pose(5), episode.cameras[1].T_world_cam)
        np.testing.assert_array_equal(scene.rgb("cam01", 7), episode.rgb["cam01"][7])
        # uint16 depth with 0.1 mm steps
        np.testing.assert_allclose(scene.depth("cam01", 7), episode.depth["cam01"][7], atol=6e-5)
        np.testing.assert_array_equal(scene.gripper_mask("cam00", 3), episode.gripper_mask["cam00"][3])
        np.testing.assert_allclose(scene.ee_pose, episode.ee_pose)
        vertices, faces = scene.gripper_mesh
        assert vertices.dtype == np.float32 and faces.dtype == np.int32 and len(faces) > 1000


def test_pick_block_grasps_and_places(episode: EpisodeData) -> None:
    assert episode.success
    width = episode.gripper_width
    assert width[0] == pytest.approx(0.08, abs=1e-3)  # open at the start
    assert 0.045 < width.min() < 0.055  # closed on the 5 cm block, not on air
    assert width[-1] > 0.075  # released
    heights = episode.ee_pose[:, 2, 3]
    assert heights.min() < TABLE_TOP_Z + 0.04 and heights.max() > 0.2


@pytest.mark.parametrize(("task", "seed"), [("pick_block", 1), ("move_mug", 0), ("push_object", 0)])
def test_task_succeeds_in_physics(task: str, seed: int) -> None:
    assert simulate_episode(task, cameras=0, frames=12, fps=2.0, seed=seed).success


def test_depth_is_metric_on_the_table(episode: EpisodeData) -> None:
    """Pixels whose ray meets the empty front part of the table must read the ray-plane distance."""
    checked = 0
    for cam in episode.cameras:
        rays = np.stack(np.meshgrid(np.arange(cam.width), np.arange(cam.height), indexing="xy"), -1)
        rays_cam = np.concatenate([rays, np.ones((*rays.shape[:2], 1))], -1) @ np.linalg.inv(cam.K).T
        rays_world = rays_cam @ cam.T_world_cam[:3, :3].T
        origin = cam.T_world_cam[:3, 3]
        z_depth = (TABLE_TOP_Z - origin[2]) / rays_world[..., 2]  # rays_cam has z = 1, so this is depth
        hit = origin + z_depth[..., None] * rays_world
        empty_table = (z_depth > 0) & (hit[..., 0] > 0.75) & (hit[..., 0] < TABLE_CENTER_XY[0] + 0.7)
        empty_table &= np.abs(hit[..., 1]) < 0.45
        measured = episode.depth[cam.name][0][empty_table]
        if empty_table.sum() < 20:
            continue
        checked += 1
        error = np.abs(measured - z_depth[empty_table])
        assert np.mean(error < 0.001) > 0.95, f"{cam.name}: median error {np.median(error):.4f} m"
    assert checked >= 1


def test_background_and_far_depth_are_invalid(episode: EpisodeData) -> None:
    for depth in episode.depth.values():
        assert depth.dtype == np.float32
        assert depth.max() <= 3.0 and depth.min() == 0.0
        assert (depth == 0).any()  # sky above the horizon


def test_tool_origin_projects_onto_the_gripper(episode: EpisodeData) -> None:
    visible = 0
    for cam in episode.cameras:
        origins = episode.ee_pose[:, :3, 3]
        uv, z = project(transform_points(invert(cam.T_world_cam), origins), cam.K)
        for t in range(len(origins)):
            mask = episode.gripper_mask[cam.name][t]
            u, v = uv[t]
            inside = z[t] > 0 and 0 <= u < cam.width and 0 <= v < cam.height
            if not inside or mask.sum() < 3:
                continue
            rows, cols = np.nonzero(mask)
            assert rows.min() - 1.5 <= v <= rows.max() + 1.5, (cam.name, t)
            assert cols.min() - 1.5 <= u <= cols.max() + 1.5, (cam.name, t)
            visible += 1
    assert visible >= len(episode.timestamps)  # checked in at least half of the (camera, frame) pairs


def test_gripper_mesh_is_in_the_tool_frame(episode: EpisodeData) -> None:
    """The open-gripper mesh placed at the first tool pose covers the gripper mask (fingers open then)."""
    vertices, _ = episode.mesh
    hits = []
    for cam in episode.cameras:
        mask = episode.gripper_mask[cam.name][0]
        uv, z = project(transform_points(invert(cam.T_world_cam) @ episode.ee_pose[0], vertices), cam.K)
        pix = np.rint(uv).astype(int)
        ok = (z > 0) & np.all((pix >= 0) & (pix < [cam.width, cam.height]), axis=1)
        if ok.mean() < 0.9 or mask.sum() < 5:
            continue
        grown = binary_dilation(mask)  # one pixel of slack for rasterisation at 48x64
        hits.append(grown[pix[ok, 1], pix[ok, 0]].mean())
    assert hits and min(hits) > 0.8, hits


def test_gl_matrices_reproduce_the_pinhole_camera() -> None:
    """Projecting with pybullet's view/projection matrices lands on the pixel K predicts (the renderer's
    sampling positions are pinned down by the metric-depth test, which fails by ~1 cm at half a pixel off)."""
    cam = make_rig(np.random.default_rng(3), 1, (48, 64))[0]
    K = cam.K.copy()
    K[0, 2] += 3.0  # an off-centre principal point must be honoured too
    cam = SimCamera(cam.name, K, cam.T_world_cam, cam.height, cam.width)
    points = np.random.default_rng(4).uniform([0.2, -0.3, 0.0], [0.7, 0.3, 0.4], (50, 3))
    view = np.asarray(gl_view_matrix(cam.T_world_cam)).reshape(4, 4, order="F")
    proj = np.asarray(gl_projection_matrix(cam.K, cam.height, cam.width)).reshape(4, 4, order="F")
    clip = np.c_[points, np.ones(len(points))] @ (proj @ view).T
    ndc = clip[:, :3] / clip[:, 3:]
    u_gl = (ndc[:, 0] + 1) / 2 * cam.width  # where ER_TINY_RENDERER samples column u: x_window = u
    v_gl = (1 - ndc[:, 1]) / 2 * cam.height - 1  # and row v: y_window = H - 1 - v
    uv, _ = project(transform_points(invert(cam.T_world_cam), points), cam.K)
    np.testing.assert_allclose(np.c_[u_gl, v_gl], uv, atol=1e-9)


def test_camera_rig_surrounds_the_workspace() -> None:
    spec = RigSpec()
    rig = make_rig(np.random.default_rng(0), 16, (64, 80), spec)
    target = np.asarray(spec.target)
    offsets = np.stack([c.T_world_cam[:3, 3] for c in rig]) - target
    radius = np.linalg.norm(offsets, axis=1)
    assert np.all((radius >= spec.radius_m[0]) & (radius <= spec.radius_m[1]))
    azimuth = np.sort(np.degrees(np.arctan2(offsets[:, 1], offsets[:, 0])))
    assert np.diff(azimuth).max() < 2 * 280 / 16  # stratified: no wide gaps
    for cam in rig:  # the workspace centre is at the principal point of every camera
        uv, z = project(transform_points(invert(cam.T_world_cam), target[None]), cam.K)
        np.testing.assert_allclose(uv[0], cam.K[:2, 2], atol=1e-6)
        assert z[0] > 0
    again = make_rig(np.random.default_rng(0), 16, (64, 80), spec)
    assert all(np.array_equal(a.T_world_cam, b.T_world_cam) for a, b in zip(rig, again, strict=True))


@pytest.mark.slow
def test_same_seed_gives_identical_files(episode_file: Path, tmp_path: Path) -> None:
    again = generate_episode("pick_block", tmp_path / "again.h5", seed=0, **SMALL)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(episode_file.read_bytes()).digest()


def test_other_seed_moves_props_and_cameras() -> None:
    a = simulate_episode("push_object", cameras=1, size=(24, 32), frames=12, fps=2.0, seed=5)
    b = simulate_episode("push_object", cameras=1, size=(24, 32), frames=12, fps=2.0, seed=6)
    assert not np.array_equal(a.cameras[0].T_world_cam, b.cameras[0].T_world_cam)
    assert not np.allclose(a.ee_pose[5], b.ee_pose[5], atol=1e-3)


def test_task_registry() -> None:
    from geo4d_studio.commands.make_sample_data import TASK_NAMES

    assert tuple(TASKS) == TASK_NAMES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "fold_laundry"}, "unknown task 'fold_laundry'"),
        ({"frames": 12, "fps": 10.0}, "lasts 1.10 s, but the task needs at least"),
        ({"size": (8, 8)}, "too small"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict, message: str, tmp_path: Path) -> None:
    args = {"task": "pick_block", "cameras": 1, "size": (24, 32), "frames": 12, "fps": 2.0} | kwargs
    task = args.pop("task")
    with pytest.raises(Geo4DError, match=message):
        generate_episode(task, tmp_path / "x.h5", **args)
    assert list(tmp_path.iterdir()) == []


def test_obj_reader_triangulates_and_resolves_indices(tmp_path: Path) -> None:
    from geo4d_studio.sim.objmesh import merge_meshes, read_obj

    path = tmp_path / "quad.obj"
    path.write_text(
        "o q\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1 4//1\nf -4/1 -2/1 -1/1\n"
    )
    vertices, faces = read_obj(path)
    assert vertices.dtype == np.float32 and vertices.shape == (4, 3)
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
    merged_v, merged_f = merge_meshes([(vertices, faces), (vertices, faces[:1])])
    assert merged_v.shape == (8, 3) and merged_f.dtype == np.int32
    np.testing.assert_array_equal(merged_f[-1], [4, 5, 6])
    path.write_text("v 0 0 zero\n")
    with pytest.raises(Geo4DError, match=r"quad.obj: line 1: cannot parse 'v' record"):
        read_obj(path)
