"""SceneWriter → open_scene round trips: values, dtypes, order, laziness, atomicity, thread safety."""

from __future__ import annotations

import hashlib
import threading
import tracemalloc

import h5py
import numpy as np
import pytest

from geo4d_studio.errors import OutputPathError, SceneFormatError
from geo4d_studio.geometry.camera import depth_to_pointmap
from geo4d_studio.geometry.se3 import transform_points
from geo4d_studio.scene import SceneWriter, check_scene, open_scene, validate_scene
from geo4d_studio.scene.synthetic import intrinsics, make_synthetic_scene, ring_pose

T, H, W = 6, 12, 16


def _frames(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 2.5, (T, H, W)).astype(np.float32)
    depth[:, 0, :] = 0.0  # invalid pixels
    return {
        "rgb": rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8),
        "depth": depth,
        "gripper_mask": rng.random((T, H, W)) > 0.7,
    }


def _moving_poses() -> np.ndarray:
    return np.stack([ring_pose(a) for a in np.linspace(0.0, 1.0, T)])


def _write(path, frames, *, depth_scale=None, as_iterables=False, robot=True, source="unit test"):
    timestamps = np.arange(T) / 15.0
    K = intrinsics(H, W)

    def arg(x):
        return iter(list(x)) if as_iterables else x

    with SceneWriter(
        path, fps=15.0, timestamps=timestamps, task="pick", source=source, depth_scale=depth_scale
    ) as writer:
        # Not alphabetical: the reader must keep file (insertion) order.
        writer.add_camera(
            "zeta", K, ring_pose(0.3), arg(frames["rgb"]), arg(frames["depth"]), arg(frames["gripper_mask"])
        )
        writer.add_camera(
            "alpha",
            K * [[2, 1, 1], [1, 2, 1], [1, 1, 1]],
            _moving_poses(),
            arg(frames["rgb"][::-1]),
            arg(frames["depth"]),
        )
        if robot:
            vertices = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]], dtype=np.float32)
            writer.set_robot(_moving_poses(), np.linspace(0.0, 0.08, T), vertices, np.array([[0, 1, 2]]))
    return path


@pytest.mark.parametrize("as_iterables", [False, True])
def test_float_depth_round_trip_is_exact(tmp_path, as_iterables):
    frames = _frames()
    path = _write(tmp_path / "s.h5", frames, as_iterables=as_iterables)
    with open_scene(path) as scene:
        assert scene.camera_names == ["zeta", "alpha"] and list(scene.cameras) == ["zeta", "alpha"]
        assert (scene.fps, scene.task, scene.source, scene.num_frames) == (15.0, "pick", "unit test", T)
        np.testing.assert_array_equal(scene.timestamps, np.arange(T) / 15.0)
        zeta, alpha = scene.cameras["zeta"], scene.cameras["alpha"]
        assert (zeta.width, zeta.height) == (W, H)
        np.testing.assert_array_equal(zeta.K, intrinsics(H, W))
        assert alpha.K[0, 0] == 2 * zeta.K[0, 0]
        assert zeta.T_world_cam.shape == (T, 4, 4) and zeta.is_static and not alpha.is_static
        np.testing.assert_array_equal(zeta.pose(4), ring_pose(0.3))
        np.testing.assert_array_equal(alpha.pose(2), _moving_poses()[2])
        for t in range(T):
            rgb, depth = scene.rgb("zeta", t), scene.depth("zeta", t)
            assert rgb.dtype == np.uint8 and depth.dtype == np.float32
            np.testing.assert_array_equal(rgb, frames["rgb"][t])
            np.testing.assert_array_equal(scene.rgb("alpha", t), frames["rgb"][T - 1 - t])
            np.testing.assert_array_equal(depth, frames["depth"][t])
            mask = scene.gripper_mask("zeta", t)
            assert mask.dtype == np.bool_
            np.testing.assert_array_equal(mask, frames["gripper_mask"][t])
        assert scene.has_gripper_mask("zeta") and not scene.has_gripper_mask("alpha")
        assert scene.gripper_mask("alpha", 0) is None
        np.testing.assert_array_equal(scene.ee_pose, _moving_poses())
        assert scene.gripper_width.dtype == np.float32
        np.testing.assert_allclose(scene.gripper_width, np.linspace(0.0, 0.08, T), rtol=1e-6)
        vertices, faces = scene.gripper_mesh
        assert vertices.dtype == np.float32 and faces.dtype == np.int32 and faces.tolist() == [[0, 1, 2]]
        assert scene.warnings == ["camera alpha: no gripper mask"]


