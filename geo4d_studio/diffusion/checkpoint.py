"""Checkpoint I/O: the diffusers folder layout, safetensors only, local folders only.

Layout: `model_index.json`, `geo4d_config.json` (ModelConfig) and one folder per component
(`rgb_vae/`, `pointmap_vae/`, `unet/`) holding `config.json` + `diffusion_pytorch_model.safetensors`.
Nothing is ever downloaded and pickle files (.bin/.pt/.ckpt) are never opened. Every problem raises
CheckpointError naming the file and the field (tensor) at fault.

`init_from_svd` starts a model from a local Stable Video Diffusion folder (diffusers layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKL
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from geo4d_studio.atomic import atomic_path
from geo4d_studio.diffusion.config import ModelConfig
from geo4d_studio.diffusion.unet import MultiViewUNet
from geo4d_studio.diffusion.vae import build_vae, init_pointmap_vae_from
from geo4d_studio.errors import CheckpointError

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
CONFIG_NAME = "config.json"
INDEX_NAME = "model_index.json"
GEO4D_CONFIG_NAME = "geo4d_config.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
COMPONENTS: dict[str, type] = {"rgb_vae": AutoencoderKL, "pointmap_vae": AutoencoderKL, "unet": MultiViewUNet}
_LIBRARY = {"rgb_vae": "diffusers", "pointmap_vae": "diffusers", "unet": "geo4d_studio.diffusion.unet"}


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_components(
    directory: str | Path,
    components: dict[str, torch.nn.Module],
    cfg: ModelConfig,
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write the components in the diffusers layout; `dtype` (e.g. torch.float16) casts float weights."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in components.items():
        folder = directory / name
        folder.mkdir(exist_ok=True)
        _write_json(folder / CONFIG_NAME, json.loads(model.to_json_string()))
        state = {
            key: (t.to(dtype) if dtype is not None and t.is_floating_point() else t)
            .detach()
            .cpu()
            .contiguous()
            for key, t in model.state_dict().items()
        }
        with atomic_path(folder / WEIGHTS_NAME, overwrite=True) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
    cfg.save(directory / GEO4D_CONFIG_NAME)
    index = {"_class_name": "Geo4DPipeline", "_diffusers_version": diffusers.__version__}
    index.update({name: [_LIBRARY[name], type(model).__name__] for name, model in components.items()})
    _write_json(directory / INDEX_NAME, index)
    return directory


def _read_json(path: Path, root: Path) -> dict:
    rel = str(path.relative_to(root))
    if not path.is_file():
        raise CheckpointError(root, rel, "missing")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(root, rel, f"unreadable JSON ({err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(root, rel, "expected a JSON object")
    return data


def _pickle_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []


def _read_weights(path: Path, root: Path) -> dict[str, torch.Tensor]:
    rel = str(path.relative_to(root))
    if not path.is_file():
        pickles = _pickle_files(path.parent)
        if pickles:
            raise CheckpointError(
                root,
                str(pickles[0].relative_to(root)),
                "pickle checkpoints are not loaded; convert to safetensors",
            )
        raise CheckpointError(root, rel, "missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(root, rel, f"not a readable safetensors file ({err})") from err


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], root: Path, rel: str) -> None:
    """Raise CheckpointError naming the first missing, unexpected or wrongly shaped tensor."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(root, f"{rel}: {key}", "tensor missing from the weights file")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                root,
                f"{rel}: {key}",
                f"shape {tuple(state[key].shape)} does not match the model's {tuple(tensor.shape)}",
            )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise CheckpointError(root, f"{rel}: {unexpected[0]}", "tensor not in the model (wrong config?)")


