"""The structured report kept in the scene, so reader edits survive saving and reloading.

The report's JSON (``report.json``, :class:`PASTALib.report.model.Report`) lives in a
``vtkMRMLTextNode``: Slicer writes it inline in the ``.mrml`` file or, for long text, next to it
as a ``.txt`` file inside the ``.mrb``; both come back on load. Every change goes through
:mod:`PASTALib.report.review`, which records the reader's edit and keeps the machine value.

MRML only (no Qt).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from PASTALib.report import review
from PASTALib.report.model import Report, Signature

#: Node reference role from a PASTA segmentation node to its report text node.
REPORT_ROLE = "PASTAReport"
#: Attribute marking a text node as a PASTA report (value: the schema version).
REPORT_ATTRIBUTE = "PASTA.Report"


def create_report_node(scene, report: Report, name: str):
    """A new text node holding ``report``."""
    node = scene.AddNewNodeByClass("vtkMRMLTextNode", name)
    node.SetAttribute(REPORT_ATTRIBUTE, report.schema_version)
    save_report(node, report)
    return node


def is_report_node(node) -> bool:
    return node is not None and node.IsA("vtkMRMLTextNode") and node.GetAttribute(REPORT_ATTRIBUTE) is not None


def load_report(node) -> Report:
    """The report stored in ``node`` (raises ValueError when the node holds no PASTA report)."""
    if not is_report_node(node):
        raise ValueError(f"node {node.GetName() if node else None!r} holds no PASTA report")
    return Report.from_json(node.GetText())


def save_report(node, report: Report) -> None:
    node.SetText(report.to_json())


def _changed(node, change: Callable[[Report], Any]) -> Any:
    """Load the stored report, apply one ``review`` change, store it again; the change's result."""
    report = load_report(node)
    result = change(report)
    save_report(node, report)
    return result


def edit_field(node, target: str, path: str, value: Any, editor: str,
               comment: Optional[str] = None) -> review.ReaderEdit:
    """Change one report field as the reader ``editor``; the machine value is kept in the edit log."""
    return _changed(node, lambda report: review.edit(report, target, path, value, editor, comment=comment))


def edit_measurement(node, finding_id: str, name: str, value: float, editor: str,
                     comment: Optional[str] = None) -> review.ReaderEdit:
    """Store a measurement the reader typed (``review.MEASUREMENT_FIELDS``), keeping the machine's."""
    return _changed(node, lambda report: review.edit_measurement(report, finding_id, name, value, editor,
                                                                 comment=comment))


def edit_lesion_type(node, finding_id: str, type_key: str, editor: str,
                     comment: Optional[str] = None) -> review.ReaderEdit:
    """The reader's lesion type (one the finding's organ can host), keeping the machine's."""
    return _changed(node, lambda report: review.edit_lesion_type(report, finding_id, type_key, editor,
                                                                 comment=comment))


def edit_location(node, finding_id: str, label_id: int, editor: str,
                  comment: Optional[str] = None) -> review.ReaderEdit:
    """The reader's site for a finding (one of the sites of the organ hosting its type), keeping the machine's."""
    return _changed(node, lambda report: review.edit_location(report, finding_id, label_id, editor,
                                                              comment=comment))


def field_value(node, target: str, path: str) -> Any:
    """A report field as it is now (a finding id or "report", and a dotted path as in review)."""
    report = load_report(node)
    value: Any = report if target == "report" else report.finding(target)
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def measurement_value(node, finding_id: str, name: str) -> float:
    """The measurement as it is now (typed by a reader or measured)."""
    return float(field_value(node, finding_id, review.MEASUREMENT_FIELDS[name]))


def set_review(node, finding_id: str, status: str, reviewer: str, comment: Optional[str] = None) -> None:
    """Accept, reject or reset a finding."""
    _changed(node, lambda report: review.set_review(report, finding_id, status, reviewer, comment=comment))


def sign_report(node, reader: str, organization: Optional[str] = None) -> Signature:
    """Sign the stored report as ``reader`` (every finding accepted or rejected first)."""
    return _changed(node, lambda report: review.sign_report(report, reader, organization=organization))


def machine_value(node, target: str, path: str) -> Any:
    return review.machine_value(load_report(node), target, path)


def export_json(node, path) -> None:
    """Write the report as edited (``report.json`` schema), atomically (the file dialog has already
    asked before replacing a file)."""
    from PASTALib.atomic import atomic_write

    atomic_write(path, load_report(node).to_json(), overwrite=True)
