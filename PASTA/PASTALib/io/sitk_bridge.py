"""Lossless conversion between :class:`Volume` and ``SimpleITK.Image``."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .volume import Volume


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image with the same voxels and geometry (the array is copied)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array), isVector=False)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(float(v) for v in volume.direction.reshape(-1)))
    return image


def from_sitk(image: sitk.Image, metadata: dict[str, str] | None = None) -> Volume:
    """A :class:`Volume` from a 3D scalar SimpleITK image."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    return Volume(
        sitk.GetArrayFromImage(image),
        image.GetSpacing(),
        image.GetOrigin(),
        direction,
        metadata or {},
    )
