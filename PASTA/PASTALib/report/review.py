"""Reader edits and review status: every change keeps the machine's original value, who and when.

A field is addressed by a target (a finding id such as ``"F2"``, or ``"report"``) and a dotted
path inside it (``"attributes.Shape.value"``, ``"staging.value"``, ``"impression"``). Editing a
field twice keeps the *first* value as ``original``, so the machine value is never lost.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from datetime import datetime, timezone
from typing import Any, Optional

from .model import ATTRIBUTE_OPTIONS, REVIEW_STATUSES, Finding, ReaderEdit, Report, Review, Signature, to_dict


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _resolve(report: Report, target: str, path: str) -> tuple[Any, str]:
    """(container, last key) for ``path`` inside ``target``; raises KeyError for unknown fields."""
    node: Any = report if target == "report" else report.finding(target)
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    last = parts[-1]
    if isinstance(node, dict):
        if last not in node:
            raise KeyError(f"{target} has no field {path!r}")
    elif not (dataclasses.is_dataclass(node) and last in {f.name for f in dataclasses.fields(node)}):
        raise KeyError(f"{target} has no field {path!r}")
    return node, last


def _get(node: Any, key: str) -> Any:
    return node[key] if isinstance(node, dict) else getattr(node, key)


def _set(node: Any, key: str, value: Any) -> None:
    if isinstance(node, dict):
        node[key] = value
    else:
        setattr(node, key, value)


#: Measurements a reader may type in (name -> field path inside a finding), e.g. after measuring by hand.
MEASUREMENT_FIELDS = {
    "long_axis_mm": "measurements.recist.long_axis.length_mm",
    "short_axis_mm": "measurements.recist.short_axis.length_mm",
    "max_3d_diameter_mm": "measurements.max_3d_diameter.length_mm",
    "volume_ml": "measurements.volume_ml",
}


def _descend(value: Any, parts: list[str]) -> Any:
    for part in parts:
        value = value[part]
    return value


def machine_value(report: Report, target: str, path: str) -> Any:
    """The value the machine wrote, whatever readers have changed since.

    Edits may nest (a typed long axis, then a re-measure replacing all ``measurements``): the first
    edit of ``path`` or of a field containing it holds the machine value, and edits of fields
    inside ``path`` made before it put their own originals back.
    """
    edits = [e for e in report.edits if e.target == target]
    covering = next((i for i, e in enumerate(edits)
                     if e.field == path or path.startswith(e.field + ".")), None)
    if covering is None:
        node, key = _resolve(report, target, path)
        value = to_dict(_get(node, key))
    else:
        edit = edits[covering]
        value = _descend(edit.original, path.split(".")[len(edit.field.split(".")):])
    inner = [e for e in edits[:covering] if e.field.startswith(path + ".")]
    if not inner:
        return value
    value = copy.deepcopy(value)
    seen = set()
    for edit in inner:  # the first edit of each inner field holds its machine value
        if edit.field in seen:
            continue
        seen.add(edit.field)
        parts = edit.field[len(path) + 1:].split(".")
        _descend(value, parts[:-1])[parts[-1]] = copy.deepcopy(edit.original)
    return value


def edit(report: Report, target: str, path: str, new_value: Any, editor: str,
         when: Optional[str] = None, comment: Optional[str] = None) -> ReaderEdit:
    """Change one field, record the edit, and mark the field's source as the reader's."""
    if not editor or not editor.strip():
        raise ValueError("an edit needs the reader's name")
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "attributes" and parts[2] == "value":
        options = ATTRIBUTE_OPTIONS.get(parts[1], [])
        if new_value is not None and new_value not in options:
            raise ValueError(f"{new_value!r} is not a {parts[1]} option: {options}")
    node, key = _resolve(report, target, path)
    previous = to_dict(_get(node, key))
    original = machine_value(report, target, path)
    _set(node, key, copy.deepcopy(new_value))
    if key == "value" and hasattr(node, "source"):
        node.source = "reader"
    record = ReaderEdit(target=target, field=path, original=copy.deepcopy(original),
                        previous=previous, new=copy.deepcopy(new_value), editor=editor,
                        time=when or _now(), comment=comment)
    report.edits.append(record)
    report.signature = None  # what was signed is no longer what the report says
    return record


def edit_measurement(report: Report, finding_id: str, name: str, value: float, editor: str,
                     when: Optional[str] = None, comment: Optional[str] = None) -> ReaderEdit:
    """Store a measurement the reader typed (``MEASUREMENT_FIELDS``); the machine value is kept."""
    if name not in MEASUREMENT_FIELDS:
        raise ValueError(f"{name!r} is not an editable measurement: {sorted(MEASUREMENT_FIELDS)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    record = edit(report, finding_id, MEASUREMENT_FIELDS[name], number, editor, when=when, comment=comment)
    if name == "max_3d_diameter_mm":  # the size the T category is read from
        restage_by_size(report, finding_id, editor, comment="re-staged after the reader's measurement")
    return record


def restage_by_size(report: Report, finding_id: str, editor: str,
                    comment: Optional[str] = None) -> Optional[ReaderEdit]:
    """After a size change, the size-based T category again, unless a reader has set T.

    Recorded as an edit of ``staging`` (machine value kept); None when nothing changed.
    """
    from .staging import stage_findings

    finding = report.finding(finding_id)
    if finding.staging.source == "reader":
        return None
    restaged = copy.deepcopy(report.findings)
    stage_findings(restaged)
    new = next(f.staging for f in restaged if f.id == finding_id)
    if to_dict(new) == to_dict(finding.staging):
        return None
    return edit(report, finding_id, "staging", new, editor, comment=comment)


def lesion_type_choices(finding: Finding) -> list:
    """The lesion types a reader may give a finding: those its organ can host (every type when the
    organ hosts none, e.g. a finding without an organ mask)."""
    from PASTALib.lesions import lesion_types
    from PASTALib.lesions.type_rules import hosted_types

    return hosted_types(finding.location.organ) or list(lesion_types.LESION_TYPES)


def edit_lesion_type(report: Report, finding_id: str, type_key: str, editor: str,
                     when: Optional[str] = None, comment: Optional[str] = None) -> ReaderEdit:
    """The reader's lesion type for a finding (only one its organ can host); the machine's type is kept
    in the edit, and the size-based T category follows the new type unless a reader set it."""
    from PASTALib.lesions import lesion_types

    from .model import LesionTypeRef

    finding = report.finding(finding_id)
    chosen = lesion_types.lookup(type_key)
    allowed = lesion_type_choices(finding)
    if chosen not in allowed:
        raise ValueError(f"A {chosen.name.lower()} cannot lie in the {finding.location.organ_name or 'organ'}; "
                         f"choose one of: {', '.join(t.name for t in allowed)}")
    record = edit(report, finding_id, "lesion_type", LesionTypeRef.of(chosen), editor, when=when, comment=comment)
    restage_by_size(report, finding_id, editor, comment="re-staged for the reader's lesion type")
    return record


def location_choices(finding: Finding) -> list:
    """The organ sites a reader may give a finding (TotalSegmentator v2 classes, as ``OrganSite``): those of
    the organ group that hosts its lesion type, e.g. the five lung lobes for a lung tumour."""
    from PASTALib.lesions import anatomy, lesion_types

    group = lesion_types.lookup(finding.lesion_type.key).organ
    sites = anatomy.totalsegmentator_v2_sites()
    # TotalSegmentator's kidney_cyst_* classes count as kidney for hosting, but they are lesions, not sites
    return [sites[label] for label in anatomy.host_label_ids(group, sites) if "cyst" not in sites[label].label_name]


def edit_location(report: Report, finding_id: str, label_id: int, editor: str,
                  when: Optional[str] = None, comment: Optional[str] = None) -> ReaderEdit:
    """The reader's site for a finding (one of :func:`location_choices`, by TotalSegmentator v2 label id);
    organ, side, lobe and code follow, the machine's location is kept in the edit."""
    from PASTALib.lesions import anatomy

    from .model import Code, Location

    finding = report.finding(finding_id)
    allowed = {site.label_id: site for site in location_choices(finding)}
    if label_id not in allowed:
        raise ValueError(f"A {finding.lesion_type.name.lower()} cannot lie in label {label_id}; choose one of: "
                         f"{', '.join(site.site for site in allowed.values())}")
    site = allowed[label_id]
    code = site.code or (anatomy.ORGAN_GROUPS[site.group].code if site.group in anatomy.ORGAN_GROUPS else None)
    location = Location(organ=site.group, organ_name=anatomy.group_name(site.group), site=site.site,
                        organ_label_id=label_id, side=site.side, lobe=site.lobe, source="reader",
                        organ_fractions=dict(finding.location.organ_fractions),
                        code=Code.of(code) if code else None, matches_lesion_type=True)
    return edit(report, finding_id, "location", location, editor, when=when, comment=comment)


