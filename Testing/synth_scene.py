"""Helpers for the PASTASynth scene tests: the sample CT and organs as nodes, voxel access, a safe lesion
centre inside an organ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from conftest import REPO

SAMPLE_CT = REPO / "PASTA" / "PASTALib" / "sample_data" / "abdomen_native_3mm_ct.nii.gz"
LIVER, KIDNEY_RIGHT = 5, 2  #: TotalSegmentator v2 ids


def load_node(scene, path: Path, node_class: str, name: str):
    from slicer import vtkMRMLVolumeArchetypeStorageNode

    node = scene.AddNewNodeByClass(node_class, name)
    storage = vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def voxels(node) -> np.ndarray:
    from PASTASlicerLib.volume_nodes import node_to_volume

    return node_to_volume(node).array


def organ_core_ras(organs, label: int) -> list[float]:
    """RAS of the organ voxel deepest inside the organ (a safe lesion centre)."""
    depth = ndimage.distance_transform_edt(organs.array == label, sampling=organs.spacing[::-1])
    kji = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return [float(v) for v in organs.index_to_ras_points(np.array(kji[::-1], float))]
