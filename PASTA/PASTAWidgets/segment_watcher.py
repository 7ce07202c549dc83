"""Re-measure a finding when its segment is edited (e.g. with the Segment Editor), and make a segment the
reader draws, named after a PASTA lesion type, into a new finding.

Segment Editor strokes fire many ``SegmentModified`` events; the watcher collects the segment ids
and measures once, a second after the edits settle. The measuring is
``PASTASlicerLib.remeasure.remeasure_segment`` / ``add_drawn_segment`` (tested on slicer-core).
"""

from __future__ import annotations

import getpass
from typing import Callable, Optional

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.util import VTKObservationMixin

#: Wait this long after the last segment edit before measuring (ms).
SETTLE_MS = 1000


class SegmentWatcher(VTKObservationMixin):
    """Observes the segments of the shown PASTA result."""

    def __init__(self, parameterNode: Callable[[], object], onRemeasured: Callable[[], None]) -> None:
        VTKObservationMixin.__init__(self)
        self._parameterNode = parameterNode
        self._onRemeasured = onRemeasured
        self._observed = None
        self._pending: set[str] = set()

    def watch(self, segmentationNode) -> None:
        """Observe ``segmentationNode``'s segments (None: observe nothing)."""
        if self._observed is not None:
            self.removeObserver(self._observed, slicer.vtkSegmentation.SegmentModified, self.onSegmentModified)
        self._observed = segmentationNode.GetSegmentation() if segmentationNode else None
        if self._observed is not None:
            self.addObserver(self._observed, slicer.vtkSegmentation.SegmentModified, self.onSegmentModified)

    def stop(self) -> None:
        self.watch(None)
        self.removeObservers()

    @vtk.calldata_type(vtk.VTK_STRING)
    def onSegmentModified(self, caller, event, segmentId: Optional[str]) -> None:
        if segmentId and not self._pending:
            qt.QTimer.singleShot(SETTLE_MS, self._remeasurePending)
        if segmentId:
            self._pending.add(segmentId)

    def _remeasurePending(self) -> None:
        from PASTASlicerLib.remeasure import add_drawn_segment, drawn_segment_type, finding_of_segment, \
            remeasure_segment

        pending, self._pending = self._pending, set()
        parameterNode = self._parameterNode()
        node = parameterNode.resultSegmentation if parameterNode is not None else None
        if node is None:
            return
        editor = (parameterNode.readerName or "").strip() or getpass.getuser()
        drawn = {s for s in pending if node.GetSegmentation().GetSegment(s) is not None
                 and finding_of_segment(node, s) is None}
        with slicer.util.tryWithErrorDisplay(_("Re-measuring the edited finding failed.")):
            changed = [segmentId for segmentId in pending - drawn if remeasure_segment(node, segmentId, editor)]
            added = [f for f in (add_drawn_segment(node, segmentId, editor) for segmentId in sorted(drawn)) if f]
            untyped = [node.GetSegmentation().GetSegment(s).GetName() for s in sorted(drawn)
                       if drawn_segment_type(node, s) is None]
            if untyped:
                slicer.util.showStatusMessage(
                    _("Name a segment after a PASTA lesion type (e.g. 'Liver tumor') to make it a finding: "
                      "{names}").format(names=", ".join(untyped)), 10000)
            if changed or added:
                slicer.util.showStatusMessage(
                    _("PASTA re-measured {n} edited finding(s) and added {a} drawn one(s).").format(
                        n=len(changed), a=len(added)), 5000)
                self._onRemeasured()
