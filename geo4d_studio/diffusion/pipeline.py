"""`Geo4DPipeline`: from one recorded RGB-D frame of two views to a `Generation` of future frames.

Steps: read the condition frame of views n (reference) and m from the scene, resize to the model's
image size (intrinsics scaled alike), back-project depth (beyond max_depth_m = invalid), move view m's
points into n's camera frame with the recorded extrinsics, encode, sample, decode, resize back to each
camera's image size, and move view m's predicted points back into m's own frame (extrinsics of the
start frame). Device: CUDA when available (bfloat16, or float16 without bf16 support), else CPU float32.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from geo4d_studio.diffusion.checkpoint import init_from_svd, load_components, save_components
from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.cuda_graph import GraphCache
from geo4d_studio.diffusion.normalize import (
    as_tensor,
    model_to_pointmap,
    model_to_rgb,
    pointmap_to_model,
    resize,
    resize_pointmap_model,
    rgb_to_model,
    scale_intrinsics,
)
from geo4d_studio.diffusion.sampler import sample_euler
from geo4d_studio.diffusion.unet import MultiViewUNet
from geo4d_studio.diffusion.vae import build_vae, decode, encode, init_pointmap_vae_from
from geo4d_studio.errors import Geo4DError
from geo4d_studio.generation import Generation
from geo4d_studio.geometry.camera import depth_to_pointmap, pointmap_to_depth
from geo4d_studio.geometry.crossview import pointmap_to_frame

PreviewCallback = Callable[[int, int, Callable[[], np.ndarray]], bool | None]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device for "auto"/None (CUDA if available, else CPU) or a named one (cuda must exist)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Geo4DError("--device cuda: no CUDA device is available (use --device cpu)")
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 (or float16) on CUDA, float32 on the CPU."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def future_frame_indices(scene, start_frame: int, num_frames: int, stride: int) -> np.ndarray:
    """Recorded frames start + stride·(1..F) that exist; raises Geo4DError naming the frame if none."""
    total = scene.num_frames
    if not 0 <= start_frame < total:
        raise Geo4DError(
            f"{scene.path}: --frame {start_frame}: outside the recording (frames 0..{total - 1})"
        )
    indices = start_frame + stride * np.arange(1, num_frames + 1)
    indices = indices[indices < total]
    if indices.size == 0:
        raise Geo4DError(
            f"{scene.path}: --frame {start_frame}: the recording ends at frame {total - 1}, too short to "
            f"predict frame {start_frame + stride} (stride {stride}); choose an earlier frame"
        )
    return indices


def _view_at_model_size(scene, cam_name: str, t: int, cfg: ModelConfig) -> tuple[torch.Tensor, np.ndarray]:
    """Model-space RGB (3, H, W) and the camera-frame pointmap (H, W, 3) m at the model's image size.

    Depth is resized nearest (no mixed depths), beyond max_depth_m set invalid, and back-projected with
    the intrinsics scaled to the model's size.
    """
    cam = scene.cameras[cam_name]
    size = cfg.image_size
    rgb = resize(rgb_to_model(scene.rgb(cam_name, t)), size, "bilinear")
    depth = resize(as_tensor(scene.depth(cam_name, t))[None], size, "nearest")[0].numpy()
    depth = np.where(depth <= cfg.max_depth_m, depth, np.float32(0.0))
    return rgb, depth_to_pointmap(depth, scale_intrinsics(cam.K, (cam.height, cam.width), size))


def _mask_at_model_size(scene, cam_name: str, t: int, cfg: ModelConfig) -> torch.Tensor:
    """Gripper mask (1, H, W) float at the model's size (zeros when the recording has none)."""
    mask = scene.gripper_mask(cam_name, t) if scene.has_gripper_mask(cam_name) else None
    if mask is None:
        return torch.zeros(1, *cfg.image_size)
    mask = resize(torch.from_numpy(np.asarray(mask, dtype=np.float32))[None], cfg.image_size, "bilinear")
    return (mask > 0).float()  # any coverage counts: thin gripper parts survive shrinking


