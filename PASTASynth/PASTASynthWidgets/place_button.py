"""The "Place lesion" button: checked, it arms one click in the views; the click places the lesion.

The markups side (point list, Place mode, Esc) is :class:`PASTASynthSlicerLib.placement.PointPlacement`
(tested on slicer-core); this part keeps the button's state in step with it and runs the placement
after Slicer has finished handling the click.
"""

from __future__ import annotations

from typing import Callable, Sequence

import qt
import slicer
from slicer.i18n import tr as _


class PlaceButton:
    """Wires ``ui.placeButton`` to single-point placement; ``onPoint(ras)`` gets the click."""

    def __init__(self, ui, onPoint: Callable[[Sequence[float]], None]) -> None:
        self.ui = ui
        self._onPoint = onPoint
        self._placement = None

    def setup(self) -> None:
        self.ui.placeButton.connect("toggled(bool)", self.onToggled)

    def onToggled(self, checked: bool) -> None:
        from PASTASynthSlicerLib.placement import PointPlacement

        if not checked:
            if self._placement is not None:
                self._placement.stop()
            return
        if self._placement is None or self._placement.scene is not slicer.mrmlScene:
            appLogic = slicer.app.applicationLogic()
            self._placement = PointPlacement(slicer.mrmlScene, appLogic.GetInteractionNode(),
                                             appLogic.GetSelectionNode(), self._clicked, on_end=self._ended)
        self._placement.start()
        self.ui.statusLabel.text = _("Click in a slice view where the lesion should be centred (Esc cancels).")

    def release(self) -> None:
        """Leave placement (module left, scene closing)."""
        self.ui.placeButton.checked = False

    def cleanup(self) -> None:
        if self._placement is not None:
            self._placement.cleanup()
            self._placement = None

    def _ended(self) -> None:
        self.ui.placeButton.blockSignals(True)
        self.ui.placeButton.checked = False
        self.ui.placeButton.blockSignals(False)
        # Esc or another tool: no click is coming. Disarm once Slicer has finished this event, as
        # some versions leave Place mode just before they report the clicked point.
        qt.QTimer.singleShot(0, lambda: self._placement.disarm() if self._placement is not None else None)

    def _clicked(self, ras) -> None:
        # Let Slicer finish handling the click (its markups widget) before the synthesis runs.
        qt.QTimer.singleShot(0, lambda: self._place(ras))

    def _place(self, ras) -> None:
        if self._placement is not None:
            self._placement.clear()
        self._onPoint(ras)
