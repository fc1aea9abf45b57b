"""Fuse RGB-D views into one coloured world point cloud, with optional voxel downsampling.

The per-pixel and per-point loops are numba kernels: compiled on the first call ever (seconds), then
loaded from numba's on-disk cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from geo4d_studio.errors import Geo4DError
from geo4d_studio.geometry.camera import pixel_rays

if TYPE_CHECKING:
    from geo4d_studio.scene import Scene

POINT_ROW = 1024
"""Points per row when a plain point cloud is voxelised (the length of the kernel's row buffers)."""
MERGE_CHUNK = 256
"""Voxels per chunk when two halves are merged (the length of the merge's prefetch buffer)."""
PARALLEL_PIXELS = 200_000
"""Clouds of at least this many pixels (or points) are voxelised by two threads."""

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
def _write_view(
    depth: np.ndarray,
    rgb: np.ndarray,
    directions: np.ndarray,
    centre: np.ndarray,
    points: np.ndarray,
    colors: np.ndarray,
) -> int:
    """Write `depth * direction + centre` and the colour of each valid pixel of a view (flat depth (n,),
    rgb and directions (n, 3)) to consecutive rows of `points` and `colors`; returns how many.

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
    return row


@intrinsic
def _prefetch(typingctx, array, index):  # noqa: ARG001 (numba's intrinsic signature)
    """Ask the CPU to load element `index` of a 1-D array (row `index` of an N-D C-contiguous one) into
    its caches: a hint, with no effect on any result."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        data = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = cgutils.get_item_pointer(context, builder, array_type, data, [index])
        byte_pointer, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0"
        )
        read, keep_in_all_levels, data_cache = (ir.Constant(i32, v) for v in (0, 3, 1))
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), read, keep_in_all_levels, data_cache])
        return context.get_dummy_value()

    return types.void(array, index), codegen


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
def _find_voxel(table: np.ndarray, keys: np.ndarray, i: int, j: int, k: int, slot: int) -> tuple[int, int]:
    """(slot, voxel number) of voxel (i, j, k), probing from its home `slot`; voxel -1 and the free
    slot where it would go when the table does not hold it."""
    voxel = table[slot]
    while voxel >= 0 and not (i == keys[voxel, 0] and j == keys[voxel, 1] and k == keys[voxel, 2]):
        slot = (slot + 1) & (len(table) - 1)
        voxel = table[slot]
    return slot, voxel


@_jit
def _accumulate_voxels(
    depth: np.ndarray,
    rgb: np.ndarray,
    directions: np.ndarray,
    centre: np.ndarray,
    width: int,
    inv_voxel: float,
    table: np.ndarray,
    keys: np.ndarray,
    sums: np.ndarray,
    voxels: int,
) -> tuple[int, float]:
    """Add the valid pixels of a view (flat depth (n,), rgb and directions (n, 3), rows of `width`
    pixels) to the voxels found so far; returns the new number of voxels and the largest |i|, |j| or
    |k| seen (the keys are int32: the caller checks that they fit).

    Voxel (i, j, k) = floor(point * inv_voxel), point = depth * direction + centre. `table` (2**bits
    slots, -1 when free, at least twice the pixels) is an open-addressing hash table (linear probing)
    of voxel numbers; voxels are numbered in order of first point, row v of `keys` (int32) is voxel
    v's (i, j, k, count) and row v of `sums` (float64) its sum of x, y, z, r, g, b. Each row is done
    in two passes: the first computes the voxels and prefetches their table slots, the second adds
    the points. A point in the voxel of the previous point or of the pixel above needs no table
    lookup (surfaces span several pixels per voxel).
    """
    depth_bits = depth.view(np.uint32)
    bits = int(np.log2(len(table)))
    row_points = np.empty((width, 3), np.float32)
    row_keys = np.empty((width, 3), np.int32)
    row_slots = np.empty(width, np.int64)  # -1: invalid pixel
    above = np.full(width, -1, np.int64)  # voxel of the pixel above, -1: none
    voxel = -1
    i0 = j0 = k0 = np.int32(0)
    largest = 0.0
    for start in range(0, depth.size, width):
        stop = min(start + width, depth.size)
        for c in range(stop - start):
            p = start + c
            if not _valid(depth_bits, p):
                row_slots[c] = -1
                continue
            z = depth[p]
            x = directions[p, 0] * z + centre[0]
            y = directions[p, 1] * z + centre[1]
            w = directions[p, 2] * z + centre[2]
            fi, fj, fk = np.floor(x * inv_voxel), np.floor(y * inv_voxel), np.floor(w * inv_voxel)
            largest = max(largest, max(abs(fi), max(abs(fj), abs(fk))))
            i, j, k = int(fi), int(fj), int(fk)
            row_points[c, 0], row_points[c, 1], row_points[c, 2] = x, y, w
            row_keys[c, 0], row_keys[c, 1], row_keys[c, 2] = i, j, k
            row_slots[c] = _voxel_slot(i, j, k, bits)
            _prefetch(table, row_slots[c])
        for c in range(stop - start):
            if row_slots[c] < 0:
                above[c] = -1
                continue
            p = start + c
            i, j, k = row_keys[c, 0], row_keys[c, 1], row_keys[c, 2]
            if voxel < 0 or i != i0 or j != j0 or k != k0:
                i0, j0, k0 = i, j, k
                voxel = above[c]
                if voxel < 0 or not (i == keys[voxel, 0] and j == keys[voxel, 1] and k == keys[voxel, 2]):
                    slot, voxel = _find_voxel(table, keys, i, j, k, row_slots[c])
                    if voxel < 0:  # a new voxel: its record starts with this point
                        voxel = above[c] = table[slot] = voxels
                        voxels += 1
                        keys[voxel, 0], keys[voxel, 1], keys[voxel, 2], keys[voxel, 3] = i, j, k, 1
                        for axis in range(3):
                            sums[voxel, axis] = row_points[c, axis]
                            sums[voxel, 3 + axis] = rgb[p, axis]
                        continue
            above[c] = voxel
            keys[voxel, 3] += 1
            for axis in range(3):
                sums[voxel, axis] += row_points[c, axis]
                sums[voxel, 3 + axis] += rgb[p, axis]
    return voxels, largest


