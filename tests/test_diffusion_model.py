"""The 4D model's parts: config, normalisation, VAEs, two-view U-Net, EDM preconditioning and loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.edm import edm_denoise, edm_loss, edm_scalings, latent_gripper_weight
from geo4d_studio.diffusion.normalize import (
    model_to_pointmap,
    model_to_rgb,
    pointmap_invalid_value,
    pointmap_to_model,
    resize_pointmap_model,
    rgb_to_model,
    scale_intrinsics,
)
from geo4d_studio.diffusion.unet import MultiViewUNet
from geo4d_studio.diffusion.vae import build_vae, decode, encode, init_pointmap_vae_from

CFG = ModelConfig.tiny()


def _unet(cfg: ModelConfig = CFG, seed: int = 0) -> MultiViewUNet:
    torch.manual_seed(seed)
    return MultiViewUNet.from_model_config(cfg).eval()


def _latents(batch: int = 1, seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    h, w = CFG.latent_size
    shape = (batch, CFG.num_future_frames, CFG.view_channels, h, w)
    return (
        torch.randn(shape, generator=g),
        torch.randn(shape, generator=g),
        torch.randn(batch, CFG.view_channels, h, w, generator=g),
        torch.randn(batch, CFG.view_channels, h, w, generator=g),
    )


def test_config_json_round_trip_and_validation(tmp_path):
    for cfg in (ModelConfig.tiny(), ModelConfig.small(), ModelConfig.paper()):
        path = tmp_path / "cfg.json"
        cfg.save(path)
        assert ModelConfig.load(path) == cfg
        assert json.loads(path.read_text())["image_size"] == list(cfg.image_size)
    assert ModelConfig.paper().latent_size == (32, 40)
    assert ModelConfig.small().latent_size == (8, 10)
    with pytest.raises(ValueError, match="multiples of 8"):
        ModelConfig(image_size=(60, 80))
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({"bogus": 1})


def test_rgb_round_trip_is_exact():
    rgb = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    x = rgb_to_model(rgb)
    assert x.shape == (2, 3, 5, 7)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    np.testing.assert_array_equal(model_to_rgb(x), rgb)


def test_pointmap_affine_map_and_invalid_pixels():
    pm = np.array([[[-1.0, 2.0, 0.5], [0.3, -0.2, 1.9], [0.0, 0.0, 0.0], [0.1, 0.1, 2.5]]], np.float32)
    x = pointmap_to_model(pm, CFG)
    assert x.shape == (3, 1, 4)
    np.testing.assert_allclose(x[:, 0, 0].numpy(), [-1.0, 1.0, 0.0], atol=1e-6)  # [-1, 2] m → [-1, 1]
    invalid = pointmap_invalid_value(CFG)
    assert invalid == pytest.approx(-1.0 / 3.0)
    np.testing.assert_allclose(x[:, 0, 2].numpy(), invalid, atol=1e-6)  # zero point
    np.testing.assert_allclose(x[:, 0, 3].numpy(), invalid, atol=1e-6)  # beyond max depth
    back = model_to_pointmap(x, CFG)
    np.testing.assert_allclose(back[0, :2], pm[0, :2], atol=1e-6)
    assert not back[0, 2:].any()
    explicit = pointmap_to_model(pm, CFG, valid=np.array([[False, True, True, True]]))
    np.testing.assert_allclose(explicit[:, 0, 0].numpy(), invalid, atol=1e-6)
    beyond_max_depth = (np.array([0.1, 0.1, 2.5]) + 1.0) * 2.0 / 3.0 - 1.0  # kept: validity was given
    np.testing.assert_allclose(explicit[:, 0, 3].numpy(), beyond_max_depth, atol=1e-6)


def test_resized_pointmap_keeps_validity_nearest():
    pm = np.zeros((4, 4, 3), np.float32)
    pm[:, :2] = [0.1, 0.2, 1.0]
    up = model_to_pointmap(resize_pointmap_model(pointmap_to_model(pm, CFG), (8, 8), CFG), CFG)
    valid = up[..., 2] > 0
    np.testing.assert_array_equal(valid, np.repeat(np.repeat(pm[..., 2] > 0, 2, 0), 2, 1))
    np.testing.assert_allclose(up[valid], np.broadcast_to([0.1, 0.2, 1.0], up[valid].shape), atol=1e-5)


def test_scale_intrinsics_maps_pixel_centres():
    K = np.array([[50.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    point = np.array([0.2, -0.1, 1.3])
    uv = (K @ point)[:2] / point[2]
    K2 = scale_intrinsics(K, (48, 64), (24, 32))
    uv2 = (K2 @ point)[:2] / point[2]
    np.testing.assert_allclose(uv2, (uv + 0.5) / 2 - 0.5, atol=1e-12)


def test_vae_shapes_and_pointmap_vae_copy():
    torch.manual_seed(0)
    vae = build_vae(CFG).eval()
    x = torch.rand(2, 3, 3, *CFG.image_size) * 2 - 1
    with torch.no_grad():
        z = encode(vae, x)
        assert z.shape == (2, 3, CFG.latent_channels, *CFG.latent_size)
        assert decode(vae, z).shape == x.shape
    pm_vae = init_pointmap_vae_from(vae)
    for (name, a), b in zip(vae.state_dict().items(), pm_vae.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with torch.no_grad():
        pm_vae.encoder.conv_in.weight.add_(1.0)
    assert not torch.equal(vae.encoder.conv_in.weight, pm_vae.encoder.conv_in.weight)


def test_unet_output_shapes_and_repeated_condition():
    unet = _unet()
    x_n, x_m, c_n, c_m = _latents(batch=2)
    with torch.no_grad():
        out_n, out_m = unet(x_n, x_m, c_n, c_m, torch.tensor([0.1, -0.3]))
        rep = unet(x_n, x_m, *(c.unsqueeze(1).expand(-1, x_n.shape[1], -1, -1, -1) for c in (c_n, c_m)), -0.3)
    assert out_n.shape == out_m.shape == x_n.shape
    assert unet.config.in_channels == 16 and unet.config.out_channels == 8
    assert torch.allclose(rep[1][1], out_m[1], atol=1e-5)  # same sample 1, c_noise -0.3 either way


def test_cross_view_attention_is_one_directional():
    unet = _unet()
    x_n, x_m, c_n, c_m = _latents()
    bump = torch.randn_like(x_n)
    with torch.no_grad():
        base_n, base_m = unet(x_n, x_m, c_n, c_m, 0.2)
        pert_n, pert_m = unet(x_n + bump, x_m, c_n, c_m, 0.2)  # change view n
        only_m_n, only_m_m = unet(x_n, x_m + bump, c_n, c_m + 1.0, 0.2)  # change view m
    assert (pert_m - base_m).abs().max() > 1e-3  # m listens to n
    assert torch.equal(only_m_n, base_n)  # n never listens to m, exactly
    assert (only_m_m - base_m).abs().max() > 1e-3


def test_without_cross_view_attention_views_are_independent():
    cfg = ModelConfig.from_dict({**CFG.to_dict(), "cross_view_attention": False})
    unet = _unet(cfg)
    assert unet.cross_view is None
    x_n, x_m, c_n, c_m = _latents()
    with torch.no_grad():
        _, base_m = unet(x_n, x_m, c_n, c_m, 0.2)
        _, pert_m = unet(x_n + 1.0, x_m, c_n - 1.0, c_m, 0.2)
    assert torch.equal(pert_m, base_m)
    n_params = sum(p.numel() for p in unet.parameters())
    assert n_params < sum(p.numel() for p in _unet().parameters())


def test_edm_preconditioning_identities():
    sigma = torch.tensor([0.002, 0.5, 1.0, 7.0, 80.0], dtype=torch.float64)
    sd = 0.7
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sd)
    torch.testing.assert_close(c_in**2 * (sigma**2 + sd**2), torch.ones_like(sigma))
    torch.testing.assert_close(c_skip, sd**2 / (sigma**2 + sd**2))
    torch.testing.assert_close(c_out**2, (sigma * sd) ** 2 / (sigma**2 + sd**2))
    torch.testing.assert_close(c_noise, sigma.log() / 4)
    # at tiny sigma the denoiser returns its input (c_skip → 1, c_out → 0)
    unet = _unet()
    x_n, x_m, c_n, c_m = _latents()
    with torch.no_grad():
        d_n, _ = edm_denoise(unet, x_n, x_m, c_n, c_m, torch.tensor([1e-6]), 1.0)
    torch.testing.assert_close(d_n, x_n, atol=1e-4, rtol=0)


def test_latent_gripper_weight_is_downsampled_and_dilated():
    mask = torch.zeros(1, 1, 1, 32, 32)
    mask[..., 13, 10] = 1.0  # latent pixel (1, 1)
    w = latent_gripper_weight(mask, (4, 4), 1.0)[0, 0, 0]
    expected = torch.ones(4, 4)
    expected[0:3, 0:3] = 2.0
    torch.testing.assert_close(w, expected)


def _batch(seed: int = 0, batch: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, CFG.num_future_frames + 1, 3, *CFG.image_size)
    data = {k: torch.rand(shape, generator=g) * 2 - 1 for k in ("rgb_n", "rgb_m", "pm_n", "pm_m_in_n")}
    for key in ("mask_n", "mask_m"):
        mask = torch.zeros(batch, CFG.num_future_frames + 1, 1, *CFG.image_size)
        mask[..., 8:16, 8:16] = 1.0
        data[key] = mask
    return data


def _vaes(seed: int = 0):
    torch.manual_seed(seed)
    rgb = build_vae(CFG).eval().requires_grad_(False)
    return rgb, init_pointmap_vae_from(rgb)


def test_edm_loss_decreases_with_a_few_steps():
    unet = _unet().train()
    rgb_vae, pm_vae = _vaes()
    batch = _batch()
    optimiser = torch.optim.Adam(unet.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss, logs = edm_loss(unet, rgb_vae, pm_vae, batch, CFG, generator=torch.Generator().manual_seed(3))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(logs["loss"])
        assert logs["loss"] == pytest.approx(
            logs["loss_diff_n"] + logs["loss_diff_m"] + logs["loss_3d"], rel=1e-5
        )
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(p.grad is None for p in rgb_vae.parameters())


def test_without_3d_loss_view_m_pointmap_channels_get_no_gradient():
    cfg = ModelConfig.from_dict({**CFG.to_dict(), "use_3d_loss": False})
    unet = _unet(cfg).train()
    rgb_vae, pm_vae = _vaes()
    loss, logs = edm_loss(unet, rgb_vae, pm_vae, _batch(), cfg, generator=torch.Generator().manual_seed(0))
    assert float(loss.detach()) == pytest.approx(logs["loss_diff_n"] + logs["loss_diff_m"], rel=1e-6)
    loss.backward()
    head = unet.decoder_m.conv_out.weight.grad
    assert head[CFG.latent_channels :].abs().max() == 0.0
    assert head[: CFG.latent_channels].abs().max() > 0.0


def test_condition_dropout_removes_the_condition():
    rgb_vae, pm_vae = _vaes()
    unet = _unet()
    batch = _batch()
    other = {**batch, "rgb_n": batch["rgb_n"].clone()}
    other["rgb_n"][:, 0] = -batch["rgb_n"][:, 0]  # a different condition frame only
    for dropout, same in ((1.0, True), (0.0, False)):
        cfg = ModelConfig.from_dict({**CFG.to_dict(), "cond_dropout": dropout})
        with torch.no_grad():
            a, _ = edm_loss(unet, rgb_vae, pm_vae, batch, cfg, generator=torch.Generator().manual_seed(5))
            b, _ = edm_loss(unet, rgb_vae, pm_vae, other, cfg, generator=torch.Generator().manual_seed(5))
        assert (float(a) == float(b)) is same


def test_gradient_checkpointing_gives_the_same_gradients():
    rgb_vae, pm_vae = _vaes()
    grads = []
    for checkpointing in (False, True):
        unet = _unet().train()
        if checkpointing:
            unet.enable_gradient_checkpointing()
        loss, _ = edm_loss(unet, rgb_vae, pm_vae, _batch(), CFG, generator=torch.Generator().manual_seed(1))
        loss.backward()
        grads.append(unet.decoder_n.conv_out.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_paper_config_builds_the_papers_model_size():
    """SVD-sized U-Net with a duplicated decoder: the paper reports 2.4 B trainable parameters."""
    with torch.device("meta"):
        unet = MultiViewUNet.from_model_config(ModelConfig.paper())
    n_params = sum(p.numel() for p in unet.parameters())
    assert 2.3e9 < n_params < 2.5e9
    assert len(unet.decoder_n.up_blocks) == len(unet.cross_view) == 4