def set_review(report: Report, finding_id: str, status: str, reviewer: str,
               when: Optional[str] = None, comment: Optional[str] = None) -> Finding:
    """Accept, reject or reset (pending) one finding."""
    if status not in REVIEW_STATUSES:
        raise ValueError(f"review status must be one of {REVIEW_STATUSES}, not {status!r}")
    finding = report.finding(finding_id)
    finding.review.status = status
    finding.review.reviewer = reviewer
    finding.review.time = when or _now()
    finding.review.comment = comment
    report.signature = None  # a changed decision needs a new signature
    return finding


def add_finding(report: Report, finding: Finding, editor: str, when: Optional[str] = None,
                comment: str = "drawn by the reader") -> Finding:
    """Append a reader's own finding: the next free id, accepted by ``editor``, and an edit recording it
    (no machine value: ``original`` is None)."""
    if not editor or not editor.strip():
        raise ValueError("a finding the reader adds needs the reader's name")
    numbers = [int(f.id[1:]) for f in report.findings if f.id[1:].isdigit()]
    finding.id = f"F{max(numbers, default=0) + 1}"
    time = when or _now()
    finding.review = Review(status="accepted", reviewer=editor, time=time, comment=comment)
    report.findings.append(finding)
    report.edits.append(ReaderEdit(target=finding.id, field="finding", original=None, previous=None,
                                   new=to_dict(finding), editor=editor, time=time, comment=comment))
    report.signature = None
    return finding


def pending_findings(report: Report) -> list[str]:
    """Ids of the findings no reader has accepted or rejected yet (a report with any cannot be signed)."""
    return [f.id for f in report.findings if f.review.status == "pending"]


def sign_report(report: Report, reader: str, when: Optional[str] = None,
                organization: Optional[str] = None) -> Signature:
    """Sign the report as ``reader``: it becomes final (its SR complete and verified). Every finding must
    have been accepted or rejected first, because a signature vouches for each one."""
    if not reader or not reader.strip():
        raise ValueError("signing needs the reader's name")
    pending = pending_findings(report)
    if pending:
        raise ValueError(f"accept or reject every finding before signing; still pending: {', '.join(pending)}")
    report.signature = Signature(reader=reader.strip(), time=when or _now(),
                                 organization=(organization or "").strip() or None)
    return report.signature


def exported_findings(report: Report) -> list[Finding]:
    """Findings that go into DICOM SEG/SR: accepted ones and pending ones, never rejected ones.

    A pending finding counts as accepted: an export made before review still holds everything
    the machine found, and only a reader's explicit rejection removes a finding.
    """
    return [f for f in report.findings if f.review.status != "rejected"]
