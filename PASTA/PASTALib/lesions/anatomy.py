"""Organ labels: from TotalSegmentator v2 class names to organ groups, sides, lobes and codes.

Organ ids are never hard-coded: they are read from a label table (the bundled
``totalsegmentator_v2_classes.json`` by default), and each class *name* is mapped to an organ
group. This keeps v1/v2 id differences (PASTA_REFERENCE.md, 8.1) out of the logic.

A *group* is the organ a lesion type belongs to ("lung" covers the five lobes, "kidney" the two
kidneys and TotalSegmentator's kidney-cyst classes, "bone" every bone). Findings are split only
where a lesion spans groups, never at a lung fissure or between two vertebrae.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

from . import codes

TOTALSEGMENTATOR_V2_TABLE = (Path(__file__).resolve().parents[1] / "sample_data"
                             / "totalsegmentator_v2_classes.json")


@dataclass(frozen=True)
class OrganGroup:
    key: str
    name: str
    code: Optional[codes.Concept]
    window: tuple[float, float]  #: (width, level) in HU for key images
    hollow: bool = False  #: a hollow viscus, whose cancers are staged by depth of wall invasion


SOFT_TISSUE_WINDOW = (400.0, 40.0)

ORGAN_GROUPS: dict[str, OrganGroup] = {g.key: g for g in (
    OrganGroup("lung", "lung", codes.LUNG, (1500.0, -600.0)),
    OrganGroup("liver", "liver", codes.LIVER, (200.0, 60.0)),
    OrganGroup("gallbladder", "gallbladder", codes.GALLBLADDER, SOFT_TISSUE_WINDOW, hollow=True),
    OrganGroup("pancreas", "pancreas", codes.PANCREAS, (300.0, 50.0)),
    OrganGroup("kidney", "kidney", codes.KIDNEY, SOFT_TISSUE_WINDOW),
    OrganGroup("urinary_bladder", "urinary bladder", codes.URINARY_BLADDER, SOFT_TISSUE_WINDOW,
               hollow=True),
    OrganGroup("esophagus", "esophagus", codes.ESOPHAGUS, SOFT_TISSUE_WINDOW, hollow=True),
    OrganGroup("stomach", "stomach", codes.STOMACH, SOFT_TISSUE_WINDOW, hollow=True),
    OrganGroup("colon", "colon and rectum", codes.COLON, SOFT_TISSUE_WINDOW, hollow=True),
    OrganGroup("bone", "bone", codes.BONE, (1800.0, 400.0)),
    OrganGroup("spleen", "spleen", codes.SPLEEN, SOFT_TISSUE_WINDOW),
)}

_BONE_PREFIXES = ("vertebrae_", "rib_", "hip_", "femur_", "humerus_", "scapula_", "clavicula_")
_BONE_NAMES = {"sacrum", "sternum", "skull"}
_SIDE = re.compile(r"(?:^|_)(left|right)(?:_|$)")
_LOBE = re.compile(r"lung_(upper|middle|lower)_lobe")


@dataclass(frozen=True)
class OrganSite:
    """What one organ label means for a report: group, readable site, side, lobe, code."""

    label_id: int
    label_name: str
    group: str
    site: str
    side: Optional[str]
    lobe: Optional[str]
    code: Optional[codes.Concept]


def group_of(name: str) -> str:
    """The organ group of a TotalSegmentator class name (unknown names form their own group)."""
    if name.startswith("lung_"):
        return "lung"
    if name.startswith("kidney"):  # kidney_left/right and kidney_cyst_left/right
        return "kidney"
    if name in _BONE_NAMES or name.startswith(_BONE_PREFIXES):
        return "bone"
    return _SIDE.sub("", name) or name


def site_of(label_id: int, name: str) -> OrganSite:
    side_match = _SIDE.search(name)
    side = side_match.group(1) if side_match else None
    lobe_match = _LOBE.match(name)
    lobe = f"{lobe_match.group(1)} lobe" if lobe_match else None
    group = group_of(name)
    code = ORGAN_GROUPS[group].code if group in ORGAN_GROUPS else None
    if lobe:
        code = {"upper lobe": codes.UPPER_LOBE_OF_LUNG, "middle lobe": codes.MIDDLE_LOBE_OF_RIGHT_LUNG,
                "lower lobe": codes.LOWER_LOBE_OF_LUNG}[lobe]
    elif name.startswith("vertebrae_"):
        code = codes.VERTEBRA
    site = name.replace("vertebrae_", "vertebra ").replace("_", " ")
    if group == "lung" and lobe is None and side:
        site = f"{side} lung"  # a whole lung whose lobes are unknown (a thresholded host): no lobe is claimed
    return OrganSite(label_id, name, group, site, side, lobe, code)


def group_name(group: str) -> str:
    return ORGAN_GROUPS[group].name if group in ORGAN_GROUPS else group.replace("_", " ")


def window_for(group: Optional[str]) -> tuple[float, float]:
    """(width, level) for an organ group; soft tissue for anything unlisted."""
    return ORGAN_GROUPS[group].window if group in ORGAN_GROUPS else SOFT_TISSUE_WINDOW


def sites_from_names(names: dict[int, str]) -> dict[int, OrganSite]:
    return {label_id: site_of(label_id, name) for label_id, name in names.items()}


@lru_cache(maxsize=1)
def totalsegmentator_v2_names() -> dict[int, str]:
    """Label id -> class name of TotalSegmentator v2's ``total`` task, read once from the bundled table
    (shared: copy before changing it)."""
    from PASTALib.io.sample_data import load_label_names

    return load_label_names(TOTALSEGMENTATOR_V2_TABLE)


@lru_cache(maxsize=1)
def totalsegmentator_v2_sites() -> dict[int, OrganSite]:
    """The organ sites of TotalSegmentator v2's ``total`` task, read from the bundled table."""
    return sites_from_names(totalsegmentator_v2_names())


def host_label_ids(group: str, sites: dict[int, OrganSite] | None = None) -> list[int]:
    """Organ label ids belonging to a group (e.g. lung -> the five lobes' ids)."""
    sites = totalsegmentator_v2_sites() if sites is None else sites
    return sorted(label for label, site in sites.items() if site.group == group)
