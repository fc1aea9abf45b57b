"""Evaluation: metrics of a clip against the recording, held-out pairs, the report files and the CLI."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from geo4d_studio.diffusion.dataset import split_cameras
from geo4d_studio.diffusion.evaluate import METRICS, clip_metrics, held_out_pairs
from geo4d_studio.errors import Geo4DError


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported tiny pipeline with random weights (evaluation must work for any model)."""
    import torch

    from geo4d_studio.diffusion.config import ModelConfig
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny_random"
    Geo4DPipeline.from_model_config(ModelConfig.tiny()).save_pretrained(folder)
    return folder


def test_clip_metrics_of_the_recording_itself_are_perfect(sample_path: Path, oracle_generation) -> None:
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        _, (ref, other) = split_cameras(scene.camera_names)
        frames = [30, 32, 34]
        gen = oracle_generation(scene, ref, other, 28, frames)
        perfect = clip_metrics(scene, gen, max_depth_m=10.0)
        gen.depth_ref, gen.pointmap_ref = gen.depth_ref * np.float32(1.1), gen.pointmap_ref * np.float32(1.1)
        gen.pointmap_other_in_ref = gen.pointmap_other_in_ref * np.float32(0.85)
        gen.rgb_ref = np.clip(gen.rgb_ref.astype(int) + 8, 0, 255).astype(np.uint8)
        scaled = clip_metrics(scene, gen, max_depth_m=10.0)
    assert math.isinf(perfect["psnr_n"]) and math.isinf(perfect["psnr_m"])
    assert perfect["ssim_n"] == pytest.approx(1.0) and perfect["ssim_m"] == pytest.approx(1.0)
    assert perfect["absrel_n"] == 0 and perfect["absrel_m"] == pytest.approx(0, abs=1e-6)
    assert perfect["delta1_n"] == 1 and perfect["delta1_m"] == 1
    # With recorded geometry the gripper seen by one camera lands on the gripper in the other.
    assert perfect["miou_m_to_n"] > 0.5 and perfect["miou_n_to_m"] > 0.5
    assert scaled["absrel_n"] == pytest.approx(0.1, rel=1e-4) and scaled["delta1_n"] == 1
    assert scaled["absrel_m"] == pytest.approx(0.15, rel=1e-4) and scaled["delta1_m"] == 1
    assert 28 < scaled["psnr_n"] < 40 and math.isinf(scaled["psnr_m"])  # +8 grey levels ≈ 30 dB
    # Scaling about n's centre moves points along n's rays: invisible from n, visible from m.
    assert scaled["miou_m_to_n"] == pytest.approx(perfect["miou_m_to_n"])
    assert scaled["miou_n_to_m"] < perfect["miou_n_to_m"] - 0.05


def test_held_out_pairs_are_reproducible_and_use_held_out_cameras(sample_paths: list[Path]) -> None:
    from geo4d_studio.scene import open_scene

    pairs = held_out_pairs(sample_paths, 6, span=10, seed=4)
    assert pairs == held_out_pairs(sample_paths, 6, span=10, seed=4)
    assert [p.episode for p in pairs] == [sample_paths[i % len(sample_paths)] for i in range(6)]
    for pair in pairs:
        with open_scene(pair.episode) as scene:
            held_out = split_cameras(scene.camera_names)[1]
            assert pair.start + 10 < scene.num_frames
        assert {pair.ref, pair.other} <= set(held_out) and pair.ref != pair.other


def test_held_out_pairs_are_distinct_and_refuse_more_clips_than_an_episode_has(sample_path: Path) -> None:
    from geo4d_studio.scene import open_scene

    with open_scene(sample_path) as scene:
        span = scene.num_frames - 4  # 2 held-out cameras → 2 ordered pairs × 4 start frames
    pairs = held_out_pairs([sample_path], 8, span=span, seed=0)
    assert len(set(pairs)) == 8  # drawn with repeats, 8 of 8 would almost surely repeat one
    with pytest.raises(Geo4DError, match=r"--pairs 9: .*only 8 distinct held-out clips"):
        held_out_pairs([sample_path], 9, span=span, seed=0)


