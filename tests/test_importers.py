"""Importers: small robomimic / RLBench datasets built here in their real layouts, imported and compared."""

from __future__ import annotations

import json

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene import open_scene
from geo4d_studio.scene.importers.rlbench import DEPTH_PNG_SCALE, import_rlbench
from geo4d_studio.scene.importers.robomimic import import_robomimic
from geo4d_studio.scene.synthetic import intrinsics, render_frame, ring_pose

T, H, W = 4, 24, 32
NEAR, FAR = 0.05, 4.0
CAMERAS = ("agentview", "sideview")


def _views() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per camera: pose, rgb (T, H, W, 3), metric depth (T, H, W)."""
    K = intrinsics(H, W)
    out = {}
    for index, name in enumerate(CAMERAS):
        pose = ring_pose(1.2 * index + 0.4)
        frames = [render_frame(K, pose, np.array([0.05 * t, 0.0]), H, W) for t in range(T)]
        out[name] = (pose, np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]))
    return out


def _robot_obs() -> dict[str, np.ndarray]:
    quat = Rotation.from_euler("z", np.linspace(0, 1, T)[:, None]).as_quat()  # x, y, z, w
    return {
        "robot0_eef_pos": np.stack([np.linspace(0.1, 0.3, T), np.zeros(T), np.full(T, 0.2)], axis=1),
        "robot0_eef_quat": quat,
        "robot0_gripper_qpos": np.stack([np.full(T, 0.03), np.full(T, -0.03)], axis=1),
    }


@pytest.fixture
def robomimic_file(tmp_path):
    """robosuite-style: OpenGL z-buffer depth (T, H, W, 1) in [0, 1], images upside down."""
    views = _views()
    path = tmp_path / "image.hdf5"
    with h5py.File(path, "w") as h5:
        data = h5.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1})
        obs = data.create_group("demo_0/obs")
        for name, (_, rgb, depth) in views.items():
            zbuf = np.where(depth > 0, (1 - NEAR / depth) / (1 - NEAR / FAR), 1.0).astype(np.float32)
            obs[f"{name}_image"] = rgb[:, ::-1]
            obs[f"{name}_depth"] = zbuf[:, ::-1, :, None]
        for key, value in _robot_obs().items():
            obs[key] = value
    calib = {
        "fps": 20,
        "cameras": {
            name: {
                "K": intrinsics(H, W).tolist(),
                "T_world_cam": pose.tolist(),
                "near": NEAR,
                "far": FAR,
                "depth_encoding": "zbuffer",
            }
            for name, (pose, _, _) in views.items()
        },
    }
    calib_path = tmp_path / "calib.json"
    calib_path.write_text(json.dumps(calib))
    return path, calib_path, views


def test_robomimic_import_recovers_images_depth_poses_and_robot(robomimic_file, tmp_path):
    src, calib, views = robomimic_file
    out = import_robomimic(src, tmp_path / "out.h5", calibration=calib, flip_vertical=True)
    with open_scene(out) as scene:
        assert scene.camera_names == list(CAMERAS) and scene.num_frames == T and scene.fps == 20.0
        assert scene.task == "Lift" and "image.hdf5 /data/demo_0" in scene.source
        for name, (pose, rgb, depth) in views.items():
            np.testing.assert_array_equal(scene.cameras[name].pose(2), pose)
            for t in range(T):
                np.testing.assert_array_equal(scene.rgb(name, t), rgb[t])
                np.testing.assert_allclose(
                    scene.depth(name, t), depth[t], atol=1e-4
                )  # float32 z-buffer + 0.1 mm
        robot = _robot_obs()
        np.testing.assert_allclose(scene.ee_pose[:, :3, 3], robot["robot0_eef_pos"])
        np.testing.assert_allclose(
            scene.ee_pose[3, :3, :3], Rotation.from_euler("z", 1.0).as_matrix(), atol=1e-12
        )
        np.testing.assert_allclose(scene.gripper_width, 0.06, rtol=1e-6)


def test_robomimic_npz_calibration_and_camera_subset(robomimic_file, tmp_path):
    src, _, views = robomimic_file
    pose = views["sideview"][0]
    npz = tmp_path / "calib.npz"
    np.savez(
        npz,
        **{
            "sideview.K": intrinsics(H, W),
            "sideview.T_world_cam": pose,
            "sideview.near": NEAR,
            "sideview.far": FAR,
            "sideview.depth_encoding": np.str_("zbuffer"),
            "fps": 5.0,
        },
    )
    out = import_robomimic(src, tmp_path / "o.h5", calibration=npz, cameras=["sideview"], flip_vertical=True)
    with open_scene(out) as scene:
        assert scene.camera_names == ["sideview"] and scene.fps == 5.0
        np.testing.assert_allclose(scene.depth("sideview", 1), views["sideview"][2][1], atol=1e-4)


def test_robomimic_errors_name_the_problem(robomimic_file, tmp_path):
    src, calib, _ = robomimic_file
    with pytest.raises(SceneFormatError, match="cameras.agentview: missing calibration for camera agentview"):
        import_robomimic(src, tmp_path / "o.h5")
    partial = tmp_path / "partial.json"
    entry = json.loads(calib.read_text())["cameras"]["agentview"]
    partial.write_text(json.dumps({"cameras": {"agentview": entry}}))
    with pytest.raises(
        SceneFormatError, match=r"missing calibration for camera sideview \(have: agentview\)"
    ):
        import_robomimic(src, tmp_path / "o.h5", calibration=partial)
    with pytest.raises(SceneFormatError, match=r"/data/demo_7: no such demo \(have: demo_0\)"):
        import_robomimic(src, tmp_path / "o.h5", calibration=calib, demo="demo_7")
    with pytest.raises(SceneFormatError, match="/data/demo_0/obs/wrist_image: missing"):
        import_robomimic(src, tmp_path / "o.h5", calibration=calib, cameras=["wrist"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cameras": {"agentview": {**entry, "K": [[1, 0], [0, 1]]}}}))
    with pytest.raises(SceneFormatError, match=r"bad.json: cameras.agentview.K: shape \(2, 2\)"):
        import_robomimic(src, tmp_path / "o.h5", calibration=bad)
    assert not (tmp_path / "o.h5").exists()


def _encode_depth_png(depth: np.ndarray) -> np.ndarray:
    units = np.rint(np.where(depth > 0, (depth - NEAR) / (FAR - NEAR), 1.0) * DEPTH_PNG_SCALE).astype(
        np.uint32
    )
    return np.stack([units >> 16, (units >> 8) & 255, units & 255], axis=-1).astype(np.uint8)


@pytest.fixture
def rlbench_episode(tmp_path):
    """RLBench layout with PyRep calibration (negative focal lengths, x left / y up camera axes)."""
    views = _views()
    episode = tmp_path / "episode0"
    pyrep_K = intrinsics(H, W) * np.array([[-1.0], [-1.0], [1.0]])
    cams = {}
    for name, (pose, rgb, depth) in views.items():
        (episode / f"{name}_rgb").mkdir(parents=True)
        (episode / f"{name}_depth").mkdir()
        for t in range(T):
            iio.imwrite(episode / f"{name}_rgb" / f"{t}.png", rgb[t])
            iio.imwrite(episode / f"{name}_depth" / f"{t}.png", _encode_depth_png(depth[t]))
        pyrep_pose = pose @ np.diag([-1.0, -1.0, 1.0, 1.0])
        cams[name] = {
            "K": pyrep_K.tolist(),
            "T_world_cam": [pyrep_pose.tolist()] * T,
            "near": NEAR,
            "far": FAR,
        }
    gripper_pose = np.concatenate(
        [np.tile([0.3, 0.0, 0.4], (T, 1)), np.tile([0.0, 1.0, 0.0, 0.0], (T, 1))], axis=1
    )
    (episode / "calibration.json").write_text(
        json.dumps(
            {
                "cameras": cams,
                "task": "open_drawer",
                "gripper_pose": gripper_pose.tolist(),
                "gripper_joint_positions": [[0.04, 0.04]] * T,
            }
        )
    )
    return episode, views


def test_rlbench_import_decodes_depth_and_converts_pyrep_axes(rlbench_episode, tmp_path):
    episode, views = rlbench_episode
    out = import_rlbench(episode, tmp_path / "rl.h5", depth_scale=None)
    with open_scene(out) as scene:
        assert scene.camera_names == sorted(CAMERAS) and scene.task == "open_drawer" and scene.fps == 20.0
        for name, (pose, rgb, depth) in views.items():
            cam = scene.cameras[name]
            np.testing.assert_allclose(cam.K, intrinsics(H, W))
            np.testing.assert_allclose(cam.pose(3), pose, atol=1e-15)
            for t in range(T):
                np.testing.assert_array_equal(scene.rgb(name, t), rgb[t])
                np.testing.assert_allclose(scene.depth(name, t), depth[t], atol=2e-6)
        np.testing.assert_allclose(scene.ee_pose[0, :3, :3], np.diag([-1.0, 1.0, -1.0]), atol=1e-12)
        np.testing.assert_allclose(scene.gripper_width, 0.08)


def test_rlbench_errors(rlbench_episode, tmp_path):
    episode, _ = rlbench_episode
    (episode / "sideview_depth" / "2.png").unlink()
    with pytest.raises(
        SceneFormatError, match=r"sideview_depth: frames do not match sideview_rgb \(missing \[2\]\)"
    ):
        import_rlbench(episode, tmp_path / "o.h5")
    with pytest.raises(SceneFormatError, match="cameras.wrist: missing calibration for camera wrist"):
        import_rlbench(episode, tmp_path / "o.h5", cameras=["wrist"])
    (episode / "calibration.json").unlink()
    with pytest.raises(SceneFormatError, match="calibration.json: file: calibration file does not exist"):
        import_rlbench(episode, tmp_path / "o.h5")
    with pytest.raises(SceneFormatError, match="not an RLBench episode folder"):
        import_rlbench(tmp_path / "nowhere", tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()