def test_text_attributes_round_trip_unicode(tmp_path):
    with open_scene(_write(tmp_path / "s.h5", _frames(), source="Bürotisch, 机器人 ✓")) as scene:
        assert scene.source == "Bürotisch, 机器人 ✓"


def test_uint16_depth_round_trip_within_half_a_step(tmp_path):
    frames = _frames()
    path = _write(tmp_path / "s.h5", frames, depth_scale=1e-4)
    with h5py.File(path) as h5:
        ds = h5["/cameras/zeta/depth"]
        assert ds.dtype == np.uint16 and ds.attrs["depth_scale"] == pytest.approx(1e-4)
    with open_scene(path) as scene:
        depth = scene.depth("zeta", 3)
        assert depth.dtype == np.float32
        err = np.abs(depth - frames["depth"][3])
        assert err.max() <= 0.5e-4 + 1e-6 and err.max() > 0
        assert (depth[0] == 0).all()  # invalid stays invalid


def test_uint16_depth_compresses_better_than_float32(tmp_path):
    """With sensor-like noise (0.5 mm), 0.1 mm uint16 steps store depth in well under 3/4 of the bytes."""
    sizes = {}
    for scale in (1e-4, None):
        path = make_synthetic_scene(
            tmp_path / f"{scale}.h5", frames=4, size=(96, 128), depth_scale=scale, depth_noise_m=5e-4
        )
        with h5py.File(path) as h5:
            sizes[scale] = sum(h5[f"/cameras/{c}/depth"].id.get_storage_size() for c in ("cam0", "cam1"))
    assert sizes[1e-4] < 0.75 * sizes[None]


def test_pixel_datasets_are_one_frame_per_chunk_and_compressed(tmp_path):
    path = _write(tmp_path / "s.h5", _frames())
    with h5py.File(path) as h5:
        for name, shape in (("rgb", (1, H, W, 3)), ("depth", (1, H, W)), ("gripper_mask", (1, H, W))):
            ds = h5[f"/cameras/zeta/{name}"]
            assert ds.chunks == shape and ds.compression == "gzip" and ds.fletcher32
        assert h5["/cameras/zeta/T_world_cam"].shape == (4, 4)  # static pose stored once
        assert h5["/cameras/alpha/T_world_cam"].shape == (T, 4, 4)
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in h5.attrs.items()}
        assert attrs == {
            "format": "geo4d-scene",
            "version": 1,
            "fps": 15.0,
            "task": "pick",
            "source": "unit test",
            "units": "m",
        }
        assert all(h5.attrs.get_id(k).dtype.kind == "S" for k in ("format", "task", "source", "units"))


def test_reader_never_modifies_the_file(tmp_path):
    path = _write(tmp_path / "s.h5", _frames())
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with open_scene(path) as scene:
        assert scene._h5.mode == "r"
        scene.rgb("alpha", 1), scene.depth("zeta", 2)
    assert check_scene(path, full=True).valid
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_metadata_arrays_are_read_only(tmp_path):
    with open_scene(_write(tmp_path / "s.h5", _frames())) as scene:
        for array in (
            scene.timestamps,
            scene.cameras["zeta"].K,
            scene.cameras["zeta"].T_world_cam,
            scene.ee_pose,
        ):
            with pytest.raises(ValueError, match="read-only"):
                array[0] = 0


def test_unknown_camera_and_frame_out_of_range(tmp_path):
    with open_scene(_write(tmp_path / "s.h5", _frames())) as scene:
        with pytest.raises(KeyError, match="no camera 'nope'.*zeta, alpha"):
            scene.rgb("nope", 0)
        with pytest.raises(IndexError, match="frame 6 out of range 0..5"):
            scene.depth("zeta", T)
        with pytest.raises(IndexError):
            scene.rgb("zeta", -1)


