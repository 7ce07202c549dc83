"""Lesion measurements in world space: volume, RECIST axes, 3D diameter, HU, bounding box.

Everything is measured in mm on the volume's real geometry, so anisotropic and oblique grids give
the same answers as an isotropic axial one. Diameters are measured between the centres of the
lesion's exposed voxel faces: each lies half way between a lesion voxel centre and a background
one, so it is within half a voxel of the true boundary, and a diameter is within one voxel.

"Axial" slices are the planes of constant index along the index axis closest to the patient's
superior axis. For any axial acquisition, tilted gantry (oblique) ones included, that is the
array's k axis, the plane the scan was reconstructed in and the one a reader measures on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from PASTALib.io.volume import Volume

from .model import BoundingBox, IntensityStats, Line, Measurements, Recist

PERCENTILES = (5, 25, 50, 75, 95)
_INDEX_AXES = "ijk"


def voxel_volume_mm3(volume: Volume) -> float:
    return float(np.prod(volume.spacing) * abs(np.linalg.det(volume.direction)))


def slice_axis(volume: Volume) -> int:
    """Index axis (0 = i, 1 = j, 2 = k) normal to the 'axial' slices: the one closest to S."""
    superior = np.abs(volume.direction[2, :])
    return 2 if superior[2] >= superior.max() - 1e-6 else int(np.argmax(superior))


def crop_box(mask: np.ndarray, margin: int | tuple[int, int, int] = 0) -> tuple[slice, ...]:
    """Slices (array order k, j, i) of the mask's bounding box grown by ``margin`` voxels."""
    margins = (margin,) * 3 if isinstance(margin, int) else margin
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        lo = max(0, int(present[0]) - margins[axis])
        hi = min(mask.shape[axis], int(present[-1]) + 1 + margins[axis])
        box.append(slice(lo, hi))
    return tuple(box)


