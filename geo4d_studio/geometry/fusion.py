"""Fuse RGB-D views into one coloured world point cloud, with optional voxel downsampling.

The per-pixel and per-point loops are numba kernels: compiled on the first call ever (seconds), then
loaded from numba's on-disk cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numba
import numpy as np

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry.camera import pixel_rays

if TYPE_CHECKING:
    from geo4d_studio.scene import Scene

View = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(rgb (H, W, 3) uint8, depth (H, W) float32 m, K (3, 3), T_world_cam (4, 4))."""


def _jit(fn: Callable) -> Callable:
    """`fn` compiled by numba and cached on disk, or compiled once per process where numba finds no
    writable cache folder (read-only install and home)."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return numba.njit(nogil=True)(fn)


@lru_cache(maxsize=8)
def _world_rays(K_bytes: bytes, T_bytes: bytes, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """World-frame directions (h*w, 3) float32 of the z = 1 pixel rays and the camera centre (3,) float32.

    Cached per camera pose, so static cameras pay for it once.
    """
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    T = np.frombuffer(T_bytes, dtype=np.float64).reshape(4, 4)
    rays = pixel_rays(K, h, w).reshape(-1, 3).astype(np.float64)
    directions = (rays @ T[:3, :3].T).astype(np.float32)
    centre = T[:3, 3].astype(np.float32)
    directions.flags.writeable = centre.flags.writeable = False
    return directions, centre


@_jit
def _valid(depth_bits: np.ndarray, pixel: int) -> bool:
    """Whether a depth (float32 bits as uint32) is finite and > 0: bits in 1 .. 0x7F7FFFFF (one unsigned
    comparison; 0, negative numbers, inf and NaN fall outside)."""
    return depth_bits[pixel] - np.uint32(1) < np.uint32(0x7F7FFFFF)


@_jit
def _count_valid(depth: np.ndarray) -> int:
    """Number of valid pixels of a flat depth image."""
    depth_bits = depth.view(np.uint32)
    count = 0
    for pixel in range(depth.size):
        count += _valid(depth_bits, pixel)
    return count


@_jit
def _write_view(
    depth: np.ndarray,
    rgb: np.ndarray,
    directions: np.ndarray,
    centre: np.ndarray,
    points: np.ndarray,
    colors: np.ndarray,
) -> None:
    """Write `depth * direction + centre` and the colour of each valid pixel of a view (flat depth (n,),
    rgb and directions (n, 3)) to consecutive rows of `points` and `colors`.

    Valid pixels come in runs (rows of a surface); each run is copied by loops over unsigned indices,
    which LLVM vectorises (numba's wrap-around of negative signed indices prevents that).
    """
    depth_bits = depth.view(np.uint32)
    xyz, ray = points.reshape(-1), directions.reshape(-1)
    out_rgb, in_rgb = colors.reshape(-1), rgb.reshape(-1)
    cx, cy, cz = centre[0], centre[1], centre[2]
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    row = pixel = 0
    while pixel < depth.size:
        if not _valid(depth_bits, pixel):
            pixel += 1
            continue
        first = pixel
        while pixel < depth.size and _valid(depth_bits, pixel):
            pixel += 1
        src, dst, length = np.uint64(first), np.uint64(row), np.uint64(pixel - first)
        for k in range(length):
            z = depth[src + k]
            s, d = three * (src + k), three * (dst + k)
            xyz[d] = ray[s] * z + cx
            xyz[d + one] = ray[s + one] * z + cy
            xyz[d + two] = ray[s + two] * z + cz
        for k in range(three * length):
            out_rgb[three * dst + k] = in_rgb[three * src + k]
        row += pixel - first


@_jit
def _voxel_slot(i: int, j: int, k: int, bits: int) -> int:
    """Slot of voxel (i, j, k) in a table of 2**bits >= 128 slots. The 64 voxels of a 4 x 4 x 4 block
    share 64 consecutive slots (neighbouring voxels hit the same cache lines); blocks are placed by
    Fibonacci hashing of a mix of their coordinates, in uint64 arithmetic (wraps around)."""
    mixed = np.uint64(i >> 2) * np.uint64(73856093) ^ np.uint64(j >> 2) * np.uint64(19349663)
    mixed ^= np.uint64(k >> 2) * np.uint64(83492791)
    block = np.int64((mixed * np.uint64(11400714819323198485)) >> np.uint64(70 - bits))
    return (block << 6 | (i & 3) << 4 | (j & 3) << 2 | (k & 3)) & ((1 << bits) - 1)


@_jit
def _voxel_means(
    points: np.ndarray, colors: np.ndarray, inv_voxel: float, table: np.ndarray, sums: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean point (float32) and rounded mean colour (uint8) of each occupied voxel, in order of first
    point. Voxel (i, j, k) = floor(point * inv_voxel).

    `table` (2**bits slots, at least twice the points, all -1) is an open-addressing hash table (linear
    probing) of voxel numbers; row v of `sums` (one row per point, uninitialised) becomes voxel v's
    (i, j, k, count, sum of x, y, z, sum of r, g, b) in float64. Consecutive points often share a
    voxel, which then needs no lookup.
    """
    bits = int(np.log2(len(table)))
    voxels = 0
    voxel = -1
    i0 = j0 = k0 = np.nan
    for p in range(len(points)):
        i = np.floor(points[p, 0] * inv_voxel)
        j = np.floor(points[p, 1] * inv_voxel)
        k = np.floor(points[p, 2] * inv_voxel)
        if i != i0 or j != j0 or k != k0:
            i0, j0, k0 = i, j, k
            slot = _voxel_slot(int(i), int(j), int(k), bits)
            voxel = table[slot]
            while voxel >= 0 and not (i == sums[voxel, 0] and j == sums[voxel, 1] and k == sums[voxel, 2]):
                slot = (slot + 1) & (len(table) - 1)
                voxel = table[slot]
            if voxel < 0:  # a new voxel: its record starts with this point
                voxel = table[slot] = voxels
                voxels += 1
                sums[voxel, 0], sums[voxel, 1], sums[voxel, 2], sums[voxel, 3] = i, j, k, 1.0
                for axis in range(3):
                    sums[voxel, 4 + axis] = points[p, axis]
                    sums[voxel, 7 + axis] = colors[p, axis]
                continue
        sums[voxel, 3] += 1.0
        for axis in range(3):
            sums[voxel, 4 + axis] += points[p, axis]
            sums[voxel, 7 + axis] += colors[p, axis]
    mean_points = np.empty((voxels, 3), np.float32)
    mean_colors = np.empty((voxels, 3), np.uint8)
    for voxel in range(voxels):
        for axis in range(3):
            mean_points[voxel, axis] = sums[voxel, 4 + axis] / sums[voxel, 3]
            mean_colors[voxel, axis] = np.rint(sums[voxel, 7 + axis] / sums[voxel, 3])
    return mean_points, mean_colors


def voxel_downsample(points: np.ndarray, colors: np.ndarray, voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """One point per occupied voxel of edge `voxel_m`: the mean position and mean colour of its points.

    Voxels are the cells of the grid at integer multiples of `voxel_m`; they come out in the order of
    their first point. Points must be finite. The kernel's work arrays are allocated here: numpy puts
    large arrays on transparent huge pages (far fewer page faults and TLB misses than numba's allocator).
    """
    if not voxel_m > 0:
        raise ValueError(f"voxel size must be > 0, got {voxel_m}")
    points = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.ascontiguousarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(colors) != len(points):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    table = np.full(max(128, 2 << (len(points) - 1).bit_length()), -1, dtype=np.int32)
    sums = np.empty((len(points), 10))
    return _voxel_means(points, colors, 1.0 / voxel_m, table, sums)


def _flat_view(view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat depth (n,) float32, rgb (n, 3) uint8, world ray directions (n, 3) and camera centre of a view."""
    rgb, depth, K, T_world_cam = view
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if depth.ndim != 2 or rgb.shape != (*depth.shape, 3):
        raise ValueError(f"rgb {rgb.shape} does not match depth {depth.shape}: need (H, W, 3) and (H, W)")
    directions, centre = _world_rays(
        np.ascontiguousarray(K, dtype=np.float64).tobytes(),
        np.ascontiguousarray(T_world_cam, dtype=np.float64).tobytes(),
        *depth.shape,
    )
    return depth.reshape(-1), rgb.reshape(-1, 3), directions, centre


def fuse_views(views: Sequence[View], voxel_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) float32 and colours (N, 3) uint8 of all valid pixels of `views`, in order.

    Each view is `(rgb, depth, K, T_world_cam)`; valid pixels have a finite depth > 0. With `voxel_m`
    the cloud is voxel-downsampled.
    """
    flat_views = [_flat_view(view) for view in views]
    counts = [_count_valid(flat[0]) for flat in flat_views]
    points = np.empty((sum(counts), 3), dtype=np.float32)
    colors = np.empty((sum(counts), 3), dtype=np.uint8)
    start = 0
    for flat, count in zip(flat_views, counts, strict=True):
        _write_view(*flat, points[start : start + count], colors[start : start + count])
        start += count
    if voxel_m is not None:
        points, colors = voxel_downsample(points, colors, voxel_m)
    return points, colors


def fuse_frame(
    scene: Scene, t: int, cameras: Sequence[str] | None = None, voxel_m: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fused world cloud of frame `t` of a recording from `cameras` (default: all, in file order).

    Raises Geo4DError naming the file when `t` is out of range or a camera does not exist.
    """
    if not 0 <= t < scene.num_frames:
        raise Geo4DError(
            f"{scene.path}: frame {t} is out of range: the recording has {scene.num_frames} frames "
            f"(0..{scene.num_frames - 1})"
        )
    names = list(scene.camera_names if cameras is None else cameras)
    unknown = [name for name in names if name not in scene.cameras]
    if unknown:
        raise Geo4DError(
            f"{scene.path}: no camera named {', '.join(unknown)} (cameras: {', '.join(scene.camera_names)})"
        )
    views = [
        (scene.rgb(name, t), scene.depth(name, t), scene.cameras[name].K, scene.cameras[name].pose(t))
        for name in names
    ]
    return fuse_views(views, voxel_m=voxel_m)
