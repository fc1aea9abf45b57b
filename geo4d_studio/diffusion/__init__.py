"""The geometry-aware 4D diffusion model (arXiv 2507.01099): VAEs, two-view U-Net, EDM, sampler, pipeline.

Modules: `config` (ModelConfig, no torch), `normalize` (numpy ↔ model space), `vae`, `unet`
(MultiViewUNet), `edm` (preconditioning, loss), `sampler` (Euler EDM + CFG, GenerationCancelled),
`checkpoint` (safetensors I/O, SVD initialisation), `pipeline` (Geo4DPipeline → Generation).
Names below are imported lazily so that `import geo4d_studio.diffusion.config` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelConfig": "config",
    "MultiViewUNet": "unet",
    "edm_loss": "edm",
    "edm_denoise": "edm",
    "sample_euler": "sampler",
    "GenerationCancelled": "sampler",
    "init_from_svd": "checkpoint",
    "Geo4DPipeline": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
