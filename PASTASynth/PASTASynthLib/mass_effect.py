"""Optional small mass effect: push the host tissue around a lesion outwards before blending.

A radial displacement, largest (``strength_mm``) at the lesion's surface and fading to zero at
the edge of the lesion's box, is applied to the host voxels of the box (linear interpolation).
Voxels outside the box never move, so the influence region stays bounded. The organ map is not
warped: the push is a few millimetres at most, below the masks' own accuracy.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .geometry import LesionGeometry

MAX_STRENGTH_MM = 5.0


def push(box_values: np.ndarray, geometry: LesionGeometry, spacing: np.ndarray, radius_mm: float,
         strength_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(warped box, moved mask): host values displaced radially away from the lesion seed."""
    if strength_mm <= 0:
        return box_values, np.zeros(box_values.shape, bool)
    strength_mm = min(float(strength_mm), MAX_STRENGTH_MM)
    centre = geometry.seed_kji - geometry.box.lo
    grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in box_values.shape], indexing="ij")
    offsets = [(g - c) * s for g, c, s in zip(grids, centre, spacing)]  # mm from the seed
    r = np.sqrt(sum(o * o for o in offsets)) + 1e-6
    # rises to the lesion surface, then decays; tapered to 0 at the box faces
    profile = np.clip(r / radius_mm, 0, 1) * np.exp(-np.clip(r - radius_mm, 0, None) / (0.6 * radius_mm))
    taper = np.ones(box_values.shape, np.float32)
    for axis, n in enumerate(box_values.shape):
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = n
        taper = taper * np.clip(edge / 2.0, 0, 1).reshape(shape)
    magnitude = strength_mm * profile * taper  # mm
    # sample the host where the tissue came from: x - u(x)
    coords = [g - magnitude * o / r / s for g, o, s in zip(grids, offsets, spacing)]
    warped = ndimage.map_coordinates(box_values, coords, order=1, mode="nearest").astype(np.float32)
    moved = magnitude > 0.02 * float(spacing.min())
    return np.where(moved, warped, box_values), moved
