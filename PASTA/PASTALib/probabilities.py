"""Class-probability maps on disk: one 4D file, frame c = class c, stored as uint8 (p x 255).

Eight bits keep the file a quarter of float32's size (a 512x512x300 CT with 3 classes: 236 MB raw,
far less compressed) at a resolution of 0.004, ample for confidence measures and overlays.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_write
from .errors import PastaInputError
from .sitk_bridge import from_sitk, to_sitk
from .volume import Volume
from .volume_io import WRITE_SUFFIXES, suffix_of

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
    return atomic_write(path, lambda temporary: sitk.WriteImage(image, temporary, useCompression=True),
                        overwrite=overwrite, suffix=suffix)


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
