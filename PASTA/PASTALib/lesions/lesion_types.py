"""PASTA's lesion types (15 in the paper) and the ids a lesion label map uses for them: the one table.

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
    color: tuple[float, float, float]  #: segment colour in Slicer and key images (RGB, 0-1)
    #: key of the type's synthesis parameters (:data:`PASTASynthLib.catalog.SPECS`); empty: the type's own key
    synthesis: str = ""

    @property
    def synthesis_key(self) -> str:
        return self.synthesis or self.key


#: The table. One row per type; everything else (report, DICOM codes, synthesis, training classes, the
#: Slicer modules' type lists and segment colours) reads it. Columns: id, key, name, host organ group,
#: malignant, SNOMED CT morphology, staging kind, PASTA-Gen folder, segment colour (RGB 0-1).
LESION_TYPES: list[LesionType] = [
    LesionType(1, "lung_tumor", "Lung tumor", "lung", True, codes.NEOPLASM, "lung", "Lung/Tumor",
               (0.85, 0.33, 0.10)),
    LesionType(2, "liver_tumor", "Liver tumor", "liver", True, codes.NEOPLASM, "liver", "Liver/Tumor",
               (0.89, 0.10, 0.11)),
    LesionType(3, "gallbladder_cancer", "Gallbladder cancer", "gallbladder", True, codes.NEOPLASM, "wall", "Gall/Tumor",
               (0.80, 0.60, 0.00)),
    LesionType(4, "pancreas_tumor", "Pancreas tumor", "pancreas", True, codes.NEOPLASM, "pancreas", "Pancreas/Tumor",
               (0.91, 0.16, 0.54)),
    LesionType(5, "kidney_tumor", "Kidney tumor", "kidney", True, codes.NEOPLASM, "kidney", "Kidney/Tumor",
               (1.00, 0.50, 0.00)),
    LesionType(6, "bladder_cancer", "Bladder cancer", "urinary_bladder", True, codes.NEOPLASM, "wall", "Bladder/Tumor",
               (0.65, 0.34, 0.16)),
    LesionType(7, "esophageal_cancer", "Esophageal cancer", "esophagus", True, codes.NEOPLASM, "wall", "Esophagus/Tumor",
               (0.75, 0.00, 0.30)),
    LesionType(8, "gastric_cancer", "Gastric cancer", "stomach", True, codes.NEOPLASM, "wall", "Stomach/Tumor",
               (0.60, 0.20, 0.60)),
    LesionType(9, "colorectal_cancer", "Colorectal cancer", "colon", True, codes.NEOPLASM, "wall", "Colon/Tumor",
               (0.55, 0.00, 0.00)),
    LesionType(10, "bone_metastasis", "Bone metastasis", "bone", True, codes.NEOPLASM_SECONDARY, "metastasis", "Bone/Metastasis",
               (1.00, 0.90, 0.00)),
    LesionType(11, "liver_cyst", "Liver cyst", "liver", False, codes.CYST, None, "Liver/Cyst",
               (0.20, 0.60, 1.00)),
    LesionType(12, "gallstone", "Gallstone", "gallbladder", False, codes.CALCULUS, None, "Gall/Stone",
               (0.90, 0.90, 0.70)),
    LesionType(13, "pancreas_cyst", "Pancreas cyst", "pancreas", False, codes.CYST, None, "Pancreas/Cyst",
               (0.40, 0.80, 0.90)),
    LesionType(14, "kidney_cyst", "Kidney cyst", "kidney", False, codes.CYST, None, "Kidney/Cyst",
               (0.30, 0.75, 0.45)),
    LesionType(15, "kidney_stone", "Kidney stone", "kidney", False, codes.CALCULUS, None, "Kidney/Stone",
               (0.95, 0.95, 0.95)),
]

BY_ID: dict[int, LesionType] = {t.id: t for t in LESION_TYPES}
BY_KEY: dict[str, LesionType] = {t.key: t for t in LESION_TYPES}


def register(lesion_type: LesionType) -> None:
    """Add a type to the table at run time (a new type is normally a row above). Everything reads the
    table through :data:`LESION_TYPES`, :data:`BY_ID` and :data:`BY_KEY`, which change in place."""
    if lesion_type.id in BY_ID or lesion_type.key in BY_KEY:
        raise ValueError(f"lesion type id {lesion_type.id} or key {lesion_type.key!r} is already in the table")
    if lesion_type.id != max(BY_ID, default=0) + 1:
        raise ValueError(f"lesion type ids are consecutive: the next is {max(BY_ID, default=0) + 1}")
    LESION_TYPES.append(lesion_type)
    BY_ID[lesion_type.id] = lesion_type
    BY_KEY[lesion_type.key] = lesion_type


def unregister(key: str) -> None:
    """Remove the last type added by :func:`register` (tests use it to restore the table)."""
    lesion_type = BY_KEY.pop(key)
    del BY_ID[lesion_type.id]
    LESION_TYPES.remove(lesion_type)


def keys() -> list[str]:
    """Every type's key, in id order (the Slicer module's lesion-type choices)."""
    return [t.key for t in LESION_TYPES]


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
