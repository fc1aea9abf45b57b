"""Training pairs from multi-view episodes: two cameras, a condition frame and F future frames.

An item is compact (what a loader process sends): uint8 RGB, uint16 depth steps, uint8 gripper masks,
the cameras' pixel rays and the per-frame transform `T_n_m = inv(T_world_cam_n) @ T_world_cam_m`.
`model_batch` turns (a batch of) items into what `edm.edm_loss` consumes, with torch on whatever device
the items are on, so a GPU run spends no CPU time on pointmaps. Model-batch entries (frame 0 = condition
frame, 1..F future frames at the config's stride): `rgb_n`, `rgb_m` (F+1, 3, H, W) in [-1, 1]; `pm_n`
(view n's pointmap in n's camera frame) and `pm_m_in_n` (view m's pointmap moved into n's frame), both
in model space (F+1, 3, H, W); `mask_n`, `mask_m` (F+1, 1, H, W) float gripper masks (zeros when the
episode has none; they raise the loss weight on the gripper); `valid_n`, `valid_m` (F+1, 1, H, W) float,
1 where the depth is valid (0 < z <= max_depth_m).

Episodes are decoded once, resized to the model's image size and kept in memory as uint8 RGB and uint16
depth (0.1 mm steps), because on a few CPU cores decoding compressed HDF5 frames would dominate a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.normalize import pointmap_to_model, resize, rgb_to_model, scale_intrinsics
from geo4d_studio.errors import SceneFormatError
from geo4d_studio.geometry.camera import pixel_rays
from geo4d_studio.geometry.se3 import compose, invert

DEPTH_STEP_M = 1e-4
MIN_CAMERAS = 4
PAPER_HELD_OUT = 4


def split_cameras(camera_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Training and held-out cameras, chosen deterministically and spread evenly over the file order.

    As in the paper, 4 cameras are held out for evaluation (12 of 16 train); episodes with fewer than
    8 cameras hold out half of them so that at least two cameras remain on each side.
    """
    names = list(camera_names)
    count = PAPER_HELD_OUT if len(names) >= 2 * PAPER_HELD_OUT else len(names) // 2
    held_idx = {int((i + 0.5) * len(names) / count) for i in range(count)} if count else set()
    held_out = [name for i, name in enumerate(names) if i in held_idx]
    train = [name for i, name in enumerate(names) if i not in held_idx]
    return train, held_out


def window_frames(start: int, num_future: int, stride: int) -> np.ndarray:
    """The condition frame `start` followed by `num_future` frames `stride` apart: (F+1,) int."""
    return start + stride * np.arange(num_future + 1)


@dataclass
class Episode:
    """One episode decoded at model resolution (C cameras, T frames)."""

    path: Path
    camera_names: list[str]
    rgb: np.ndarray  # (C, T, H, W, 3) uint8
    depth_steps: np.ndarray  # (C, T, H, W) uint16, depth in DEPTH_STEP_M units, 0 = invalid
    gripper: np.ndarray | None  # (C, T, H, W) bool
    K: np.ndarray  # (C, 3, 3) float64, scaled to the model resolution
    T_world_cam: np.ndarray  # (C, T, 4, 4) float64
    timestamps: np.ndarray  # (T,) float64

    @property
    def num_frames(self) -> int:
        """Recorded frames T."""
        return self.rgb.shape[1]

    def camera_index(self, name: str) -> int:
        """Position of camera `name` in the arrays."""
        return self.camera_names.index(name)


