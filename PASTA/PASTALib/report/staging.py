"""AJCC 8th edition T category where tumour size defines it, and what to say where it does not.

Size is the largest 3D diameter of the lesion (AJCC's "greatest dimension"), in mm. Each rule
below cites the AJCC Cancer Staging Manual, 8th edition (2017), chapter by chapter. Only the size
and multiplicity parts of each definition can be read from a segmentation; every size-based
category says which higher categories depend on invasion the reader must judge.

A learned staging head (later issue) plugs in through :class:`StagingHead`; its prediction becomes
the value and the rule's category stays beside it.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

from PASTALib.lesions.lesion_types import BY_KEY, LesionType

from .model import Finding, ModelPrediction, Staging

SYSTEM = "AJCC 8th edition"
STATUSES = ("size_based", "not_applicable_from_size", "not_staged_benign", "not_staged_metastasis")

# (upper bound in mm, inclusive; category) per organ, checked in order; beyond the last: `_ABOVE`.
# Lung, AJCC 8th ch. 36: T1a <= 1 cm, T1b > 1-2 cm, T1c > 2-3 cm, T2a > 3-4 cm, T2b > 4-5 cm,
# T3 > 5-7 cm, T4 > 7 cm (T1mi/Tis, and T2-T4 by invasion or separate nodules, need the reader).
LUNG = ((10.0, "T1a"), (20.0, "T1b"), (30.0, "T1c"), (40.0, "T2a"), (50.0, "T2b"), (70.0, "T3"))
# Kidney, AJCC 8th ch. 60: T1a <= 4 cm, T1b > 4-7 cm, T2a > 7-10 cm, T2b > 10 cm, limited to the
# kidney (T3/T4: extension into veins, perinephric fat or beyond Gerota's fascia, by the reader).
KIDNEY = ((40.0, "T1a"), (70.0, "T1b"), (100.0, "T2a"))
# Exocrine pancreas, AJCC 8th ch. 28: T1a <= 0.5 cm, T1b > 0.5-1 cm, T1c > 1-2 cm, T2 > 2-4 cm,
# T3 > 4 cm (T4: celiac axis, SMA or common hepatic artery involvement, whatever the size).
PANCREAS = ((5.0, "T1a"), (10.0, "T1b"), (20.0, "T1c"), (40.0, "T2"))
_ABOVE = {"lung": "T4", "kidney": "T2b", "pancreas": "T3"}
_TABLES = {"lung": LUNG, "kidney": KIDNEY, "pancreas": PANCREAS}
_CHAPTERS = {"lung": "AJCC 8th ch. 36 (lung)", "kidney": "AJCC 8th ch. 60 (kidney)",
             "pancreas": "AJCC 8th ch. 28 (exocrine pancreas)",
             "liver": "AJCC 8th ch. 22 (liver, hepatocellular carcinoma)"}
_INVASION_CAVEATS = {
    "lung": "Invasion (visceral pleura, main bronchus, chest wall, mediastinum) and separate tumour "
            "nodules can upstage to T2-T4; the reader must check them.",
    "kidney": "T3/T4 (renal vein, perinephric fat, beyond Gerota's fascia) need the reader.",
    "pancreas": "T4 (celiac axis, superior mesenteric or common hepatic artery) applies at any "
                "size; the reader must check arterial involvement.",
}
# Liver (HCC), AJCC 8th ch. 22: T1a solitary <= 2 cm; T1b solitary > 2 cm without vascular
# invasion; T2 solitary > 2 cm with vascular invasion, or multiple, none > 5 cm; T3 multiple, at
# least one > 5 cm; T4 major branch of the portal or hepatic vein, or adjacent organs other than
# the gallbladder, or perforation of the visceral peritoneum.
LIVER_SOLITARY_MM = 20.0
LIVER_MULTIPLE_MM = 50.0
WALL_ORGAN_RULE = ("T category of this cancer is defined by the depth of invasion through the wall "
                   "(AJCC 8th: esophagus ch. 16, stomach ch. 17, colon and rectum ch. 20, "
                   "gallbladder ch. 24, urinary bladder ch. 62), not by size: size-based T is not "
                   "applicable; the reader assigns it.")


class StagingHead(Protocol):
    """A learned staging head: returns a prediction for a finding, or None to leave the rule's."""

    def predict(self, finding: Finding) -> Optional[ModelPrediction]: ...