@_jit
def _merge_voxels(
    table: np.ndarray,
    keys: np.ndarray,
    sums: np.ndarray,
    voxels: int,
    later_keys: np.ndarray,
    later_sums: np.ndarray,
    later_voxels: int,
) -> int:
    """Add the voxels of later points (`later_keys`, `later_sums`) to those of `table`, `keys` and
    `sums`; returns the new number of voxels. Voxels new to the table are appended in their order,
    not inserted in it (each later voxel comes once). In chunks of three passes: home slots (table
    prefetched), the voxels there (their keys and sums prefetched), then the lookups."""
    bits = int(np.log2(len(table)))
    slots = np.empty(MERGE_CHUNK, np.int64)
    for start in range(0, later_voxels, MERGE_CHUNK):
        chunk = min(MERGE_CHUNK, later_voxels - start)
        for c in range(chunk):
            slots[c] = _voxel_slot(
                later_keys[start + c, 0], later_keys[start + c, 1], later_keys[start + c, 2], bits
            )
            _prefetch(table, slots[c])
        for c in range(chunk):
            candidate = table[slots[c]]
            if candidate >= 0:
                _prefetch(keys, candidate)
                _prefetch(sums, candidate)
        for c in range(chunk):
            later = start + c
            i, j, k = later_keys[later, 0], later_keys[later, 1], later_keys[later, 2]
            _, voxel = _find_voxel(table, keys, i, j, k, slots[c])
            if voxel < 0:  # new to the first half: its record is copied after the others
                for axis in range(4):
                    keys[voxels, axis] = later_keys[later, axis]
                for axis in range(6):
                    sums[voxels, axis] = later_sums[later, axis]
                voxels += 1
                continue
            keys[voxel, 3] += later_keys[later, 3]
            for axis in range(6):
                sums[voxel, axis] += later_sums[later, axis]
    return voxels