def load_component(root: Path, name: str, cls: type) -> torch.nn.Module:
    """Build component `name` from its config.json and load its safetensors weights (float32, CPU)."""
    folder = root / name
    if not folder.is_dir():
        raise CheckpointError(root, f"{name}/", "component folder missing")
    config = _read_json(folder / CONFIG_NAME, root)
    if config.get("_class_name", cls.__name__) != cls.__name__:
        raise CheckpointError(
            root,
            f"{name}/{CONFIG_NAME}: _class_name",
            f"{config['_class_name']!r}, expected {cls.__name__!r}",
        )
    state = _read_weights(folder / WEIGHTS_NAME, root)
    try:
        model = cls.from_config(config)
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(root, f"{name}/{CONFIG_NAME}", f"cannot build {cls.__name__} ({err})") from err
    check_state_dict(model, state, root, f"{name}/{WEIGHTS_NAME}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def load_components(directory: str | Path) -> tuple[dict[str, torch.nn.Module], ModelConfig]:
    """Read a folder written by `save_components`; float32 on the CPU."""
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(root, "", "no such model folder (models load only from local folders)")
    index = _read_json(root / INDEX_NAME, root)
    missing = [name for name in COMPONENTS if name not in index]
    if missing:
        raise CheckpointError(root, INDEX_NAME, f"lists no {missing[0]!r} component")
    cfg_data = _read_json(root / GEO4D_CONFIG_NAME, root)
    try:
        cfg = ModelConfig.from_dict(cfg_data)
    except (TypeError, ValueError) as err:
        raise CheckpointError(root, GEO4D_CONFIG_NAME, f"invalid model config ({err})") from err
    components = {name: load_component(root, name, cls) for name, cls in COMPONENTS.items()}
    unet_in = components["unet"].config.in_channels
    if unet_in != 2 * cfg.view_channels:
        raise CheckpointError(
            root, f"unet/{CONFIG_NAME}: in_channels", f"{unet_in}, expected {2 * cfg.view_channels}"
        )
    return components, cfg


@dataclass
class SvdInitReport:
    """What `init_from_svd` copied (our parameter names), adapted, skipped (SVD names) or left random."""

    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept_random: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line with the counts."""
        return (
            f"SVD init: {len(self.loaded)} tensors copied, {len(self.adapted)} adapted, "
            f"{len(self.skipped)} SVD tensors skipped, {len(self.kept_random)} left at their initialisation"
        )


def _read_svd_weights(folder: Path, root: Path) -> dict[str, torch.Tensor]:
    """The weights of one SVD component folder: the plain, the fp16 variant or sharded safetensors."""
    for candidate in (folder / WEIGHTS_NAME, folder / "diffusion_pytorch_model.fp16.safetensors"):
        if candidate.is_file():
            return _read_weights(candidate, root)
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_read_weights(shard, root))
        return state
    return _read_weights(folder / WEIGHTS_NAME, root)


def _svd_unet_targets(key: str) -> list[str]:
    if key.startswith(("up_blocks.", "conv_norm_out.", "conv_out.")):
        return [f"decoder_n.{key}", f"decoder_m.{key}"]
    return [key]


def _adapt(target: str, ours: torch.Tensor, theirs: torch.Tensor, latent: int) -> torch.Tensor | None:
    """conv_in: SVD's [noisy, cond] channels → our RGB ones (rest zero); conv_out: RGB + pointmap rows."""
    if target == "conv_in.weight" and ours.shape[0] == theirs.shape[0] and theirs.shape[1] == 2 * latent:
        new = torch.zeros_like(ours)
        new[:, :latent] = theirs[:, :latent]
        new[:, 2 * latent : 3 * latent] = theirs[:, latent:]
        return new
    is_head = target.endswith(("conv_out.weight", "conv_out.bias"))
    if is_head and theirs.shape[0] == latent and ours.shape == (2 * latent, *theirs.shape[1:]):
        return torch.cat([theirs, theirs])
    return None


def _copy_matching(
    model: torch.nn.Module,
    svd_state: dict[str, torch.Tensor],
    targets_of,
    report: SvdInitReport,
    prefix: str,
    latent: int,
) -> None:
    ours = model.state_dict()
    new_state = {}
    for key, tensor in svd_state.items():
        used = False
        for target in targets_of(key):
            if target not in ours:
                continue
            if tuple(ours[target].shape) == tuple(tensor.shape):
                new_state[target] = tensor.float()
                report.loaded.append(prefix + target)
                used = True
            elif (adapted := _adapt(target, ours[target], tensor.float(), latent)) is not None:
                new_state[target] = adapted
                report.adapted.append(prefix + target)
                used = True
        if not used:
            report.skipped.append(prefix + key)
    model.load_state_dict(new_state, strict=False)
    report.kept_random.extend(prefix + k for k in ours if k not in new_state)


def init_from_svd(svd_dir: str | Path, cfg: ModelConfig) -> tuple[dict[str, torch.nn.Module], SvdInitReport]:
    """Components for `cfg` initialised from a local SVD folder (`unet/` and `vae/`, safetensors).

    U-Net: shared encoder and both decoder copies take SVD's weights where names and shapes match;
    conv_in keeps SVD's RGB channels (noisy and condition) and zeroes the pointmap ones; conv_out
    predicts both RGB and pointmap latents from SVD's head. The cross-view attention output projections
    start at zero, so the initialised model reproduces SVD per view. VAE: SVD's encoder, and the spatial
    layers of its temporal decoder, and its latent scaling factor; post_quant_conv (absent in SVD)
    starts as the identity. The pointmap VAE is a copy of the RGB VAE.
    """
    root = Path(svd_dir)
    for sub in ("unet", "vae"):
        if not (root / sub).is_dir():
            raise CheckpointError(
                root, f"{sub}/", "component folder missing (expected a diffusers SVD folder)"
            )
    vae_config = _read_json(root / "vae" / CONFIG_NAME, root)
    _read_json(root / "unet" / CONFIG_NAME, root)
    report = SvdInitReport()
    unet = MultiViewUNet.from_model_config(cfg)
    _copy_matching(
        unet, _read_svd_weights(root / "unet", root), _svd_unet_targets, report, "unet.", cfg.latent_channels
    )
    if unet.cross_view is not None:
        with torch.no_grad():
            for layer in unet.cross_view:
                layer.attn.to_out[0].weight.zero_()
                layer.attn.to_out[0].bias.zero_()
    rgb_vae = build_vae(cfg)
    rgb_vae.register_to_config(scaling_factor=float(vae_config.get("scaling_factor", cfg.vae_scaling_factor)))
    vae_targets = lambda key: [key.replace(".spatial_res_block", "")]  # noqa: E731
    _copy_matching(
        rgb_vae, _read_svd_weights(root / "vae", root), vae_targets, report, "rgb_vae.", cfg.latent_channels
    )
    if "rgb_vae.post_quant_conv.weight" in report.kept_random:
        with torch.no_grad():
            conv = rgb_vae.post_quant_conv
            conv.weight.copy_(torch.eye(conv.weight.shape[0]).reshape(conv.weight.shape))
            conv.bias.zero_()
    components = {"rgb_vae": rgb_vae, "pointmap_vae": init_pointmap_vae_from(rgb_vae), "unet": unet}
    return components, report
