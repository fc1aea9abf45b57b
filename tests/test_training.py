"""Training on a shipped sample episode: losses fall, checkpoints resume exactly, the export loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geo4d_studio.diffusion.dataset import model_batch
from geo4d_studio.diffusion.train import (
    VAE_LR,
    VAE_WARMUP_STEPS,
    Trainer,
    TrainOptions,
    VAEObjective,
    last_checkpoint,
    train,
    vae_lr,
)
from geo4d_studio.errors import Geo4DError


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the CI machine is small and shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_options(data: Path, out: Path, **kwargs) -> TrainOptions:
    """Tiny model, batch 1, frequent checkpoints, no progress bar."""
    defaults = dict(batch_size=1, lr=2e-3, checkpoint_every=3, log_every=1, progress=False)
    return TrainOptions(preset="tiny", data=data, out=out, **{**defaults, **kwargs})


@torch.no_grad()
def fixed_losses(trainer: Trainer) -> dict[str, float]:
    """Each phase's loss on one fixed held-out batch with fixed noise (mean over 4 noise draws)."""
    from geo4d_studio.diffusion.edm import edm_loss

    batch = trainer.held_out.batch(0, 2)
    out = {}
    for phase, keys, vae in (
        ("rgb_vae", ("rgb_n", "rgb_m"), trainer.rgb_vae),
        ("pointmap_vae", ("pm_n", "pm_m_in_n"), trainer.pm_vae),
    ):
        frames = torch.cat([batch[k].flatten(0, 1) for k in keys])
        objective = VAEObjective(vae).eval()
        out[phase] = sum(float(objective(frames, torch.Generator().manual_seed(s))) for s in range(4)) / 4
    unet = trainer.accelerator.unwrap_model(trainer.models["unet"]).eval()
    out["unet"] = (
        sum(
            float(
                edm_loss(
                    unet,
                    trainer.rgb_vae,
                    trainer.pm_vae,
                    batch,
                    trainer.cfg,
                    torch.Generator().manual_seed(s),
                )[0]
            )
            for s in range(4)
        )
        / 4
    )
    return out


@pytest.mark.slow
def test_a_few_steps_of_each_phase_reduce_its_loss(sample_path: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_options(sample_path, tmp_path / "run", vae_steps=6, unet_steps=8))
    before = fixed_losses(trainer)
    summary = trainer.run()
    after = fixed_losses(trainer)
    for phase in ("rgb_vae", "pointmap_vae", "unet"):
        assert after[phase] < 0.9 * before[phase], (phase, before[phase], after[phase])
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 21))
    assert {r["phase"] for r in records} == {"rgb_vae", "pointmap_vae", "unet"}
    assert all(r["it_s"] > 0 and r["lr"] > 0 for r in records)
    error_m = summary["pointmap_vae_median_error_m"]
    assert 0 < error_m < 2.0  # metres; a few steps only, but measured on held-out cameras
    train_error_m = summary["pointmap_vae_median_train_error_m"]
    assert 0 < train_error_m < 2.0 and train_error_m != error_m  # training cameras: other pointmaps
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline

    pipe = Geo4DPipeline.from_pretrained(summary["export_dir"], device="cpu", dtype=torch.float32)
    ema = load_file(str(tmp_path / "run" / "checkpoints" / "step-000020" / "ema_unet.safetensors"))
    for key, value in pipe.unet.state_dict().items():
        torch.testing.assert_close(value, ema[key])  # the export carries the EMA weights


