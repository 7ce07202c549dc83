"""The structured report as dataclasses, with a lossless JSON round trip.

The JSON form is described by ``Resources/report.schema.json`` (same :data:`SCHEMA_VERSION`).
Every machine value is kept: a learned attribute or staging head stores its prediction next to the
rule's, and a reader edit records the original value, who and when (:mod:`.review`).

Annotations use ``typing.Optional``/``List``/``Dict`` so :func:`from_dict` can evaluate them on
Python 3.9 too.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

SCHEMA_NAME = "pasta-report"
FINDINGS_SCHEMA_NAME = "pasta-findings"
SCHEMA_VERSION = "1.0.0"
#: The JSON Schema of report.json and findings.json (shipped as package data).
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "Resources" / "report.schema.json"
DISCLAIMER = ("Research use only. Not a medical device. Machine-generated draft: every finding, "
              "measurement, attribute and T category must be checked by a qualified reader.")

#: PASTA's report vocabulary (PASTA_REFERENCE.md 7), option strings in the model's index order.
ATTRIBUTE_OPTIONS: Dict[str, List[str]] = {
    "Shape": ["Round-like", "Irregular", "Wall thickening", "Punctate, nodular"],
    "Density": ["Hypodense", "Isodense", "Hyperdense"],
    "Heterogeneity": ["Homogeneous", "Heterogeneous"],
    "Surface": ["Well-defined margin", "Ill-defined margin"],
    "Invasion": ["No close relationship with adjacent structures",
                 "Close relationship with adjacent structures"],
}
REVIEW_STATUSES = ("pending", "accepted", "rejected")


@dataclass
class Code:
    value: str
    scheme: str
    meaning: str


@dataclass
class LesionTypeRef:
    id: int
    key: str
    name: str
    malignant: bool
    code: Code


@dataclass
class Location:
    organ: Optional[str]  #: organ group key, e.g. "kidney"
    organ_name: Optional[str]
    site: Optional[str]  #: the organ label it lies in most, e.g. "lung upper lobe right"
    organ_label_id: Optional[int]
    side: Optional[str]  #: "right", "left" or None
    lobe: Optional[str]
    source: str  #: "organ mask" or "lesion type (no organ mask)"
    organ_fractions: Dict[str, float]  #: fraction of lesion voxels per organ group
    code: Optional[Code]
    matches_lesion_type: bool


@dataclass
class Component:
    label_value: int  #: value in the lesion label map
    component: int  #: 1-based index of the connected component among that label's components
    part: int  #: 1-based part when the component was split where it spans organs, else 1
    parts: int
    voxel_count: int


@dataclass
class Confidence:
    mean: float
    max: float
    source: str


@dataclass
class Line:
    length_mm: float
    start_ras: List[float]
    end_ras: List[float]


@dataclass
class Recist:
    long_axis: Line
    short_axis: Line
    slice_axis: str  #: index axis normal to the measured slice ("k" for axial acquisitions)
    slice_index: int
    slice_center_ras: List[float]


@dataclass
class IntensityStats:
    mean: float
    std: float
    min: float
    max: float
    percentiles: Dict[str, float]


@dataclass
class BoundingBox:
    ijk_min: List[int]
    ijk_max: List[int]
    ras_min: List[float]
    ras_max: List[float]


@dataclass
class Measurements:
    volume_ml: float
    recist: Recist
    max_3d_diameter: Line
    hu: IntensityStats
    bbox: BoundingBox
    centroid_ras: List[float]


@dataclass
class RuleEvidence:
    """Why a rule chose its value: the deciding measurement against its threshold."""

    value: Optional[str]
    measurement: str
    measured: Optional[float]
    unit: str
    threshold: Optional[float]
    rule: str
    supporting: Dict[str, Optional[float]] = field(default_factory=dict)


@dataclass
class ModelPrediction:
    value: Optional[str]
    probabilities: Dict[str, float]
    model_id: str


@dataclass
class Attribute:
    value: Optional[str]
    source: str  #: "rule", "model" or "reader"
    rule: RuleEvidence
    model: Optional[ModelPrediction] = None


@dataclass
class Staging:
    system: str
    status: str  #: "size_based", "not_applicable_from_size", "not_staged_benign", "not_staged_metastasis"
    value: Optional[str]  #: final T category ("T1a", ...) or None
    source: Optional[str]  #: "rule", "model", "reader" or None
    rule_value: Optional[str]
    rule: str
    size_mm: Optional[float]
    size_measure: Optional[str]
    alternatives: List[str]
    requires_reader: bool
    notes: List[str]
    model: Optional[ModelPrediction] = None


@dataclass
class Review:
    status: str = "pending"
    reviewer: Optional[str] = None
    time: Optional[str] = None
    comment: Optional[str] = None


@dataclass
class HeadProvenance:
    """Where a learned head's prediction comes from (``pasta fit-head``), so a reader can judge it."""

    file: str
    sha256: str  #: of the head file
    task: str  #: "stage", "binary" or "survival"
    training_size: int
    cv_metric: str  #: "balanced_accuracy", "auc" or "c_index"
    cv_value: Optional[float]
    cv_folds: int
    features_model: str
    features_model_sha256: str
    created: str


