"""PASTASynthSlicerLib: the PASTASynth module's scene logic (MRML/VTK only, no Qt).

It adapts MRML nodes to :mod:`PASTASynthLib` through :mod:`PASTASlicerLib`: :mod:`.segments`
(lesion and organ segments from numpy masks), :mod:`.session` (interactive placement with
undo/redo, regenerate, accept, per-lesion reports in the scene, case export), :mod:`.placement`
(the click in the slice views), :mod:`.choices` (what the drop-downs offer) and :mod:`.batch_job`
(the ``pasta synth-batch`` run of the Batch panel). Tests run it on slicer-core's MRML.
"""

from __future__ import annotations
