"""PASTA's 15 lesion types and the ids a lesion label map uses for them.

A lesion label map holds 0 for background and the lesion-type id (1-15, PASTA's order: the 10
malignant types, then the 5 benign ones, as in the PASTA paper's Fig. 1a) for each lesion voxel.
A binary 0/1 map is accepted too, with the type given separately (``--lesion-type``).

Each type names its host organ group (see :mod:`.anatomy`, where the TotalSegmentator v2 ids live),
its SNOMED CT morphology code for DICOM SEG, and how it is staged (:mod:`.staging`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from PASTALib.errors import PastaInputError

from . import codes


@dataclass(frozen=True)
class LesionType:
    id: int
    key: str
    name: str
    organ: str  #: host organ group key in :data:`.anatomy.ORGAN_GROUPS`
    malignant: bool
    code: codes.Concept  #: segmented property type (SNOMED CT morphologic abnormality)
    #: "lung", "liver", "kidney", "pancreas" (T from size), "wall" (T from depth of wall invasion),
    #: "metastasis" (not T-staged) or None (benign: not staged)
    staging: Optional[str]
    folder: str  #: PASTA-Gen-30K folder name (Organ/Type)


LESION_TYPES: tuple[LesionType, ...] = (
    LesionType(1, "lung_tumor", "Lung tumor", "lung", True, codes.NEOPLASM, "lung", "Lung/Tumor"),
    LesionType(2, "liver_tumor", "Liver tumor", "liver", True, codes.NEOPLASM, "liver", "Liver/Tumor"),
    LesionType(3, "gallbladder_cancer", "Gallbladder cancer", "gallbladder", True, codes.NEOPLASM,
               "wall", "Gall/Tumor"),
    LesionType(4, "pancreas_tumor", "Pancreas tumor", "pancreas", True, codes.NEOPLASM, "pancreas",
               "Pancreas/Tumor"),
    LesionType(5, "kidney_tumor", "Kidney tumor", "kidney", True, codes.NEOPLASM, "kidney",
               "Kidney/Tumor"),
    LesionType(6, "bladder_cancer", "Bladder cancer", "urinary_bladder", True, codes.NEOPLASM, "wall",
               "Bladder/Tumor"),
    LesionType(7, "esophageal_cancer", "Esophageal cancer", "esophagus", True, codes.NEOPLASM, "wall",
               "Esophagus/Tumor"),
    LesionType(8, "gastric_cancer", "Gastric cancer", "stomach", True, codes.NEOPLASM, "wall",
               "Stomach/Tumor"),
    LesionType(9, "colorectal_cancer", "Colorectal cancer", "colon", True, codes.NEOPLASM, "wall",
               "Colon/Tumor"),
    LesionType(10, "bone_metastasis", "Bone metastasis", "bone", True, codes.NEOPLASM_SECONDARY,
               "metastasis", "Bone/Metastasis"),
    LesionType(11, "liver_cyst", "Liver cyst", "liver", False, codes.CYST, None, "Liver/Cyst"),
    LesionType(12, "gallstone", "Gallstone", "gallbladder", False, codes.CALCULUS, None, "Gall/Stone"),
    LesionType(13, "pancreas_cyst", "Pancreas cyst", "pancreas", False, codes.CYST, None,
               "Pancreas/Cyst"),
    LesionType(14, "kidney_cyst", "Kidney cyst", "kidney", False, codes.CYST, None, "Kidney/Cyst"),
    LesionType(15, "kidney_stone", "Kidney stone", "kidney", False, codes.CALCULUS, None,
               "Kidney/Stone"),
)

BY_ID: dict[int, LesionType] = {t.id: t for t in LESION_TYPES}
BY_KEY: dict[str, LesionType] = {t.key: t for t in LESION_TYPES}


def id_table() -> str:
    """'1 lung_tumor, 2 liver_tumor, ...' for error messages and --help."""
    return ", ".join(f"{t.id} {t.key}" for t in LESION_TYPES)


def lookup(name_or_id: str | int) -> LesionType:
    """A lesion type by id (``5``), key (``kidney_tumor``) or name (``Kidney tumor``)."""
    text = str(name_or_id).strip()
    if text.isdigit() and int(text) in BY_ID:
        return BY_ID[int(text)]
    key = text.lower().replace(" ", "_").replace("-", "_")
    if key in BY_KEY:
        return BY_KEY[key]
    raise PastaInputError(f"Unknown lesion type {name_or_id!r}.",
                          f"Use an id or a key from: {id_table()}.")