def _resized(frames: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """(T, H, W) or (T, H, W, C) numpy frames resized to `size` (H, W) with `normalize.resize`."""
    if frames.shape[1:3] == tuple(size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()
    x = x.unsqueeze(1) if x.ndim == 3 else x.movedim(-1, 1)
    x = resize(x, size, mode)
    return (x[:, 0] if frames.ndim == 3 else x.movedim(1, -1)).numpy()


def load_episode(path: str | Path, image_size: tuple[int, int], max_depth_m: float) -> Episode:
    """Decode every camera of the episode at `path` at `image_size` (H, W); depth beyond `max_depth_m`
    becomes invalid. Raises SceneFormatError for episodes with fewer than MIN_CAMERAS cameras."""
    from geo4d_studio.scene import open_scene

    path = Path(path)
    with open_scene(path) as scene:
        names = list(scene.camera_names)
        if len(names) < MIN_CAMERAS:
            raise SceneFormatError(
                path,
                "/cameras",
                f"has {len(names)} cameras; training and evaluation need at least {MIN_CAMERAS} "
                "(two to train on, two held out)",
            )
        frames = range(scene.num_frames)
        rgb, depth, grip, Ks, poses = [], [], [], [], []
        has_grip = all(scene.has_gripper_mask(c) for c in names)
        for name in names:
            cam = scene.cameras[name]
            rgb.append(_resized(np.stack([scene.rgb(name, t) for t in frames]), image_size, "bilinear"))
            d = _resized(np.stack([scene.depth(name, t) for t in frames]), image_size, "nearest")
            d[(d > max_depth_m) | (d < 0)] = 0.0
            depth.append(np.rint(d / DEPTH_STEP_M).astype(np.uint16))
            if has_grip:
                g = np.stack([scene.gripper_mask(name, t) for t in frames]).astype(np.float32)
                grip.append(_resized(g, image_size, "nearest") > 0.5)
            Ks.append(scale_intrinsics(cam.K, (cam.height, cam.width), image_size))
            poses.append(np.asarray(cam.T_world_cam, dtype=np.float64))
        return Episode(
            path=path,
            camera_names=names,
            rgb=np.clip(np.rint(np.stack(rgb)), 0, 255).astype(np.uint8),
            depth_steps=np.stack(depth),
            gripper=np.stack(grip) if has_grip else None,
            K=np.stack(Ks),
            T_world_cam=np.stack(poses),
            timestamps=np.asarray(scene.timestamps, dtype=np.float64),
        )


def pair_item(ep: Episode, n: int, m: int, frames: np.ndarray) -> dict[str, torch.Tensor]:
    """The compact item for cameras n, m (indices) at `frames` (see the module docstring)."""
    h, w = ep.rgb.shape[2:4]
    if ep.gripper is None:
        grip_n = grip_m = np.zeros((len(frames), h, w), np.uint8)
    else:
        grip_n, grip_m = ep.gripper[n, frames].view(np.uint8), ep.gripper[m, frames].view(np.uint8)
    T_n_m = compose(invert(ep.T_world_cam[n, frames]), ep.T_world_cam[m, frames])
    arrays = {
        "rgb_n": ep.rgb[n, frames],
        "rgb_m": ep.rgb[m, frames],
        "depth_n": ep.depth_steps[n, frames],
        "depth_m": ep.depth_steps[m, frames],
        "grip_n": grip_n,
        "grip_m": grip_m,
        "rays_n": pixel_rays(ep.K[n], h, w),
        "rays_m": pixel_rays(ep.K[m], h, w),
        "T_n_m": T_n_m.astype(np.float32),
    }
    return {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}


def model_batch(item: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Compact item(s) (optionally with a leading batch axis) → the model-space entries, same device."""

    def depth(key: str) -> torch.Tensor:
        return item[key].float() * DEPTH_STEP_M

    def channel(x: torch.Tensor) -> torch.Tensor:  # (..., H, W) → float (..., 1, H, W)
        return x.float().unsqueeze(-3)

    depth_n, depth_m = depth("depth_n"), depth("depth_m")
    valid_n, valid_m = depth_n > 0, depth_m > 0
    pm_n = depth_n.unsqueeze(-1) * item["rays_n"].unsqueeze(-4)
    pm_m = depth_m.unsqueeze(-1) * item["rays_m"].unsqueeze(-4)
    R, t = item["T_n_m"][..., None, None, :3, :3], item["T_n_m"][..., None, None, :3, 3]
    pm_m_in_n = (R * pm_m.unsqueeze(-2)).sum(-1) + t  # elementwise: tiny batched matmuls are slow
    return {
        "rgb_n": rgb_to_model(item["rgb_n"]),
        "rgb_m": rgb_to_model(item["rgb_m"]),
        "pm_n": pointmap_to_model(pm_n, cfg, valid_n),
        "pm_m_in_n": pointmap_to_model(pm_m_in_n, cfg, valid_m),
        "mask_n": channel(item["grip_n"]),
        "mask_m": channel(item["grip_m"]),
        "valid_n": channel(valid_n),
        "valid_m": channel(valid_m),
    }


class PairDataset(Dataset):
    """Random (episode, camera pair, start frame) samples; item `i` is a pure function of (seed, i).

    `split="train"` draws pairs of training cameras, `"held_out"` pairs of held-out cameras (see
    `split_cameras`). `length` is the number of distinct items the sampler may ask for; a training run
    reads items `step * batch_size + b`, so resuming at a step continues the same stream.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        cfg: ModelConfig,
        *,
        split: str = "train",
        seed: int = 0,
        length: int = 10**9,
        episodes: Sequence[Episode] | None = None,
    ) -> None:
        if split not in ("train", "held_out"):
            raise ValueError(f"split must be 'train' or 'held_out', not {split!r}")
        self.cfg, self.split, self.seed, self.length = cfg, split, seed, length
        self.episodes = list(episodes) if episodes is not None else load_episodes(paths, cfg)
        self.span = cfg.num_future_frames * cfg.frame_stride
        self.cameras = [self._split_indices(ep) for ep in self.episodes]

    def _split_indices(self, ep: Episode) -> list[int]:
        train, held_out = split_cameras(ep.camera_names)
        if ep.num_frames <= self.span:
            raise SceneFormatError(
                ep.path,
                "/timestamps",
                f"has {ep.num_frames} frames; a clip of {self.cfg.num_future_frames} future frames at "
                f"stride {self.cfg.frame_stride} needs at least {self.span + 1}",
            )
        return [ep.camera_index(c) for c in (train if self.split == "train" else held_out)]

    def __len__(self) -> int:
        return self.length

    def pick(self, index: int) -> tuple[int, int, int, int]:
        """(episode, camera n, camera m, start frame) of item `index`."""
        rng = np.random.default_rng((self.seed, index))
        e = int(rng.integers(len(self.episodes)))
        n, m = rng.choice(self.cameras[e], size=2, replace=False)
        start = int(rng.integers(self.episodes[e].num_frames - self.span))
        return e, int(n), int(m), start

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """The compact item `index` (turn it into model space with `model_batch`), with its origin:
        "source" (episode, camera n, camera m) and "frames" (F+1,) indices, which `model_batch` drops."""
        e, n, m, start = self.pick(index)
        frames = window_frames(start, self.cfg.num_future_frames, self.cfg.frame_stride)
        origin = {"source": torch.tensor([e, n, m]), "frames": torch.from_numpy(frames)}
        return pair_item(self.episodes[e], n, m, frames) | origin

    def batch(self, first_index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Items `first_index .. first_index + batch_size - 1` in model space, on a new batch axis."""
        items = [self[first_index + b] for b in range(batch_size)]
        return model_batch({k: torch.stack([it[k] for it in items]) for k in items[0]}, self.cfg)


def episode_paths(data: str | Path) -> list[Path]:
    """The episode files under a directory (sorted, results files skipped) or the single file `data`."""
    data = Path(data)
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise SceneFormatError(data, "path", "does not exist")
    paths = sorted(p for p in data.glob("*.h5") if not p.name.endswith(".results.h5"))
    if not paths:
        raise SceneFormatError(data, "*.h5", "the directory holds no episode files")
    return paths


def load_episodes(paths: Sequence[str | Path], cfg: ModelConfig) -> list[Episode]:
    """Decode all episodes at the config's image size."""
    return [load_episode(p, tuple(cfg.image_size), cfg.max_depth_m) for p in paths]
