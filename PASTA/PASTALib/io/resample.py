"""Resampling in physical space: to a new spacing, or onto another volume's grid.

Both helpers work on world coordinates, so inputs with different orientations (e.g. an RAS NIfTI
mask on an LPS DICOM grid) line up correctly; never compare or resample raw arrays directly.
"""

from __future__ import annotations

import enum

import numpy as np
import SimpleITK as sitk

from PASTALib.errors import PastaInputError

from .sitk_bridge import from_sitk, to_sitk
from .volume import Volume


class Interpolation(str, enum.Enum):
    """Interpolators offered to users; ``nearest`` is the only right choice for label maps."""

    LINEAR = "linear"
    NEAREST = "nearest"
    BSPLINE = "bspline"

    @property
    def sitk_code(self) -> int:
        return {
            Interpolation.LINEAR: sitk.sitkLinear,
            Interpolation.NEAREST: sitk.sitkNearestNeighbor,
            Interpolation.BSPLINE: sitk.sitkBSpline,
        }[self]


def _output_pixel_type(volume: Volume, interpolation: Interpolation) -> int:
    """Labels keep their type; interpolated intensities become float32 so no value is truncated."""
    if interpolation is Interpolation.NEAREST:
        return sitk.GetImageFromArray(volume.array[:1, :1, :1]).GetPixelID()
    return sitk.sitkFloat32


def _default_value(volume: Volume, interpolation: Interpolation, value: float | None) -> float:
    if value is not None:
        return float(value)
    return 0.0 if interpolation is Interpolation.NEAREST else float(volume.array.min())


def resample_to_spacing(
    volume: Volume,
    spacing: tuple[float, float, float],
    interpolation: Interpolation = Interpolation.LINEAR,
    default_value: float | None = None,
) -> Volume:
    """Resample to ``spacing`` (x, y, z mm) keeping orientation and the field of view.

    The new grid covers the same physical box as the old one (outer voxel edges aligned), as
    image-resizing resamplers do; its size is the old extent divided by the new spacing, rounded.
    Outside voxels get ``default_value`` (the image minimum for intensities, 0 for labels).
    """
    new_spacing = np.asarray(spacing, dtype=np.float64)
    if new_spacing.shape != (3,) or np.any(new_spacing <= 0) or not np.all(np.isfinite(new_spacing)):
        raise PastaInputError(f"Target spacing must be three positive numbers, got {spacing}.")
    interpolation = Interpolation(interpolation)
    old_spacing = np.asarray(volume.spacing)
    extent = np.asarray(volume.size) * old_spacing
    new_size = np.maximum(1, np.round(extent / new_spacing)).astype(int)
    # Align the outer voxel edges (centred when rounding changes the covered length).
    covered = new_size * new_spacing
    offset = (new_spacing - old_spacing) / 2.0 + (extent - covered) / 2.0
    new_origin = np.asarray(volume.origin) + volume.direction @ offset
    reference = Volume(
        np.zeros((1, 1, 1), dtype=np.uint8), tuple(new_spacing), tuple(new_origin), volume.direction
    )
    return _resample(volume, reference, tuple(int(n) for n in new_size), interpolation, default_value)


def resample_to_reference(
    volume: Volume,
    reference: Volume,
    interpolation: Interpolation = Interpolation.LINEAR,
    default_value: float | None = None,
) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid (size, spacing, origin, direction)."""
    return _resample(volume, reference, reference.size, Interpolation(interpolation), default_value)


def _resample(
    volume: Volume,
    reference: Volume,
    size: tuple[int, int, int],
    interpolation: Interpolation,
    default_value: float | None,
) -> Volume:
    image = to_sitk(volume)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in size])
    resampler.SetOutputSpacing(reference.spacing)
    resampler.SetOutputOrigin(reference.origin)
    resampler.SetOutputDirection(tuple(float(v) for v in reference.direction.reshape(-1)))
    resampler.SetInterpolator(interpolation.sitk_code)
    resampler.SetDefaultPixelValue(_default_value(volume, interpolation, default_value))
    resampler.SetOutputPixelType(_output_pixel_type(volume, interpolation))
    resampler.SetTransform(sitk.Transform())
    return from_sitk(resampler.Execute(image), dict(volume.metadata))