def test_evaluate_command_writes_markdown_and_csv(
    random_model: Path, sample_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from geo4d_studio.cli import main

    args = ["evaluate", "--model", str(random_model), "--data", str(sample_path), "--pairs", "2"]
    args += ["--steps", "1", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "report.csv"), str(tmp_path / "report.md")]) == 0
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert [r["episode"] for r in rows] == [sample_path.name, sample_path.name, "mean"]
    for row in rows:
        for key in ("psnr_n", "psnr_m", "ssim_n", "ssim_m", "absrel_n", "delta1_n", "absrel_m", "delta1_m"):
            assert math.isfinite(float(row[key])), (key, row[key])
    assert rows[-1]["fvd_n"] == rows[-1]["fvd_m"] == "not computed"
    mean_psnr = np.mean([float(r["psnr_n"]) for r in rows[:2]])
    assert float(rows[-1]["psnr_n"]) == pytest.approx(mean_psnr)

    text = (tmp_path / "report.md").read_text()
    assert "| FVD view n ↓ | not computed |" in text
    psnr_line = next(line for line in text.splitlines() if line.startswith(f"| {METRICS['psnr_n']} |"))
    assert float(psnr_line.split("|")[2]) == pytest.approx(float(rows[-1]["psnr_n"]), abs=1e-3)
    assert "report written" in capsys.readouterr().out


