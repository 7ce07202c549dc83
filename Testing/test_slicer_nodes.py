"""Slicer-side conversions, tested on the real MRML classes of slicer-core (no fakes)."""

from __future__ import annotations

import numpy as np
import pytest
import vtk

from PASTALib.errors import PastaInputError
from PASTALib.io.sample_data import load_label_names
from PASTALib.io.volume_io import read_volume, write_volume

from conftest import FLOAT32_HEADER_MM


def slicer_read(scene, path, node_class="vtkMRMLScalarVolumeNode"):
    from slicer import vtkMRMLVolumeArchetypeStorageNode

    node = scene.AddNewNodeByClass(node_class, "loaded")
    storage = vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node), f"Slicer could not read {path}"
    return node


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def world(matrix: np.ndarray, probes: np.ndarray) -> np.ndarray:
    return (matrix @ np.c_[probes, np.ones(len(probes))].T).T[:, :3]


def test_volume_node_round_trip_is_exact(ct_volume, probe_indices, mrml_scene):
    from PASTASlicerLib.volume_nodes import node_to_volume, volume_to_node

    node = volume_to_node(ct_volume, mrml_scene, "ct")
    np.testing.assert_allclose(world(ijk_to_ras(node), probe_indices),
                               ct_volume.index_to_ras_points(probe_indices), atol=1e-9)
    back = node_to_volume(node)
    np.testing.assert_array_equal(back.array, ct_volume.array)
    assert back.array.dtype == ct_volume.array.dtype
    np.testing.assert_allclose(back.index_to_ras_points(probe_indices),
                               ct_volume.index_to_ras_points(probe_indices), atol=1e-9)


@pytest.mark.parametrize("suffix, atol", [(".nii.gz", FLOAT32_HEADER_MM), (".nrrd", 1e-9)])
def test_slicer_reads_our_files_where_we_wrote_them(ct_volume, probe_indices, tmp_path, mrml_scene,
                                                    suffix, atol):
    from slicer.util import arrayFromVolume

    path = write_volume(ct_volume, tmp_path / f"ct{suffix}")
    node = slicer_read(mrml_scene, path)
    np.testing.assert_allclose(world(ijk_to_ras(node), probe_indices),
                               ct_volume.index_to_ras_points(probe_indices), atol=atol)
    np.testing.assert_array_equal(arrayFromVolume(node), ct_volume.array)


@pytest.mark.parametrize("suffix, atol", [(".nii.gz", FLOAT32_HEADER_MM), (".nrrd", 1e-9)])
def test_we_read_slicer_files_where_slicer_wrote_them(ct_volume, probe_indices, tmp_path, mrml_scene,
                                                      suffix, atol):
    from slicer import vtkMRMLVolumeArchetypeStorageNode

    from PASTASlicerLib.volume_nodes import volume_to_node

    node = volume_to_node(ct_volume, mrml_scene, "ct")
    storage = vtkMRMLVolumeArchetypeStorageNode()
    mrml_scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / f"slicer{suffix}"))
    assert storage.WriteData(node)
    back = read_volume(tmp_path / f"slicer{suffix}")
    np.testing.assert_allclose(back.index_to_ras_points(probe_indices),
                               ct_volume.index_to_ras_points(probe_indices), atol=atol)
    np.testing.assert_array_equal(back.array, ct_volume.array)


def test_sample_loads_identically_in_slicer_and_core(sample_paths, mrml_scene):
    from PASTASlicerLib.volume_nodes import node_to_volume

    ours = read_volume(sample_paths["sample"])
    theirs = node_to_volume(slicer_read(mrml_scene, sample_paths["sample"]))
    assert theirs.has_same_geometry(ours, tolerance_mm=1e-6)
    np.testing.assert_array_equal(theirs.array, ours.array)


def test_linear_parent_transform_moves_the_world_geometry(ct_volume, mrml_scene):
    from PASTASlicerLib.volume_nodes import node_to_volume, volume_to_node

    node = volume_to_node(ct_volume, mrml_scene, "ct")
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 10.0)  # 10 mm toward patient right (+R)
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    moved = node_to_volume(node)
    np.testing.assert_allclose(moved.index_to_ras_points([0, 0, 0]),
                               ct_volume.index_to_ras_points([0, 0, 0]) + [10.0, 0, 0], atol=1e-9)


def test_describe_volume_node_with_organ_segmentation(sample_paths, mrml_scene):
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTASlicerLib.logic import describe_volume_node, report_text

    ct_node = slicer_read(mrml_scene, sample_paths["sample"])
    labelmap = slicer_read(mrml_scene, sample_paths["sample-organs"], "vtkMRMLLabelMapVolumeNode")
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs")
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    names = load_label_names(sample_paths["sample"].parent / "totalsegmentator_v2_classes.json")
    for index in range(segmentation.GetSegmentation().GetNumberOfSegments()):  # as TotalSegmentator names them
        segment = segmentation.GetSegmentation().GetNthSegment(index)
        segment.SetName(names[segment.GetLabelValue()])
    report = describe_volume_node(ct_node, segmentation)
    assert report["geometry"]["size"] == [122, 101, 112]
    assert report["ct_check"]["looks_like_ct"]
    labels = report["mask"]["labels"]
    assert len(labels) == 61
    liver = next(label for label in labels if label["name"] == "liver")
    direct = describe_volume_node(ct_node, labelmap)["mask"]["labels"]
    assert liver["voxels"] == next(label["voxels"] for label in direct if label["id"] == 5)
    assert "plausible CT in HU" in report_text(report)
    # the one line shown under the Check volume button (the full report sits in a section further down)
    from PASTASlicerLib.logic import check_verdict

    assert check_verdict(report) == ("Looks like CT in HU: 122 x 101 x 112 voxels of 3.00 x 3.00 x 3.00 mm, RAS. "
                                     "Details under Volume check.")
    assert check_verdict(None, "Volume 'x' is 2D.").startswith("Not usable as it is: Volume 'x' is 2D.")


def test_describe_volume_node_rejects_mismatched_mask(sample_paths, mrml_scene):
    from PASTASlicerLib.logic import describe_volume_node

    ct_node = slicer_read(mrml_scene, sample_paths["sample"])
    labelmap = slicer_read(mrml_scene, sample_paths["sample-organs"], "vtkMRMLLabelMapVolumeNode")
    labelmap.SetOrigin(np.add(labelmap.GetOrigin(), (0.0, 0.0, 9.0)))
    with pytest.raises(PastaInputError, match="geometry differs"):
        describe_volume_node(ct_node, labelmap)


def test_empty_node_is_a_clear_error(mrml_scene):
    from PASTASlicerLib.volume_nodes import node_to_volume

    node = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "nothing")
    with pytest.raises(PastaInputError, match="no image data"):
        node_to_volume(node)
