"""What the panel says about the organ input before anything runs: whether it lies on the CT's voxel grid
(else it is resampled onto it, and the user is told) and whether it shows any organ the model looks for.

MRML/numpy only (no Qt); tested on slicer-core.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

import numpy as np
import vtk

#: Two grids are the same when their voxel-to-world matrices agree this closely (mm).
GRID_TOLERANCE_MM = 1e-3


def _matrix(node) -> Optional[np.ndarray]:
    """The voxel-to-RAS matrix of a volume node, or of a segmentation's binary labelmap (None: no voxels,
    e.g. a segmentation made of surfaces)."""
    matrix = vtk.vtkMatrix4x4()
    if node.IsA("vtkMRMLVolumeNode"):
        node.GetIJKToRASMatrix(matrix)
    else:
        segmentation = node.GetSegmentation()
        if segmentation.GetNumberOfSegments() == 0:
            return None
        labelmap = segmentation.GetNthSegment(0).GetRepresentation("Binary labelmap")
        if labelmap is None:
            return None
        labelmap.GetImageToWorldMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _spacing_text(matrix: np.ndarray) -> str:
    return " x ".join(f"{s:.3g}" for s in np.linalg.norm(matrix[:3, :3], axis=0))


def grid_note(organ_node, input_node) -> Optional[str]:
    """A sentence when the organ input does not lie on the CT's voxel grid; None when it does."""
    if organ_node is None or input_node is None:
        return None
    organ, ct = _matrix(organ_node), _matrix(input_node)
    if organ is None:
        return ("The organ segmentation has no voxel grid (surfaces): it is voxelised on the CT's grid before "
                "the analysis.")
    if np.allclose(organ, ct, atol=GRID_TOLERANCE_MM):
        return None
    return (f"The organ segmentation lies on another voxel grid ({_spacing_text(organ)} mm voxels) than the CT "
            f"({_spacing_text(ct)} mm): it is resampled onto the CT's grid (nearest neighbour) before the "
            "analysis.")


def model_organs_note(class_map: Mapping[int, int], organ_ids: Iterable[int]) -> Optional[str]:
    """A warning when the organ input (TotalSegmentator v2 ids on the CT's grid) shows none of the organs the
    model's lesion types live in; None when one is there or the model only needs the lung, which is
    always found by thresholding."""
    from PASTALib.lesions import anatomy, lesion_types

    groups = {lesion_types.BY_ID[int(t)].organ for t in class_map.values() if int(t) in lesion_types.BY_ID}
    needed = sorted(groups - {"lung"})
    sites = anatomy.totalsegmentator_v2_sites()
    present = {sites[int(i)].group for i in organ_ids if int(i) in sites}
    if not needed or groups & present or "lung" in groups:
        return None
    names = ", ".join(anatomy.group_name(group) for group in needed)
    return (f"The organ segmentation shows none of the organs this model looks for ({names}) inside the CT: "
            "the CT may not contain them, and the model would find nothing there.")
