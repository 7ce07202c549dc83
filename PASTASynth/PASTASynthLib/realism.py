"""Measurements a reader's eye makes of a synthetic lesion, shared by the realism tests and
``Testing/benchmarks/bench_realism.py``."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def edge_rise_mm(change: np.ndarray, mask: np.ndarray, spacing_kji: np.ndarray, reach_mm: float = 8.0) -> float:
    """In-plane 10-90 % rise (mm) of a lesion's contrast across its surface.

    ``change`` is the image minus the host. It is averaged in 0.5 mm shells of in-plane signed distance
    from the lesion's voxel outline, on the slices of its largest cross-section (where the surface is
    normal to the slice plane, so the coarser slice-direction blur does not enter), so noise averages
    out. NaN when the lesion has no measurable contrast.
    """
    areas = mask.sum(axis=(1, 2))
    distances, changes = [], []
    for k in np.nonzero(areas >= 0.9 * areas.max())[0]:
        inside = mask[k]
        distance = (ndimage.distance_transform_edt(~inside, sampling=spacing_kji[1:])
                    - ndimage.distance_transform_edt(inside, sampling=spacing_kji[1:]))
        near = np.abs(distance) <= reach_mm
        distances.append(distance[near])
        changes.append(change[k][near])
    distance, values = np.concatenate(distances), np.concatenate(changes)
    edges = np.arange(-reach_mm, reach_mm + 0.5, 0.5)
    shells = np.digitize(distance, edges)
    profile = np.array([values[shells == b].mean() if np.any(shells == b) else np.nan
                        for b in range(1, len(edges))])
    centres = 0.5 * (edges[1:] + edges[:-1])
    valid = np.isfinite(profile)
    centres, profile = centres[valid], profile[valid]
    inside_level, outside_level = profile[:3].mean(), profile[-3:].mean()  # deep inside, far outside
    if abs(inside_level - outside_level) < 5.0:
        return float("nan")
    falling = np.minimum.accumulate((profile - outside_level) / (inside_level - outside_level))
    return float(np.interp(0.1, falling[::-1], centres[::-1]) - np.interp(0.9, falling[::-1], centres[::-1]))