def t_from_size(organ: str, size_mm: float) -> str:
    """The size-defined T category for lung, kidney or pancreas (boundaries inclusive above)."""
    for upper, category in _TABLES[organ]:
        if size_mm <= upper:
            return category
    return _ABOVE[organ]


def liver_t(sizes_mm: Sequence[float]) -> tuple[str, list[str], bool, str]:
    """(category, alternatives, requires_reader, note) for all liver tumours of one patient."""
    largest = max(sizes_mm)
    if len(sizes_mm) == 1:
        if largest <= LIVER_SOLITARY_MM:
            return "T1a", [], False, "Solitary tumour <= 2 cm."
        return ("T1b", ["T2"], True, "Solitary tumour > 2 cm: T1b without vascular invasion, T2 "
                "with it; vascular invasion cannot be judged from size, the reader must decide.")
    if largest > LIVER_MULTIPLE_MM:
        return "T3", [], False, f"{len(sizes_mm)} tumours, at least one > 5 cm."
    return "T2", [], False, f"{len(sizes_mm)} tumours, none > 5 cm."


def _staging(status: str, rule: str, value: Optional[str] = None, size: Optional[float] = None,
             alternatives: Sequence[str] = (), requires_reader: bool = False,
             notes: Sequence[str] = ()) -> Staging:
    return Staging(system=SYSTEM, status=status, value=value, source="rule" if value else None,
                   rule_value=value, rule=rule, size_mm=size,
                   size_measure="largest 3D diameter" if size is not None else None,
                   alternatives=list(alternatives), requires_reader=requires_reader, notes=list(notes))


def stage_finding(lesion_type: LesionType, size_mm: float,
                  liver_tumour_sizes_mm: Sequence[float] = ()) -> Staging:
    """Staging of one finding; liver tumours need the sizes of all liver tumours (multiplicity)."""
    kind = lesion_type.staging
    if kind is None:
        return _staging("not_staged_benign", f"{lesion_type.name} is benign: not staged.")
    if kind == "metastasis":
        return _staging("not_staged_metastasis", "A bone metastasis is M1 disease of its primary "
                        "tumour; it has no T category of its own.")
    if kind == "wall":
        return _staging("not_applicable_from_size", WALL_ORGAN_RULE, size=size_mm,
                        requires_reader=True)
    if kind == "liver":
        sizes = list(liver_tumour_sizes_mm) or [size_mm]
        value, alternatives, reader, note = liver_t(sizes)
        rule = (f"{_CHAPTERS['liver']}: T1a solitary <= 2 cm; T1b solitary > 2 cm without vascular "
                "invasion; T2 solitary > 2 cm with vascular invasion, or multiple none > 5 cm; T3 "
                "multiple, at least one > 5 cm.")
        notes = [note, "T4 (major portal or hepatic vein branch, adjacent organs other than the "
                 "gallbladder, visceral peritoneum) needs the reader.",
                 "Assumes every liver tumour finding is the same primary cancer (HCC rules)."]
        return _staging("size_based", rule, value, size_mm, alternatives, reader, notes)
    value = t_from_size(kind, size_mm)
    bounds = ", ".join(f"{c} <= {u / 10:g} cm" for u, c in _TABLES[kind]) + f", {_ABOVE[kind]} above"
    return _staging("size_based", f"{_CHAPTERS[kind]}: {bounds} (greatest dimension).", value,
                    size_mm, notes=[_INVASION_CAVEATS[kind]])


def stage_findings(findings: Sequence[Finding], head: Optional[StagingHead] = None) -> None:
    """Set ``finding.staging`` for every finding (liver multiplicity counts all liver tumours)."""
    liver_key = BY_KEY["liver_tumor"].key
    liver_sizes = [f.measurements.max_3d_diameter.length_mm for f in findings
                   if f.lesion_type.key == liver_key and f.review.status != "rejected"]
    for finding in findings:
        lesion_type = BY_KEY[finding.lesion_type.key]
        size = finding.measurements.max_3d_diameter.length_mm
        finding.staging = stage_finding(lesion_type, size, liver_sizes if lesion_type.staging == "liver" else ())
        if head is not None:
            prediction = head.predict(finding)
            if prediction is not None:
                finding.staging.model = prediction
                finding.staging.value = prediction.value
                finding.staging.source = "model"
