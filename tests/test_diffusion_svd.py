"""Initialisation from a local Stable Video Diffusion folder (a tiny one written by diffusers itself)."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

from geo4d_studio.diffusion.checkpoint import init_from_svd
from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.pipeline import Geo4DPipeline
from geo4d_studio.errors import CheckpointError

CFG = ModelConfig.from_dict(
    {
        **ModelConfig.tiny().to_dict(),
        "vae_block_out_channels": [32, 32, 32, 32],
        "vae_norm_num_groups": 32,
    }
)


@pytest.fixture(scope="module")
def svd_dir(tmp_path_factory):
    """A diffusers SVD layout with SVD's classes, sized like the tiny config; no add-time embedding."""
    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        sample_size=4,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 32),
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=12,
        layers_per_block=1,
        cross_attention_dim=16,
        num_attention_heads=(2, 2),
        num_frames=3,
    )
    with torch.no_grad():  # SVD adds fps/motion embeddings we do not have: make them vanish
        unet.add_embedding.linear_2.weight.zero_()
        unet.add_embedding.linear_2.bias.zero_()
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4
    )
    root = tmp_path_factory.mktemp("svd")
    unet.save_pretrained(root / "unet")
    vae.save_pretrained(root / "vae")
    return root, unet.eval(), vae.eval()


def test_svd_weights_are_copied_adapted_and_reported(svd_dir):
    root, svd_unet, svd_vae = svd_dir
    components, report = init_from_svd(root, CFG)
    unet, rgb_vae = components["unet"], components["rgb_vae"]
    theirs = svd_unet.state_dict()
    ours = unet.state_dict()
    for key in (
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
        "mid_block.resnets.0.spatial_res_block.conv1.weight",
    ):
        assert torch.equal(ours[key], theirs[key])
    for view in ("decoder_n", "decoder_m"):
        assert torch.equal(
            ours[f"{view}.up_blocks.1.resnets.0.spatial_res_block.conv1.weight"],
            theirs["up_blocks.1.resnets.0.spatial_res_block.conv1.weight"],
        )
        assert torch.equal(ours[f"{view}.conv_out.weight"][:4], theirs["conv_out.weight"])
        assert torch.equal(ours[f"{view}.conv_out.weight"][4:], theirs["conv_out.weight"])
    conv_in = ours["conv_in.weight"]
    assert torch.equal(conv_in[:, 0:4], theirs["conv_in.weight"][:, 0:4])  # noisy RGB
    assert torch.equal(conv_in[:, 8:12], theirs["conv_in.weight"][:, 4:8])  # condition RGB
    assert not conv_in[:, 4:8].any() and not conv_in[:, 12:16].any()  # pointmap channels start at zero
    assert "unet.conv_in.weight" in report.adapted
    assert "unet.add_embedding.linear_1.weight" in report.skipped
    assert "unet.context_tokens" in report.kept_random
    assert any(k.startswith("unet.cross_view.") for k in report.kept_random)
    svd_vae_state = svd_vae.state_dict()
    assert torch.equal(
        rgb_vae.state_dict()["encoder.conv_in.weight"], svd_vae_state["encoder.conv_in.weight"]
    )
    assert torch.equal(
        rgb_vae.state_dict()["decoder.up_blocks.0.resnets.0.conv1.weight"],
        svd_vae_state["decoder.up_blocks.0.resnets.0.spatial_res_block.conv1.weight"],
    )
    assert rgb_vae.config.scaling_factor == pytest.approx(0.18215)
    assert "SVD init:" in report.summary()


def test_initialised_model_reproduces_svd_per_view(svd_dir):
    """With zero pointmap inputs weights and zero cross-view output, each view's RGB head is SVD."""
    root, svd_unet, _ = svd_dir
    components, _ = init_from_svd(root, CFG)
    unet = components["unet"].eval()
    g = torch.Generator().manual_seed(4)
    h, w = CFG.latent_size
    noisy_n, noisy_m = (torch.randn(1, 3, 8, h, w, generator=g) for _ in range(2))
    cond_n, cond_m = (torch.randn(1, 8, h, w, generator=g) for _ in range(2))
    c_noise = torch.tensor([0.4])
    with torch.no_grad():
        out_n, out_m = unet(noisy_n, noisy_m, cond_n, cond_m, c_noise)
        for noisy, cond, out in ((noisy_n, cond_n, out_n), (noisy_m, cond_m, out_m)):
            sample = torch.cat([noisy[:, :, :4], cond[:, None, :4].expand(-1, 3, -1, -1, -1)], dim=2)
            expected = svd_unet(
                sample, c_noise, encoder_hidden_states=unet.context_tokens, added_time_ids=torch.zeros(1, 3)
            ).sample
            torch.testing.assert_close(out[:, :, :4], expected, atol=1e-4, rtol=1e-4)


def test_pipeline_from_svd_and_missing_folder(svd_dir, tmp_path):
    root, _, _ = svd_dir
    pipe, report = Geo4DPipeline.from_svd(root, CFG)
    assert report.loaded and pipe.unet.config.in_channels == 16
    with pytest.raises(CheckpointError, match="unet/: component folder missing"):
        init_from_svd(tmp_path, CFG)
