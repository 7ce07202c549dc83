"""PASTASynthSlicerLib: the PASTASynth module's scene logic (MRML/VTK only, no Qt).

It adapts MRML nodes to :mod:`PASTASynthLib` through :mod:`PASTASlicerLib`: :mod:`.segments`
(lesion and organ segments from numpy masks) and :mod:`.session` (interactive placement with
undo/redo, per-lesion reports in the scene, case export). Tests run it on slicer-core's MRML.
"""

from __future__ import annotations
