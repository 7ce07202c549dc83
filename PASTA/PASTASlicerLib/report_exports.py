"""Exports of a scene-stored report as the reader edited it: JSON, HTML with key images drawn from
the segments as they are now, and DICOM SEG + SR.

Above :mod:`.report_store`, :mod:`.results_import` and :mod:`.remeasure` (it needs all three), so the
store itself stays free of them.
"""

from __future__ import annotations

from PASTALib.report.model import Report

from .remeasure import segment_mask
from .report_store import export_json, load_report
from .results_import import INPUT_ROLE, finding_segments
from .volume_nodes import node_to_volume

__all__ = ["export_json", "export_html", "export_dicom", "key_images_from_scene"]


def export_html(node, path, segmentation_node=None) -> None:
    """Write the self-contained HTML report as edited; with the PASTA segmentation node, each
    finding gets its key image drawn from the segment as it is now (after any Segment Editor edit)."""
    from PASTALib.atomic import atomic_write
    from PASTALib.report.render_html import render_html

    report = load_report(node)
    images = key_images_from_scene(report, segmentation_node) if segmentation_node is not None else None
    atomic_write(path, render_html(report, images), overwrite=True)  # the file dialog asked already


def key_images_from_scene(report: Report, segmentation_node) -> dict:
    """PNG key image per finding id, from the input volume and the finding's segment."""
    from PASTALib.report.key_images import key_images

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
    from PASTALib.io.volume_io import read_volume
    from PASTALib.report.dicom_export import export_dicom as write_dicom

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