def model_inputs(
    scene, ref: str, other: str, frames, cfg: ModelConfig, *, with_masks: bool = True
) -> dict[str, torch.Tensor]:
    """The model-space tensors of recorded `frames` of views n = `ref` and m = `other` at the model size.

    Returns "rgb_n", "rgb_m", "pm_n" (n's points in n's frame), "pm_m_in_n" (m's points moved into n's
    camera frame with the recorded poses of each frame, `geometry.crossview.pointmap_to_frame`), each
    (T, 3, H, W), and with `with_masks` "mask_n", "mask_m" (T, 1, H, W) — the layout `edm_loss` takes
    per sample (frame 0 = condition frame).
    """
    out: dict[str, list] = {k: [] for k in ("rgb_n", "rgb_m", "pm_n", "pm_m_in_n")}
    cam_n, cam_m = scene.cameras[ref], scene.cameras[other]
    for t in frames:
        rgb_n, pm_n = _view_at_model_size(scene, ref, t, cfg)
        rgb_m, pm_m = _view_at_model_size(scene, other, t, cfg)
        pm_m_in_n = pointmap_to_frame(pm_m, cam_m.pose(t), cam_n.pose(t))
        out["rgb_n"].append(rgb_n)
        out["rgb_m"].append(rgb_m)
        out["pm_n"].append(pointmap_to_model(pm_n, cfg))
        out["pm_m_in_n"].append(pointmap_to_model(pm_m_in_n, cfg, valid=pm_m[..., 2] > 0))
    if with_masks:
        out["mask_n"] = [_mask_at_model_size(scene, ref, t, cfg) for t in frames]
        out["mask_m"] = [_mask_at_model_size(scene, other, t, cfg) for t in frames]
    return {k: torch.stack(v) for k, v in out.items()}


