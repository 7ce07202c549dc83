"""Re-measure a finding after its segment was edited (Segment Editor), keeping the machine values; make a
segment the reader drew into a new finding.

The segment is exported onto the input volume's grid and measured with the same code as
``pasta report`` (:func:`PASTALib.report.measurements.measure`). The new measurements, and the
size-based T category unless a reader has set it, are stored as reader edits, so the report keeps
what the machine measured first.

MRML/numpy only (no Qt). The widget calls it when the segmentation's segments change.
"""

from __future__ import annotations

from typing import Optional

import vtk

from PASTALib.errors import PastaInputError
from PASTALib.report import review
from PASTALib.report.model import to_dict

from . import report_store
from .results_import import FINDING_TAG, INPUT_ROLE, refresh_table, relabel_segment, results_of


def finding_of_segment(segmentation_node, segment_id: str) -> Optional[str]:
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    tag = vtk.mutable("")
    return str(tag) if segment is not None and segment.GetTag(FINDING_TAG, tag) else None


def segment_mask(segmentation_node, segment_id: str, reference_node):
    """The segment as a boolean array on the reference volume's grid."""
    from slicer import vtkMRMLLabelMapVolumeNode, vtkSlicerSegmentationsModuleLogic

    from .volume_nodes import node_to_volume

    scene = segmentation_node.GetScene()
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    labelmap = scene.AddNewNodeByClass(vtkMRMLLabelMapVolumeNode.__name__, "PASTA temporary labelmap")
    try:
        if not vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, labelmap, reference_node):
            raise PastaInputError(f"Could not export segment {segment_id} onto the volume grid.")
        return node_to_volume(labelmap).array > 0
    finally:
        scene.RemoveNode(labelmap)


def remeasure_segment(segmentation_node, segment_id: str, editor: str) -> bool:
    """Update the finding shown by ``segment_id``; False when nothing changed or it is no finding."""
    from PASTALib.report.measurements import measure

    from .volume_nodes import node_to_volume

    nodes = results_of(segmentation_node)
    finding_id = finding_of_segment(segmentation_node, segment_id)
    input_node = segmentation_node.GetNodeReference(INPUT_ROLE)
    if not nodes or finding_id is None or input_node is None:
        return False
    mask = segment_mask(segmentation_node, segment_id, input_node)
    if not mask.any():
        raise PastaInputError(f"Segment '{segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()}' "
                              "is empty, so it cannot be measured.",
                              "Reject the finding in the report panel instead of erasing it.")
    report = report_store.load_report(nodes["report"])
    finding = report.finding(finding_id)
    measurements = measure(mask, node_to_volume(input_node))
    if to_dict(measurements) == to_dict(finding.measurements):
        return False
    comment = "re-measured after the segment was edited"
    review.edit(report, finding_id, "measurements", measurements, editor, comment=comment)
    review.restage_by_size(report, finding_id, editor, comment=comment)
    report_store.save_report(nodes["report"], report)
    refresh_table(segmentation_node)
    return True


def drawn_segment_type(segmentation_node, segment_id: str):
    """The PASTA lesion type a segment without a finding names (by terminology code, then name), or None."""
    from PASTALib.lesions.organ_terms import terminology_codes
    from PASTALib.report.reader_findings import lesion_type_of_segment

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        return None
    entry = vtk.mutable("")
    found = segment.GetTag(segment.GetTerminologyEntryTagName(), entry)
    codes = terminology_codes(str(entry)) if found else None
    return lesion_type_of_segment(segment.GetName(), codes[0] if codes else None)


def add_drawn_segment(segmentation_node, segment_id: str, editor: str) -> Optional[str]:
    """Make a segment the reader added to a PASTA result into a new finding; its id, or None when the
    segment already is a finding, names no PASTA lesion type, or is still empty."""
    from PASTALib.report.reader_findings import drawn_finding

    from .volume_nodes import node_to_volume

    nodes = results_of(segmentation_node)
    input_node = segmentation_node.GetNodeReference(INPUT_ROLE)
    if not nodes or input_node is None or finding_of_segment(segmentation_node, segment_id) is not None:
        return None
    lesion_type = drawn_segment_type(segmentation_node, segment_id)
    if lesion_type is None:
        return None
    mask = segment_mask(segmentation_node, segment_id, input_node)
    if not mask.any():
        return None
    report = report_store.load_report(nodes["report"])
    finding = drawn_finding(report, node_to_volume(input_node), mask, lesion_type, editor)
    report_store.save_report(nodes["report"], report)
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    segment.SetTag(FINDING_TAG, finding.id)
    relabel_segment(segmentation_node, finding)
    refresh_table(segmentation_node)
    return finding.id
