"""Which organs a scan shows, as the detector needs them: organ labels grouped by lesion host.

Every PASTA lesion type lives in one organ group (:data:`PASTALib.lesions.lesion_types.LESION_TYPES`).
The detector searches only the groups present: from an organ mask (TotalSegmentator classes, any
label table) and, where the mask holds no lung, the lung found by its air (:mod:`.lung_threshold`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume
from PASTALib.lesions import anatomy, lesion_types
from PASTALib.lesions.lung_threshold import THRESHOLDED_LUNG_NAMES, threshold_lung

#: Organ labels smaller than this are a segmenter's stray voxels, not an organ in view.
MIN_ORGAN_ML = 0.5


def host_groups() -> list[str]:
    """Organ groups that host at least one lesion type, in lesion-table order."""
    seen: list[str] = []
    for lesion_type in lesion_types.LESION_TYPES:
        if lesion_type.organ not in seen:
            seen.append(lesion_type.organ)
    return seen


@dataclass
class OrganContext:
    """Organ labels on the working grid, their names, and which host groups they form."""

    labels: np.ndarray  #: int16 organ labels [k, j, i]
    names: dict[int, str]
    spacing_kji: tuple[float, float, float]
    groups: dict[int, str] = field(default_factory=dict)  #: label -> host group (host organs only)
    notes: list[str] = field(default_factory=list)
    lung_thresholded: bool = False  #: the lung labels come from :func:`.lung_threshold.threshold_lung`

    def labels_of(self, group: str) -> list[int]:
        return sorted(label for label, g in self.groups.items() if g == group)

    @property
    def present_groups(self) -> list[str]:
        return [g for g in host_groups() if g in set(self.groups.values())]


def build_context(image: Volume, organs: Optional[Volume], names: Optional[Mapping[int, str]] = None
                  ) -> OrganContext:
    """The organ context of ``image`` (both on one grid already): the mask's host organs plus the
    thresholded lung when the mask has no lung."""
    names = dict(names or anatomy.totalsegmentator_v2_names())
    spacing_kji = tuple(float(s) for s in image.spacing[::-1])
    voxel_ml = float(np.prod(spacing_kji)) / 1000.0
    notes: list[str] = []
    if organs is not None:
        labels = np.rint(organs.array).astype(np.int16)
        if labels.shape != image.array.shape:
            raise PastaInputError("The organ mask is not on the image grid.", "Resample it onto the image first.")
    else:
        labels = np.zeros(image.array.shape, np.int16)
    counts = np.bincount(labels[labels > 0].ravel()) if labels.any() else np.zeros(1, int)
    wanted = set(host_groups())
    groups = {}
    unknown = [int(label) for label in np.nonzero(counts)[0] if int(label) not in names]
    if unknown:
        shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        notes.append(f"Organ labels {shown} are not in the label table (TotalSegmentator v2 by default) and were "
                     "not searched.")
    for label in np.nonzero(counts)[0]:
        name = names.get(int(label))
        if name is None:
            continue
        group = anatomy.group_of(name)
        if group in wanted and counts[label] * voxel_ml >= MIN_ORGAN_ML:
            groups[int(label)] = group
    lung_thresholded = False
    if "lung" not in groups.values():
        lung = _thresholded_lung(image)
        if lung is not None:
            free = labels == 0
            offset = int(max(names, default=0)) + 1  # new labels that clash with nothing in the mask
            for value, name in THRESHOLDED_LUNG_NAMES.items():
                where = (lung == value) & free
                if where.sum() * voxel_ml >= MIN_ORGAN_ML:
                    label = offset + value
                    labels[where] = label
                    names[label] = name
                    groups[label] = "lung"
                    lung_thresholded = True
            notes.append("Lung found by thresholding at -400 HU (the organ mask has no lung); lobes unknown.")
    return OrganContext(labels, names, spacing_kji, groups, notes, lung_thresholded)


def _thresholded_lung(image: Volume) -> Optional[np.ndarray]:
    """The thresholded lung, or None when the scan shows no lung-sized air region."""
    try:
        lung = threshold_lung(image)
    except PastaInputError:
        return None
    voxel_ml = float(np.prod(image.spacing)) / 1000.0
    return lung if (lung > 0).sum() * voxel_ml >= 20.0 else None  # a few mL of bowel gas is not a lung