@pytest.mark.slow
def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(
    sample_path: Path, tmp_path: Path
) -> None:
    train(tiny_options(sample_path, tmp_path / "straight", vae_steps=1, unet_steps=4))
    train(tiny_options(sample_path, tmp_path / "resumed", vae_steps=1, unet_steps=2))
    with pytest.raises(Geo4DError, match="already holds checkpoints"):
        train(tiny_options(sample_path, tmp_path / "resumed", vae_steps=1, unet_steps=4))
    summary = train(tiny_options(sample_path, tmp_path / "resumed", vae_steps=1, unet_steps=4, resume=True))
    assert summary["steps_done"] == 2
    logs = {
        run: [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        for run in ("straight", "resumed")
    }
    assert [r["step"] for r in logs["resumed"]] == [1, 2, 3, 4, 5, 6]
    # Same weights, optimizer state, batches and noise after the restart: the same losses (up to
    # float round-off, which Adam amplifies a little in the weights).
    for a, b in zip(logs["straight"], logs["resumed"], strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    weights = "pipeline/unet/diffusion_pytorch_model.safetensors"
    straight, resumed = (
        load_file(str(tmp_path / "straight" / weights)),
        load_file(str(tmp_path / "resumed" / weights)),
    )
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-3, atol=1e-3)


def test_train_command_reports_bad_data_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from geo4d_studio.cli import main

    code = main(
        ["train", "--config", "tiny", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "nothing: path: does not exist" in capsys.readouterr().err


def test_loader_processes_read_the_same_batches_as_the_training_process(
    sample_path: Path, tmp_path: Path
) -> None:
    in_process = Trainer(tiny_options(sample_path, tmp_path / "a", vae_steps=1, unet_steps=2))
    loaders = Trainer(tiny_options(sample_path, tmp_path / "b", vae_steps=1, unet_steps=2, workers=2))
    expected = [in_process.train_data.batch(step, 1) for step in range(4)]  # batch 1: item = step
    got = [model_batch(raw, loaders.cfg) for raw in loaders.batches()]
    assert len(got) == 4  # one batch per remaining step of all phases
    for want, have in zip(expected, got, strict=True):
        assert want.keys() == have.keys()
        for key in want:
            torch.testing.assert_close(have[key], want[key], rtol=0, atol=0)


def test_time_budget_checkpoints_exports_and_resume_finishes(sample_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    stopped = train(tiny_options(sample_path, out, vae_steps=1, unet_steps=2, max_minutes=0.0))
    assert stopped["stopped"] == "time budget" and stopped["steps_done"] == 0
    assert (out / "checkpoints" / "step-000000" / "state.json").is_file()
    assert (out / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    finished = train(tiny_options(sample_path, out, vae_steps=1, unet_steps=2, resume=True))
    assert finished["stopped"] is None and finished["steps_done"] == 4


def test_ctrl_c_checkpoints_the_current_step_exports_and_resume_finishes(
    sample_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "geo4d_studio", "train", "--config", "tiny", "--data", str(sample_path)]
    command += ["--out", str(out), "--steps", "100000", "--vae-steps", "1", "--batch-size", "1"]
    command += ["--workers", "1", "--threads", "1", "--log-every", "1"]
    log, progress = out / "log.jsonl", tmp_path / "progress.txt"
    with progress.open("w") as stderr:  # a file, not a pipe: the progress bar never blocks on it
        # Own process group: the signal reaches the loader worker too, as a terminal's Ctrl-C does.
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while not (log.is_file() and len(log.read_text().splitlines()) >= 4) and proc.poll() is None:
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        stdout = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, progress.read_text()
    assert "stopped (Ctrl-C); --resume continues" in stdout
    last = json.loads((last_checkpoint(out) / "state.json").read_text())["step"]
    logged = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert last == logged[-1] >= 4  # the step reached, not the last periodic or phase-end checkpoint
    assert (out / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    finished = train(tiny_options(sample_path, out, vae_steps=1, unet_steps=last - 2 + 1, resume=True))
    assert finished["stopped"] is None and finished["steps_done"] == 1


def test_fine_tuning_an_exported_pipeline_keeps_its_vaes_and_trains_the_unet(
    sample_path: Path, tmp_path: Path
) -> None:
    first = train(tiny_options(sample_path, tmp_path / "first", vae_steps=1, unet_steps=1))
    source = Path(first["export_dir"])
    tuned = train(tiny_options(sample_path, tmp_path / "tuned", unet_steps=2, init_from=source))
    assert tuned["steps_done"] == 2  # the VAE phases are skipped
    weights = "diffusion_pytorch_model.safetensors"
    for name in ("rgb_vae", "pointmap_vae"):
        before, after = (
            load_file(str(source / name / weights)),
            load_file(str(tmp_path / "tuned/pipeline" / name / weights)),
        )
        assert all(torch.equal(before[k], after[k]) for k in before)
    before, after = (
        load_file(str(source / "unet" / weights)),
        load_file(str(tmp_path / "tuned/pipeline/unet" / weights)),
    )
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(Geo4DError, match="has cross-view attention"):
        TrainOptions(
            preset="tiny", data=sample_path, out=tmp_path / "x", init_from=source, cross_view_attention=False
        ).model_config()


def test_only_the_chosen_phases_run_when_refining_a_pipeline(sample_path: Path, tmp_path: Path) -> None:
    first = train(tiny_options(sample_path, tmp_path / "first", vae_steps=1, unet_steps=1))
    source = Path(first["export_dir"])
    refined = train(
        tiny_options(sample_path, tmp_path / "pm", vae_steps=2, init_from=source, phases=("pointmap_vae",))
    )
    assert refined["steps_done"] == 2 and refined["pointmap_vae_median_error_m"] > 0
    weights = "diffusion_pytorch_model.safetensors"
    for name, changed in (("rgb_vae", False), ("pointmap_vae", True), ("unet", False)):
        before, after = (
            load_file(str(source / name / weights)),
            load_file(str(tmp_path / "pm/pipeline" / name / weights)),
        )
        assert any(not torch.equal(before[k], after[k]) for k in before) == changed, name
    with pytest.raises(Geo4DError, match="--phases: unknown"):
        tiny_options(sample_path, tmp_path / "x", phases=("vae",)).phase_steps()


def test_decoder_only_refinement_keeps_the_latent_space_the_unet_was_trained_on(
    sample_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from geo4d_studio.cli import main

    source = Path(
        train(tiny_options(sample_path, tmp_path / "first", vae_steps=1, unet_steps=1))["export_dir"]
    )
    common = ["train", "--config", "tiny", "--data", str(sample_path), "--sample-every", "0", "--vae-steps"]
    refine = [*common, "2", "--init-from", str(source), "--phases", "rgb_vae", "pointmap_vae"]
    out = tmp_path / "decoders"
    assert main([*refine, "--vae-decoder-only", "--vae-lr", "1e-3", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    weights = "diffusion_pytorch_model.safetensors"
    refined = {
        name: load_file(str(out / "pipeline" / name / weights)) for name in ("rgb_vae", "pointmap_vae")
    }
    for name, after in refined.items():
        before = load_file(str(source / name / weights))
        for part, changed in (("encoder.", False), ("quant_conv.", False), ("decoder.", True)):
            keys = [k for k in before if k.startswith(part)]
            assert keys and any(not torch.equal(before[k], after[k]) for k in keys) == changed, (name, part)
    # the pointmap VAE came trained: the RGB phase's end does not overwrite it with the RGB VAE
    assert any(not torch.equal(refined["rgb_vae"][k], refined["pointmap_vae"][k]) for k in refined["rgb_vae"])
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert logged[0]["lr"] == pytest.approx(1e-3)  # --vae-lr is the peak (2 steps: no warm-up)

    assert main([*refine, "--out", str(tmp_path / "stale")]) == 0  # encoders train, the U-Net does not
    assert (
        "warning: the VAE phases change the latents the fine-tuned U-Net was trained on"
        in capsys.readouterr().err
    )
    fresh = [*common, "1", "--vae-decoder-only", "--out", str(tmp_path / "fresh")]
    assert main(fresh) == 2
    assert (
        "--vae-decoder-only refines trained VAEs: pass --init-from or --vaes-from" in capsys.readouterr().err
    )
    assert not (tmp_path / "fresh").exists()


def test_a_config_file_sizes_the_model_and_a_bad_one_is_named(
    sample_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from geo4d_studio.cli import main
    from geo4d_studio.diffusion.config import ModelConfig

    fields = {**ModelConfig.tiny().to_dict(), "vae_block_out_channels": [16, 16, 32, 32]}
    config = tmp_path / "wide_vae.json"
    config.write_text(json.dumps(fields))
    out = tmp_path / "wide"
    args = ["--data", str(sample_path), "--phases", "rgb_vae", "--vae-steps", "1", "--sample-every", "0"]
    assert main(["train", "--config", str(config), "--out", str(out), *args]) == 0
    exported = json.loads((out / "pipeline/rgb_vae/config.json").read_text())
    assert exported["block_out_channels"] == [16, 16, 32, 32]
    assert json.loads((out / "pipeline/geo4d_config.json").read_text())["image_size"] == [32, 32]

    config.write_text('{"vae_block_out_channels": [16, 16]}')  # 4 levels needed
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "bad"), *args]) == 2
    assert f"{config}: not a model config (vae_block_out_channels needs 4 entries" in capsys.readouterr().err
    assert main(["train", "--config", "smal", "--out", str(tmp_path / "bad"), *args]) == 2
    assert "--config smal: neither a preset (tiny, small, paper) nor a JSON file" in capsys.readouterr().err


def test_vae_learning_rate_warms_up_then_decays_to_zero() -> None:
    rates = [vae_lr(step, 1000) for step in range(1000)]
    peak = max(rates)
    assert rates[0] < 0.02 * peak and rates.index(peak) == VAE_WARMUP_STEPS - 1
    assert all(a >= b for a, b in zip(rates[99:], rates[100:], strict=False))  # then only falls
    assert rates[-1] < 1e-4 * peak and peak == pytest.approx(VAE_LR, rel=0.01)
    assert vae_lr(0, 6) == pytest.approx(VAE_LR)  # short phases: no warm-up
    assert max(vae_lr(step, 1000, peak=1e-4) for step in range(1000)) == pytest.approx(1e-4, rel=0.01)


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--workers", "-1", "must be 0"),
        ("--max-minutes", "-2", "must be 0"),
        ("--lr", "0", "must be more than 0"),
        ("--vae-lr", "-1", "must be more than 0"),
        ("--vae-lr", "nan", "must be more than 0"),
    ],
)
def test_train_command_rejects_negative_workers_budget_and_rates(
    flag: str, value: str, expected: str, sample_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from geo4d_studio.cli import main

    args = ["train", "--config", "tiny", "--data", str(sample_path), "--out", str(tmp_path / "o")]
    assert main([*args, flag, value]) == 2
    assert f"{flag} {value}: {expected}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_held_out_samples_are_written_and_logged_for_each_phase(sample_path: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    from geo4d_studio.diffusion.normalize import model_to_rgb
    from geo4d_studio.metrics.image import psnr

    out = tmp_path / "run"
    trainer = Trainer(tiny_options(sample_path, out, vae_steps=1, unet_steps=2, sample_every=2))
    trainer.run()
    records = [json.loads(line) for line in (out / "samples" / "samples.jsonl").read_text().splitlines()]
    assert [(r["step"], r["phase"]) for r in records] == [(1, "rgb_vae"), (2, "pointmap_vae"), (4, "unet")]
    assert set(records[2]["held_out"]) == {"psnr_n", "psnr_m", "absrel_n", "absrel_m_in_n"}
    assert all(np.isfinite(v) for r in records for v in r["held_out"].values())
    (h, w), frames = trainer.cfg.image_size, trainer.cfg.num_future_frames
    vae_picture = iio.imread(out / "samples" / records[0]["picture"])
    assert vae_picture.shape == (2 * h, 2 * (frames + 1) * w, 3)  # recorded over reconstructed, n then m
    picture = iio.imread(out / "samples" / records[2]["picture"])
    assert picture.shape == (8 * h, frames * w, 3)
    recorded = model_to_rgb(trainer.held_out.batch(0, 1)["rgb_n"][0, 1:])
    np.testing.assert_array_equal(picture[:h], np.concatenate(list(recorded), axis=1))
    generated = np.stack(np.split(picture[h : 2 * h], frames, axis=1))
    assert np.mean(psnr(recorded, generated)) == pytest.approx(records[2]["held_out"]["psnr_n"])


def test_log_lines_are_strict_json_with_null_for_non_finite_numbers() -> None:
    from geo4d_studio.diffusion.train import json_line

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    line = json_line({"step": 3, "loss": float("nan"), "held_out": {"psnr": float("inf"), "absrel": 0.5}})
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line, parse_constant=refuse) == {
        "step": 3, "loss": None, "held_out": {"psnr": None, "absrel": 0.5}
    }  # fmt: skip
