"""Make docs/screenshot.png: the Studio on the shipped sample episode with a real generation.

Copies the default sample to a temporary folder (the shipped files stay untouched), generates a clip
with the shipped model (`model/`), then renders the window headlessly with
`geo4d-studio gui FILE --screenshot PNG --generation latest` (under xvfb-run when there is no display).

    .venv/bin/python scripts/screenshot.py [--steps 25] [--device cpu] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def generate(recording: Path, model_dir: Path, steps: int, device: str, start: int) -> str:
    """Run the model on the recording's first two cameras and save the clip beside it; returns its id."""
    from geo4d_studio.diffusion.pipeline import Geo4DPipeline
    from geo4d_studio.generation import results_path_for, save_generation
    from geo4d_studio.scene import open_scene

    pipe = Geo4DPipeline.from_pretrained(model_dir, device=device)
    with open_scene(recording) as scene:
        ref, other = scene.camera_names[:2]
        generation = pipe(scene, ref, other, start, steps=steps, seed=0)
    return save_generation(results_path_for(recording), generation)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    parser.add_argument("--scene", type=Path, help="recording (default: the shipped sample)")
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--start", type=int, default=0, help="start frame of the generation")
    args = parser.parse_args()

    from geo4d_studio.paths import DEFAULT_MODEL_DIR, default_sample_scene

    scene = args.scene or default_sample_scene()
    model_dir = args.model or DEFAULT_MODEL_DIR
    if not (model_dir / "model_index.json").is_file():
        print(f"screenshot: no model in {model_dir} (model_index.json missing)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / scene.name
        shutil.copyfile(scene, recording)
        gen_id = generate(recording, model_dir, args.steps, args.device, args.start)
        print(f"generated {gen_id} on a copy of {scene.name}")
        command = [sys.executable, "-m", "geo4d_studio", "gui", str(recording), "--model", str(model_dir)]
        command += ["--screenshot", str(args.out.resolve()), "--generation", gen_id]
        if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            command = ["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", *command]
        completed = subprocess.run(command, check=False)
    if completed.returncode == 0:
        print(f"wrote {args.out}")
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
