"""The grid the detector works on: the scan's own, coarsened to at least 2 mm per axis.

2 mm keeps a 10 mm lesion five voxels across (enough to measure its shape and contrast) while a
512 x 512 x 300 CT shrinks to about 180 x 180 x 300 voxels, so detection stays within seconds and
a few hundred MB. Coarser scans are used as they are: upsampling adds no information.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from PASTALib.io.resample import Interpolation, resample_to_reference, resample_to_spacing
from PASTALib.io.volume import Volume

MIN_SPACING_MM = 2.0


def working_spacing(spacing_xyz) -> tuple[float, float, float]:
    return tuple(max(float(s), MIN_SPACING_MM) for s in spacing_xyz)


def to_working_grid(image: Volume, organs: Optional[Volume] = None) -> tuple[Volume, Optional[Volume]]:
    """The CT (linear, float32) and its organ labels (nearest) on the working grid."""
    target = working_spacing(image.spacing)
    if np.allclose(target, image.spacing):
        work = image.with_array(image.array.astype(np.float32, copy=False))
    else:
        work = resample_to_spacing(image, target, Interpolation.LINEAR, default_value=-1024.0)
        work = work.with_array(work.array.astype(np.float32, copy=False))
    if organs is None:
        return work, None
    if work.has_same_geometry(organs, work.grid_tolerance_mm):
        return work, organs
    return work, resample_to_reference(organs, work, Interpolation.NEAREST, default_value=0)
