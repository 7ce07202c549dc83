"""PASTA's standardisation before the network, and the way back to the input grid.

The PASTA authors standardise every image before nnU-Net (LWHYC/PASTA ``preprocess/NifitiStandard.py``,
read for its rule, not copied; PASTA_REFERENCE.md 3.1): voxel order L, P, S (nibabel axis codes; an
ITK image with identity direction; an oblique scan takes its closest such order, it is not rotated)
and 1 mm spacing by linear interpolation. A network fine-tuned on
such arrays sees mirrored anatomy when a scan stored in another voxel order is fed as stored, so
models whose card says ``preprocessing.standardise == "pasta"`` get the same arrays here.

The way back is exact when the input was axis-aligned at 1 mm (an index permutation and flips);
otherwise labels are resampled with nearest neighbour and probabilities linearly, in world space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from PASTALib.io.resample import Interpolation, resample_to_reference, resample_to_spacing
from PASTALib.io.volume import Volume

PASTA_SPACING_MM = 1.0
SPACING_TOLERANCE_MM = 1e-3
AIR_HU = -1024.0


@dataclass
class Standardised:
    """The network's view of a volume and how to return to the input grid."""

    volume: Volume  #: the voxel order closest to LPS, 1 mm
    source: Volume  #: the input (its grid is where results go back to)
    order: Optional[tuple[int, int, int]]  #: array axes of the input in the standard array (None: resampled)
    flips: tuple[bool, bool, bool]  #: standard array axes flipped after the transpose

    @property
    def exact(self) -> bool:
        return self.order is not None

    def labels_forward(self, labels: np.ndarray) -> np.ndarray:
        """A label array on the input grid, on the standard grid (the way in, for masks)."""
        if self.exact:
            array = np.transpose(labels, self.order)
            return np.ascontiguousarray(np.flip(array, axis=tuple(n for n in range(3) if self.flips[n])))
        return resample_to_reference(self.source.with_array(labels), self.volume, Interpolation.NEAREST,
                                     default_value=0).array.astype(labels.dtype)

    def labels_back(self, labels: np.ndarray) -> np.ndarray:
        """A label array on the standard grid, on the input grid."""
        if self.exact:
            return self._undo(labels)
        standard = self.volume.with_array(labels)
        return resample_to_reference(standard, self.source, Interpolation.NEAREST, default_value=0).array \
            .astype(labels.dtype)

    def probabilities_back(self, probabilities: np.ndarray) -> np.ndarray:
        """(C, k, j, i) probabilities on the standard grid, on the input grid (background = 1 outside)."""
        if self.exact:
            return np.stack([self._undo(channel) for channel in probabilities])
        out = []
        for index, channel in enumerate(probabilities):
            moved = resample_to_reference(self.volume.with_array(channel.astype(np.float32)), self.source,
                                          Interpolation.LINEAR, default_value=1.0 if index == 0 else 0.0)
            out.append(moved.array.astype(np.float32))
        return np.stack(out)

    def _undo(self, array: np.ndarray) -> np.ndarray:
        flipped = np.flip(array, axis=tuple(a for a, f in enumerate(self.flips) if f))
        return np.ascontiguousarray(np.transpose(flipped, np.argsort(self.order)))


def standardise(volume: Volume) -> Standardised:
    """``volume`` in the voxel order closest to L, P, S, at 1 mm along its own axes.

    As the authors' nibabel reorientation does, an oblique scan is permuted and flipped to its closest
    orientation, not rotated: the network sees its voxels, in LPS order. Exact (no interpolation)
    when the spacing already is 1 mm.
    """
    direction = np.asarray(volume.direction, np.float64)
    world_of_index = _closest_world_axes(direction)  # index axis (i, j, k) -> world axis (x, y, z)
    sign_of_index = np.sign(direction[world_of_index, np.arange(3)])
    index_of_world = np.argsort(world_of_index)
    # numpy arrays are (k, j, i): array axis n holds index axis 2 - n
    order = tuple(int(2 - index_of_world[2 - n]) for n in range(3))
    flips = tuple(bool(sign_of_index[index_of_world[2 - n]] < 0) for n in range(3))
    array = np.transpose(volume.array, order)
    array = np.ascontiguousarray(np.flip(array, axis=tuple(n for n in range(3) if flips[n])))
    spacing = tuple(float(volume.spacing[index_of_world[w]]) for w in range(3))
    new_direction = direction[:, index_of_world] * sign_of_index[index_of_world]
    corner = [volume.array.shape[2 - a] - 1 if sign_of_index[a] < 0 else 0 for a in range(3)]  # i, j, k
    origin = tuple(float(v) for v in volume.index_to_lps_points(np.asarray(corner, np.float64)))
    ordered = Volume(array, spacing, origin, new_direction, volume.metadata)
    if all(abs(s - PASTA_SPACING_MM) <= SPACING_TOLERANCE_MM for s in spacing):
        return Standardised(ordered, volume, order, flips)
    resampled = resample_to_spacing(ordered, (PASTA_SPACING_MM,) * 3, Interpolation.LINEAR, default_value=AIR_HU)
    return Standardised(resampled.with_array(resampled.array.astype(np.float32)), volume, None,
                        (False, False, False))


def _closest_world_axes(direction: np.ndarray) -> np.ndarray:
    """For each index axis the world axis it is closest to, each world axis used once (the greedy
    assignment of nibabel's ``io_orientation``: the most clearly aligned index axis chooses first)."""
    world = np.full(3, -1)
    used: set[int] = set()
    for column in np.argsort(-np.max(np.abs(direction), axis=0)):
        ranked = np.argsort(-np.abs(direction[:, column]))
        world[column] = next(int(w) for w in ranked if int(w) not in used)
        used.add(int(world[column]))
    return world
