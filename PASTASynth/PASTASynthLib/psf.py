"""The host scanner's blur, measured on the host itself, so a lesion's edges look like the host's.

A CT image is the object seen through the scanner's point-spread function (reconstruction kernel,
focal spot, detector, slice profile) and sampled on the voxel grid. A lesion pasted with a voxel mask
has step edges no scanner makes. Here the blur is measured per axis from the sharpest edges every CT
has, air against soft tissue at the skin and in the lung: along each axis, 1-D profiles that cross
-450 HU from below -750 to above -150 HU are normalised, their 10-90 % rise distance is projected onto the
edge normal (the local gradient) and converted to a Gaussian sigma (10-90 % = 2.563 sigma). The median over many profiles is the axis's effective
blur, sampling included. Where the DICOM slice thickness is known, the slice direction takes the
slice profile (thickness as FWHM) combined with the in-plane blur instead: a thin stack has few clean
edges along it. This is what the lesion's partial-volume occupancy is blurred with
(:mod:`.appearance`). Margin attributes add blur on top, never less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from PASTALib.io.volume import Volume

#: 10-90 % rise of a Gaussian-blurred step, in units of sigma (2 x 1.2816)
RISE_10_90_SIGMAS = 2.5631
AIR_HU, TISSUE_HU, CROSSING_HU = -750.0, -150.0, -450.0
HALF_WINDOW = 6  #: samples on each side of a crossing that a profile uses
MIN_PROFILES = 20
FWHM_SIGMAS = 2.3548  #: a Gaussian's full width at half maximum, in sigmas
MIN_COSINE = 0.8  #: edges more oblique than about 37 degrees to the axis are not used


@dataclass(frozen=True)
class HostBlur:
    """Gaussian sigma (mm) of the host's effective blur along k, j, i, and how it was found."""

    sigma_kji_mm: tuple[float, float, float]
    profiles: tuple[int, int, int]  #: edge profiles measured per axis (0: the axis fell back)
    source: str


def _rise_widths(profiles: np.ndarray) -> np.ndarray:
    """10-90 % rise (samples) of normalised, increasing step profiles (rows); NaN for unclean ones."""
    lo = profiles[:, :3].mean(axis=1, keepdims=True)
    hi = profiles[:, -3:].mean(axis=1, keepdims=True)
    norm = (profiles - lo) / (hi - lo)
    positions = np.arange(profiles.shape[1], dtype=np.float64)
    widths = np.full(len(profiles), np.nan)
    for index, row in enumerate(norm):
        if np.any(np.diff(row) < -0.25):  # not a clean monotone step (a vessel, noise): skip
            continue
        rising = np.maximum.accumulate(row)
        widths[index] = np.interp(0.9, rising, positions) - np.interp(0.1, rising, positions)
    return widths


def axis_edges(array: np.ndarray, spacing_kji: np.ndarray, axis: int, limit: int = 4000,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(step profiles along ``axis``, oriented to rise; cosine between the axis and the edge normal).

    A profile that crosses an edge obliquely is stretched by 1/cosine; the caller corrects for it.
    """
    shape = array.shape
    n = shape[axis]
    empty = (np.empty((0, 2 * HALF_WINDOW + 1), np.float32), np.empty(0))
    if n < 2 * HALF_WINDOW + 2:
        return empty
    data = array.astype(np.float32, copy=False)
    lower = np.take(data, np.arange(n - 1), axis=axis) < CROSSING_HU
    upper = np.take(data, np.arange(1, n), axis=axis) < CROSSING_HU
    index = np.array(np.nonzero(lower != upper))  # (3, count): the sample before each crossing
    inner = (index[axis] >= HALF_WINDOW) & (index[axis] + HALF_WINDOW + 1 < n)
    for other in range(3):  # room for the gradient's neighbours
        if other != axis:
            inner &= (index[other] >= 1) & (index[other] + 1 < shape[other])
    index = index[:, inner]
    if index.shape[1] > limit:
        index = index[:, np.sort(np.random.default_rng(seed).choice(index.shape[1], limit, replace=False))]
    if index.shape[1] == 0:
        return empty
    offsets = np.arange(-HALF_WINDOW + 1, HALF_WINDOW + 2)
    along = index[axis][:, None] + offsets[None, :]
    coords = [np.repeat(index[a][:, None], len(offsets), axis=1) if a != axis else along for a in range(3)]
    profiles = data[tuple(coords)]
    falling = profiles[:, HALF_WINDOW - 1] >= CROSSING_HU
    profiles[falling] = profiles[falling, ::-1]
    gradient = np.empty((3, index.shape[1]))
    for a in range(3):
        plus, minus = index.copy(), index.copy()
        plus[a] = np.minimum(plus[a] + 1, shape[a] - 1)
        minus[a] = np.maximum(minus[a] - 1, 0)
        gradient[a] = (data[tuple(plus)] - data[tuple(minus)]) / (2.0 * spacing_kji[a])
    cosine = np.abs(gradient[axis]) / np.maximum(np.linalg.norm(gradient, axis=0), 1e-6)
    clean = (profiles[:, :3].max(axis=1) < AIR_HU) & (profiles[:, -3:].min(axis=1) > TISSUE_HU)
    return profiles[clean], cosine[clean]


def estimate_blur(image: Volume) -> HostBlur:
    """The host's effective Gaussian blur per axis (mm). An axis with too few clean edges (a thin
    slab) takes the in-plane value scaled by its spacing."""
    spacing_kji = np.asarray(image.spacing[::-1], dtype=np.float64)
    sigmas: list[float | None] = []
    counts: list[int] = []
    for axis in range(3):
        profiles, cosine = axis_edges(image.array, spacing_kji, axis)
        widths = _rise_widths(profiles) * cosine  # the rise across the edge, not along the axis
        widths = widths[np.isfinite(widths) & (cosine >= MIN_COSINE)]
        counts.append(int(widths.size))
        sigmas.append(float(np.median(widths)) * spacing_kji[axis] / RISE_10_90_SIGMAS
                      if widths.size >= MIN_PROFILES else None)
    known = [s / spacing_kji[a] for a, s in enumerate(sigmas) if s is not None]
    per_voxel = float(np.median(known)) if known else 0.5
    filled = [float(s) if s is not None else per_voxel * float(spacing_kji[a]) for a, s in enumerate(sigmas)]
    source = ("air/tissue edge profiles: " + ", ".join(f"{'kji'[a]} {n}" for a, n in enumerate(counts))
              + ("" if known else "; none clean enough, assumed 0.5 voxel"))
    thickness = _slice_thickness(image)
    if thickness is not None:  # the slice profile is known: trust it over the few edges a thin stack has
        in_plane = float(np.mean(filled[1:]))
        filled[0] = float(np.hypot(in_plane, thickness / FWHM_SIGMAS))
        source += f"; slice direction from the slice thickness {thickness:g} mm"
    return HostBlur(tuple(filled), tuple(counts), source)  # type: ignore[arg-type]


def _slice_thickness(image: Volume) -> float | None:
    """DICOM SliceThickness (mm) when the image has it and its slices are axial-like (k along z)."""
    try:
        thickness = float(image.metadata.get("SliceThickness", ""))
    except (TypeError, ValueError):
        return None
    return thickness if 0.0 < thickness <= 20.0 and abs(float(image.direction[2, 2])) > 0.9 else None