def test_opening_reads_no_pixels(tmp_path):
    """A file whose every pixel chunk is garbage opens fine; reading a frame names dataset and frame."""
    path = make_synthetic_scene(tmp_path / "s.h5", cameras=2, frames=4, size=(48, 64), with_robot=False)
    with h5py.File(path) as h5:
        chunks = [
            h5[f"/cameras/{cam}/{kind}"].id.get_chunk_info(i)
            for cam in ("cam0", "cam1")
            for kind in ("rgb", "depth", "gripper_mask")
            for i in range(4)
        ]
    with open(path, "r+b") as f:
        for chunk in chunks:
            f.seek(chunk.byte_offset)
            f.write(bytes(reversed(range(256))) * (chunk.size // 256) + b"\x5a" * (chunk.size % 256))
    with open_scene(path) as scene:
        assert scene.num_frames == 4 and scene.cameras["cam1"].width == 64
        with pytest.raises(SceneFormatError, match=r"/cameras/cam1/depth: frame 2: cannot be read") as err:
            scene.depth("cam1", 2)
        assert err.value.field == "/cameras/cam1/depth"
    problems = validate_scene(path, full=True)
    assert validate_scene(path) == []
    assert any("/cameras/cam0/rgb: frame 0: cannot be read" in p for p in problems)
    assert any("/cameras/cam1/gripper_mask: 1 more frames with problems" in p for p in problems)


def test_opening_allocates_far_less_than_one_frame(tmp_path):
    path = make_synthetic_scene(tmp_path / "s.h5", cameras=2, frames=6, size=(240, 320))
    tracemalloc.start()
    with open_scene(path) as scene:
        _, peak_open = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        scene.depth("cam0", 0)
        _, peak_frame = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_open < 100_000 < 240 * 320 * 4 <= peak_frame


def test_concurrent_reads_from_threads_agree(tmp_path):
    path = make_synthetic_scene(tmp_path / "s.h5", cameras=2, frames=8, size=(32, 48))
    with open_scene(path) as scene:
        expected = {
            (c, t): (scene.rgb(c, t), scene.depth(c, t)) for c in scene.camera_names for t in range(8)
        }
        mismatches: list[tuple[str, int]] = []

        def worker(offset: int) -> None:
            for i in range(64):
                cam, t = scene.camera_names[(i + offset) % 2], (i * 3 + offset) % 8
                rgb, depth = scene.rgb(cam, t), scene.depth(cam, t)
                if not (
                    np.array_equal(rgb, expected[cam, t][0]) and np.array_equal(depth, expected[cam, t][1])
                ):
                    mismatches.append((cam, t))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert mismatches == []


def test_synthetic_scene_depth_matches_its_geometry(tmp_path):
    """The synthetic floor is z = 0: back-projected depth lands on it (checks the writer keeps geometry)."""
    with open_scene(make_synthetic_scene(tmp_path / "s.h5", cameras=3, frames=2, size=(30, 40))) as scene:
        for cam in scene.cameras.values():
            depth = scene.depth(cam.name, 0)
            floor = ~scene.gripper_mask(cam.name, 0) & (depth > 0)
            points = depth_to_pointmap(depth, cam.K)[floor]  # OpenCV: pixel centres at integers
            world = transform_points(cam.pose(0), points).T
            np.testing.assert_allclose(world[2], 0.0, atol=1e-5)


def test_writer_error_leaves_no_file_and_no_temp(tmp_path):
    target = tmp_path / "s.h5"
    with (
        pytest.raises(RuntimeError, match="boom"),
        SceneWriter(target, fps=10, timestamps=np.arange(T) / 10) as writer,
    ):
        writer.add_camera("a", intrinsics(H, W), np.eye(4), _frames()["rgb"], _frames()["depth"])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_existing_file_unless_overwrite(tmp_path):
    path = _write(tmp_path / "s.h5", _frames())
    with pytest.raises(OutputPathError, match="already exists"):
        SceneWriter(path, fps=10, timestamps=np.arange(T) / 10)
    make_synthetic_scene(path, frames=3, overwrite=True)
    with open_scene(path) as scene:
        assert scene.num_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def _writer(tmp_path, **kwargs):
    return SceneWriter(tmp_path / "s.h5", fps=10, timestamps=np.arange(T) / 10, **kwargs)


BAD_CAMERA_INPUTS = [
    ({"K": np.diag([0.0, 10.0, 1.0])}, "/cameras/c/K", "focal length fx is 0"),
    ({"K": np.eye(2)}, "/cameras/c/K", "shape (2, 2), expected (3, 3)"),
    ({"T_world_cam": np.diag([1.0, 1.0, 2.0, 1.0])}, "/cameras/c/T_world_cam", "not orthonormal"),
    ({"T_world_cam": np.diag([1.0, 1.0, -1.0, 1.0])}, "/cameras/c/T_world_cam", "determinant -1"),
    ({"T_world_cam": np.tile(np.eye(4), (T - 1, 1, 1))}, "/cameras/c/T_world_cam", "has 5 frames"),
    ({"rgb": _frames()["rgb"].astype(np.float32)}, "/cameras/c/rgb", "frame 0: float32"),
    ({"rgb": _frames()["rgb"][:4]}, "/cameras/c/rgb", "has 4 frames, but /timestamps has 6"),
    ({"rgb": np.concatenate([_frames()["rgb"]] * 2)}, "/cameras/c/rgb", "more than 6 frames"),
    (
        {"depth": np.where(np.arange(W) == 3, np.nan, _frames()["depth"])},
        "/cameras/c/depth",
        "frame 0: 12 NaN/inf",
    ),
    ({"depth": -_frames()["depth"]}, "/cameras/c/depth", "negative depth"),
    ({"depth": _frames()["depth"][:, :, :8]}, "/cameras/c/depth", "shape (12, 8), expected (12, 16)"),
    ({"gripper_mask": np.ones((T, H, W), dtype=np.float32)}, "/cameras/c/gripper_mask", "expected bool"),
    ({"name": "front/left"}, "/cameras/front/left", "camera name must be"),
]


@pytest.mark.parametrize(("change", "field", "problem"), BAD_CAMERA_INPUTS)
def test_writer_rejects_bad_camera_input_with_field(tmp_path, change, field, problem):
    args = {"name": "c", "K": intrinsics(H, W), "T_world_cam": np.eye(4), **_frames()} | change
    with pytest.raises(SceneFormatError) as err, _writer(tmp_path) as writer:
        writer.add_camera(**args)
    assert err.value.field == field and problem in err.value.problem
    assert list(tmp_path.iterdir()) == []


def test_writer_uint16_range_and_failed_camera_is_rolled_back(tmp_path):
    frames = _frames()
    with _writer(tmp_path, depth_scale=1e-5) as writer:
        with pytest.raises(
            SceneFormatError, match=r"/cameras/far/depth: frame 0: depth 2\.\d+ m exceeds 0\.6554 m"
        ):
            writer.add_camera("far", intrinsics(H, W), np.eye(4), frames["rgb"], frames["depth"])
        writer.add_camera("near", intrinsics(H, W), np.eye(4), frames["rgb"], frames["depth"] * 0.2)
    with open_scene(tmp_path / "s.h5") as scene:
        assert scene.camera_names == ["near"]


def test_writer_rejects_bad_robot_and_empty_scene(tmp_path):
    frames = _frames()
    with pytest.raises(SceneFormatError, match="/cameras: no camera added"), _writer(tmp_path):
        pass
    with _writer(tmp_path) as writer:
        writer.add_camera("c", intrinsics(H, W), np.eye(4), frames["rgb"], frames["depth"])
        with pytest.raises(
            SceneFormatError, match=r"/robot/ee_pose: shape \(5, 4, 4\), expected \(6, 4, 4\)"
        ):
            writer.set_robot(np.tile(np.eye(4), (T - 1, 1, 1)), np.zeros(T))
        with pytest.raises(SceneFormatError, match="/robot/gripper_width: 1 NaN/inf"):
            writer.set_robot(np.tile(np.eye(4), (T, 1, 1)), np.r_[np.zeros(T - 1), np.nan])
        with pytest.raises(
            SceneFormatError, match="/robot/gripper_mesh/faces: indices span 0..7, but there are 3"
        ):
            writer.set_robot(np.tile(np.eye(4), (T, 1, 1)), np.zeros(T), np.zeros((3, 3)), [[0, 1, 7]])
    with open_scene(tmp_path / "s.h5") as scene:
        assert scene.ee_pose is None and scene.gripper_mesh is None
        assert "no robot ground truth (/robot/ee_pose)" in scene.warnings


def test_writer_rejects_bad_timestamps_before_creating_a_file(tmp_path):
    with pytest.raises(SceneFormatError, match=r"/timestamps: not strictly increasing at frame 2"):
        SceneWriter(tmp_path / "s.h5", fps=10, timestamps=[0.0, 0.1, 0.1])
    with pytest.raises(SceneFormatError, match="fps is 0"):
        SceneWriter(tmp_path / "s.h5", fps=0, timestamps=[0.0])
    assert list(tmp_path.iterdir()) == []
