"""Coded concepts (SNOMED CT, UCUM) used in reports and DICOM objects, in one place.

Codes follow DICOM PS3.16 (the context groups pydicom ships): lesion types from CID 7194
"Morphologically Abnormal Structure Segmentation Property Type", organs from the anatomic region
groups, category 49755003 for every lesion segment. Calculus (56381008) is not in CID 7194 (an
extensible group) but is the SNOMED CT morphologic abnormality for a stone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Concept:
    """A coded concept as DICOM writes it: value, coding scheme designator, meaning."""

    value: str
    scheme: str
    meaning: str


SCT = "SCT"

# Segmentation property category (CID 7150).
MORPHOLOGICALLY_ABNORMAL_STRUCTURE = Concept("49755003", SCT, "Morphologically Abnormal Structure")

# Lesion types (CID 7194).
NEOPLASM = Concept("108369006", SCT, "Neoplasm")
NEOPLASM_SECONDARY = Concept("14799000", SCT, "Neoplasm, Secondary")
CYST = Concept("367643001", SCT, "Cyst")
CALCULUS = Concept("56381008", SCT, "Calculus")

# Organs and sites.
LUNG = Concept("39607008", SCT, "Lung")
UPPER_LOBE_OF_LUNG = Concept("45653009", SCT, "Upper lobe of lung")
MIDDLE_LOBE_OF_RIGHT_LUNG = Concept("72481006", SCT, "Middle lobe of right lung")
LOWER_LOBE_OF_LUNG = Concept("90572001", SCT, "Lower lobe of lung")
LIVER = Concept("10200004", SCT, "Liver")
GALLBLADDER = Concept("28231008", SCT, "Gallbladder")
PANCREAS = Concept("15776009", SCT, "Pancreas")
KIDNEY = Concept("64033007", SCT, "Kidney")
URINARY_BLADDER = Concept("89837001", SCT, "Urinary bladder")
ESOPHAGUS = Concept("32849002", SCT, "Esophagus")
STOMACH = Concept("69695003", SCT, "Stomach")
COLON = Concept("71854001", SCT, "Colon")
BONE = Concept("272673000", SCT, "Bone")
VERTEBRA = Concept("51282000", SCT, "Vertebra")
SPLEEN = Concept("78961009", SCT, "Spleen")

# Laterality (CID 244).
RIGHT = Concept("24028007", SCT, "Right")
LEFT = Concept("7771000", SCT, "Left")
LATERALITY = {"right": RIGHT, "left": LEFT}
