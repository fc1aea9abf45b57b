"""Training: (1) RGB VAE, (2) pointmap VAE initialised from the RGB VAE, (3) U-Net with the EDM loss.

One global step counter runs through the three phases; a checkpoint (accelerate `save_state`: model
weights as safetensors, optimizer and RNG states with torch.save, i.e. pickle — resumable training state
only, never shipped) plus `ema_unet.safetensors` and `state.json` is written every `checkpoint_every`
steps and at each phase end. The data stream is a pure function of (seed, step), so a resumed run sees
the same batches an uninterrupted run would. The export is `Geo4DPipeline.save_pretrained` with the EMA
U-Net weights (safetensors only).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from geo4d_studio.atomic import atomic_path
from geo4d_studio.diffusion.config import TRAINING_PHASES, VAE_LR, ModelConfig
from geo4d_studio.diffusion.dataset import PairDataset, episode_paths, load_episodes, model_batch
from geo4d_studio.diffusion.latent_cache import LatentCache
from geo4d_studio.errors import CheckpointError, Geo4DError
from geo4d_studio.interrupts import first_interrupt_sets, ignore_interrupts

KL_WEIGHT = 1e-6
VAE_WARMUP_STEPS = 100
VAE_ERROR_CLIPS = 32  # 8 clips left the median error ±4 mm to the draw


@dataclass
class TrainOptions:
    """Everything a run needs (the CLI's arguments)."""

    preset: str
    data: Path
    out: Path
    unet_steps: int = 2000
    vae_steps: int = 500
    resume: bool = False
    init_from: Path | None = None
    vaes_from: Path | None = None
    cross_view_attention: bool = True
    use_3d_loss: bool = True
    phases: tuple[str, ...] | None = None
    vae_decoder_only: bool = False
    batch_size: int = 2
    vae_batch: int = 8
    lr: float = 1e-4
    vae_lr: float = VAE_LR
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    sample_every: int = 500
    ema_decay: float = 0.999
    keep_checkpoints: int = 3
    gradient_checkpointing: bool = False
    fp16_export: bool = False
    threads: int | None = None
    workers: int = 0
    max_minutes: float | None = None
    progress: bool = True

    def pipeline_config_file(self) -> Path | None:
        """The config file of `init_from` when it is an exported Geo4D pipeline (fine-tuning), else None
        (no `init_from`, or a Stable Video Diffusion folder)."""
        from geo4d_studio.diffusion.checkpoint import GEO4D_CONFIG_NAME

        config_file = None if self.init_from is None else Path(self.init_from) / GEO4D_CONFIG_NAME
        return config_file if config_file is not None and config_file.is_file() else None

    def fine_tunes(self) -> bool:
        """Whether `init_from` is an exported Geo4D pipeline (fine-tuning) rather than an SVD folder."""
        return self.pipeline_config_file() is not None

    def model_config(self) -> ModelConfig:
        """The preset or config file (or, when fine-tuning, the pipeline's own config) with the ablation
        flags applied."""
        presets = {"tiny": ModelConfig.tiny, "small": ModelConfig.small, "paper": ModelConfig.paper}
        config_file = self.pipeline_config_file()
        if config_file is not None:
            base = ModelConfig.load(config_file)
            if base.cross_view_attention != self.cross_view_attention:
                has = "has" if base.cross_view_attention else "has no"
                raise Geo4DError(
                    f"{self.init_from}: the pipeline {has} cross-view attention; "
                    "--no-cross-view-attention must match it when fine-tuning"
                )
        elif self.preset in presets:
            base = presets[self.preset]()
        elif Path(self.preset).is_file():
            base = config_from_file(Path(self.preset))
        else:
            raise Geo4DError(
                f"--config {self.preset}: neither a preset ({', '.join(presets)}) nor a JSON file"
            )
        return dataclasses.replace(
            base, cross_view_attention=self.cross_view_attention, use_3d_loss=self.use_3d_loss
        )

    def phase_steps(self) -> dict[str, int]:
        """Steps per phase: `phases` when given, else all three, or only the U-Net when the VAEs are
        reused (`vaes_from`) or fine-tuned from (`init_from` a pipeline)."""
        unknown = sorted(set(self.phases or ()) - set(TRAINING_PHASES))
        if unknown:
            raise Geo4DError(f"--phases: unknown {unknown} (choose from {', '.join(TRAINING_PHASES)})")
        default = ("unet",) if self.vaes_from or self.fine_tunes() else TRAINING_PHASES
        chosen = self.phases or default
        steps = {"rgb_vae": self.vae_steps, "pointmap_vae": self.vae_steps, "unet": self.unet_steps}
        return {phase: steps[phase] * (phase in chosen) for phase in TRAINING_PHASES}

    def leaves_unet_stale(self) -> bool:
        """Whether the run changes the latent space under a fine-tuned U-Net it does not train: VAE
        phases on `init_from` a pipeline, encoders not frozen, no U-Net steps."""
        steps = self.phase_steps()
        vae_steps = steps["rgb_vae"] + steps["pointmap_vae"]
        return self.fine_tunes() and not self.vae_decoder_only and vae_steps > 0 and steps["unet"] == 0

    def vaes_come_trained(self) -> bool:
        """Whether the VAEs are loaded from an exported pipeline (`vaes_from`, or `init_from` one)."""
        return self.vaes_from is not None or self.fine_tunes()

    def check_decoder_only(self) -> None:
        """`vae_decoder_only` refines trained VAEs: without them there is no latent space to keep."""
        if self.vae_decoder_only and not self.vaes_come_trained():
            raise Geo4DError(
                "--vae-decoder-only refines trained VAEs: pass --init-from or --vaes-from a pipeline"
            )


def vae_lr(step: int, steps: int, peak: float = VAE_LR) -> float:
    """VAE learning rate at `step` of a phase of `steps`: linear warm-up to `peak`, then cosine decay
    to 0 (the decay is what brings the reconstruction error down at the end)."""
    warmup = max(1, min(VAE_WARMUP_STEPS, steps // 10))
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def config_from_file(path: Path) -> ModelConfig:
    """A `ModelConfig` from a JSON file of its fields (fields left out take the `small` preset's values),
    e.g. an exported pipeline's geo4d_config.json, edited."""
    try:
        return ModelConfig.load(path)
    except (OSError, ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise Geo4DError(f"{path}: not a model config ({exc})") from exc


class EMA:
    """Exponential moving average of a module's floating-point state (kept in float32)."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            k: v.detach().float().clone() for k, v in module.state_dict().items() if v.is_floating_point()
        }

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        """Move the average towards the module; the decay warms up as (1 + step) / (10 + step)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        state = module.state_dict()
        keys = list(self.shadow)
        torch._foreach_lerp_([self.shadow[k] for k in keys], [state[k].float() for k in keys], 1.0 - decay)

    def copy_to(self, module: torch.nn.Module) -> None:
        """Load the averaged weights into `module`."""
        module.load_state_dict(self.shadow, strict=False)

    def save(self, path: Path) -> None:
        """Write the average as safetensors."""
        save_file({k: v.contiguous() for k, v in self.shadow.items()}, str(path))

    def load(self, path: Path) -> None:
        """Read an average written by `save`."""
        self.shadow = {k: v.float().to(self.shadow[k].device) for k, v in load_file(str(path)).items()}


class VAEObjective(torch.nn.Module):
    """A VAE whose forward is its training loss, so accelerate (DDP) wraps the whole computation."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """L1 + MSE reconstruction of frames x (N, 3, H, W) plus a small KL term, in float32 even under
        mixed precision: bfloat16 resolves ~3 mm at 1 m, too coarse for a millimetre pointmap VAE."""
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            posterior = self.vae.encode(x).latent_dist
            recon = self.vae.decode(posterior.sample(generator=generator)).sample
            return (
                torch.nn.functional.l1_loss(recon, x)
                + torch.nn.functional.mse_loss(recon, x)
                + KL_WEIGHT * posterior.kl().mean()
            )


def frames_for_vae(
    batch: dict[str, torch.Tensor], keys: tuple[str, str], count: int, rng: np.random.Generator
) -> torch.Tensor:
    """`count` frames (N, 3, H, W) drawn from the (B, F+1, 3, H, W) entries `keys` of a batch."""
    frames = torch.cat([batch[k].flatten(0, 1) for k in keys])
    idx = rng.choice(len(frames), size=min(count, len(frames)), replace=False)
    return frames[torch.from_numpy(np.sort(idx))]


def pointmap_vae_error_m(pm_vae: torch.nn.Module, data: PairDataset, cfg: ModelConfig) -> float:
    """Median reconstruction error in metres of the pointmap VAE over valid pixels of `data`'s first
    `VAE_ERROR_CLIPS` items."""
    from geo4d_studio.diffusion.vae import pointmap_reconstruction

    errors = []
    for i in range(VAE_ERROR_CLIPS):
        errors.append(pointmap_reconstruction(pm_vae, model_batch(data[i], cfg), cfg)[2])
    return float(np.median(np.concatenate(errors)))


def json_line(record: dict) -> str:
    """`record` as one line of strict JSON: a non-finite number (nothing to measure, a diverged loss)
    is written as null."""

    def finite(value):
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return json.dumps(finite(record), allow_nan=False) + "\n"


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoint directories in `out/checkpoints` (with state.json), oldest first."""
    found = [p for p in (out / "checkpoints").glob("step-*") if (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def last_checkpoint(out: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    found = checkpoints(out)
    return found[-1] if found else None


class Trainer:
    """One training run: builds models, optimizers and data; `run()` executes the remaining steps."""

    def __init__(self, opts: TrainOptions) -> None:
        from accelerate import Accelerator

        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.opts, self.cfg = opts, opts.model_config()
        opts.check_decoder_only()
        self.out = Path(opts.out)
        self.accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
        torch.manual_seed(opts.seed)
        paths = episode_paths(opts.data)
        episodes = load_episodes(paths, self.cfg)
        self.train_data = PairDataset(paths, self.cfg, split="train", seed=opts.seed, episodes=episodes)
        self.held_out = PairDataset(paths, self.cfg, split="held_out", seed=opts.seed + 1, episodes=episodes)
        self.episode_files = [str(p) for p in paths]

        self.rgb_vae, self.pm_vae, self.unet = self._build_models()
        if opts.vaes_from is not None:
            self._load_vaes(Path(opts.vaes_from))
        if opts.gradient_checkpointing:
            for module in (self.rgb_vae, self.pm_vae, self.unet):
                module.enable_gradient_checkpointing()
        if opts.vae_decoder_only:
            from geo4d_studio.diffusion.vae import freeze_encoder

            for vae in (self.rgb_vae, self.pm_vae):
                freeze_encoder(vae)
        self.steps = opts.phase_steps()
        rgb_obj, pm_obj = VAEObjective(self.rgb_vae), VAEObjective(self.pm_vae)
        opt_rgb, opt_pm = (
            torch.optim.AdamW(
                [p for p in obj.parameters() if p.requires_grad], lr=opts.vae_lr, weight_decay=0.0
            )
            for obj in (rgb_obj, pm_obj)
        )
        opt_unet = torch.optim.AdamW(self.unet.parameters(), lr=opts.lr, weight_decay=1e-2)
        prepared = self.accelerator.prepare(rgb_obj, pm_obj, self.unet, opt_rgb, opt_pm, opt_unet)
        self.models = dict(zip(TRAINING_PHASES, prepared[:3], strict=True))
        self.optimizers = dict(zip(TRAINING_PHASES, prepared[3:], strict=True))
        self.ema = EMA(self.accelerator.unwrap_model(self.models["unet"]), opts.ema_decay)
        self.latents = LatentCache(self.rgb_vae, self.pm_vae)  # filled in the U-Net phase: VAEs frozen
        self.step = 0
        self.summary: dict = {"pointmap_vae_median_error_m": None, "pointmap_vae_median_train_error_m": None}

    def _build_models(self) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
        """(RGB VAE, pointmap VAE, U-Net): fresh, from an exported pipeline (fine-tuning), or from a
        local Stable Video Diffusion folder."""
        from geo4d_studio.diffusion.unet import MultiViewUNet
        from geo4d_studio.diffusion.vae import build_vae

        if self.opts.init_from is None:
            return build_vae(self.cfg), build_vae(self.cfg), MultiViewUNet.from_model_config(self.cfg)
        if self.opts.fine_tunes():
            from geo4d_studio.diffusion.pipeline import Geo4DPipeline

            pipe = Geo4DPipeline.from_pretrained(self.opts.init_from, device="cpu", dtype=torch.float32)
            return pipe.rgb_vae, pipe.pointmap_vae, pipe.unet
        from geo4d_studio.diffusion.checkpoint import init_from_svd

        components, report = init_from_svd(self.opts.init_from, self.cfg)
        self.accelerator.print(report.summary())
        return components["rgb_vae"], components["pointmap_vae"], components["unet"]

    def _load_vaes(self, source: Path) -> None:
        """Copy both VAEs from an exported pipeline (`rgb_vae/`, `pointmap_vae/`) or a run's export."""
        folder = source / "pipeline" if (source / "pipeline").is_dir() else source
        for name, vae in (("rgb_vae", self.rgb_vae), ("pointmap_vae", self.pm_vae)):
            weights = folder / name / "diffusion_pytorch_model.safetensors"
            if not weights.is_file():
                raise CheckpointError(folder, f"{name}/diffusion_pytorch_model.safetensors", "missing")
            vae.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})

    # ----- phases -------------------------------------------------------------------------------
    def phase_at(self, step: int) -> tuple[str, int]:
        """(phase, step within the phase) of global step `step`."""
        for phase in TRAINING_PHASES:
            if step < self.steps[phase]:
                return phase, step
            step -= self.steps[phase]
        return "done", 0

    @property
    def total_steps(self) -> int:
        """Steps over all phases."""
        return sum(self.steps.values())

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """The compact batches of the remaining steps, read by `opts.workers` loader processes (0: in
        this one); `train_step` turns them into model space on the training device.

        Process p of P reads items (step * P + p) * B ... + B - 1 at each step: every process its own
        items, and a resumed run the same stream an uninterrupted one would have read."""
        from torch.utils.data import DataLoader

        size, workers = self.opts.batch_size, self.opts.workers
        procs, rank = self.accelerator.num_processes, self.accelerator.process_index
        indices = (
            list(range((step * procs + rank) * size, (step * procs + rank + 1) * size))
            for step in range(self.step, self.total_steps)
        )
        loader = DataLoader(
            self.train_data,
            batch_sampler=indices,
            num_workers=workers,
            prefetch_factor=4 if workers else None,
            pin_memory=self.accelerator.device.type == "cuda",
            worker_init_fn=ignore_interrupts if workers else None,
        )
        return iter(loader)

    def train_step(self, phase: str, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step of `phase` on `batch`, the current step's; returns its logs."""
        device = self.accelerator.device
        compact = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        batch = model_batch(compact, self.cfg)
        rng = np.random.default_rng((self.opts.seed, self.step))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))  # CPU: same noise on any device
        model, optimizer = self.models[phase], self.optimizers[phase]
        model.train()
        logs: dict = {}
        with self.accelerator.autocast():
            if phase == "unet":
                from geo4d_studio.diffusion.edm import edm_loss_latents

                lat_n, lat_m = self.latents.encode_views(batch, compact["source"], compact["frames"])
                loss, logs = edm_loss_latents(
                    model, lat_n, lat_m, batch["mask_n"], batch["mask_m"], self.cfg, generator
                )
            else:
                for group in optimizer.param_groups:
                    group["lr"] = vae_lr(self.phase_at(self.step)[1], self.steps[phase], self.opts.vae_lr)
                keys = ("rgb_n", "rgb_m") if phase == "rgb_vae" else ("pm_n", "pm_m_in_n")
                loss = model(frames_for_vae(batch, keys, self.opts.vae_batch, rng), generator)
        optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if phase == "unet":
            self.ema.update(self.accelerator.unwrap_model(model), self.phase_at(self.step)[1])
        logs = {k: float(v) for k, v in logs.items()}
        return {"loss": float(loss.detach()), "lr": optimizer.param_groups[0]["lr"], **logs}

    def on_phase_end(self, phase: str) -> None:
        """After the RGB VAE: copy it into the pointmap VAE, unless that came trained (a pipeline's).
        After the pointmap VAE: freeze both VAEs and measure the pointmap VAE's reconstruction error in
        metres on held-out cameras and, to show how much of it is the cost of unseen viewpoints, on
        training cameras."""
        from geo4d_studio.diffusion.vae import init_pointmap_vae_from

        if phase == "rgb_vae" and not self.opts.vaes_come_trained():
            self.pm_vae.load_state_dict(init_pointmap_vae_from(self.rgb_vae).state_dict())
        elif phase == "pointmap_vae":
            self.pm_vae.eval()
            for key, data in (
                ("pointmap_vae_median_error_m", self.held_out),
                ("pointmap_vae_median_train_error_m", self.train_data),
            ):
                self.summary[key] = pointmap_vae_error_m(self.pm_vae, data, self.cfg)

    def write_sample(self, phase: str) -> None:
        """The held-out sample of `phase` now (see diffusion/samples.py): `samples/step-N-PHASE.png`,
        and its numbers appended to `samples/samples.jsonl`."""
        import imageio.v3 as iio

        from geo4d_studio.diffusion.samples import pointmap_vae_sample, rgb_vae_sample, unet_sample

        item = {k: v.to(self.accelerator.device) for k, v in self.held_out.batch(0, 1).items()}
        if phase == "unet":
            metrics, image = unet_sample(self.rgb_vae, self.pm_vae, self.unet, item, self.cfg)
        elif phase == "rgb_vae":
            metrics, image = rgb_vae_sample(self.rgb_vae, item)
        else:
            metrics, image = pointmap_vae_sample(self.pm_vae, item, self.cfg)
        path = self.out / "samples" / f"step-{self.step:06d}-{phase}.png"
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path, overwrite=True) as tmp:
            iio.imwrite(tmp, image, extension=".png")
        record = {"step": self.step, "phase": phase, "held_out": metrics, "picture": path.name}
        with open(path.parent / "samples.jsonl", "a", encoding="utf-8") as log:
            log.write(json_line(record))

    # ----- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write `checkpoints/step-NNNNNN/` (accelerate state, EMA, state.json) for the current step."""
        folder = self.out / "checkpoints" / f"step-{self.step:06d}"
        self.accelerator.save_state(str(folder), safe_serialization=True)
        if self.accelerator.is_main_process:
            self.ema.save(folder / "ema_unet.safetensors")
            state = {"step": self.step, "phase": self.phase_at(self.step)[0], "summary": self.summary}
            with atomic_path(folder / "state.json", overwrite=True) as tmp:  # written last: complete
                tmp.write_text(json.dumps(state, indent=2))
            for old in checkpoints(self.out)[: -self.opts.keep_checkpoints]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return folder

    def resume(self) -> None:
        """Load the last checkpoint of the run directory (no-op when there is none)."""
        folder = last_checkpoint(self.out)
        if folder is None:
            return
        state = json.loads((folder / "state.json").read_text())
        self.accelerator.load_state(str(folder))
        self.ema.load(folder / "ema_unet.safetensors")
        self.step = int(state["step"])
        self.summary.update(state.get("summary", {}))

    def write_run_config(self) -> None:
        """`run.json`: options, model config and episode files (overwritten on resume)."""
        info = {
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.opts).items()},
            "model_config": self.cfg.to_dict(),
            "phase_steps": self.steps,
            "episodes": self.episode_files,
            "device": str(self.accelerator.device),
            "torch_threads": torch.get_num_threads(),
        }
        with atomic_path(self.out / "run.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(info, indent=2))

    def export(self) -> Path:
        """Save the pipeline (EMA U-Net, both VAEs) to `out/pipeline` with `save_pretrained`."""
        from geo4d_studio.diffusion.pipeline import Geo4DPipeline

        unet = self.accelerator.unwrap_model(self.unet)
        self.ema.copy_to(unet)
        pipe = Geo4DPipeline(
            self.accelerator.unwrap_model(self.rgb_vae),
            self.accelerator.unwrap_model(self.pm_vae),
            unet,
            self.cfg,
        )
        target = self.out / "pipeline"
        pipe.save_pretrained(target, fp16=self.opts.fp16_export)
        return target

    # ----- loop ----------------------------------------------------------------------------------
    def stop_reason(self, started: float, interrupted: threading.Event) -> str | None:
        """Why to stop before the next step ("time budget", "Ctrl-C"), or None. All processes stop at
        the same step when any of them has a reason (accelerate's trigger, reduced over processes)."""
        budget = self.opts.max_minutes
        out_of_time = budget is not None and time.perf_counter() - started >= 60 * budget
        if out_of_time or interrupted.is_set():
            self.accelerator.set_trigger()
        if not self.accelerator.check_trigger():
            return None
        return "time budget" if out_of_time else "Ctrl-C" if interrupted.is_set() else "another process"

    def run(self) -> dict:
        """Train the remaining steps, checkpointing and logging; export; return the summary.

        On `opts.max_minutes` or a first Ctrl-C the run stops before the next step, checkpoints and
        exports (`summary["stopped"]` says why); `--resume` continues from there."""
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        if self.opts.resume:
            self.resume()
        elif last_checkpoint(self.out) is not None:
            raise Geo4DError(f"{self.out}: already holds checkpoints (pass --resume to continue)")
        main = self.accelerator.is_main_process
        if main:
            self.write_run_config()
        start_step, started = self.step, time.perf_counter()
        self.summary["stopped"] = None
        window_t, window_n = time.perf_counter(), 0
        interrupted = threading.Event()
        with (
            first_interrupt_sets(interrupted),
            open(self.out / "log.jsonl", "a", encoding="utf-8") as log,
            tqdm(
                total=self.total_steps,
                initial=self.step,
                disable=not (self.opts.progress and main),
                unit="step",
            ) as bar,
        ):
            for batch in self.batches():
                reason = self.summary["stopped"] = self.stop_reason(started, interrupted)
                if reason:
                    bar.write(f"{reason}: stopping at step {self.step}, saving a checkpoint and the export")
                    self.save_checkpoint()
                    break
                phase, _ = self.phase_at(self.step)
                logs = self.train_step(phase, batch)
                self.step += 1
                window_n += 1
                bar.update(1)
                bar.set_postfix(phase=phase, loss=f"{logs['loss']:.4f}")
                phase_done = self.phase_at(self.step)[0] != phase
                if main and (self.step % self.opts.log_every == 0 or phase_done):
                    now = time.perf_counter()
                    record = {"step": self.step, "phase": phase, **logs, "it_s": window_n / (now - window_t)}
                    record["elapsed_s"] = now - started
                    log.write(json_line(record))
                    log.flush()
                    window_t, window_n = now, 0
                every = self.opts.sample_every
                if main and every and (self.step % every == 0 or phase_done):
                    self.write_sample(phase)
                if phase_done:
                    self.on_phase_end(phase)
                if phase_done or self.step % self.opts.checkpoint_every == 0:
                    self.save_checkpoint()
        self.summary.update(
            export_dir=str(self.out / "pipeline"),
            steps_done=self.step - start_step,
            elapsed_min=(time.perf_counter() - started) / 60,
        )
        if main:
            self.export()
            with atomic_path(self.out / "summary.json", overwrite=True) as tmp:
                tmp.write_text(json.dumps(self.summary, indent=2))
        self.accelerator.wait_for_everyone()
        return self.summary


def train(opts: TrainOptions) -> dict:
    """Run (or resume) training as described by `opts`; returns the summary (export dir, VAE error...)."""
    return Trainer(opts).run()