def test_evaluate_refuses_bad_output_before_generating(
    random_model: Path, sample_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from geo4d_studio.cli import main

    base = ["evaluate", "--model", str(random_model), "--data", str(sample_path)]
    existing = tmp_path / "old.md"
    existing.write_text("keep me")
    assert main([*base, "--out", str(existing)]) == 2
    assert existing.read_text() == "keep me"
    assert main([*base, "--out", str(tmp_path / "report.txt")]) == 2
    assert main([*base, "--model", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err
    assert (
        "already exists" in err and "must end in .md or .csv" in err and "geo4d_config.json: missing" in err
    )


def test_baseline_repeats_the_condition_frame_and_scores_it_like_a_model(sample_path: Path) -> None:
    from geo4d_studio.diffusion.config import ModelConfig
    from geo4d_studio.diffusion.evaluate import BASELINE_NAME, baseline_column, condition_frame_clip, score
    from geo4d_studio.metrics.image import psnr
    from geo4d_studio.scene import open_scene

    cfg = ModelConfig.small()
    pairs = held_out_pairs([sample_path], 2, span=cfg.num_future_frames * cfg.frame_stride, seed=1)
    with open_scene(sample_path) as scene:
        clip = condition_frame_clip(scene, pairs[0], cfg.num_future_frames, cfg.frame_stride)
        start = pairs[0].start
        expected_frames = start + cfg.frame_stride * np.arange(1, cfg.num_future_frames + 1)
        assert np.array_equal(clip.frame_indices, expected_frames)
        assert all(np.array_equal(f, scene.rgb(pairs[0].ref, start)) for f in clip.rgb_ref)
        truth = np.stack([scene.rgb(pairs[0].ref, int(t)) for t in expected_frames])
    (result,) = score([baseline_column(cfg)], pairs)
    assert result.name == BASELINE_NAME and len(result.pairs) == 2
    assert result.pairs[0][1]["psnr_n"] == pytest.approx(float(np.mean(psnr(clip.rgb_ref, truth))))
    assert 0 < result.mean("absrel_n") < 0.2  # most of the scene stands still


def test_autoencoders_column_scores_the_first_models_reconstruction(
    random_model: Path, sample_path: Path
) -> None:
    from geo4d_studio.diffusion.evaluate import AUTOENCODERS_NAME, BASELINE_NAME, evaluate

    progress: list[tuple[str, int, int]] = []
    results = evaluate(
        [random_model], sample_path, num_pairs=1, steps=1, autoencoders=True, baseline=True,
        on_clip=lambda *call: progress.append(call),
    )  # fmt: skip
    names = [r.name for r in results]
    assert names == [random_model.name, f"{random_model.name}: {AUTOENCODERS_NAME}", BASELINE_NAME]
    assert progress == [(name, i + 1, 3) for i, name in enumerate(names)]  # per clip of each column
    (pair, generated), (same_pair, reconstructed) = results[0].pairs[0], results[1].pairs[0]
    assert pair == same_pair and all(
        np.isfinite(reconstructed[k]) for k in ("psnr_n", "absrel_n", "absrel_m")
    )
    assert reconstructed != generated  # the recorded future through the VAEs, not a generation


def test_paired_differences_carry_a_t_interval_and_mark_the_clear_ones(sample_path: Path) -> None:
    from geo4d_studio.diffusion.evaluate import EvalPair, ModelResult, format_markdown, paired_difference

    def result(name: str, psnr_n: list[float]) -> ModelResult:
        clips = [EvalPair(sample_path, "a", "b", i) for i in range(len(psnr_n))]
        rows = [dict.fromkeys(METRICS, float("nan")) | {"psnr_n": v} for v in psnr_n]
        return ModelResult(name=name, model_dir=name, pairs=list(zip(clips, rows, strict=True)))

    first = result("full", [20.0, 21.0, 22.0, 23.0, 30.0])
    other = result("ablation", [20.5, 21.4, 22.6, 23.5, float("nan")])  # the last clip is left out
    mean, low, high = paired_difference(other, first, "psnr_n")
    half = 3.182446305 * np.std([0.5, 0.4, 0.6, 0.5], ddof=1) / 2  # t(0.975, 3 dof) · s / √4
    assert (mean, low, high) == pytest.approx((0.5, 0.5 - half, 0.5 + half))
    assert all(math.isnan(v) for v in paired_difference(other, first, "ssim_n"))  # no clip defined
    with pytest.raises(ValueError, match="not scored on the same clips"):
        paired_difference(result("shorter", [20.0, 21.0]), first, "psnr_n")

    text = format_markdown([first, other], {})
    assert "## Differences from full (same clips)" in text
    assert f"| {METRICS['psnr_n']} | +0.500 [{low:+.3f}, {high:+.3f}] * |" in text
    assert f"| {METRICS['ssim_n']} | n/a |" in text
    assert "## Differences" not in format_markdown([first], {})


def test_a_stop_leaves_every_column_with_the_same_finished_clips(
    random_model: Path, sample_path: Path
) -> None:
    import threading

    from geo4d_studio.diffusion.evaluate import evaluate

    stop, calls = threading.Event(), []

    def on_clip(column: str, done: int, total: int) -> None:
        calls.append((column, done, total))
        stop.set()  # as a Ctrl-C during the first clip would

    results = evaluate(
        [random_model], sample_path, num_pairs=3, steps=1, baseline=True, on_clip=on_clip, stop=stop
    )
    # the first clip was finished by both columns (of 3 clips × 2 columns), no other was started
    assert [c[1:] for c in calls] == [(1, 6), (2, 6)]
    assert [len(r.pairs) for r in results] == [1, 1] and results[0].pairs[0][0] == results[1].pairs[0][0]
    assert all(math.isfinite(r.seconds_per_clip) for r in results)


def test_ctrl_c_during_evaluate_reports_the_clips_done(
    random_model: Path, sample_path: Path, tmp_path: Path
) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    report, progress = tmp_path / "report.csv", tmp_path / "progress.txt"
    command = [sys.executable, "-m", "geo4d_studio", "evaluate", "--model", str(random_model)]
    command += ["--data", str(sample_path), "--pairs", "120", "--steps", "1", "--baseline", "--threads", "1"]
    with progress.open("w") as stderr:
        proc = subprocess.Popen(
            [*command, "--out", str(report)], stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        deadline = time.monotonic() + 120
        while not re.search(r"\| *[1-9]\d*/240 ", progress.read_text()):  # a clip is done
            assert proc.poll() is None and time.monotonic() < deadline, progress.read_text()
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        stdout = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130
    clips: dict[str, list[tuple[str, str, str]]] = {}
    for row in csv.DictReader(report.open()):
        if row["episode"] != "mean":
            clips.setdefault(row["model"], []).append((row["ref"], row["other"], row["start"]))
    model, baseline = clips.values()
    assert model == baseline and 1 <= len(model) < 120  # the same finished clips in both columns
    assert f"clips: {len(model)} of 120 (stopped by Ctrl-C)" in stdout
