"""The structured report as dataclasses, with a lossless JSON round trip.

The JSON form is described by ``Resources/report.schema.json``, generated from these classes by
:mod:`.schema`; older versions are read through :mod:`.versions`.
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

from PASTALib.errors import PastaInputError
from PASTALib.lesions.vocabulary import REPORT_OPTIONS

from .versions import FINDINGS_SCHEMA_NAME, SCHEMA_NAME, SCHEMA_VERSION, upgrade

#: The JSON Schema of report.json and findings.json (shipped as package data).
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "Resources" / "report.schema.json"
DISCLAIMER = ("Research use only. Not a medical device. Machine-generated draft: every finding, "
              "measurement, attribute and T category must be checked by a qualified reader.")

#: PASTA's report vocabulary, option strings in the model's index order (from :mod:`PASTALib.lesions.vocabulary`).
ATTRIBUTE_OPTIONS: Dict[str, List[str]] = REPORT_OPTIONS
REVIEW_STATUSES = ("pending", "accepted", "rejected")
#: Who set a value: a measurement rule, a learned head, or the reader.
VALUE_SOURCES = ("rule", "model", "reader")
HEAD_TASKS = ("stage", "binary", "survival")
STAGING_STATUSES = ("size_based", "not_applicable_from_size", "not_staged_benign", "not_staged_metastasis")


def constrained(**constraints: Any) -> Any:
    """A field's JSON-schema constraints (read by :mod:`.schema`, which generates report.schema.json)."""
    return field(metadata={"schema": constraints})


def constrained_with_default(default: Any = dataclasses.MISSING, default_factory: Any = dataclasses.MISSING,
                        **constraints: Any) -> Any:
    return field(default=default, default_factory=default_factory, metadata={"schema": constraints})


XYZ = {"minItems": 3, "maxItems": 3}
PROBABILITY = {"minimum": 0, "maximum": 1}


@dataclass
class Code:
    value: str
    scheme: str
    meaning: str

    @classmethod
    def of(cls, concept) -> "Code":
        """A coded concept of the project's tables (lesion types, organ groups, sites) as a report code."""
        return cls(concept.value, concept.scheme, concept.meaning)


@dataclass
class LesionTypeRef:
    id: int = constrained(minimum=1)  #: no maximum: the lesion-type table may grow
    key: str
    name: str
    malignant: bool
    code: Code

    @classmethod
    def of(cls, lesion_type) -> "LesionTypeRef":
        """The report's reference to a row of :mod:`PASTALib.lesions.lesion_types`."""
        return cls(lesion_type.id, lesion_type.key, lesion_type.name, lesion_type.malignant,
                   Code.of(lesion_type.code))


@dataclass
class Location:
    organ: Optional[str]  #: organ group key, e.g. "kidney"
    organ_name: Optional[str]
    site: Optional[str]  #: the organ label it lies in most, e.g. "lung upper lobe right"
    organ_label_id: Optional[int]
    side: Optional[str] = constrained(enum=["right", "left", None])
    lobe: Optional[str]
    source: str  #: "organ mask" or "lesion type (no organ mask)"
    organ_fractions: Dict[str, float] = constrained(values=PROBABILITY)  #: fraction of lesion voxels per organ group
    code: Optional[Code]
    matches_lesion_type: bool


@dataclass
class Component:
    label_value: int  #: value in the lesion label map
    component: int = constrained(minimum=1)  #: 1-based index of the connected component among that label's components
    part: int = constrained(minimum=1)  #: 1-based part when the component was split where it spans organs, else 1
    parts: int = constrained(minimum=1)
    voxel_count: int = constrained(minimum=1)


@dataclass
class Confidence:
    mean: float = constrained(**PROBABILITY)
    max: float = constrained(**PROBABILITY)
    source: str


@dataclass
class Line:
    length_mm: float = constrained(minimum=0)
    start_ras: List[float] = constrained(**XYZ)
    end_ras: List[float] = constrained(**XYZ)


@dataclass
class Recist:
    long_axis: Line
    short_axis: Line
    slice_axis: str = constrained(enum=["i", "j", "k"])  #: index axis normal to the measured slice ("k" for axial)
    slice_index: int
    slice_center_ras: List[float] = constrained(**XYZ)


@dataclass
class IntensityStats:
    mean: float
    std: float
    min: float
    max: float
    percentiles: Dict[str, float]


@dataclass
class BoundingBox:
    ijk_min: List[int] = constrained(**XYZ)
    ijk_max: List[int] = constrained(**XYZ)
    ras_min: List[float] = constrained(**XYZ)
    ras_max: List[float] = constrained(**XYZ)


@dataclass
class Measurements:
    volume_ml: float = constrained(minimum=0)
    recist: Recist
    max_3d_diameter: Line
    hu: IntensityStats
    bbox: BoundingBox
    centroid_ras: List[float] = constrained(**XYZ)


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
    """One of PASTA's five attributes; :mod:`.schema` restricts ``value`` to that attribute's options."""

    value: Optional[str]
    source: str = constrained(enum=list(VALUE_SOURCES))
    rule: RuleEvidence
    model: Optional[ModelPrediction] = None


