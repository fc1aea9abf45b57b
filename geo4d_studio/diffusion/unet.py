"""`MultiViewUNet`: SVD's spatio-temporal U-Net with a shared encoder and one decoder per view.

Both views go through the same input convolution, down blocks, mid block and time embedding
(batched together, no information crosses between views there). The up blocks and output layers are
duplicated: `decoder_n` for the reference view n and `decoder_m` for the second view m. After every up
block, view m's features cross-attend to view n's features of the same frame (query m, key/value n;
one direction, so view n's output never depends on view m's input). `cross_view_attention=False`
removes these layers (the paper's ablation): then the views are fully independent.

Per view the input is the noisy future latents (B, F, 8, h, w) (4 RGB + 4 pointmap channels)
concatenated with the clean condition latent of the current frame repeated over F: 16 channels.
There is no camera-pose input. The cross-attention of SVD's transformer blocks (to a CLIP image
embedding there) attends to `context_tokens`, a learned token shared by all inputs.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_3d_blocks import UNetMidBlockSpatioTemporal, get_down_block, get_up_block
from torch import nn

from geo4d_studio.diffusion.config import ModelConfig


def _level_block_types(levels: int) -> tuple[list[str], list[str]]:
    """SVD's pattern: attention on every level but the deepest."""
    down = ["CrossAttnDownBlockSpatioTemporal"] * (levels - 1) + ["DownBlockSpatioTemporal"]
    up = ["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * (levels - 1)
    return down, up


def _context_kwargs(block: nn.Module, context: torch.Tensor) -> dict[str, torch.Tensor]:
    """SVD blocks with transformer layers take the context tokens; plain ones take nothing."""
    return {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}


class CrossViewAttention(nn.Module):
    """Residual attention from view m's features (queries) to view n's features (keys/values), per frame."""

    def __init__(self, channels: int, head_dim: int) -> None:
        super().__init__()
        self.norm_m = nn.GroupNorm(32, channels, eps=1e-6)
        self.norm_n = nn.GroupNorm(32, channels, eps=1e-6)
        self.attn = Attention(
            query_dim=channels,
            cross_attention_dim=channels,
            heads=channels // head_dim,
            dim_head=head_dim,
            out_bias=True,
        )

    def forward(self, h_m: torch.Tensor, h_n: torch.Tensor) -> torch.Tensor:
        """h_m, h_n: (B·F, C, h, w) → updated h_m, same shape."""
        bf, c, hh, ww = h_m.shape
        query = self.norm_m(h_m).flatten(2).transpose(1, 2)
        key_value = self.norm_n(h_n).flatten(2).transpose(1, 2)
        out = self.attn(query, encoder_hidden_states=key_value)
        return h_m + out.transpose(1, 2).reshape(bf, c, hh, ww)


class ViewDecoder(nn.Module):
    """The up blocks and output layers of one view (same layout and names as SVD's U-Net)."""

    def __init__(
        self,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        attention_head_dim: int,
        cross_attention_dim: int,
        temb_channels: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        _, up_types = _level_block_types(len(block_out_channels))
        reversed_channels = list(reversed(block_out_channels))
        self.up_blocks = nn.ModuleList()
        output_channel = reversed_channels[0]
        for i, block_type in enumerate(up_types):
            prev_output_channel = output_channel
            output_channel = reversed_channels[i]
            input_channel = reversed_channels[min(i + 1, len(reversed_channels) - 1)]
            self.up_blocks.append(
                get_up_block(
                    block_type,
                    num_layers=layers_per_block + 1,
                    transformer_layers_per_block=1,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    prev_output_channel=prev_output_channel,
                    temb_channels=temb_channels,
                    add_upsample=i < len(up_types) - 1,
                    resnet_eps=1e-5,
                    resolution_idx=i,
                    cross_attention_dim=cross_attention_dim,
                    num_attention_heads=output_channel // attention_head_dim,
                    resnet_act_fn="silu",
                )
            )
        self.conv_norm_out = nn.GroupNorm(num_channels=block_out_channels[0], num_groups=32, eps=1e-5)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, kernel_size=3, padding=1)

    def output(self, h: torch.Tensor) -> torch.Tensor:
        """Final norm, activation and projection to the latent channels."""
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


class MultiViewUNet(ModelMixin, ConfigMixin):
    """Two-view spatio-temporal denoiser; `forward(noisy_n, noisy_m, cond_n, cond_m, c_noise)`."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        out_channels: int = 8,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        attention_head_dim: int = 32,
        cross_attention_dim: int = 32,
        cross_view_attention: bool = True,
    ) -> None:
        super().__init__()
        block_out_channels = tuple(block_out_channels)
        c0 = block_out_channels[0]
        temb_channels = 4 * c0
        self.conv_in = nn.Conv2d(in_channels, c0, kernel_size=3, padding=1)
        self.time_proj = Timesteps(c0, True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(c0, temb_channels)
        self.context_tokens = nn.Parameter(torch.randn(1, 1, cross_attention_dim) * 0.02)

        down_types, _ = _level_block_types(len(block_out_channels))
        self.down_blocks = nn.ModuleList()
        output_channel = c0
        for i, block_type in enumerate(down_types):
            input_channel, output_channel = output_channel, block_out_channels[i]
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=layers_per_block,
                    transformer_layers_per_block=1,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    temb_channels=temb_channels,
                    add_downsample=i < len(down_types) - 1,
                    resnet_eps=1e-5,
                    cross_attention_dim=cross_attention_dim,
                    num_attention_heads=output_channel // attention_head_dim,
                    resnet_act_fn="silu",
                )
            )
        self.mid_block = UNetMidBlockSpatioTemporal(
            block_out_channels[-1],
            temb_channels=temb_channels,
            transformer_layers_per_block=1,
            cross_attention_dim=cross_attention_dim,
            num_attention_heads=block_out_channels[-1] // attention_head_dim,
        )
        decoder_args = (
            block_out_channels,
            layers_per_block,
            attention_head_dim,
            cross_attention_dim,
            temb_channels,
            out_channels,
        )
        self.decoder_n = ViewDecoder(*decoder_args)
        self.decoder_m = ViewDecoder(*decoder_args)
        self.cross_view = (
            nn.ModuleList(CrossViewAttention(c, attention_head_dim) for c in reversed(block_out_channels))
            if cross_view_attention
            else None
        )

    @classmethod
    def from_model_config(cls, cfg: ModelConfig) -> MultiViewUNet:
        """A randomly initialised U-Net sized by `cfg`."""
        return cls(
            in_channels=2 * cfg.view_channels,
            out_channels=cfg.view_channels,
            block_out_channels=cfg.unet_block_out_channels,
            layers_per_block=cfg.layers_per_block,
            attention_head_dim=cfg.attention_head_dim,
            cross_attention_dim=cfg.cross_attention_dim,
            cross_view_attention=cfg.cross_view_attention,
        )

    def forward(
        self,
        noisy_n: torch.Tensor,
        noisy_m: torch.Tensor,
        cond_n: torch.Tensor,
        cond_m: torch.Tensor,
        c_noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoiser outputs per view.

        noisy_*: (B, F, 8, h, w); cond_*: (B, 8, h, w) or (B, F, 8, h, w); c_noise: (B,) or scalar
        (EDM's c_noise = log(sigma) / 4). Returns (out_n, out_m), each (B, F, 8, h, w).
        """
        batch, frames = noisy_n.shape[:2]
        views = [
            torch.cat([noisy, self._repeat_over_frames(cond, frames)], dim=2)
            for noisy, cond in ((noisy_n, cond_n), (noisy_m, cond_m))
        ]
        x = torch.cat(views, dim=0).flatten(0, 1)  # (2·B·F, 16, h, w): view n first
        c_noise = torch.as_tensor(c_noise, device=x.device).float().reshape(-1).expand(batch).repeat(2)
        emb = self.time_embedding(self.time_proj(c_noise).to(x.dtype))
        emb = emb.repeat_interleave(frames, dim=0)
        context = self.context_tokens.to(x.dtype).expand(x.shape[0], -1, -1)
        indicator = torch.zeros(2 * batch, frames, dtype=x.dtype, device=x.device)

        h = self.conv_in(x)
        skips: tuple[torch.Tensor, ...] = (h,)
        for block in self.down_blocks:
            kwargs = (
                {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            )
            h, res = block(hidden_states=h, temb=emb, image_only_indicator=indicator, **kwargs)
            skips += res
        h = self.mid_block(h, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator)
        return self._decode_views(h, skips, emb, context, batch, frames)

    def _decode_views(
        self,
        h: torch.Tensor,
        skips: tuple[torch.Tensor, ...],
        emb: torch.Tensor,
        context: torch.Tensor,
        batch: int,
        frames: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h_n, h_m = h.chunk(2)
        emb_n, emb_m = emb.chunk(2)
        ctx_n, ctx_m = context.chunk(2)
        skips_n = [s.chunk(2)[0] for s in skips]
        skips_m = [s.chunk(2)[1] for s in skips]
        indicator = torch.zeros(batch, frames, dtype=h.dtype, device=h.device)
        num_blocks = len(self.decoder_n.up_blocks)
        for i in range(num_blocks):
            block_n, block_m = self.decoder_n.up_blocks[i], self.decoder_m.up_blocks[i]
            k = len(block_n.resnets)
            res_n, skips_n = tuple(skips_n[-k:]), skips_n[:-k]
            res_m, skips_m = tuple(skips_m[-k:]), skips_m[:-k]
            size = skips_n[-1].shape[2:] if i < num_blocks - 1 else None
            h_n = self._run_up_block(block_n, h_n, res_n, emb_n, ctx_n, indicator, size)
            h_m = self._run_up_block(block_m, h_m, res_m, emb_m, ctx_m, indicator, size)
            if self.cross_view is not None:
                h_m = self.cross_view[i](h_m, h_n)
        out_n = self.decoder_n.output(h_n)
        out_m = self.decoder_m.output(h_m)
        return out_n.reshape(batch, frames, *out_n.shape[1:]), out_m.reshape(batch, frames, *out_m.shape[1:])

    @staticmethod
    def _run_up_block(block, h, res, emb, context, indicator, size) -> torch.Tensor:
        kwargs = _context_kwargs(block, context)
        return block(
            hidden_states=h,
            res_hidden_states_tuple=res,
            temb=emb,
            image_only_indicator=indicator,
            upsample_size=size,
            **kwargs,
        )

    @staticmethod
    def _repeat_over_frames(cond: torch.Tensor, frames: int) -> torch.Tensor:
        if cond.dim() == 4:
            return cond.unsqueeze(1).expand(-1, frames, -1, -1, -1)
        return cond
