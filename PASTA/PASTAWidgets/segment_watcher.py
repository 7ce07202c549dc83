"""Re-measure a finding when its segment is edited (e.g. with the Segment Editor).

Segment Editor strokes fire many ``SegmentModified`` events; the watcher collects the segment ids
and measures once, a second after the edits settle. The measuring is
``PASTASlicerLib.remeasure.remeasure_segment`` (tested on slicer-core).
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
        from PASTASlicerLib.remeasure import remeasure_segment

        pending, self._pending = self._pending, set()
        parameterNode = self._parameterNode()
        node = parameterNode.resultSegmentation if parameterNode is not None else None
        if node is None:
            return
        editor = (parameterNode.readerName or "").strip() or getpass.getuser()
        with slicer.util.tryWithErrorDisplay(_("Re-measuring the edited finding failed.")):
            changed = [segmentId for segmentId in pending if remeasure_segment(node, segmentId, editor)]
            if changed:
                slicer.util.showStatusMessage(
                    _("PASTA re-measured {n} edited finding(s).").format(n=len(changed)), 5000)
                self._onRemeasured()
