"""Qt-side parts of the PASTA module's panel, one job per file, so ``PASTA.py`` only wires them.

* :mod:`.model_panel`: installed models (import, open folder, delete) and the registry list.
* :mod:`.download_dialog`: the consent dialog and progress of a registry download.
* :mod:`.run_panel`: Apply / Cancel, the analysis process's progress, the import of its results.
* :mod:`.report_panel`: the editable report of the selected result (attributes, measurements, T,
  impression, review) and centring the views on a finding.
* :mod:`.report_export`: the JSON, HTML and DICOM SEG + SR export buttons.
* :mod:`.segment_watcher`: re-measures a finding after its segment is edited.

These files use Qt and Slicer; everything they compute lives in ``PASTASlicerLib`` (MRML only,
tested on slicer-core) and ``PASTALib`` (no Slicer). They are imported lazily by ``PASTA.py``.
Each panel holds the module's ``ui`` as ``self.ui`` so the widget contract test sees every name.
"""
