"""Organs for a CT that has none: run the TotalSegmentator extension's logic (its fast model) when that
extension is installed, and hand the resulting segmentation to PASTA as its organ input.

PASTA never installs or downloads anything for this itself: the TotalSegmentator extension owns its
package and weights and asks its own questions. MRML only (no Qt); tested on slicer-core.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

from .install import module_available

#: The Python module the TotalSegmentator Slicer extension adds.
TOTALSEGMENTATOR_MODULE = "TotalSegmentator"
#: What the extension's logic is asked for: the whole-body task, fast (3 mm) model.
PROCESS_OPTIONS = {"fast": True, "task": "total"}


def extension_installed(has_module: Optional[Callable[[str], bool]] = None) -> bool:
    """Whether the TotalSegmentator extension's module can be imported (nothing is imported to know)."""
    return (has_module or module_available)(TOTALSEGMENTATOR_MODULE)


def offer_segmentation(organ_node, input_node, has_module: Optional[Callable[[str], bool]] = None) -> bool:
    """The panel offers "Segment organs with TotalSegmentator" only when a CT is chosen, no organ
    segmentation is, and the extension is installed."""
    return organ_node is None and input_node is not None and extension_installed(has_module)


def segment_organs(input_node, logic=None):
    """Run TotalSegmentator (fast) on ``input_node`` into a new segmentation node next to it; returns it.
    ``logic`` is the extension's ``TotalSegmentatorLogic`` (made here when None). On failure the new node is
    removed again, so the scene is as it was."""
    if logic is None:
        import TotalSegmentator

        logic = TotalSegmentator.TotalSegmentatorLogic()
    scene = input_node.GetScene()
    output = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{input_node.GetName()} organs (TotalSegmentator)")
    try:
        if hasattr(logic, "setupPythonRequirements"):  # installs its package once, asking first
            logic.setupPythonRequirements()
        accepted = inspect.signature(logic.process).parameters
        logic.process(input_node, output, **{k: v for k, v in PROCESS_OPTIONS.items() if k in accepted})
    except Exception:
        scene.RemoveNode(output)
        raise
    return output
