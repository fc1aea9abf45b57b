"""Fréchet Video Distance with a user-supplied Inception-I3D checkpoint (safetensors only).

`InceptionI3d` is the standard Kinetics-400 I3D (Carreira & Zisserman 2017). Parameter names follow
the common PyTorch layout (`Conv3d_1a_7x7.conv3d.weight`, `Mixed_3b.b1b.bn.running_mean`, ...,
`logits.conv3d.bias`), so a converted `rgb_imagenet` state dict loads as is. Nothing is downloaded:
without a checkpoint there is no FVD (callers report "not computed").

FVD = Fréchet distance between Gaussians fitted to the I3D features of two sets of videos. Videos
are (N, T, H, W, 3) uint8, resized to `size` x `size` and scaled to [-1, 1]; features are the 400
logits (the usual FVD) or the 1024-d pooled features. Pooling is a global average over the last
block's time and space (works for any clip length >= 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from geo4d_studio.errors import CheckpointError

_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")


class Unit3D(nn.Module):
    """Conv3d with TensorFlow 'SAME' padding, optional BatchNorm (eps 1e-3) and ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        *,
        batch_norm: bool = True,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=not batch_norm)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = functional.pad(x, _same_padding(x.shape[2:], self.kernel, self.stride))
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return functional.relu(x) if self.activation else x


def _same_padding(size, kernel, stride) -> tuple[int, ...]:
    """functional.pad amounts (last dim first) for TF 'SAME' padding of a (T, H, W) input."""
    pads = []
    for n, k, s in zip(size, kernel, stride, strict=True):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(p for pair in reversed(pads) for p in pair)


class MaxPool3dSame(nn.Module):
    """Max pooling with TensorFlow 'SAME' padding (padded with zeros, after ReLU like the original)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.max_pool3d(
            functional.pad(x, _same_padding(x.shape[2:], self.kernel, self.stride)), self.kernel, self.stride
        )


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max-pool -> 1x1; concatenated on channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


_MIXED = {  # name: (input channels, branch widths)
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """Inception-v1 I3D for RGB clips (B, 3, T, H, W) in [-1, 1]; `forward` returns (pooled, logits)."""

    FEATURE_DIM = 1024

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED["Mixed_3b"])
        self.Mixed_3c = InceptionModule(*_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(*_MIXED["Mixed_4b"])
        self.Mixed_4c = InceptionModule(*_MIXED["Mixed_4c"])
        self.Mixed_4d = InceptionModule(*_MIXED["Mixed_4d"])
        self.Mixed_4e = InceptionModule(*_MIXED["Mixed_4e"])
        self.Mixed_4f = InceptionModule(*_MIXED["Mixed_4f"])
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED["Mixed_5b"])
        self.Mixed_5c = InceptionModule(*_MIXED["Mixed_5c"])
        self.logits = Unit3D(self.FEATURE_DIM, num_classes, batch_norm=False, activation=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for name, layer in self.named_children():
            if name != "logits":
                x = layer(x)
        pooled = x.mean(dim=(2, 3, 4), keepdim=True)
        return pooled.flatten(1), self.logits(pooled).flatten(1)


def load_i3d(path: str | Path, device: str | torch.device = "cpu") -> InceptionI3d:
    """An `InceptionI3d` in eval mode with weights from a local .safetensors file.

    Raises CheckpointError naming the file and tensor on a pickle-based file, an unreadable file,
    a missing or unexpected tensor, or a shape mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(
            path,
            "format",
            "pickle-based checkpoints are refused (they can run code); convert it to .safetensors",
        )
    if not path.is_file():
        raise CheckpointError(path, "file", "does not exist")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(path, "file", f"not a readable safetensors file ({err})") from err
    model = InceptionI3d(num_classes=_num_classes(path, tensors))
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in tensors:
            if name.endswith("num_batches_tracked"):
                tensors[name] = tensor
                continue
            raise CheckpointError(path, name, "missing tensor")
        if tuple(tensors[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                path, name, f"shape {tuple(tensors[name].shape)} does not match I3D's {tuple(tensor.shape)}"
            )
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CheckpointError(
            path, unexpected[0], f"unexpected tensor ({len(unexpected)} in all); not an I3D?"
        )
    model.load_state_dict(tensors)
    return model.eval().to(device)


def _num_classes(path: Path, tensors: dict[str, torch.Tensor]) -> int:
    bias = tensors.get("logits.conv3d.bias")
    if bias is None:
        raise CheckpointError(path, "logits.conv3d.bias", "missing tensor")
    return int(bias.shape[0])


@torch.no_grad()
def i3d_features(
    videos: np.ndarray, i3d: InceptionI3d, *, size: int = 224, features: str = "logits", batch_size: int = 4
) -> np.ndarray:
    """I3D features (N, D) float64 of videos (N, T, H, W, 3) uint8: `features` is "logits" or "pooled"."""
    if features not in ("logits", "pooled"):
        raise ValueError(f"features must be 'logits' or 'pooled', got {features!r}")
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be (N, T, H, W, 3), got {videos.shape}")
    device = next(i3d.parameters()).device
    out = []
    for start in range(0, len(videos), batch_size):
        clip = torch.from_numpy(videos[start : start + batch_size]).to(device)
        clip = clip.permute(0, 1, 4, 2, 3).float().flatten(0, 1)  # (B*T, 3, H, W)
        clip = functional.interpolate(
            clip, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        clip = clip.unflatten(0, (-1, videos.shape[1])).permute(0, 2, 1, 3, 4) / 127.5 - 1.0
        pooled, logits = i3d(clip)
        out.append((logits if features == "logits" else pooled).double().cpu().numpy())
    return np.concatenate(out)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)) between two Gaussians.

    tr sqrtm(S1 S2) is computed as the sum of square roots of the eigenvalues of the symmetric
    A S2 A with A = S1^(1/2) (same spectrum as S1 S2): two `eigh` calls instead of a general
    `scipy.linalg.sqrtm`, exact for covariance matrices, far faster at D = 400-1024 and free of
    the complex round-off sqrtm shows on the rank-deficient covariances of small video sets.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    values, vectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_covmean = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean, 0.0))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), N >= 2."""
    if len(features) < 2:
        raise ValueError(f"FVD needs at least 2 videos per set, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def compute_fvd(
    videos_a: np.ndarray,
    videos_b: np.ndarray,
    i3d: InceptionI3d,
    *,
    size: int = 224,
    features: str = "logits",
) -> float:
    """FVD between two sets of videos (N, T, H, W, 3) uint8 (N >= 2 each; 16+ frames is usual)."""
    stats_a = feature_statistics(i3d_features(videos_a, i3d, size=size, features=features))
    stats_b = feature_statistics(i3d_features(videos_b, i3d, size=size, features=features))
    return frechet_distance(*stats_a, *stats_b)
