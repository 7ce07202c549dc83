"""The lung without an organ mask: a threshold at -400 HU, split into left and right at the midline.

The lung is the one organ every chest CT shows by its air, so the detector can search it, and
synthesis can place lung lesions, in any scan; lobes are not separated.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume

from .components import fill_holes_per_slice

LUNG_THRESHOLD_HU = -400.0
#: Air darker than this (median) is bowel gas or air outside, not lung (aerated lung is -900 to -700 HU).
AERATED_LUNG_MIN_HU = -950.0
#: Labels written for a thresholded lung (see threshold_lung): the whole left / right lung, lobes unknown.
#: They reuse TotalSegmentator's left / right upper-lobe ids (so "lung_*" hosts still match) under their
#: own names, so the report says "left lung", never a lobe it cannot know.
THRESHOLDED_LUNG_NAMES = {10: "lung_left", 12: "lung_right"}
LUNG_LEFT_LABEL, LUNG_RIGHT_LABEL = 10, 12


def threshold_lung(image: Volume) -> np.ndarray:
    """A crude lung mask for hosts without an organ mask: air-like voxels not touching the border.

    It is a threshold at -400 HU, the largest components kept (when the airway joins them to the air
    outside, the air each axial slice's body encloses), holes (vessels) filled per slice, then
    split into the patient's left (:data:`LUNG_LEFT_LABEL`) and right (:data:`LUNG_RIGHT_LABEL`) at the
    body's midline: the median LPS x of body voxels (L is +x). Lobes are not separated.
    """
    air = image.array < LUNG_THRESHOLD_HU
    if not air.any():
        raise PastaInputError("No lung-like (below -400 HU) region in the image.",
                              "Pass an organ mask with --organs.")
    lung = _lung_components(air)
    if not lung.any():
        # head-to-pelvis scans: the airway joins the lungs to the air outside through nose and mouth,
        # so the lung is one component with the outside air. In an axial slice the lungs are still
        # holes in the body, the outside air is not: keep the air each slice's body encloses. Coarse
        # slices (7.5 mm) join lung and bowel gas at the diaphragm: peel one voxel off first, keep only
        # lung-sized parts (a lung is at least a third of the largest), then grow them back by one voxel.
        # Bowel gas is enclosed too, but it is pure air; aerated lung holds tissue (median above
        # AERATED_LUNG_MIN_HU), so an abdomen without lungs gets none.
        enclosed = fill_holes_per_slice(~air) & air
        core = _lung_components(ndimage.binary_erosion(enclosed), min_share=0.3)
        lung = ndimage.binary_dilation(core) & enclosed
        parts, count = ndimage.label(lung)
        if count:
            medians = ndimage.median(image.array, parts, index=np.arange(1, count + 1))
            lung = np.isin(parts, 1 + np.flatnonzero(np.asarray(medians) > AERATED_LUNG_MIN_HU))
    lung = fill_holes_per_slice(lung)
    x_lps = lps_x(image)
    body = image.array >= LUNG_THRESHOLD_HU
    midline = float(np.median(x_lps[body])) if body.any() else float(np.median(x_lps))
    return np.where(lung, np.where(x_lps > midline, LUNG_LEFT_LABEL, LUNG_RIGHT_LABEL), 0).astype(np.uint8)


def _lung_components(air: np.ndarray, min_share: float = 0.05) -> np.ndarray:
    """Of the two largest air components, those that are not the air around the body and are at least
    ``min_share`` of the largest (the lungs, joined by the airway, are usually one)."""
    labels, count = ndimage.label(air)
    if count == 0:
        return np.zeros(air.shape, bool)
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                       labels[:, :, [0, -1]].ravel()]))
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    keep = np.zeros(count + 1, bool)
    order = np.argsort(sizes)[::-1] + 1
    minimum = min_share * sizes.max()
    for component in order[:2]:
        # a crop's lung may touch the crop border, so only the body-surrounding air is rejected:
        # it touches the border *and* holds voxels in the outermost rows of all four sides
        touching = component in border
        outside = touching and all(np.any(labels[:, edge] == component) for edge in (0, -1)) and \
            all(np.any(labels[:, :, edge] == component) for edge in (0, -1))
        if sizes[component - 1] >= minimum and not outside:
            keep[component] = True
    return keep[labels]


def lps_x(image: Volume) -> np.ndarray:
    """The LPS x (mm; + is the patient's left) of every voxel centre, as a [k, j, i] array."""
    matrix = image.index_to_lps
    k, j, i = np.ogrid[:image.array.shape[0], :image.array.shape[1], :image.array.shape[2]]
    return matrix[0, 3] + matrix[0, 0] * i + matrix[0, 1] * j + matrix[0, 2] * k