@dataclass
class HeadPrediction:
    """A learned head's output for one finding: a class, or a Cox risk with survival probabilities."""

    task: str
    value: Optional[str]
    probabilities: Dict[str, float]
    risk_score: Optional[float]  #: log relative hazard against the average training case (survival)
    relative_hazard: Optional[float]
    survival: Dict[str, float]  #: follow-up time (the training labels' unit) -> survival probability
    notes: List[str]
    provenance: HeadProvenance


@dataclass
class Finding:
    id: str
    lesion_type: LesionTypeRef
    location: Location
    component: Component
    confidence: Optional[Confidence]
    measurements: Measurements
    attributes: Dict[str, Attribute]
    staging: Staging
    review: Review
    notes: List[str]
    heads: List[HeadPrediction] = field(default_factory=list)  #: ``pasta analyze --head``


@dataclass
class ReaderEdit:
    target: str  #: a finding id ("F1") or "report"
    field: str  #: dotted path inside the target, e.g. "attributes.Shape.value"
    original: Any  #: the machine value (the first value, however often the field was edited)
    previous: Any
    new: Any
    editor: str
    time: str
    comment: Optional[str] = None


@dataclass
class Geometry:
    size: List[int]
    spacing_mm: List[float]
    origin_lps: List[float]
    direction: List[List[float]]


@dataclass
class Source:
    image: str
    study_instance_uid: Optional[str]
    series_instance_uid: Optional[str]
    modality: Optional[str]
    series_description: Optional[str]
    manufacturer: Optional[str]
    geometry: Geometry


@dataclass
class Provenance:
    software: str
    software_version: str
    model_id: str  #: "none" when the lesion map did not come from a PASTA model
    inputs: Dict[str, Optional[str]]
    parameters: Dict[str, Any]
    notes: List[str]


@dataclass
class Dropped:
    count: int
    total_volume_ml: float
    min_volume_ml: float


@dataclass
class Report:
    schema: str
    schema_version: str
    report_id: str
    created: str
    source: Source
    provenance: Provenance
    findings: List[Finding]
    dropped: Dropped
    impression: str
    edits: List[ReaderEdit]
    disclaimer: str = DISCLAIMER

    def finding(self, finding_id: str) -> Finding:
        for item in self.findings:
            if item.id == finding_id:
                return item
        raise KeyError(f"no finding {finding_id!r}; findings are "
                       f"{', '.join(f.id for f in self.findings) or 'none'}")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Report":
        return from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Report":
        return cls.from_dict(json.loads(text))

    def findings_document(self) -> dict:
        """``findings.json``: the machine findings alone, for scripts that need no report."""
        return {"schema": FINDINGS_SCHEMA_NAME, "schema_version": self.schema_version,
                "report_id": self.report_id, "source": to_dict(self.source),
                "findings": [to_dict(f) for f in self.findings], "dropped": to_dict(self.dropped)}


# ----------------------------------------------------------------------------------- (de)serialise
def to_dict(obj: Any) -> Any:
    """Dataclasses to plain JSON types (field order kept)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(tp: Any, data: Any) -> Any:
    """Rebuild typed values from :func:`to_dict` output, guided by the dataclass annotations."""
    if tp is Any:
        return data
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if data is None else from_dict(args[0], data)
    if origin in (list, List):
        (item,) = typing.get_args(tp)
        return [from_dict(item, v) for v in data]
    if origin in (dict, Dict):
        _, item = typing.get_args(tp)
        return {k: from_dict(item, v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        unknown = set(data) - {f.name for f in dataclasses.fields(tp)}
        if unknown:
            raise ValueError(f"{tp.__name__} has no field(s) {sorted(unknown)}")
        return tp(**{name: from_dict(hints[name], value) for name, value in data.items()})
    if tp is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    return data
