"""The U-Net phase's latent cache: the same latents as encoding afresh, each camera frame encoded once."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import default_collate

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.dataset import PairDataset, load_episodes, model_batch
from geo4d_studio.diffusion.edm import encode_views
from geo4d_studio.diffusion.latent_cache import LatentCache
from geo4d_studio.diffusion.vae import build_vae


def frames_encoded(vae: torch.nn.Module) -> list[int]:
    """A list that grows by the number of frames each call of `vae`'s encoder takes."""
    counts: list[int] = []
    vae.encoder.register_forward_hook(lambda _module, args, _out: counts.append(len(args[0])))
    return counts


def test_cached_latents_equal_fresh_ones_and_each_camera_frame_is_encoded_once(sample_path: Path) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig.tiny()
    data = PairDataset([], cfg, seed=0, episodes=load_episodes([sample_path], cfg))
    rgb_vae, pm_vae = build_vae(cfg).eval(), build_vae(cfg).eval()
    cache = LatentCache(rgb_vae, pm_vae)
    rgb_counts, pm_counts = frames_encoded(rgb_vae), frames_encoded(pm_vae)
    compact = default_collate([data[i] for i in range(6)])
    batch = model_batch(compact, cfg)
    clip_frames = compact["frames"].numel()

    for _ in range(2):
        lat_n, lat_m = cache.encode_views(batch, compact["source"], compact["frames"])
        fresh_n, fresh_m = encode_views(rgb_vae, pm_vae, batch)
        torch.testing.assert_close(lat_n, fresh_n, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(lat_m, fresh_m, rtol=1e-4, atol=1e-5)
        del rgb_counts[-2:], pm_counts[-2:]  # the fresh encoding's calls

    source, frames = compact["source"].tolist(), compact["frames"].tolist()
    views_of = {
        (e, cam, f) for (e, *cams), row in zip(source, frames, strict=True) for cam in cams for f in row
    }
    n_views_of = {(e, n, f) for (e, n, _), row in zip(source, frames, strict=True) for f in row}
    assert sum(rgb_counts) == len(views_of) < 2 * clip_frames  # the clips share camera frames
    assert pm_counts == [len(n_views_of), clip_frames, clip_frames]  # view m in n's frame: every time
    assert len(cache.latents) == len(views_of) + len(n_views_of)


def test_a_cache_without_room_encodes_every_frame_and_keeps_none(sample_path: Path) -> None:
    cfg = ModelConfig.tiny()
    data = PairDataset([], cfg, seed=1, episodes=load_episodes([sample_path], cfg))
    rgb_vae, pm_vae = build_vae(cfg).eval(), build_vae(cfg).eval()
    cache = LatentCache(rgb_vae, pm_vae, max_bytes=0)
    rgb_counts = frames_encoded(rgb_vae)
    compact = default_collate([data[i] for i in range(3)])
    batch = model_batch(compact, cfg)
    for _ in range(2):
        lat_n, _ = cache.encode_views(batch, compact["source"], compact["frames"])
    torch.testing.assert_close(lat_n, encode_views(rgb_vae, pm_vae, batch)[0], rtol=1e-4, atol=1e-5)
    assert rgb_counts[:4] == [compact["frames"].numel()] * 4  # both views, both calls
    assert cache.latents == {} and cache.cached_bytes == 0
