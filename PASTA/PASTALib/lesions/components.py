"""Detection: connected lesion components, split where they span organs, small ones dropped.

Components are 26-connected regions of one label value, so two touching lesions of different
types stay two findings. With an organ mask, each lesion voxel is given the organ label it lies in,
or the nearest one within 10 mm when it lies outside every organ (a tumour bulging into fat). A
component is split when it spans the host organs of PASTA's lesion types (liver and stomach, say;
never lung lobes or two vertebrae, and never at a vessel or muscle label) and each part holds at
least 10 % of it; smaller parts, and voxels in other structures, stay with the largest part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from .lesion_types import LESION_TYPES

#: A part must hold at least this share of its component to become a finding of its own.
SPLIT_MIN_FRACTION = 0.10
#: How far outside every organ a lesion voxel still takes the nearest organ's label.
NEAREST_ORGAN_MM = 10.0


@dataclass
class Region:
    """One lesion region on the full grid, stored as a box and the mask inside it."""

    box: tuple[slice, slice, slice]
    mask: np.ndarray
    label_value: int
    component: int
    part: int
    parts: int
    group: Optional[str]
    site_label: Optional[int]
    group_fractions: dict

    @property
    def voxel_count(self) -> int:
        return int(self.mask.sum())

    def full_mask(self, shape: tuple[int, int, int]) -> np.ndarray:
        full = np.zeros(shape, dtype=bool)
        full[self.box] |= self.mask
        return full


@dataclass
class DroppedComponents:
    count: int = 0
    voxels: int = 0


def grow_box(box, shape, margin):
    """``box`` (slices) widened by ``margin`` voxels per axis, clipped to ``shape``."""
    return tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, n, m in zip(box, shape, margin))


def _organ_labels(crop_box, organs, spacing_kji) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Organ label per voxel of ``crop_box``: its own, or the nearest organ's within 10 mm."""
    margin = tuple(int(np.ceil(NEAREST_ORGAN_MM / s)) for s in spacing_kji)
    wide = grow_box(crop_box, organs.shape, margin)
    labels = organs[wide]
    if labels.any() and not labels.all():
        distance, nearest = ndimage.distance_transform_edt(labels == 0, sampling=spacing_kji,
                                                           return_indices=True)
        filled = labels[tuple(nearest)]
        filled[distance > NEAREST_ORGAN_MM] = 0
        labels = filled
    inner = tuple(slice(c.start - w.start, c.stop - w.start) for c, w in zip(crop_box, wide))
    return labels[inner], inner


def _split(mask, site_labels, organ_groups, min_voxels) -> list[tuple[Optional[str], np.ndarray, Optional[int], dict]]:
    """Parts of one component by organ group: (group, mask, most common organ label, fractions).

    Host organ groups holding at least 10 % of the component (and ``min_voxels``) become parts,
    largest first; the voxels of smaller groups, other structures and no organ join the largest.
    """
    if site_labels is None:
        return [(None, mask, None, {})]
    host_groups = {t.organ for t in LESION_TYPES}  # a component is split only between lesion-type hosts
    lookup = np.array([organ_groups.get(i, f"label_{i}") if i else "" for i in
                       range(int(site_labels.max()) + 1)], dtype=object)
    voxel_groups = lookup[site_labels[mask]]
    names, counts = np.unique(voxel_groups.astype(str), return_counts=True)
    total = int(counts.sum())
    fractions = {str(n) if n else "none": float(c / total) for n, c in zip(names, counts)}
    ranked = [n for n, _ in sorted(zip(names, counts), key=lambda nc: -nc[1]) if n]
    keep = [n for n in ranked if n in host_groups
            and counts[list(names).index(n)] >= max(SPLIT_MIN_FRACTION * total, min_voxels)]
    if not keep:
        keep = [n for n in ranked if n in host_groups][:1] or ranked[:1]
    if not keep:  # no organ within reach of any voxel
        return [(None, mask, None, fractions)]
    assigned = np.where(np.isin(voxel_groups.astype(str), keep), voxel_groups.astype(str), keep[0])
    group_map = np.full(mask.shape, "", dtype=object)
    group_map[mask] = assigned
    parts = []
    for group in keep:
        part = mask & (group_map == group)
        labels_here = site_labels[part]
        labels_here = labels_here[labels_here > 0]
        site = int(np.bincount(labels_here).argmax()) if labels_here.size else None
        parts.append((str(group), part, site, fractions))
    return parts


def find_regions(labels: np.ndarray, spacing_xyz, min_voxels: int, organs: Optional[np.ndarray] = None,
                 organ_groups: Optional[dict] = None, progress=None) -> tuple[list[Region], DroppedComponents]:
    """All lesion regions of a label map, largest first per label value; too-small ones counted."""
    spacing_kji = tuple(float(s) for s in spacing_xyz[::-1])
    structure = ndimage.generate_binary_structure(3, 3)
    regions, dropped = [], DroppedComponents()
    values = [int(v) for v in np.unique(labels) if v != 0]
    for n_value, value in enumerate(values):
        # Label only within this value's bounding box, and size components box by box: the int32
        # component map (and no full-grid temporaries) is what this costs, not 20+ bytes per voxel.
        where = bounding_box(labels == value)
        components, count = ndimage.label(labels[where] == value, structure)
        boxes = [_offset(box, where) for box in ndimage.find_objects(components)]
        sizes = [np.count_nonzero(components[_offset(box, where, -1)] == index + 1)
                 for index, box in enumerate(boxes)]
        order = np.argsort(-np.asarray(sizes), kind="stable")
        for rank, index in enumerate(order, start=1):
            if progress is not None:
                progress(n_value, len(values), rank, count)
            box = boxes[index]
            mask = components[_offset(box, where, -1)] == index + 1
            if mask.sum() < min_voxels:
                dropped.count += 1
                dropped.voxels += int(mask.sum())
                continue
            site_labels = None if organs is None else _organ_labels(box, organs, spacing_kji)[0]
            parts = _split(mask, site_labels, organ_groups or {}, min_voxels)
            for number, (group, part, site, fractions) in enumerate(parts, start=1):
                regions.append(Region(box, part, value, rank, number, len(parts), group, site, fractions))
    return regions, dropped


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the holes of each axial slice (first index) filled: in an axial slice vessels and
    nodules are holes in aerated lung, while in 3D they run out to the hilum and are no holes at all."""
    return np.stack([ndimage.binary_fill_holes(s) for s in mask]) if mask.shape[0] else mask.copy()


def bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The smallest box holding every True voxel (the whole grid's first voxel when there is none)."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1) if hit.size else slice(0, 1))
    return tuple(box)


def _offset(box: tuple[slice, ...], origin: tuple[slice, ...], sign: int = 1) -> tuple[slice, ...]:
    """``box`` moved by ``origin``'s start (sign=1: crop -> full grid; sign=-1: full grid -> crop)."""
    return tuple(slice(b.start + sign * o.start, b.stop + sign * o.start) for b, o in zip(box, origin))


def finding_mask(labels: np.ndarray, finding) -> np.ndarray:
    """A finding's voxels rebuilt from the lesion-type-id array: its label within its bounding box.

    Renderers and exporters use it to work from a saved report plus the label map. Where a
    component was split between organs, the box may also hold the other part's voxels.
    """
    lo = finding.measurements.bbox.ijk_min
    hi = finding.measurements.bbox.ijk_max
    box = tuple(slice(lo[a], hi[a] + 1) for a in (2, 1, 0))
    mask = np.zeros(labels.shape, dtype=bool)
    mask[box] = labels[box] == finding.component.label_value
    return mask