class Geo4DPipeline:
    """RGB VAE + pointmap VAE + two-view U-Net + config; `__call__` produces a Generation.

    On CUDA the sampler replays CUDA graphs of the denoiser (captured at the first generation of each
    shape, kept until the pipeline moves); set `use_cuda_graphs = False` to run it eagerly.
    """

    use_cuda_graphs = True

    def __init__(
        self,
        rgb_vae: torch.nn.Module,
        pointmap_vae: torch.nn.Module,
        unet: MultiViewUNet,
        config: ModelConfig,
        model_dir: str | Path | None = None,
    ) -> None:
        self.rgb_vae, self.pointmap_vae, self.unet, self.config = rgb_vae, pointmap_vae, unet, config
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.graphs = GraphCache()

    # construction and I/O -------------------------------------------------------------------------
    @classmethod
    def from_model_config(cls, config: ModelConfig) -> Geo4DPipeline:
        """Randomly initialised components (the pointmap VAE a copy of the RGB VAE)."""
        rgb_vae = build_vae(config)
        return cls(rgb_vae, init_pointmap_vae_from(rgb_vae), MultiViewUNet.from_model_config(config), config)

    @classmethod
    def from_svd(cls, svd_dir: str | Path, config: ModelConfig):
        """(pipeline, SvdInitReport) initialised from a local Stable Video Diffusion folder."""
        components, report = init_from_svd(svd_dir, config)
        return cls(components["rgb_vae"], components["pointmap_vae"], components["unet"], config), report

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Geo4DPipeline:
        """Load a local folder (never downloads); raises CheckpointError naming the bad file/field."""
        components, config = load_components(directory)
        pipe = cls(components["rgb_vae"], components["pointmap_vae"], components["unet"], config, directory)
        return pipe.to(device, dtype)

    def save_pretrained(self, directory: str | Path, *, fp16: bool = False) -> Path:
        """Write the diffusers layout (see checkpoint.py); `fp16=True` halves the size for shipping."""
        return save_components(directory, self.components, self.config, dtype=torch.float16 if fp16 else None)

    @property
    def components(self) -> dict[str, torch.nn.Module]:
        """The three modules by their folder names."""
        return {"rgb_vae": self.rgb_vae, "pointmap_vae": self.pointmap_vae, "unet": self.unet}

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Geo4DPipeline:
        """Move every component (device None/"auto": CUDA if available; dtype None: the device's default)."""
        device = resolve_device(device)
        dtype = dtype or default_dtype(device)
        self.graphs.clear()  # they point at the parameters' old memory
        for module in self.components.values():
            torch.nn.Module.to(module, device=device, dtype=dtype).eval()  # diffusers' .to() warns on dtype
        return self

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    # model-space helpers --------------------------------------------------------------------------
    def encode_condition(self, rgb: torch.Tensor, pointmap: torch.Tensor) -> torch.Tensor:
        """Model-space RGB and pointmap (B, 3, H, W) → condition latents (B, 8, H/8, W/8)."""
        with torch.no_grad():
            rgb = rgb.to(self.device, self.dtype)
            pointmap = pointmap.to(self.device, self.dtype)
            return torch.cat([encode(self.rgb_vae, rgb), encode(self.pointmap_vae, pointmap)], dim=1)

    def decode_latents(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (..., 8, h, w) → model-space RGB and pointmap (..., 3, H, W), float32."""
        c = self.config.latent_channels
        with torch.no_grad():
            rgb = decode(self.rgb_vae, latents[..., :c, :, :]).float()
            pointmap = decode(self.pointmap_vae, latents[..., c:, :, :]).float()
        return rgb, pointmap

    def _condition_latents(self, scene, ref: str, other: str, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition latents (1, 8, h, w) of views n and m at recorded frame t."""
        views = model_inputs(scene, ref, other, [t], self.config, with_masks=False)
        cond_n = self.encode_condition(views["rgb_n"], views["pm_n"])
        cond_m = self.encode_condition(views["rgb_m"], views["pm_m_in_n"])
        return cond_n, cond_m

    def _preview_callback(self, callback: PreviewCallback | None):
        if callback is None:
            return None

        def on_step(step: int, num_steps: int, x0: tuple[torch.Tensor, torch.Tensor]) -> bool | None:
            def preview() -> np.ndarray:
                with torch.no_grad():
                    return model_to_rgb(decode(self.rgb_vae, x0[0][0, :, : self.config.latent_channels]))

            return callback(step, num_steps, preview)

        return on_step

    # generation -----------------------------------------------------------------------------------
    def __call__(
        self,
        scene,
        ref_camera: str,
        other_camera: str,
        start_frame: int,
        num_frames: int | None = None,
        steps: int = 25,
        guidance: float = 2.5,
        seed: int = 0,
        device: str | torch.device | None = None,
        callback_on_step_end: PreviewCallback | None = None,
    ) -> Generation:
        """Predict the future of views n (`ref_camera`) and m (`other_camera`) after `start_frame`.

        `callback_on_step_end(step, num_steps, preview)` runs after every sampler step; `preview()`
        decodes (only when called) view n's current RGB estimate, (F, h, w, 3) uint8 at the model's
        size. Returning False raises GenerationCancelled.
        """
        started = time.perf_counter()
        if steps < 1:
            raise Geo4DError(f"--steps {steps}: must be at least 1")
        frames, frame_indices = self._future_frames(scene, ref_camera, other_camera, start_frame, num_frames)
        if device is not None:
            self.to(device)

        cond_n, cond_m = self._condition_latents(scene, ref_camera, other_camera, start_frame)
        x_n, x_m = sample_euler(
            self.unet,
            cond_n,
            cond_m,
            self.config,
            num_frames=frames,
            steps=steps,
            guidance=guidance,
            generator=torch.Generator().manual_seed(int(seed)),
            callback=self._preview_callback(callback_on_step_end),
            graphs=self.graphs if self.use_cuda_graphs else None,
        )
        keep = len(frame_indices)
        outputs = self._to_scene_space(
            scene, ref_camera, other_camera, start_frame, x_n[0, :keep], x_m[0, :keep]
        )
        params = {
            "steps": int(steps),
            "guidance": float(guidance),
            "seed": int(seed),
            "num_frames_generated": frames,
        }
        return self._generation(
            scene, ref_camera, other_camera, start_frame, frame_indices, outputs, params, started
        )

    def reconstruct(
        self, scene, ref_camera: str, other_camera: str, start_frame: int, num_frames: int | None = None
    ) -> Generation:
        """The recorded future of views n and m passed through the autoencoders only (encoded, then
        decoded): the closest any denoiser of this model can come to the recording. Its gap to the
        recording is the autoencoders' share of a generation's error."""
        started = time.perf_counter()
        frames, frame_indices = self._future_frames(scene, ref_camera, other_camera, start_frame, num_frames)
        views = model_inputs(scene, ref_camera, other_camera, frame_indices, self.config, with_masks=False)
        lat_n = self.encode_condition(views["rgb_n"], views["pm_n"])
        lat_m = self.encode_condition(views["rgb_m"], views["pm_m_in_n"])
        outputs = self._to_scene_space(scene, ref_camera, other_camera, start_frame, lat_n, lat_m)
        params = {"autoencoders_only": True, "num_frames_generated": frames}
        return self._generation(
            scene, ref_camera, other_camera, start_frame, frame_indices, outputs, params, started
        )

    def _future_frames(
        self, scene, ref_camera: str, other_camera: str, start_frame: int, num_frames: int | None
    ) -> tuple[int, np.ndarray]:
        """(frames to generate, recorded frame indices they stand for) of a request; Geo4DError naming
        the file for an unknown or repeated camera or a bad frame count."""
        for flag, cam in (("--ref", ref_camera), ("--other", other_camera)):
            if cam not in scene.cameras:
                raise Geo4DError(
                    f"{scene.path}: {flag} {cam!r}: no such camera (cameras: {', '.join(scene.camera_names)})"
                )
        if ref_camera == other_camera:
            raise Geo4DError(f"{scene.path}: --other {other_camera!r}: must differ from --ref")
        frames = self.config.num_future_frames if num_frames is None else int(num_frames)
        if frames < 1:
            raise Geo4DError(f"--frames {frames}: must be at least 1")
        return frames, future_frame_indices(scene, start_frame, frames, self.config.frame_stride)

    def _generation(
        self,
        scene,
        ref_camera: str,
        other_camera: str,
        start_frame: int,
        frame_indices: np.ndarray,
        outputs: dict[str, np.ndarray],
        params: dict,
        started: float,
    ) -> Generation:
        """A Generation of `outputs`, with `params` and the model, device and timing recorded."""
        return Generation(
            id="",
            ref_camera=ref_camera,
            other_camera=other_camera,
            start_frame=int(start_frame),
            frame_indices=frame_indices,
            timestamps=np.asarray(scene.timestamps)[frame_indices],
            **outputs,
            params={
                **params,
                "frame_stride": self.config.frame_stride,
                "model": str(self.model_dir) if self.model_dir is not None else "(in memory)",
                "device": str(self.device),
                "dtype": str(self.dtype).removeprefix("torch."),
                "elapsed_s": round(time.perf_counter() - started, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )

    def _to_scene_space(
        self, scene, ref: str, other: str, t: int, lat_n: torch.Tensor, lat_m: torch.Tensor
    ) -> dict[str, np.ndarray]:
        """Decode (F, 8, h, w) latents of both views and express them at each camera's size, in metres."""
        cfg = self.config
        cam_n, cam_m = scene.cameras[ref], scene.cameras[other]
        size_n, size_m = (cam_n.height, cam_n.width), (cam_m.height, cam_m.width)
        rgb_n, pm_n = self.decode_latents(lat_n)
        rgb_m, pm_m_in_n = self.decode_latents(lat_m)
        pointmap_ref = model_to_pointmap(resize_pointmap_model(pm_n, size_n, cfg), cfg)
        pm_m_in_n = resize_pointmap_model(pm_m_in_n, size_m, cfg, own_frame=False)
        pointmap_other_in_ref = model_to_pointmap(pm_m_in_n, cfg, own_frame=False)
        T_n, T_m = cam_n.pose(t), cam_m.pose(t)
        pointmap_other = pointmap_to_frame(pointmap_other_in_ref, T_n, T_m)
        in_range = (pointmap_other[..., 2] > 0) & (pointmap_other[..., 2] <= cfg.max_depth_m)
        pointmap_other = np.where(in_range[..., None], pointmap_other, np.float32(0.0))
        depth_other = pointmap_to_depth(pointmap_other)
        return {
            "rgb_ref": model_to_rgb(resize(rgb_n, size_n, "bilinear")),
            "rgb_other": model_to_rgb(resize(rgb_m, size_m, "bilinear")),
            "depth_ref": pointmap_to_depth(pointmap_ref),
            "pointmap_ref": pointmap_ref,
            "pointmap_other_in_ref": pointmap_other_in_ref,
            "pointmap_other": pointmap_other.astype(np.float32),
            "depth_other": depth_other,
            "K_ref": np.asarray(cam_n.K, dtype=np.float64),
            "K_other": np.asarray(cam_m.K, dtype=np.float64),
            "T_world_ref": np.asarray(T_n, dtype=np.float64),
            "T_world_other": np.asarray(T_m, dtype=np.float64),
        }
