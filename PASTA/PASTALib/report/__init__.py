"""Findings, measurements, attributes, staging and the structured report (JSON, Markdown, HTML,
DICOM SEG + SR) from a lesion label map; Slicer-free.

Entry points: :func:`.findings.report_from_segmentation` (the hook ``pasta analyze`` calls) and
:func:`.findings.analyse_segmentation` (the same, keeping each finding's voxels for key images and
DICOM SEG). Heavy optional parts (highdicom, Pillow) are imported only by their modules.
"""

#: Components smaller than this are dropped (and counted): about a 3.4 mm sphere, below any
#: lesion PASTA reports, above the specks a segmentation leaves. Here so the CLI can show it
#: without importing the computation.
DEFAULT_MIN_VOLUME_ML = 0.02
