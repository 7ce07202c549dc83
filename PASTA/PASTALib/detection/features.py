"""What the scorer sees of a candidate: size, contrast, texture, shape and place in its organ.

All in physical units (mm, mL, HU), so a scorer fitted on one grid reads another. The names are one
table, :data:`FEATURE_NAMES`; the model card stores the scorer's weights under these names.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .candidates import SEARCHED_GROUPS, Candidate
from .organ_context import OrganContext

FEATURE_NAMES: tuple[str, ...] = (
    "log_volume_ml", "contrast_hu_100", "log_contrast_to_texture", "mean_hu_100", "sd_hu_100",
    "roundness", "flatness", "box_fill", "rim_fraction", "log_organ_fraction", "log_extent_mm",
    "darker", *(f"group_{g}" for g in SEARCHED_GROUPS),
    *(f"group_{g}_x_darker" for g in SEARCHED_GROUPS),
)


def candidate_features(candidate: Candidate, image: np.ndarray, context: OrganContext) -> np.ndarray:
    """The feature vector of one candidate (order: :data:`FEATURE_NAMES`)."""
    spacing = np.asarray(context.spacing_kji)
    mask = candidate.mask
    hu = image[candidate.box][mask].astype(np.float64)
    volume_ml = float(mask.sum() * np.prod(spacing) / 1000.0)
    contrast = float(np.mean(hu) - candidate.reference_hu)
    points = np.argwhere(mask) * spacing
    if len(points) >= 4:
        eig = np.sort(np.clip(np.linalg.eigvalsh(np.cov(points.T)), 1e-6, None))
        roundness, flatness = float(np.sqrt(eig[0] / eig[2])), float(np.sqrt(eig[1] / eig[2]))
        extent = float(4.0 * np.sqrt(eig[2]))
    else:
        roundness = flatness = 1.0
        extent = float(np.max(spacing))
    organ = np.isin(context.labels[candidate.box], context.labels_of(candidate.group))
    rim = mask & ~ndimage.binary_erosion(organ, np.ones((3, 3, 3), bool), border_value=1)
    box_fill = float(mask.sum() / mask.size)
    darker = 1.0 if candidate.polarity < 0 else 0.0
    groups = [1.0 if candidate.group == g else 0.0 for g in SEARCHED_GROUPS]
    return np.array([
        np.log10(volume_ml), contrast / 100.0, np.log(abs(contrast) / max(candidate.texture_hu, 5.0) + 1e-3),
        float(np.mean(hu)) / 100.0, float(np.std(hu)) / 100.0, roundness, flatness, box_fill,
        float(rim.sum() / mask.sum()), np.log10(max(volume_ml / max(candidate.organ_ml, 1e-3), 1e-6)),
        np.log10(max(extent, 1.0)), darker, *groups, *(g * darker for g in groups),
    ], dtype=np.float64)
