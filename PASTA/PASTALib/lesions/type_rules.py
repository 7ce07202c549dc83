"""A finding's lesion type, decided from its organ and its content: the one place that does it.

Every PASTA lesion type lives in one organ group (:data:`.lesion_types.LESION_TYPES`), so the organ
limits the choice; the lesion's density picks within it (fluid -> the organ's cyst, calcified ->
its stone, otherwise its tumour). A label's type (a reader's, or a model's class) that the organ can
host is kept; one it cannot host is replaced, and the report says so. A region in no host organ is not a PASTA finding (``None``). ``pasta
analyze``, ``pasta report`` and the Slicer module all reach this through
:func:`PASTALib.report.findings.analyse_segmentation`; the detector uses it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from . import codes, lesion_types
from .anatomy import group_name

#: Water-like core: a cyst. Simple cysts measure -9 to 20 HU (Bosniak), but from 10 to 20 HU a cyst and a
#: hypodense tumour overlap, and calling a tumour a cyst is the worse mistake: those stay tumours.
FLUID_MAX_HU = 10.0
#: Calcified: a stone (urinary and gallstones are mostly above 200 HU; 150 keeps small, blurred ones).
CALCIFIED_MIN_HU = 150.0
#: What each content class may become, by the type's SNOMED CT morphology.
CONTENT_MORPHOLOGY = {"fluid": codes.CYST, "calcified": codes.CALCULUS}


@dataclass(frozen=True)
class TypeDecision:
    lesion_type: lesion_types.LesionType
    rule: str  #: in words, for the report: which rule decided


def content_of(mean_hu: float) -> str:
    if mean_hu >= CALCIFIED_MIN_HU:
        return "calcified"
    if mean_hu <= FLUID_MAX_HU:
        return "fluid"
    return "solid"


#: A core holding less than this share of its lesion is too small a sample of it: the whole lesion is used.
MIN_CORE_SHARE = 0.1


def core_density(image: np.ndarray, mask: np.ndarray) -> float:
    """Median HU of a lesion's core (its voxels one voxel away from its border): the border shares its
    voxels with the surroundings. A lesion too thin or ragged to have a core of at least
    :data:`MIN_CORE_SHARE` of its voxels is judged on all of them: a 12 mL necrotic liver tumour on a
    3 mm grid kept 4 core voxels, all in its water-like centre, and was called a cyst."""
    core = ndimage.binary_erosion(mask, np.ones((3, 3, 3), bool))
    enough = core.sum() >= max(4, MIN_CORE_SHARE * mask.sum())
    return float(np.median(image[core if enough else mask]))


def hosted_types(group: Optional[str]) -> list[lesion_types.LesionType]:
    return [t for t in lesion_types.LESION_TYPES if t.organ == group]


def _by_content(types: list[lesion_types.LesionType], content: str) -> list[lesion_types.LesionType]:
    morphology = CONTENT_MORPHOLOGY.get(content)
    matching = [t for t in types if morphology is not None and t.code == morphology]
    if matching:
        return matching
    return [t for t in types if t.code not in CONTENT_MORPHOLOGY.values()] or types


def decide_type(group: Optional[str], mean_hu: float,
                proposed: Optional[lesion_types.LesionType] = None) -> Optional[TypeDecision]:
    """The type of a lesion in organ group ``group`` with mean density ``mean_hu``; ``proposed`` is a
    model's or a label map's type. None when the organ hosts no PASTA lesion type."""
    types = hosted_types(group)
    if not types:
        return None
    organ = group_name(group)
    if proposed is not None and proposed in types:  # a reader's label or a model's class the organ can host
        return TypeDecision(proposed, f"the label ({proposed.name}), a type the {organ} can host")
    if len(types) == 1:
        chosen = types[0]
        rule = f"organ: the {organ} hosts one PASTA lesion type"
    else:
        content = content_of(mean_hu)
        chosen = _by_content(types, content)[0]
        rule = f"organ and content: {content} ({mean_hu:.0f} HU) in the {organ}"
    if proposed is not None:
        rule += f"; the label said {proposed.name}, a {group_name(proposed.organ)} lesion"
    return TypeDecision(chosen, rule)
