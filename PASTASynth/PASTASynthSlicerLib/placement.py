"""One click in the slice views gives one RAS point: the "Place lesion" button's markups logic.

Slicer's own point placement is used (a markups point list, the interaction node in Place mode),
so the click works in every slice and 3D view and Esc cancels it as usual. The point is removed
once the click is handled (:meth:`PointPlacement.clear`): the lesion, not the point, is what
stays in the scene. MRML only, so the tests drive it on slicer-core by defining a point as a
click would.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

#: Name of the (reused) markups node that receives the click.
SEED_NODE_NAME = "PASTASynth seed"


class PointPlacement:
    """Arms single-point placement; calls ``on_point(ras)`` once with the clicked point.

    ``on_end()`` is called whenever the views leave Place mode (after the click, on Esc, or when
    another tool is chosen), so the GUI can release its button; the active place node is then the
    user's again. The point observer stays armed until a point arrives, :meth:`disarm` or
    :meth:`stop`: some Slicer versions leave Place mode just before they report the point, so the
    GUI disarms only once the click's event handling is over.
    """

    def __init__(self, scene, interaction_node, selection_node,
                 on_point: Callable[[Sequence[float]], None],
                 on_end: Optional[Callable[[], None]] = None) -> None:
        self.scene, self.interaction_node, self.selection_node = scene, interaction_node, selection_node
        self.on_point, self.on_end = on_point, on_end
        self.node = None
        self._observer: Optional[int] = None
        self._mode_observer: Optional[int] = None
        self._previous: tuple = ("", "")  #: the active place node (id, class) before start()

    @property
    def active(self) -> bool:
        """True while the views are in Place mode for this tool."""
        return self._mode_observer is not None

    def start(self) -> None:
        """Switch the views to placing one point into the seed node."""
        from slicer import vtkMRMLInteractionNode, vtkMRMLMarkupsNode

        if self.node is None or self.node.GetScene() is not self.scene:  # first time, or scene closed
            self._observer = None
            self.node = self.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", SEED_NODE_NAME)
            self.node.CreateDefaultDisplayNodes()
            self.node.SetHideFromEditors(True)  # a tool, not data: not listed in the Data module
        self.node.RemoveAllControlPoints()
        if self._observer is None:
            self._observer = self.node.AddObserver(vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._defined)
        if self.selection_node.GetActivePlaceNodeID() != self.node.GetID():
            self._previous = (self.selection_node.GetActivePlaceNodeID() or "",
                              self.selection_node.GetActivePlaceNodeClassName() or "")
        self.selection_node.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        self.selection_node.SetActivePlaceNodeID(self.node.GetID())
        self.interaction_node.SetPlaceModePersistence(0)
        self.interaction_node.SetCurrentInteractionMode(vtkMRMLInteractionNode.Place)
        if self._mode_observer is None:  # Esc or another tool ends placement: stop waiting
            self._mode_observer = self.interaction_node.AddObserver(
                vtkMRMLInteractionNode.InteractionModeChangedEvent, self._mode_changed)

    def disarm(self) -> None:
        """No point will place a lesion any more (until the next start)."""
        if self._observer is not None and self.node is not None:
            self.node.RemoveObserver(self._observer)
        self._observer = None

    def stop(self) -> None:
        """Leave placement without a point (the button clicked again, the module left)."""
        from slicer import vtkMRMLInteractionNode

        self.disarm()
        if self.interaction_node.GetCurrentInteractionMode() == vtkMRMLInteractionNode.Place:
            self.interaction_node.SetCurrentInteractionMode(vtkMRMLInteractionNode.ViewTransform)
        elif self._mode_observer is not None:  # not placing any more: the mode event will not come
            self._mode_changed(None, None)

    def clear(self) -> None:
        """Remove the clicked point (call it once the click's event handling is over)."""
        if self.node is not None and self.node.GetScene() is self.scene:
            self.node.RemoveAllControlPoints()

    def cleanup(self) -> None:
        """Stop and take the seed node out of the scene (module closed, scene closed)."""
        self.stop()
        if self.node is not None and self.node.GetScene() is self.scene:
            self.scene.RemoveNode(self.node)
        self.node = None

    def _mode_changed(self, caller, event) -> None:
        from slicer import vtkMRMLInteractionNode

        if self.interaction_node.GetCurrentInteractionMode() != vtkMRMLInteractionNode.Place \
                and self._mode_observer is not None:
            self.interaction_node.RemoveObserver(self._mode_observer)
            self._mode_observer = None
            if self.node is not None and self.selection_node.GetActivePlaceNodeID() == self.node.GetID():
                node_id, class_name = self._previous  # Slicer's own point tool feeds the user's list again
                if class_name:
                    self.selection_node.SetReferenceActivePlaceNodeClassName(class_name)
                self.selection_node.SetActivePlaceNodeID(node_id or None)
            if self.on_end is not None:
                self.on_end()

    def _defined(self, caller, event) -> None:
        count = self.node.GetNumberOfControlPoints()
        if count == 0:
            return
        ras = [0.0, 0.0, 0.0]
        self.node.GetNthControlPointPositionWorld(count - 1, ras)
        self.stop()  # the point stays until clear(): Slicer's widget may still be busy with it
        self.on_point([float(v) for v in ras])
