"""The structured report kept in the scene, so reader edits survive saving and reloading.

The report's JSON (``report.json``, :class:`PASTALib.report.model.Report`) lives in a
``vtkMRMLTextNode``: Slicer writes it inline in the ``.mrml`` file or, for long text, next to it
as a ``.txt`` file inside the ``.mrb``; both come back on load. Every change goes through
:mod:`PASTALib.report.review`, which records the reader's edit and keeps the machine value.

MRML only (no Qt).
"""

from __future__ import annotations

from typing import Any, Optional

from PASTALib.report import review
from PASTALib.report.model import Report

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


def edit_field(node, target: str, path: str, value: Any, editor: str,
               comment: Optional[str] = None) -> review.ReaderEdit:
    """Change one report field as the reader ``editor``; the machine value is kept in the edit log."""
    report = load_report(node)
    record = review.edit(report, target, path, value, editor, comment=comment)
    save_report(node, report)
    return record


def edit_measurement(node, finding_id: str, name: str, value: float, editor: str,
                     comment: Optional[str] = None) -> review.ReaderEdit:
    """Store a measurement the reader typed (``review.MEASUREMENT_FIELDS``), keeping the machine's."""
    report = load_report(node)
    record = review.edit_measurement(report, finding_id, name, value, editor, comment=comment)
    save_report(node, report)
    return record


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
    report = load_report(node)
    review.set_review(report, finding_id, status, reviewer, comment=comment)
    save_report(node, report)


def machine_value(node, target: str, path: str) -> Any:
    return review.machine_value(load_report(node), target, path)


def export_json(node, path) -> None:
    """Write the report as edited (``report.json`` schema)."""
    from pathlib import Path

    Path(path).write_text(load_report(node).to_json(), encoding="utf-8")


def export_html(node, path, segmentation_node=None) -> None:
    """Write the self-contained HTML report as edited; with the PASTA segmentation node, each
    finding gets its key image drawn from the segment as it is now (after any Segment Editor edit)."""
    from pathlib import Path

    from PASTALib.report.render_html import render_html

    report = load_report(node)
    images = key_images_from_scene(report, segmentation_node) if segmentation_node is not None else None
    Path(path).write_text(render_html(report, images), encoding="utf-8")


def key_images_from_scene(report: Report, segmentation_node) -> dict:
    """PNG key image per finding id, from the input volume and the finding's segment."""
    from PASTALib.report.key_images import key_images

    from .remeasure import segment_mask
    from .results_import import INPUT_ROLE, finding_segments
    from .volume_nodes import node_to_volume

    input_node = segmentation_node.GetNodeReference(INPUT_ROLE)
    if input_node is None:
        return {}
    segment_of = finding_segments(segmentation_node)
    present = [f for f in report.findings if f.id in segment_of]
    if not present:
        return {}
    shown = Report.from_dict(report.to_dict())
    shown.findings = [f for f in shown.findings if f.id in segment_of]
    return key_images(shown, node_to_volume(input_node),
                      lambda f: segment_mask(segmentation_node, segment_of[f.id], input_node))


def export_dicom(node, segmentation_node, dicom_folder, out_folder, overwrite: bool = False) -> dict:
    """DICOM SEG + TID 1500 SR of the report as edited (rejected findings left out).

    ``dicom_folder`` holds the CT series the input volume was loaded from; the segments are
    written on that series' grid, which must be the input volume's.
    """
    from PASTALib.errors import PastaInputError
    from PASTALib.report.dicom_export import export_dicom as write_dicom
    from PASTALib.volume_io import read_volume

    from .remeasure import segment_mask
    from .results_import import INPUT_ROLE, finding_segments
    from .volume_nodes import node_to_volume

    input_node = segmentation_node.GetNodeReference(INPUT_ROLE)
    if input_node is None:
        raise PastaInputError("This segmentation is not linked to its input volume.", "Run the analysis again.")
    image = read_volume(dicom_folder)
    reference = node_to_volume(input_node)
    if not image.has_same_geometry(reference, 1e-3):
        raise PastaInputError(f"The DICOM series in {dicom_folder} is not the grid of volume "
                              f"'{input_node.GetName()}'.", "; ".join(image.geometry_differences(reference, 1e-3)))
    segment_of = finding_segments(segmentation_node)
    report = load_report(node)
    missing = [f.id for f in report.findings if f.id not in segment_of and f.review.status != "rejected"]
    if missing:
        raise PastaInputError(f"The segments of finding(s) {', '.join(missing)} were deleted.",
                              "Reject those findings in the report panel, then export again.")
    from pathlib import Path

    Path(out_folder).mkdir(parents=True, exist_ok=True)
    return write_dicom(report, image, lambda f: segment_mask(segmentation_node, segment_of[f.id], input_node),
                       out_folder, overwrite=overwrite)