@dataclass
class Staging:
    system: str
    status: str = constrained(enum=list(STAGING_STATUSES))
    value: Optional[str] = constrained(pattern="^T[0-4][a-c]?$|^Tis$|^TX$|^T0$")  #: final T category ("T1a", ...) or None
    source: Optional[str] = constrained(enum=[*VALUE_SOURCES, None])
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
    status: str = constrained_with_default("pending", enum=list(REVIEW_STATUSES))
    reviewer: Optional[str] = None
    time: Optional[str] = None
    comment: Optional[str] = None


@dataclass
class HeadProvenance:
    """Where a learned head's prediction comes from (``pasta fit-head``), so a reader can judge it."""

    file: str
    sha256: str = constrained(pattern="^[0-9a-f]{64}$")  #: of the head file
    task: str = constrained(enum=list(HEAD_TASKS))
    training_size: int = constrained(minimum=1)
    cv_metric: str  #: "balanced_accuracy", "auc" or "c_index"
    cv_value: Optional[float]
    cv_folds: int = constrained(minimum=2)
    features_model: str
    features_model_sha256: str
    created: str


@dataclass
class HeadPrediction:
    """A learned head's output for one finding: a class, or a Cox risk with survival probabilities."""

    task: str = constrained(enum=list(HEAD_TASKS))
    value: Optional[str]
    probabilities: Dict[str, float] = constrained(values=PROBABILITY)
    risk_score: Optional[float]  #: log relative hazard against the average training case (survival)
    relative_hazard: Optional[float] = constrained(minimum=0)
    survival: Dict[str, float] = constrained(values=PROBABILITY)  #: follow-up time (labels' unit) -> survival probability
    notes: List[str]
    provenance: HeadProvenance


@dataclass
class Finding:
    id: str = constrained(pattern="^F[0-9]+$")
    lesion_type: LesionTypeRef
    location: Location
    component: Component
    confidence: Optional[Confidence]
    measurements: Measurements
    attributes: Dict[str, Attribute] = constrained(per_attribute=True)  #: one per ATTRIBUTE_OPTIONS key
    staging: Staging
    review: Review
    notes: List[str]
    heads: List[HeadPrediction] = constrained_with_default(
        default_factory=list, optional=True, description="Predictions of learned heads (pasta analyze --head), "
        "each with its provenance; absent in reports written before heads existed.")


@dataclass
class ReaderEdit:
    target: str  #: a finding id ("F1") or "report"
    field: str  #: dotted path inside the target, e.g. "attributes.Shape.value"
    original: Any  #: the machine value (the first value, however often the field was edited)
    previous: Any
    new: Any
    editor: str = constrained(minLength=1)
    time: str
    comment: Optional[str] = None


@dataclass
class Geometry:
    size: List[int] = constrained(**XYZ)
    spacing_mm: List[float] = constrained(**XYZ)
    origin_lps: List[float] = constrained(**XYZ)
    direction: List[List[float]] = constrained(**XYZ, items=XYZ)


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
    count: int = constrained(minimum=0)
    total_volume_ml: float = constrained(minimum=0)
    min_volume_ml: float = constrained(minimum=0)


@dataclass
class Signature:
    """The reader who signed the report and when. A signed report is final: its DICOM SR is written
    complete and verified with the reader as person observer. Any later edit removes the signature."""

    reader: str = constrained(minLength=1)
    time: str
    organization: Optional[str] = None  #: the reader's institution (the SR's verifying organisation)


@dataclass
class Report:
    schema: str = constrained(const=SCHEMA_NAME)
    schema_version: str = constrained(const=SCHEMA_VERSION)
    report_id: str
    created: str
    source: Source
    provenance: Provenance
    findings: List[Finding]
    dropped: Dropped
    impression: str
    edits: List[ReaderEdit]
    disclaimer: str = DISCLAIMER
    signature: Optional[Signature] = None  #: None: a draft

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
        """A report of today's or an older schema version (:mod:`.versions`); PastaInputError, naming the
        field, when it does not fit the model."""
        data = upgrade(data)
        try:
            return from_dict(cls, data)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise PastaInputError(f"The report does not match report schema {SCHEMA_VERSION}: {exc}.",
                                  "It was not written by PASTA, or it was changed by hand.") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Report":
        return cls.from_dict(json.loads(text))

    def findings_document(self) -> dict:
        """``findings.json``: the machine findings alone, for scripts that need no report."""
        return to_dict(FindingsDocument(FINDINGS_SCHEMA_NAME, self.schema_version, self.report_id, self.source,
                                        self.findings, self.dropped))


@dataclass
class FindingsDocument:
    """``findings.json``."""

    schema: str = constrained(const=FINDINGS_SCHEMA_NAME)
    schema_version: str = constrained(const=SCHEMA_VERSION)
    report_id: str
    source: Source
    findings: List[Finding]
    dropped: Dropped


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
        if not isinstance(data, dict):
            raise ValueError(f"{tp.__name__} must be an object, not {type(data).__name__}")
        fields = dataclasses.fields(tp)
        unknown = set(data) - {f.name for f in fields}
        if unknown:
            raise ValueError(f"{tp.__name__} has no field(s) {sorted(unknown)}")
        missing = [f.name for f in fields if f.name not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{tp.__name__} lacks field(s) {missing}")
        return tp(**{name: from_dict(hints[name], value) for name, value in data.items()})
    if tp is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    return data
