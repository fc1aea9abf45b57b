"""Frozen-VAE latents of training frames, each encoded once per (episode, camera, frame).

In the U-Net phase the VAEs are frozen, yet encoding a batch's 4 × (F+1) frames per clip costs more than
the U-Net's own step on a CPU. A camera's RGB frame and its pointmap in its own frame are the same
whichever pair the camera is drawn in, so their latents are kept after the first encoding; view m's
pointmap in n's frame depends on the pair and is encoded every time.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

from geo4d_studio.diffusion.vae import encode

MAX_CACHED_BYTES = 2 * 1024**3


class LatentCache:
    """`encode_views` for batches of `PairDataset` items, keeping per-camera latents until it holds
    `max_bytes` (later frames are encoded each time; 0 keeps none). Valid only while the VAEs do not
    change."""

    def __init__(
        self, rgb_vae: torch.nn.Module, pm_vae: torch.nn.Module, max_bytes: int = MAX_CACHED_BYTES
    ) -> None:
        self.rgb_vae, self.pm_vae, self.max_bytes = rgb_vae, pm_vae, max_bytes
        self.latents: dict[Hashable, torch.Tensor] = {}
        self.cached_bytes = 0

    def _encode(self, vae: torch.nn.Module, frames: torch.Tensor, keys: Sequence[Hashable]) -> torch.Tensor:
        """Latents (N, C, h, w) of `frames` (N, 3, H, W), encoding only those whose key is not kept."""
        todo: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            if key not in self.latents:
                todo.setdefault(key, i)
        fresh = dict(zip(todo, encode(vae, frames[list(todo.values())]), strict=True)) if todo else {}
        for key, z in fresh.items():
            if self.cached_bytes + z.nbytes <= self.max_bytes:
                self.latents[key] = z
                self.cached_bytes += z.nbytes
        return torch.stack([self.latents.get(key, fresh.get(key)) for key in keys])

    @torch.no_grad()
    def encode_views(
        self, batch: dict[str, torch.Tensor], source: torch.Tensor, frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`edm.encode_views` of a model batch whose items came from `source` (B, 3: episode, camera n,
        camera m) at `frames` (B, F+1)."""
        episodes, cams_n, cams_m = source.T.tolist()
        rows = frames.tolist()

        def cached(kind: str, vae: torch.nn.Module, entry: str, cams: list[int]) -> torch.Tensor:
            keys = [(kind, e, c, f) for e, c, row in zip(episodes, cams, rows, strict=True) for f in row]
            z = self._encode(vae, batch[entry].flatten(0, 1), keys)
            return z.reshape(*frames.shape, *z.shape[1:])

        lat_n = [cached("rgb", self.rgb_vae, "rgb_n", cams_n), cached("pm", self.pm_vae, "pm_n", cams_n)]
        lat_m = [cached("rgb", self.rgb_vae, "rgb_m", cams_m), encode(self.pm_vae, batch["pm_m_in_n"])]
        return torch.cat(lat_n, dim=2), torch.cat(lat_m, dim=2)
