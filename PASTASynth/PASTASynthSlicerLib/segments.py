"""Segments built from numpy masks on a volume's grid, named and coloured like PASTA's findings.

Masks go in through a temporary label map node and Slicer's own import, the one path that
slicer-core and Slicer share (as :mod:`PASTASlicerLib.results_import` does). Lesion segments
reuse that module's name, colour and SNOMED CT terminology helpers so both modules agree.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from PASTALib.report.model import Finding
from PASTASlicerLib.results_import import labelmap_node, segment_color, segment_name, terminology_entry

#: Colour of host-organ segments (a neutral tan, so the lesions stand out).
ORGAN_COLOR = (0.86, 0.75, 0.55)
#: Segment tag holding the session's lesion key ("L3"), to find a lesion's segment again.
LESION_TAG = "PASTASynth.LesionId"


def add_mask_segment(segmentation_node, reference_node, mask: np.ndarray, name: str,
                     color: tuple[float, float, float], segment_id: Optional[str] = None,
                     before: str = "") -> str:
    """Add ``mask`` ([k, j, i] on ``reference_node``'s grid) as one segment; returns its id.

    With ``segment_id`` the segment takes that id (used to replace a lesion in place).
    """
    from slicer import vtkSlicerSegmentationsModuleLogic

    scene = segmentation_node.GetScene()
    labelmap = labelmap_node(scene, reference_node, mask.astype(np.uint8), "PASTASynth temporary labelmap")
    try:
        segmentation = segmentation_node.GetSegmentation()
        known = {segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())}
        if not vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation_node):
            raise RuntimeError("Slicer could not import a lesion mask into the segmentation.")
    finally:
        scene.RemoveNode(labelmap)
    new_id = next(segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())
                  if segmentation.GetNthSegmentID(i) not in known)
    segment = segmentation.GetSegment(new_id)
    if segment_id is not None or before:
        segmentation.RemoveSegment(new_id)
        new_id = segment_id or new_id
        segmentation.AddSegment(segment, new_id, before)
    segment.SetName(name)
    segment.SetColor(*color)
    return new_id


def style_lesion(segment, finding: Finding, number: int, lesion_key: str) -> None:
    """Name ("Liver tumor 1"), colour and terminology of a lesion, as for an analysed finding."""
    segment.SetName(segment_name(finding, number))
    segment.SetColor(*segment_color(finding))
    segment.SetTag(segment.GetTerminologyEntryTagName(), terminology_entry(finding))
    segment.SetTag(LESION_TAG, lesion_key)
