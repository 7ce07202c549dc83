"""Qt-side parts of the PASTASynth module's panel, so ``PASTASynth.py`` only wires them.

* :mod:`.lesion_options`: the lesion type, size and attribute drop-downs (types greyed out when
  their organ is not in the segmentation; every value with "random"), kept in the parameter node.
* :mod:`.batch_panel`: Build dataset / Cancel, the ``pasta synth-batch`` process's progress.

These files use Qt and Slicer; the rules they apply live in ``PASTASynthSlicerLib`` (MRML only,
tested on slicer-core). They are imported lazily by ``PASTASynth.py``. Each part holds the
module's ``ui`` as ``self.ui`` so the widget contract test sees every name.
"""