@_jit
def _voxel_means(keys: np.ndarray, sums: np.ndarray, voxels: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean point (float32) and rounded mean colour (uint8) of the first `voxels` voxels."""
    mean_points = np.empty((voxels, 3), np.float32)
    mean_colors = np.empty((voxels, 3), np.uint8)
    for voxel in range(voxels):
        count = keys[voxel, 3]
        if count == 1:  # one point: its own position and colour (no divisions)
            for axis in range(3):
                mean_points[voxel, axis] = sums[voxel, axis]
                mean_colors[voxel, axis] = sums[voxel, 3 + axis]
            continue
        for axis in range(3):
            mean_points[voxel, axis] = sums[voxel, axis] / count
            mean_colors[voxel, axis] = np.rint(sums[voxel, 3 + axis] / count)
    return mean_points, mean_colors


FlatView = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]
"""(flat depth (n,) float32, rgb (n, 3) uint8, world ray directions (n, 3) float32, centre (3,), width)."""

Voxels = tuple[np.ndarray, np.ndarray, np.ndarray, int]
"""(hash table, keys, sums, number of voxels) as `_accumulate_voxels` leaves them."""


def _accumulate(flat_views: Sequence[FlatView], inv_voxel: float, capacity: int) -> Voxels:
    """The voxels of the valid pixels of `flat_views`, with room for `capacity` voxels. The work
    arrays are allocated here: numpy puts large arrays on transparent huge pages (far fewer page
    faults and TLB misses than numba's allocator)."""
    pixels = sum(len(flat[0]) for flat in flat_views)
    table = np.full(max(128, 2 << (pixels - 1).bit_length()), -1, dtype=np.int32)
    keys = np.empty((capacity, 4), np.int32)
    sums = np.empty((capacity, 6))
    voxels = 0
    for flat in flat_views:
        voxels, largest = _accumulate_voxels(*flat, inv_voxel, table, keys, sums, voxels)
        if not largest < 2**31 - 1:
            raise ValueError(
                f"voxels of {1 / inv_voxel:g} m are too small for the extent of the points (index past int32)"
            )
    return table, keys, sums, voxels


def _halves(flat_views: Sequence[FlatView]) -> tuple[list[FlatView], list[FlatView]]:
    """The views' pixels split at the image row nearest to half of them: (first half, second half)."""
    half = sum(len(flat[0]) for flat in flat_views) // 2
    for index, (depth, rgb, directions, centre, width) in enumerate(flat_views):
        if len(depth) > half:
            cut = round(half / width) * width
            head = [(depth[:cut], rgb[:cut], directions[:cut], centre, width)] if cut else []
            tail = (depth[cut:], rgb[cut:], directions[cut:], centre, width)
            return [*flat_views[:index], *head], [tail, *flat_views[index + 1 :]]
        half -= len(depth)
    return list(flat_views), []


@lru_cache(maxsize=1)
def _helper_thread() -> ThreadPoolExecutor:
    """One thread that voxelises the second half of large clouds while the caller does the first."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo4d-voxels")


def _voxelize(flat_views: Sequence[FlatView], voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean point and colour per occupied voxel of all valid pixels of `flat_views`, in order of first
    point. Large clouds are split in two halves voxelised at once (the kernels release the GIL), then
    merged: the second half's voxels are added to the first's, new ones after them."""
    if not voxel_m > 0:
        raise ValueError(f"voxel size must be > 0, got {voxel_m}")
    pixels = sum(len(flat[0]) for flat in flat_views)
    if pixels < PARALLEL_PIXELS or (os.cpu_count() or 1) < 2:
        _, keys, sums, voxels = _accumulate(flat_views, 1.0 / voxel_m, pixels)
        return _voxel_means(keys, sums, voxels)
    first, second = _halves(flat_views)
    later = _helper_thread().submit(_accumulate, second, 1.0 / voxel_m, pixels)
    table, keys, sums, voxels = _accumulate(first, 1.0 / voxel_m, pixels)
    voxels = _merge_voxels(table, keys, sums, voxels, *later.result()[1:])
    return _voxel_means(keys, sums, voxels)


def voxel_downsample(points: np.ndarray, colors: np.ndarray, voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """One point per occupied voxel of edge `voxel_m`: the mean position and mean colour of its points.

    Voxels are the cells of the grid at integer multiples of `voxel_m`; they come out in the order of
    their first point. Points must be finite. (The points are voxelised as a view whose rays are the
    points, all at depth 1 from a centre at the origin.)
    """
    points = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.ascontiguousarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(colors) != len(points):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    ones = np.ones(len(points), np.float32)
    return _voxelize([(ones, colors, points, np.zeros(3, np.float32), POINT_ROW)], voxel_m)


def _flat_view(view: View) -> FlatView:
    """A view as flat arrays with world ray directions and its camera centre, plus its image width."""
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
    return depth.reshape(-1), rgb.reshape(-1, 3), directions, centre, depth.shape[1]


def fuse_views(views: Sequence[View], voxel_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) float32 and colours (N, 3) uint8 of all valid pixels of `views`, in order.

    Each view is `(rgb, depth, K, T_world_cam)`; valid pixels have a finite depth > 0. With `voxel_m`
    the cloud is voxel-downsampled.
    """
    flat_views = [_flat_view(view) for view in views]
    if voxel_m is not None:
        return _voxelize(flat_views, voxel_m)
    pixels = sum(len(flat[0]) for flat in flat_views)
    points = np.empty((pixels, 3), dtype=np.float32)  # room for every pixel; the valid ones are kept
    colors = np.empty((pixels, 3), dtype=np.uint8)
    count = 0
    for flat in flat_views:
        count += _write_view(*flat[:4], points[count:], colors[count:])
    points, colors = points[:count], colors[:count]
    return points, colors


def fuse_frame(
    scene: Scene, t: int, cameras: Sequence[str] | None = None, voxel_m: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fused world cloud of frame `t` of a recording from `cameras` (default: all, in file order).

    Raises Geo4DError naming the file when `t` is out of range, a camera does not exist or the voxel
    size does not suit the scene.
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
    try:
        return fuse_views(views, voxel_m=voxel_m)
    except ValueError as error:  # e.g. a voxel too small for the scene's extent
        raise Geo4DError(f"{scene.path}: frame {t}: {error}") from error
