"""Class-probability maps on disk: one 4D file, frame c = class c, stored as uint8 (p x 255).

Eight bits keep the file a quarter of float32's size (a 512x512x300 CT with 3 classes: 236 MB raw,
far less compressed) at a resolution of 0.004, ample for confidence measures and overlays.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from PASTALib.atomic import atomic_write
from PASTALib.errors import PastaInputError
from PASTALib.io.sitk_bridge import from_sitk, to_sitk
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import WRITE_SUFFIXES, suffix_of, verify_written, write_sitk_image
from PASTALib.lesions.lesion_types import LESION_TYPES

_log = logging.getLogger(__name__)

SCALE = 255.0


def write_probabilities(probabilities: np.ndarray, reference: Volume, path: str | os.PathLike,
                        overwrite: bool = False) -> Path:
    """Write (C, k, j, i) probabilities on ``reference``'s grid atomically as a 4D image."""
    path = Path(path)
    suffix = suffix_of(path)
    if suffix not in WRITE_SUFFIXES:
        raise PastaInputError(f"Cannot write probabilities to {path.name}: use {', '.join(WRITE_SUFFIXES)}.")
    frames = [to_sitk(reference.with_array(np.round(np.clip(p, 0, 1) * SCALE).astype(np.uint8)))
              for p in probabilities]
    image = sitk.JoinSeries(frames)
    return atomic_write(path, lambda temporary: write_sitk_image(image, temporary),
                        overwrite=overwrite, suffix=suffix,
                        verify=lambda temporary: verify_written(temporary, image.GetSize()))


def read_probabilities(path: str | os.PathLike) -> tuple[np.ndarray, Volume]:
    """(C, k, j, i) float32 probabilities and a Volume with the grid (holding frame 0)."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise PastaInputError(f"Cannot read probabilities {path}: {str(exc).strip().splitlines()[-1]}") from None
    if image.GetDimension() != 4:
        raise PastaInputError(f"{path} is {image.GetDimension()}D; a probability map is 4D (one frame per class).",
                              "Write it with `pasta segment --probabilities`.")
    count = image.GetSize()[3]
    frames = []
    for c in range(count):
        size = list(image.GetSize())
        size[3] = 0
        frames.append(sitk.Extract(image, size=size, index=[0, 0, 0, c]))
    grid = from_sitk(frames[0])
    array = np.stack([sitk.GetArrayFromImage(f) for f in frames]).astype(np.float32)
    if np.issubdtype(sitk.GetArrayViewFromImage(frames[0]).dtype, np.integer):
        array /= SCALE
    return array, grid


def read_probability_input(path: str, image: Volume):
    """A 3D lesion-probability map, or the 4D class probabilities ``pasta segment --probabilities`` writes.

    4D files hold one frame per model class. With background plus one frame per lesion type of the table
    (in id order) each finding gets its own type's probability; otherwise the lesion probability is 1
    minus the background frame.
    """
    if Path(path).is_file():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            reader = None  # unreadable: read_volume gives the user-facing message
        if reader is not None and reader.GetNumberOfComponents() > 1:
            raise PastaInputError(f"{path} is a vector image; --probabilities takes a 3D lesion-probability "
                                  "map or the 4D file written by `pasta segment --probabilities`.")
        if reader is not None and reader.GetDimension() == 4:
            array, grid = read_probabilities(path)
            differences = image.geometry_differences(grid, image.grid_tolerance_mm)
            if differences:
                raise PastaInputError("The probability map's geometry differs from the image's: "
                                      + "; ".join(differences) + ".", "Save the probabilities on the image grid.")
            if array.shape[0] == len(LESION_TYPES) + 1:
                return array
            _log.info("%s has %d class frames: using 1 - background as the lesion probability.", path, array.shape[0])
            return grid.with_array(1.0 - array[0])
    from PASTALib.io.volume_io import read_volume

    return read_volume(path)
