"""A lesion the reader draws becomes a finding, measured like the machine's findings.

The reader names the drawn segment after a PASTA lesion type ("Liver tumor", "kidney_cyst 2") or gives it
that type's terminology code; :func:`drawn_finding` then measures it with the code ``pasta report`` uses
(one finding per drawn segment, whatever its parts), marks it accepted by its reader and appends it to
the report as a reader edit. Its location is its type's host organ until the reader picks a site.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume
from PASTALib.lesions import lesion_types

from . import review, staging
from .findings import analyse_segmentation
from .measurements import measure
from .model import Finding, Report

#: A trailing instance number Slicer adds to segment names ("Liver tumor 2", "kidney_cyst_3").
_NUMBER = re.compile(r"[\s_]*\d+$")


def lesion_type_of_segment(name: str, type_code: Optional[str] = None) -> Optional[lesion_types.LesionType]:
    """The PASTA lesion type a drawn segment names: by its terminology type code when exactly one type has
    that code, else by its name (type name or key, with or without a trailing number)."""
    if type_code:
        coded = [t for t in lesion_types.LESION_TYPES if t.code.value == type_code]
        if len(coded) == 1:
            return coded[0]
    text = _NUMBER.sub("", name.strip()).lower().replace(" ", "_").replace("-", "_")
    return lesion_types.BY_KEY.get(text)


def drawn_finding(report: Report, image: Volume, mask: np.ndarray, lesion_type: lesion_types.LesionType,
                  editor: str, when: Optional[str] = None) -> Finding:
    """Measure the drawn ``mask`` (on ``image``'s grid) as a ``lesion_type`` finding and add it to ``report``
    as the reader's: accepted by ``editor``, no machine confidence, recorded in the edit log."""
    mask = np.asarray(mask, bool)
    if mask.shape != image.array.shape:
        raise PastaInputError(f"The drawn segment's grid {mask.shape} is not the image's {image.array.shape}.")
    if not mask.any():
        raise PastaInputError("The drawn segment is empty, so it cannot be measured.")
    labels = image.with_array(mask.astype(np.int16) * lesion_type.id)
    parts = analyse_segmentation(image, labels, min_volume_ml=0.0).report.findings
    finding = parts[0]  # the largest part carries the location and attributes; the measurements are the whole
    finding.measurements = measure(mask, image)
    finding.staging = staging.stage_finding(lesion_type, finding.measurements.max_3d_diameter.length_mm)
    finding.confidence = None
    finding.notes = ["Drawn by the reader."] + (
        [f"The drawn segment has {len(parts)} separate parts, measured as one finding."] if len(parts) > 1 else [])
    return review.add_finding(report, finding, editor, when=when)
