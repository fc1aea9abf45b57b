"""`geo4d-studio make-sample-data`: simulate scripted Panda episodes in pybullet and write them as scenes."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geo4d_studio.errors import Geo4DError, OutputPathError

TASK_NAMES = ("pick_block", "move_mug", "push_object")
"""Mirrors `geo4d_studio.sim.TASKS` (kept here so `--help` does not import the simulator)."""


@dataclass(frozen=True)
class Job:
    """One episode to make."""

    task: str
    seed: int
    path: Path


def parse_size(text: str) -> tuple[int, int]:
    """`HxW` (e.g. `120x160`) → (H, W)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected HxW in pixels, e.g. 120x160") from None
    if min(height, width) < 16 or max(height, width) > 2048:
        raise argparse.ArgumentTypeError(f"--size {text!r}: height and width must be 16..2048 pixels")
    return height, width


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `make-sample-data` sub-command."""
    parser = subparsers.add_parser(
        "make-sample-data",
        help="simulate Panda episodes (pybullet) and write them as multi-view RGB-D scenes",
        description="Simulate scripted Franka Panda episodes in pybullet and write geo4d-scene files "
        "<task>_s<seed>.h5. Episode j of each task uses seed --seed + j; the same arguments give "
        "bit-identical files.",
    )
    parser.add_argument(
        "--task", choices=[*TASK_NAMES, "all"], default="all", help="task variant (default: all)"
    )
    parser.add_argument("--episodes", type=positive_int, default=1, help="episodes per task (default 1)")
    parser.add_argument(
        "--cameras", type=positive_int, default=4, help="cameras on the hemisphere (default 4)"
    )
    parser.add_argument(
        "--size", type=parse_size, default=(120, 160), help="image size HxW (default 120x160)"
    )
    parser.add_argument(
        "--frames", type=positive_int, default=64, help="recorded frames per episode (default 64)"
    )
    parser.add_argument("--fps", type=float, default=10.0, help="recording rate (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--workers", type=positive_int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing episode files")
    parser.set_defaults(run=run)


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    """The episodes to make, in a fixed order; raises OutputPathError before any simulation runs."""
    from geo4d_studio.atomic import check_writable

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise OutputPathError(out, "is a file, expected an output directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(out, f"cannot create the output directory ({err.strerror})") from None
    tasks = TASK_NAMES if args.task == "all" else (args.task,)
    jobs = [
        Job(task, args.seed + j, out / f"{task}_s{args.seed + j:04d}.h5")
        for task in tasks
        for j in range(args.episodes)
    ]
    for job in jobs:
        check_writable(job.path, overwrite=args.overwrite)
    return jobs


_frame_queue = None


def _init_worker(queue) -> None:  # noqa: ANN001 - a multiprocessing queue
    """Worker-process initialiser: remember where to report finished frames."""
    global _frame_queue
    _frame_queue = queue


def make_episode(
    job: Job, options: dict, on_frame: Callable[[int], None] | None = None
) -> tuple[Job, bool, float]:
    """Simulate and write one episode; returns (job, task succeeded, seconds). In a worker process,
    frame progress goes to the queue set by `_init_worker`."""
    from geo4d_studio.sim.episode import simulate_episode, write_episode

    start = time.perf_counter()
    if on_frame is None and _frame_queue is not None:
        on_frame = lambda t: _frame_queue.put(1)  # noqa: E731
    try:
        data = simulate_episode(job.task, seed=job.seed, on_frame=on_frame, **options)
        write_episode(data, job.path, seed=job.seed, overwrite=True)
    except Geo4DError as err:
        raise Geo4DError(str(err)) from None  # plain Geo4DError pickles across processes
    return job, data.success, time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    """Make every episode, in parallel when --workers > 1; print one line per episode and the throughput."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    from geo4d_studio.sim.episode import check_arguments

    for task in TASK_NAMES if args.task == "all" else (args.task,):
        check_arguments(task, args.cameras, args.size, args.frames, args.fps)
    jobs = plan_jobs(args)
    options = {"cameras": args.cameras, "size": args.size, "frames": args.frames, "fps": args.fps}
    start = time.perf_counter()
    results = []
    with (
        tqdm(total=len(jobs), desc="episodes", unit="ep", position=0) as episode_bar,
        tqdm(total=len(jobs) * args.frames, desc="frames", unit="fr", position=1, leave=False) as frame_bar,
    ):
        if args.workers == 1:
            for job in jobs:
                results.append(make_episode(job, options, lambda t: frame_bar.update(1)))
                episode_bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            with ProcessPoolExecutor(
                args.workers, context, initializer=_init_worker, initargs=(queue,)
            ) as pool:
                pending = {pool.submit(make_episode, job, options) for job in jobs}
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    while not queue.empty():
                        frame_bar.update(queue.get())
                    for future in done:
                        results.append(future.result())
                        episode_bar.update(1)
    elapsed = time.perf_counter() - start
    failed = 0
    for job, success, seconds in sorted(results, key=lambda r: str(r[0].path)):
        failed += not success
        print(f"{job.path}  {'done' if success else 'TASK NOT COMPLETED'}  {seconds:.1f} s")
    images = len(jobs) * args.frames * args.cameras
    print(
        f"{len(jobs)} episodes, {images} images in {elapsed:.1f} s ({images / elapsed:.1f} images/s); "
        f"{failed} episodes did not complete the task"
    )
    return 0