def face_centres(mask: np.ndarray, offset_kji: tuple[int, int, int] = (0, 0, 0),
                 array_axes: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    """Continuous (i, j, k) indices of the centres of the mask's exposed faces, shape (N, 3).

    Only faces normal to ``array_axes`` (array order: 0 = k, 1 = j, 2 = i) are returned, so a
    single slice's in-plane outline is ``array_axes`` without the slice axis.
    """
    points = []
    padded = np.pad(mask.astype(np.int8), 1)
    for axis in array_axes:
        step = np.diff(padded, axis=axis)
        rest = [slice(1, -1)] * 3
        rest[axis] = slice(None)
        where = np.argwhere(step[tuple(rest)] != 0).astype(np.float64)
        where[:, axis] -= 0.5  # the face between padded index p and p + 1 is at original p - 0.5
        points.append(where)
    kji = np.concatenate(points) + np.asarray(offset_kji, dtype=np.float64)
    return kji[:, ::-1].copy()


def farthest_pair(points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Largest distance between two of ``points`` (N, d) and the two points; via the convex hull."""
    candidates = points
    if len(points) > 3:
        try:
            candidates = points[ConvexHull(points).vertices]
        except QhullError:  # flat or degenerate: fall back to every point
            candidates = points
    best, pair = -1.0, (0, 0)
    for start in range(0, len(candidates), 2048):
        block = candidates[start:start + 2048]
        dist = np.einsum("ijk,ijk->ij", block[:, None] - candidates[None], block[:, None] - candidates[None])
        flat = int(np.argmax(dist))
        row, col = divmod(flat, dist.shape[1])
        if dist[row, col] > best:
            best, pair = float(dist[row, col]), (start + row, col)
    return float(np.sqrt(max(best, 0.0))), candidates[pair[0]], candidates[pair[1]]


@dataclass
class _SliceAxes:
    long_mm: float
    long_ends: tuple[np.ndarray, np.ndarray]
    short_mm: float
    short_ends: tuple[np.ndarray, np.ndarray]


def _short_axis(points: np.ndarray, start: np.ndarray, end: np.ndarray, normal: np.ndarray,
                strip_mm: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Longest chord perpendicular to the long axis: the widest strip of outline points.

    The outline points are grouped in strips ``strip_mm`` wide across the long axis; in each strip
    the chord runs from the lowest to the highest point across it. The chord is placed at the mean
    position of its two end points along the long axis, so it is exactly perpendicular.
    """
    u = (end - start) / max(np.linalg.norm(end - start), 1e-12)
    v = np.cross(normal, u)
    v /= max(np.linalg.norm(v), 1e-12)
    t = (points - start) @ u
    w = (points - start) @ v
    bins = np.floor(t / strip_mm).astype(np.int64)
    order = np.argsort(bins, kind="stable")
    bins, t, w = bins[order], t[order], w[order]
    splits = np.flatnonzero(np.diff(bins)) + 1
    best = (0.0, start, start)
    for group in np.split(np.arange(len(bins)), splits):
        lo, hi = group[np.argmin(w[group])], group[np.argmax(w[group])]
        width = float(w[hi] - w[lo])
        if width > best[0]:
            centre = (t[lo] + t[hi]) / 2.0
            best = (width, start + centre * u + w[lo] * v, start + centre * u + w[hi] * v)
    return best


def recist_axes(mask: np.ndarray, volume: Volume, offset_kji=(0, 0, 0)) -> tuple[Recist, int]:
    """RECIST long axis on the axial slice where it is largest, and its perpendicular short axis."""
    axis_index = slice_axis(volume)  # i, j or k
    array_axis = 2 - axis_index
    in_plane = tuple(a for a in range(3) if a != array_axis)
    normal = volume.direction[:, axis_index]
    in_plane_spacing = [volume.spacing[2 - a] for a in in_plane]
    best: tuple[float, int, np.ndarray, np.ndarray, np.ndarray] | None = None
    for position in np.flatnonzero(mask.any(axis=in_plane)):
        plane = [slice(None)] * 3
        plane[array_axis] = slice(int(position), int(position) + 1)
        offset = list(offset_kji)
        offset[array_axis] += int(position)
        ijk = face_centres(mask[tuple(plane)], tuple(offset), in_plane)
        lps = volume.index_to_lps_points(ijk)
        length, p, q = farthest_pair(lps)
        if best is None or length > best[0] + 1e-9:
            best = (length, int(position) + offset_kji[array_axis], p, q, lps)
    assert best is not None, "recist_axes needs a non-empty mask"
    length, index, p, q, outline = best
    short, s0, s1 = _short_axis(outline, p, q, normal, max(in_plane_spacing))
    centre_ijk = np.zeros(3)
    centre_ijk[axis_index] = index
    centre = volume.index_to_ras_points(centre_ijk)
    recist = Recist(
        long_axis=Line(float(length), _ras(p), _ras(q)),
        short_axis=Line(float(short), _ras(s0), _ras(s1)),
        slice_axis=_INDEX_AXES[axis_index],
        slice_index=index,
        slice_center_ras=[float(v) for v in centre],
    )
    return recist, axis_index


def _ras(lps_point: np.ndarray) -> list[float]:
    return [float(-lps_point[0]), float(-lps_point[1]), float(lps_point[2])]


def hu_stats(values: np.ndarray) -> IntensityStats:
    values = np.asarray(values, dtype=np.float64)
    pct = np.percentile(values, PERCENTILES)
    return IntensityStats(mean=float(values.mean()), std=float(values.std()), min=float(values.min()),
                          max=float(values.max()),
                          percentiles={f"p{p}": float(v) for p, v in zip(PERCENTILES, pct)})


def bounding_box(box: tuple[slice, ...], volume: Volume) -> BoundingBox:
    """Index box (inclusive) and the RAS box enclosing its voxels' outer corners."""
    lo_kji = [s.start for s in box]
    hi_kji = [s.stop - 1 for s in box]
    lo_ijk, hi_ijk = lo_kji[::-1], hi_kji[::-1]
    corners = np.array([[x, y, z] for x in (lo_ijk[0] - 0.5, hi_ijk[0] + 0.5)
                        for y in (lo_ijk[1] - 0.5, hi_ijk[1] + 0.5)
                        for z in (lo_ijk[2] - 0.5, hi_ijk[2] + 0.5)])
    ras = volume.index_to_ras_points(corners)
    return BoundingBox([int(v) for v in lo_ijk], [int(v) for v in hi_ijk],
                       [float(v) for v in ras.min(axis=0)], [float(v) for v in ras.max(axis=0)])


def measure(mask: np.ndarray, image: Volume) -> Measurements:
    """All measurements of one lesion (a boolean mask on ``image``'s grid)."""
    box = crop_box(mask)
    crop = mask[box]
    offset = tuple(s.start for s in box)
    ijk = face_centres(crop, offset)
    diameter, p, q = farthest_pair(image.index_to_lps_points(ijk))
    recist, _ = recist_axes(crop, image, offset)
    voxels = np.argwhere(crop) + np.asarray(offset)
    centroid = image.index_to_ras_points(voxels[:, ::-1].mean(axis=0))
    return Measurements(
        volume_ml=float(crop.sum() * voxel_volume_mm3(image) / 1000.0),
        recist=recist,
        max_3d_diameter=Line(float(diameter), _ras(p), _ras(q)),
        hu=hu_stats(image.array[box][crop]),
        bbox=bounding_box(box, image),
        centroid_ras=[float(v) for v in centroid],
    )
