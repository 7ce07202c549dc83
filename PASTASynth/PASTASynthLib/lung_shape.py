"""What makes a synthetic lung lesion sit in a lung like a real one (issue 19 item 3).

* **The pleura is a wall.** A lung lesion grows inside its lung label only: one touching the surface
  ("close-contact", juxtapleural) flattens against the pleura over a broad base instead of bulging
  into the chest wall or the mediastinum.
* **Juxtavascular nodules** sit against a pulmonary vessel and leave it whole: the vessel runs past
  the nodule instead of ending at its edge.
* **Spicules** of an irregular (spiculated) lesion are thin strands radiating from its surface into
  the surrounding lung; they stop at the pleura and never cross a vessel or another organ.

Everything works on the lesion's bounding box; the host's lung vessels are found once per label.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from .host import Host

#: Lung voxels at least this dense are vessels (or airway walls): aerated lung is -700 HU and below.
VESSEL_MIN_HU = -400.0
#: Share of lung lesions without pleural contact that are placed against a vessel.
JUXTAVASCULAR_SHARE = 0.5
#: A vessel worth abutting is at least this many voxels (smaller bright specks are noise or septa).
VESSEL_MIN_VOXELS = 20
#: Spicules per spiculated lesion, and their length as a fraction of the lesion's mean radius.
SPICULES = (4, 9)
SPICULE_LENGTH = (0.5, 1.2)
#: Below this diameter a lesion gets no spicules: strands of a nodule that small are finer than any CT voxel.
SPICULATED_MIN_DIAMETER_MM = 8.0
#: How far a spiculated lesion's box reaches, in lesion radii (the core needs 1.6).
SPICULATED_REACH = 2.4


def is_lung(spec_key: str) -> bool:
    return spec_key == "lung_tumor"


def vessels(host: Host, label: int, box) -> np.ndarray:
    """Pulmonary vessels inside one lung label, on ``box``: dense lung voxels in components of at
    least :data:`VESSEL_MIN_VOXELS` (cached per label and box)."""
    key = ("lung_vessels", label, tuple((s.start, s.stop) for s in box))
    if key not in host.cache:
        lung = host.organs[box] == label
        dense = lung & (host.image.array[box] >= VESSEL_MIN_HU)
        labels, count = ndimage.label(dense, structure=np.ones((3, 3, 3), bool))
        if count:
            sizes = np.bincount(labels.ravel(), minlength=count + 1)
            keep = sizes >= VESSEL_MIN_VOXELS
            keep[0] = False
            dense = keep[labels]
        host.cache[key] = dense
    return host.cache[key]


def juxtavascular_candidates(host: Host, label: int, box, candidates: np.ndarray, radii_mm: np.ndarray,
                             rng: np.random.Generator) -> Optional[np.ndarray]:
    """Seeds a nodule's radius away from a vessel (so it abuts it), for :data:`JUXTAVASCULAR_SHARE` of the
    lesions without pleural contact; None when this lesion is not juxtavascular or no such seed exists."""
    if rng.random() >= JUXTAVASCULAR_SHARE:
        return None
    vessel = vessels(host, label, box)
    if not vessel.any():
        return None
    distance = ndimage.distance_transform_edt(~vessel, sampling=host.spacing_kji)
    voxel = float(host.spacing_kji.max())
    radius = float(radii_mm.min())  # a seed about one radius from the vessel wall: the nodule reaches it
    near = candidates & (distance >= max(radius - voxel, 0.5 * radius)) & (distance <= radius + 0.5 * voxel)
    return near if near.any() else None


def add_spicules(mask: np.ndarray, field: np.ndarray, threshold: float, lung: np.ndarray, seed: np.ndarray,
                 radii_mm: np.ndarray, spacing: np.ndarray, rng: np.random.Generator) -> int:
    """Draw thin strands from the lesion surface outwards, in place (``mask`` and ``field``, box grid,
    ``seed`` in box voxels); a strand ends after its length, where the lung label ends, or at the box edge.
    Returns how many strands were drawn."""
    mean_radius = float(np.mean(radii_mm))
    if 2.0 * mean_radius < SPICULATED_MIN_DIAMETER_MM:
        return 0
    count = int(rng.integers(*SPICULES))
    step = 0.5 * float(spacing.min())
    drawn = 0
    core = float(field[mask].max()) if mask.any() else threshold
    for _ in range(count):
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        length = mean_radius * float(rng.uniform(*SPICULE_LENGTH))
        # a slight, smooth bend: strands follow septa and small vessels, not rulers
        bend = rng.standard_normal(3) * 0.15
        bend -= direction * float(bend @ direction)
        outside, travelled, points = False, 0.0, []
        position_mm = np.zeros(3)
        for _step in range(int(4.0 * mean_radius / step) + 1):
            position_mm = position_mm + step * (direction + bend * (travelled / max(length, 1e-6)))
            index = tuple(np.rint(seed + position_mm / spacing).astype(int))
            if not all(0 <= v < n for v, n in zip(index, mask.shape)) or not lung[index]:
                break
            if not outside:
                outside = not mask[index]
                continue
            travelled += step
            if travelled > length:
                break
            points.append(index)
        if points:
            for number, index in enumerate(points):
                # solid at the root, fading towards the tip (the scanner's blur does the rest)
                taper = 1.0 - number / len(points)
                mask[index] = True
                field[index] = max(float(field[index]), threshold + taper * (core - threshold))
            drawn += 1
    return drawn
