"""Every way a recording can be malformed gives a SceneFormatError naming the file and the field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo4d_studio.errors import SceneFormatError
from geo4d_studio.scene import check_scene, open_scene, validate_scene
from geo4d_studio.scene.synthetic import make_synthetic_scene

FRAMES = 4


@pytest.fixture(scope="module")
def valid_scene(tmp_path_factory) -> Path:
    return make_synthetic_scene(tmp_path_factory.mktemp("valid") / "valid.h5", cameras=2, frames=FRAMES)


@pytest.fixture
def scene_copy(valid_scene, tmp_path) -> Path:
    path = tmp_path / "scene.h5"
    shutil.copyfile(valid_scene, path)
    return path


def _replace(h5: h5py.File, name: str, data: np.ndarray, **attrs) -> None:
    del h5[name]
    h5.create_dataset(name, data=data)
    h5[name].attrs.update(attrs)


def _set(name: str, index, value) -> Callable[[h5py.File], None]:
    def alter(h5: h5py.File) -> None:
        data = h5[name][()]
        data[index] = value
        h5[name][...] = data

    return alter


def _rotation(h5: h5py.File, matrix) -> None:
    pose = h5["/cameras/cam1/T_world_cam"][()]
    pose[:3, :3] = matrix
    h5["/cameras/cam1/T_world_cam"][...] = pose


ALTERATIONS: list[tuple[str, Callable[[h5py.File], None], str, str]] = [
    ("missing K", lambda h5: h5.__delitem__("/cameras/cam0/K"), "/cameras/cam0/K", "missing"),
    ("zero fx", _set("/cameras/cam0/K", (0, 0), 0.0), "/cameras/cam0/K", "focal length fx is 0"),
    ("negative fy", _set("/cameras/cam1/K", (1, 1), -5.0), "/cameras/cam1/K", "focal length fy is -5"),
    ("NaN in K", _set("/cameras/cam0/K", (0, 2), np.nan), "/cameras/cam0/K", "1 NaN/inf values"),
    ("K not pinhole", _set("/cameras/cam0/K", (2, 0), 0.5), "/cameras/cam0/K", "not a pinhole matrix"),
    (
        "K integer dtype",
        lambda h5: _replace(h5, "/cameras/cam0/K", np.eye(3, dtype=np.int64)),
        "/cameras/cam0/K",
        "dtype int64, expected float64",
    ),
    (
        "scaled rotation",
        lambda h5: _rotation(h5, 1.1 * np.eye(3)),
        "/cameras/cam1/T_world_cam",
        "not orthonormal",
    ),
    (
        "reflection",
        lambda h5: _rotation(h5, np.diag([1.0, -1.0, 1.0])),
        "/cameras/cam1/T_world_cam",
        "determinant -1",
    ),
    (
        "pose last row",
        _set("/cameras/cam1/T_world_cam", (3, 0), 0.2),
        "/cameras/cam1/T_world_cam",
        "last row",
    ),
    (
        "moving pose frame count",
        lambda h5: _replace(h5, "/cameras/cam1/T_world_cam", np.tile(np.eye(4), (FRAMES + 2, 1, 1))),
        "/cameras/cam1/T_world_cam",
        "has 6 frames, but /timestamps has 4",
    ),
    (
        "rgb float",
        lambda h5: _replace(h5, "/cameras/cam0/rgb", h5["/cameras/cam0/rgb"][()].astype(np.float32)),
        "/cameras/cam0/rgb",
        "dtype float32, expected uint8",
    ),
    (
        "rgb RGBA",
        lambda h5: _replace(h5, "/cameras/cam0/rgb", np.zeros((FRAMES, 24, 32, 4), np.uint8)),
        "/cameras/cam0/rgb",
        "shape (4, 24, 32, 4), expected (*, *, *, 3)",
    ),
    (
        "depth frame count",
        lambda h5: _replace(h5, "/cameras/cam1/depth", h5["/cameras/cam1/depth"][:3]),
        "/cameras/cam1/depth",
        "has 3 frames, but /timestamps has 4",
    ),
    (
        "depth size",
        lambda h5: _replace(h5, "/cameras/cam1/depth", np.ones((FRAMES, 24, 30), np.float32)),
        "/cameras/cam1/depth",
        "images are (24, 30), but rgb images are (24, 32)",
    ),
    (
        "depth float64",
        lambda h5: _replace(h5, "/cameras/cam1/depth", h5["/cameras/cam1/depth"][()].astype(np.float64)),
        "/cameras/cam1/depth",
        "dtype float64, expected float32 or uint16",
    ),
    (
        "uint16 depth without scale",
        lambda h5: _replace(h5, "/cameras/cam0/depth", np.ones((FRAMES, 24, 32), np.uint16)),
        "/cameras/cam0/depth",
        "uint16 depth needs the attribute depth_scale",
    ),
    (
        "uint16 depth with zero scale",
        lambda h5: _replace(h5, "/cameras/cam0/depth", np.ones((FRAMES, 24, 32), np.uint16), depth_scale=0.0),
        "/cameras/cam0/depth",
        "attribute depth_scale is 0.0, expected a number > 0",
    ),
    (
        "missing rgb",
        lambda h5: h5.__delitem__("/cameras/cam1/rgb"),
        "/cameras/cam1/rgb",
        "missing",
    ),
    (
        "mask frame count",
        lambda h5: _replace(h5, "/cameras/cam0/gripper_mask", np.zeros((2, 24, 32), np.uint8)),
        "/cameras/cam0/gripper_mask",
        "has 2 frames",
    ),
    ("unsupported version", lambda h5: h5.attrs.__setitem__("version", 2), "/", "unsupported version 2"),
    ("wrong format", lambda h5: h5.attrs.__setitem__("format", "rosbag"), "/", "format is 'rosbag'"),
    ("no format", lambda h5: h5.attrs.__delitem__("format"), "/", "no 'format' attribute"),
    ("units mm", lambda h5: h5.attrs.__setitem__("units", "mm"), "/", "units is 'mm', expected 'm'"),
    ("fps zero", lambda h5: h5.attrs.__setitem__("fps", 0.0), "/", "fps is 0.0"),
    ("missing timestamps", lambda h5: h5.__delitem__("/timestamps"), "/timestamps", "missing"),
    ("timestamps go back", _set("/timestamps", 2, 0.0), "/timestamps", "not strictly increasing at frame 2"),
    ("timestamps inf", _set("/timestamps", 3, np.inf), "/timestamps", "1 NaN/inf values"),
    ("no cameras", lambda h5: h5.__delitem__("/cameras"), "/cameras", "missing or empty"),
    (
        "ee_pose frame count",
        lambda h5: _replace(h5, "/robot/ee_pose", h5["/robot/ee_pose"][:2]),
        "/robot/ee_pose",
        "has 2 frames",
    ),
    ("ee_pose not rigid", _set("/robot/ee_pose", (1, 0, 1), 0.3), "/robot/ee_pose", "frame 1: rotation"),
    ("gripper width NaN", _set("/robot/gripper_width", 0, np.nan), "/robot/gripper_width", "1 NaN/inf"),
    (
        "gripper width float64",
        lambda h5: _replace(h5, "/robot/gripper_width", np.zeros(FRAMES)),
        "/robot/gripper_width",
        "dtype float64, expected float32",
    ),
    (
        "mesh face index",
        _set("/robot/gripper_mesh/faces", (0, 0), 99),
        "/robot/gripper_mesh/faces",
        "indices span",
    ),
    (
        "mesh without faces",
        lambda h5: h5.__delitem__("/robot/gripper_mesh/faces"),
        "/robot/gripper_mesh/faces",
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("alter", "field", "problem"), [a[1:] for a in ALTERATIONS], ids=[a[0] for a in ALTERATIONS]
)
def test_malformed_file_names_field_and_problem(scene_copy, alter, field, problem):
    with h5py.File(scene_copy, "r+") as h5:
        alter(h5)
    with pytest.raises(SceneFormatError) as err:
        open_scene(scene_copy)
    assert (err.value.path, err.value.field) == (scene_copy, field)
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{scene_copy}: {field}: ")
    assert validate_scene(scene_copy)[0] == str(err.value)


def test_report_lists_every_problem_not_just_the_first(scene_copy):
    with h5py.File(scene_copy, "r+") as h5:
        _set("/cameras/cam0/K", (0, 0), 0.0)(h5)
        _rotation(h5, 2 * np.eye(3))
        _set("/robot/gripper_width", 1, -1.0)(h5)
    problems = validate_scene(scene_copy)
    assert [p.split(": ")[1] for p in problems] == [
        "/cameras/cam0/K",
        "/cameras/cam1/T_world_cam",
        "/robot/gripper_width",
    ]


def test_warnings_for_missing_optional_data(scene_copy):
    with h5py.File(scene_copy, "r+") as h5:
        del h5["/cameras/cam1/gripper_mask"], h5["/robot"]
        h5.attrs["fps"] = 30.0
    with open_scene(scene_copy) as scene:
        assert scene.ee_pose is None and scene.gripper_width is None and scene.gripper_mesh is None
        assert scene.warnings == [
            "fps is 30, but timestamps are 10 frames per second",
            "camera cam1: no gripper mask",
            "no robot ground truth (/robot/ee_pose)",
            "no gripper width ground truth (/robot/gripper_width)",
            "no gripper mesh (/robot/gripper_mesh)",
        ]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_depth_raises_on_that_frame_only(scene_copy, bad):
    with h5py.File(scene_copy, "r+") as h5:
        depth = h5["/cameras/cam1/depth"]
        frame = depth[2]
        frame[5:7, 3] = bad
        depth[2] = frame
    assert validate_scene(scene_copy) == []
    with open_scene(scene_copy) as scene:
        scene.depth("cam1", 1), scene.depth("cam1", 3)
        with pytest.raises(SceneFormatError) as err:
            scene.depth("cam1", 2)
    assert (err.value.field, err.value.problem) == ("/cameras/cam1/depth", "frame 2: 2 NaN/inf values")
    assert validate_scene(scene_copy, full=True) == [str(err.value)]


def test_full_scan_warns_about_empty_depth_frames(scene_copy):
    with h5py.File(scene_copy, "r+") as h5:
        depth = h5["/cameras/cam0/depth"]
        depth[1] = 0
        depth[3] = 0
    report = check_scene(scene_copy, full=True)
    assert report.valid and report.warnings == ["camera cam0: depth is all zero in 2 of 4 frames (1, 3)"]
    assert check_scene(scene_copy).warnings == []


def test_truncated_file(scene_copy):
    data = scene_copy.read_bytes()
    scene_copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(SceneFormatError) as err:
        open_scene(scene_copy)
    assert (err.value.field, err.value.problem) == (
        "file",
        "not a readable HDF5 file (truncated or corrupt?)",
    )
    assert validate_scene(scene_copy, full=True) == [str(err.value)]


@pytest.mark.parametrize(
    "content", [b"", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8))]
)
def test_empty_or_random_bytes(tmp_path, content):
    path = tmp_path / "noise.h5"
    path.write_bytes(content)
    with pytest.raises(SceneFormatError, match=r"noise\.h5: file: not a readable HDF5 file"):
        open_scene(path)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(SceneFormatError, match="file: is a directory, expected a .h5 scene file"):
        open_scene(tmp_path)
    with pytest.raises(SceneFormatError, match=r"absent\.h5: file: does not exist"):
        open_scene(tmp_path / "absent.h5")


def test_hdf5_that_is_not_a_scene(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["data"] = np.zeros(3)
    with pytest.raises(SceneFormatError, match="other.h5: /: no 'format' attribute: not a geo4d-scene file"):
        open_scene(path)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(offset=st.floats(0.0, 1.0, exclude_max=True), length=st.integers(1, 64), seed=st.integers(0, 2**16))
def test_random_byte_corruption_never_escapes_as_another_error(valid_scene, tmp_path, offset, length, seed):
    """Overwriting any bytes of a file yields a valid scene or SceneFormatErrors, never another exception."""
    data = bytearray(valid_scene.read_bytes())
    start = int(offset * len(data))
    data[start : start + length] = (
        np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    )
    path = tmp_path / f"corrupt-{start}-{length}-{seed}.h5"
    path.write_bytes(bytes(data))
    report = check_scene(path, full=True)
    assert all(p.startswith(str(path)) for p in report.problems)
    if report.valid:
        with open_scene(path) as scene:
            for cam in scene.camera_names:
                assert scene.rgb(cam, FRAMES - 1).shape == (24, 32, 3)


def _first_camera(h5: h5py.File) -> str:
    return next(iter(h5["/cameras"]))


SAMPLE_ALTERATIONS: list[tuple[str, Callable[[h5py.File, str], None], str, str]] = [
    (
        "zero fy",
        lambda h5, cam: h5[f"/cameras/{cam}/K"].__setitem__((1, 1), 0.0),
        "K",
        "focal length fy is 0",
    ),
    (
        "depth_scale removed",
        lambda h5, cam: h5[f"/cameras/{cam}/depth"].attrs.__delitem__("depth_scale"),
        "depth",
        "uint16 depth needs the attribute depth_scale",
    ),
    (
        "rgb frames dropped",
        lambda h5, cam: _replace(h5, f"/cameras/{cam}/rgb", h5[f"/cameras/{cam}/rgb"][:10]),
        "rgb",
        "has 10 frames",
    ),
    (
        "sheared pose",
        lambda h5, cam: h5[f"/cameras/{cam}/T_world_cam"].__setitem__((..., 0, 1), 0.5),
        "T_world_cam",
        "not orthonormal",
    ),
    ("version 2", lambda h5, cam: h5.attrs.__setitem__("version", 2), "", "unsupported version 2"),
]


@pytest.mark.parametrize(
    ("alter", "dataset", "problem"),
    [a[1:] for a in SAMPLE_ALTERATIONS],
    ids=[a[0] for a in SAMPLE_ALTERATIONS],
)
def test_corrupted_shipped_sample_is_rejected(sample_path, tmp_path, alter, dataset, problem):
    path = tmp_path / sample_path.name
    shutil.copyfile(sample_path, path)
    with h5py.File(path, "r+") as h5:
        cam = _first_camera(h5)
        alter(h5, cam)
    with pytest.raises(SceneFormatError) as err:
        open_scene(path)
    assert err.value.field == (f"/cameras/{cam}/{dataset}" if dataset else "/")
    assert problem in err.value.problem


def test_damaged_chunk_in_shipped_sample_is_found_by_full_scan(sample_path, tmp_path):
    path = tmp_path / sample_path.name
    shutil.copyfile(sample_path, path)
    with h5py.File(path) as h5:
        cam = _first_camera(h5)
        chunk = h5[f"/cameras/{cam}/depth"].id.get_chunk_info(7)
    with open(path, "r+b") as f:
        f.seek(chunk.byte_offset + chunk.size // 2)
        f.write(b"\x13\x37" * 4)
    assert validate_scene(path) == []
    problems = validate_scene(path, full=True)
    assert len(problems) == 1 and problems[0].startswith(
        f"{path}: /cameras/{cam}/depth: frame 7: cannot be read"
    )
