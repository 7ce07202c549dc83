"""Helpers for the PASTASynth scene tests: the sample CT and organs as nodes, voxel access, a safe lesion
centre inside an organ."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from slicer_scene import SAMPLE_CT, load_node  # noqa: F401 (re-exported for the synth tests)

LIVER, KIDNEY_RIGHT = 5, 2  #: TotalSegmentator v2 ids


def voxels(node) -> np.ndarray:
    from PASTASlicerLib.volume_nodes import node_to_volume

    return node_to_volume(node).array


def organ_core_ras(organs, label: int) -> list[float]:
    """RAS of the organ voxel deepest inside the organ (a safe lesion centre)."""
    depth = ndimage.distance_transform_edt(organs.array == label, sampling=organs.spacing[::-1])
    kji = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return [float(v) for v in organs.index_to_ras_points(np.array(kji[::-1], float))]
