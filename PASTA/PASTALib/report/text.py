"""Small formatting helpers shared by the Markdown and HTML renderers."""

from __future__ import annotations

from typing import Optional

from .model import Attribute, Finding, HeadPrediction, Report


def title(report: Report) -> str:
    """The report's heading: a draft until a reader signs it."""
    signature = report.signature
    if signature is None:
        return "PASTA structured report (draft)"
    return f"PASTA structured report (signed by {signature.reader}, {signature.time})"


def num(value: Optional[float], digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{(' ' + unit) if unit else ''}"


def where(finding: Finding) -> str:
    """'right upper lobe (lung)', 'vertebra L1', 'left kidney', 'liver'."""
    loc = finding.location
    if loc.lobe:
        return " ".join(p for p in (loc.side, loc.lobe) if p) + f" ({loc.organ_name})"
    if loc.organ == "bone" and loc.site:
        return loc.site
    return " ".join(p for p in (loc.side, loc.organ_name) if p) or "unknown organ"


def size(finding: Finding) -> str:
    r = finding.measurements.recist
    return f"{r.long_axis.length_mm:.1f} x {r.short_axis.length_mm:.1f}"


def t_category(finding: Finding) -> str:
    s = finding.staging
    if s.value and s.source == "model":
        return f"{s.value} (learned head; rule: {s.rule_value or 'n/a'}; reader to confirm)"
    if s.value:
        return s.value + (" (reader to confirm)" if s.requires_reader else "")
    return {"not_applicable_from_size": "n/a from size (reader)", "not_staged_benign": "benign",
            "not_staged_metastasis": "metastasis (M)"}.get(s.status, "n/a")


def head_prediction(prediction: HeadPrediction) -> str:
    """One line per learned head: its value (probability or survival) and where it comes from."""
    p = prediction.provenance
    if prediction.task == "survival":
        survival = ", ".join(f"S({t}) {v:.2f}" for t, v in prediction.survival.items())
        what = f"{prediction.value}" + (f"; {survival}" if survival else "")
    else:
        probability = prediction.probabilities.get(prediction.value or "")
        what = f"{prediction.value}" + (f" (p {probability:.2f})" if probability is not None else "")
    metric = "n/a" if p.cv_value is None else f"{p.cv_value:.2f}"
    return (f"{what} [{p.task} head {p.file}, SHA256 {p.sha256[:12]}, n={p.training_size}, "
            f"{p.cv_folds}-fold CV {p.cv_metric} {metric}]")


def attribute_value(attribute: Attribute) -> str:
    value = attribute.value or "not determined"
    if attribute.source == "model" and attribute.rule.value != attribute.value:
        value += f" (model; rule: {attribute.rule.value or 'n/a'})"
    elif attribute.source == "reader":
        value += " (reader)"
    return value


def evidence(attribute: Attribute) -> str:
    rule = attribute.rule
    measured = "n/a" if rule.measured is None else f"{rule.measured:.3g}{(' ' + rule.unit) if rule.unit else ''}"
    threshold = "" if rule.threshold is None else f", threshold {rule.threshold:g}{(' ' + rule.unit) if rule.unit else ''}"
    return f"{rule.measurement} = {measured}{threshold}"


def study_lines(report: Report) -> list[tuple[str, str]]:
    s, p = report.source, report.provenance
    rows = [("Image", s.image), ("Study Instance UID", s.study_instance_uid or "n/a (not DICOM)"),
            ("Series Instance UID", s.series_instance_uid or "n/a (not DICOM)"),
            ("Series", s.series_description or "n/a"),
            ("Grid", f"{' x '.join(map(str, s.geometry.size))} voxels, "
                     f"{' x '.join(f'{v:.3g}' for v in s.geometry.spacing_mm)} mm"),
            ("Software", f"{p.software} {p.software_version}"), ("Model", p.model_id),
            ("Report", f"{report.report_id}, {report.created}, schema {report.schema_version}")]
    return rows
