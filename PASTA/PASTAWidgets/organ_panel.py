"""The organ input under the CT selector: which segments are organs (and whether they will be resampled),
and, when there is none and the TotalSegmentator extension is installed, "Segment organs with
TotalSegmentator". The decisions and the run are ``PASTASlicerLib`` (tested on slicer-core).
"""

from __future__ import annotations

from typing import Callable

import slicer
from slicer.i18n import tr as _


class OrganPanel:
    """Keeps the organ status line and the TotalSegmentator button in step with the chosen CT and organs."""

    def __init__(self, ui, parameterNode: Callable[[], object]) -> None:
        self.ui = ui
        self._parameterNode = parameterNode

    def setup(self) -> None:
        self.ui.organSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.showStatus)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                            lambda node: self.showStatus())  # the grid note needs the CT
        self.ui.segmentOrgansButton.connect("clicked(bool)", lambda checked=False: self.onSegmentOrgans())

    def showStatus(self, organNode=None) -> None:
        """Under the organ selector: which segments are organs and which will be ignored; the button."""
        from PASTASlicerLib.analysis import organ_summary
        from PASTASlicerLib.organ_segmentation import offer_segmentation

        node = self._parameterNode()
        chosen = organNode if organNode is not None else (node.organSegmentation if node is not None else None)
        ct = node.inputVolume if node is not None else None
        self.ui.organStatusLabel.text = organ_summary(chosen, ct)
        self.ui.segmentOrgansButton.visible = offer_segmentation(chosen, ct)

    def onSegmentOrgans(self) -> None:
        """Run the TotalSegmentator extension (fast) on the CT and use its segmentation as the organ input."""
        from PASTASlicerLib.organ_segmentation import segment_organs

        node = self._parameterNode()
        ct = node.inputVolume if node is not None else None
        if ct is None or not slicer.util.confirmOkCancelDisplay(
                _("Run TotalSegmentator (fast model) on '{name}' and use its organs? It takes about a minute on a "
                  "GPU and several on a CPU. On first use the TotalSegmentator extension installs its Python "
                  "package and downloads its model weights.").format(name=ct.GetName()),
                windowTitle=_("PASTA: segment organs")):
            return
        with slicer.util.tryWithErrorDisplay(_("TotalSegmentator could not segment the organs."), waitCursor=True):
            node.organSegmentation = segment_organs(ct)
            self.showStatus()
