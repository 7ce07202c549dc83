"""Exact conversion between MRML volume/segmentation nodes and :class:`PASTALib.io.volume.Volume`.

Slicer stores geometry as an IJK-to-RAS matrix; the core stores LPS origin/spacing/direction.
The conversion only flips the signs of x and y, so a voxel's world position is preserved.
A linear parent transform is applied (the node's *world* geometry is what the user sees); a
non-linear one is refused rather than silently ignored.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import vtk
from vtk.util import numpy_support

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume


def _matrix_to_numpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _numpy_to_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def world_ijk_to_ras(node) -> np.ndarray:
    """The node's IJK-to-RAS matrix composed with its (linear) parent transforms."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = _matrix_to_numpy(matrix)
    transform = node.GetParentTransformNode()
    if transform is None:
        return ijk_to_ras
    if not transform.IsTransformToWorldLinear():
        raise PastaInputError(
            f"Volume '{node.GetName()}' is under a non-linear transform.",
            "Harden the transform (Data module > right-click > Harden transform) and try again.",
        )
    to_world = vtk.vtkMatrix4x4()
    transform.GetMatrixTransformToWorld(to_world)
    return _matrix_to_numpy(to_world) @ ijk_to_ras


def node_to_volume(node) -> Volume:
    """A :class:`Volume` with the voxels (copied) and world geometry of a scalar volume node."""
    image = node.GetImageData() if node is not None else None
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        name = node.GetName() if node is not None else "(none)"
        raise PastaInputError(f"Volume '{name}' has no image data.", "Load or select a volume first.")
    scalars = image.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise PastaInputError(
            f"Volume '{node.GetName()}' has {scalars.GetNumberOfComponents()} components per voxel; "
            "PASTA needs a scalar CT volume.",
            "Select the CT itself, not a colour or vector volume.",
        )
    i, j, k = image.GetDimensions()
    array = numpy_support.vtk_to_numpy(scalars).reshape(k, j, i).copy()
    return Volume.from_index_to_ras(array, world_ijk_to_ras(node), {"source": node.GetName()})


def volume_to_node(volume: Volume, scene, name: str, node_class: str = "vtkMRMLScalarVolumeNode",
                   node=None):
    """Put ``volume`` into a new node of ``node_class`` in ``scene`` (or into ``node``)."""
    array = np.ascontiguousarray(volume.array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    image = vtk.vtkImageData()
    image.SetDimensions(*volume.size)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.reshape(-1), deep=True))
    if node is None:
        node = scene.AddNewNodeByClass(node_class, name)
    node.SetIJKToRASMatrix(_numpy_to_matrix(volume.index_to_ras))
    node.SetAndObserveImageData(image)
    return node


def segment_terms(segmentation_node) -> list[tuple[str, Optional[str]]]:
    """(name, terminology entry or None) of each segment, in segment order (label i+1 is segment i in
    :func:`segmentation_to_volume`)."""
    segmentation = segmentation_node.GetSegmentation()
    terms = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        value = vtk.mutable("")
        found = segment.GetTag("TerminologyEntry", value)
        terms.append((segment.GetName(), str(value) if found and str(value) else None))
    return terms


def segmentation_to_volume(segmentation_node, reference_node) -> tuple[Volume, dict[int, str]]:
    """Export every segment onto the reference volume's grid; label i+1 is segment i."""
    from slicer import vtkMRMLLabelMapVolumeNode, vtkSlicerSegmentationsModuleLogic

    segmentation = segmentation_node.GetSegmentation()
    segment_ids = vtk.vtkStringArray()
    segmentation.GetSegmentIDs(segment_ids)
    if segment_ids.GetNumberOfValues() == 0:
        raise PastaInputError(f"Segmentation '{segmentation_node.GetName()}' has no segments.")
    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass(vtkMRMLLabelMapVolumeNode.__name__, "PASTA temporary labelmap")
    try:
        exported = vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, segment_ids, labelmap, reference_node)
        if not exported:
            raise PastaInputError(
                f"Could not export segmentation '{segmentation_node.GetName()}' onto the volume grid.")
        volume = node_to_volume(labelmap)
    finally:
        scene.RemoveNode(labelmap)
    names = {index + 1: segmentation.GetSegment(segment_ids.GetValue(index)).GetName()
             for index in range(segment_ids.GetNumberOfValues())}
    volume.metadata["source"] = segmentation_node.GetName()
    return volume, names
