"""The PASTASynth module's scene logic on slicer-core's real MRML, with the bundled sample host.

Lesions are placed at given RAS points into the sample CT loaded as a scalar volume node with
its organ mask as a label map node. Checked: the host node is untouched, the synthetic volume
changes only inside each lesion's influence region, segments carry name/colour/terminology, undo
and redo restore exact voxels, regenerate replaces in place, and the exported case is valid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import vtk
from scipy import ndimage

from conftest import REPO

SAMPLE_CT = REPO / "PASTA" / "PASTALib" / "sample_data" / "abdomen_native_3mm_ct.nii.gz"
LIVER, KIDNEY_RIGHT = 5, 2  #: TotalSegmentator v2 ids
SCHEMA = REPO / "PASTA" / "PASTALib" / "Resources" / "report.schema.json"


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


def tag(segment, name: str) -> str:
    value = vtk.mutable("")
    assert segment.GetTag(name, value), f"segment {segment.GetName()} has no tag {name}"
    return str(value)


@pytest.fixture
def session(mrml_scene):
    from PASTALib import sample_data
    from PASTALib.volume_io import read_volume
    from PASTASynthSlicerLib.session import SynthSession

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    ct.CreateDefaultDisplayNodes()
    ct.GetDisplayNode().SetAutoWindowLevel(False)
    ct.GetDisplayNode().SetWindowLevel(400.0, 40.0)
    organs_path = sample_data.SAMPLES["sample-organs"].path
    organs = load_node(mrml_scene, organs_path, "vtkMRMLLabelMapVolumeNode", "Abdomen organs")
    synth = SynthSession(mrml_scene, ct, organs)
    synth.test_organs = read_volume(organs_path)
    synth.test_host_before = voxels(ct).copy()
    return synth


def test_place_changes_only_the_influence_region_and_never_the_host(session):
    from PASTASynthSlicerLib.session import HOST_ROLE

    out = session.output_node
    assert out.GetName() == "Abdomen CT + synthetic lesions"
    assert out.GetNodeReference(HOST_ROLE) is session.host_node
    assert (out.GetDisplayNode().GetWindow(), out.GetDisplayNode().GetLevel()) == (400.0, 40.0)
    host_before = session.test_host_before
    np.testing.assert_array_equal(voxels(out), host_before)

    point = organ_core_ras(session.test_organs, LIVER)
    step = session.place("liver_tumor", point, size_mm=25, attributes={"density": "hypodense"}, seed=3)
    after = voxels(out)
    changed = after != host_before
    assert changed.any()
    assert not (changed & ~step.result.influence).any()
    assert step.result.lesion_mask[tuple(np.argwhere(step.result.lesion_mask).mean(0).astype(int))]
    assert float(after[step.result.lesion_mask].mean()) < float(host_before[step.result.lesion_mask].mean())
    np.testing.assert_array_equal(voxels(session.host_node), host_before)  # host node untouched
    assert session.host_node.GetName() == "Abdomen CT"

    # a second lesion changes only its own influence region, on top of the first
    second = session.place("kidney_cyst", organ_core_ras(session.test_organs, KIDNEY_RIGHT), size_mm=15, seed=1)
    later = voxels(out)
    moved = later != after
    assert moved.any() and not (moved & ~second.result.influence).any()
    np.testing.assert_array_equal(voxels(session.host_node), host_before)


def test_segments_are_named_coloured_and_coded_and_reports_are_stored(session):
    from PASTALib.report.model import Report
    from PASTASlicerLib import report_store
    from PASTASlicerLib.remeasure import segment_mask
    from PASTASynthSlicerLib.segments import LESION_TAG

    liver = organ_core_ras(session.test_organs, LIVER)
    first = session.place("liver_tumor", liver, size_mm=20, seed=5)
    second = session.place("liver_tumor", [liver[0] + 25.0, liver[1], liver[2]], size_mm=15, seed=6)
    segmentation = session.segmentation_node.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == ["liver", "Liver tumor 1", "Liver tumor 2"]
    for step, number in ((first, 1), (second, 2)):
        segment = segmentation.GetSegment(step.segment_id)
        assert segment.GetName() == f"Liver tumor {number}"
        assert segment.GetColor() == pytest.approx((0.89, 0.10, 0.11))
        terminology = tag(segment, segment.GetTerminologyEntryTagName())
        assert "Segmentation category and type - DICOM master list" in terminology
        assert "SCT^" in terminology.split("~")[2]  # the lesion type's SNOMED CT code
        assert tag(segment, LESION_TAG) == step.key
        np.testing.assert_array_equal(segment_mask(session.segmentation_node, step.segment_id, session.output_node),
                                      step.result.lesion_mask)
        # the report node holds this lesion's report (one liver tumour finding)
        assert report_store.is_report_node(step.report_node)
        report = report_store.load_report(step.report_node)
        assert [f.lesion_type.key for f in report.findings] == ["liver_tumor"]
        assert report.provenance.parameters["synthesis"]["request"]["seed"] == step.request.seed
        assert isinstance(Report.from_json(step.report_node.GetText()), Report)


def test_undo_redo_restore_exact_voxels_segments_and_reports(session):
    out, scene = session.output_node, session.scene
    host = session.test_host_before
    liver = organ_core_ras(session.test_organs, LIVER)
    session.place("liver_tumor", liver, size_mm=20, seed=2)
    one = voxels(out).copy()
    session.place("liver_cyst", [liver[0] - 25.0, liver[1], liver[2]], size_mm=15, seed=4)
    two = voxels(out).copy()
    segmentation = session.segmentation_node.GetSegmentation()
    reports = lambda: sorted(scene.GetNthNode(i).GetName() for i in range(scene.GetNumberOfNodes())
                             if scene.GetNthNode(i).IsA("vtkMRMLTextNode"))
    assert segmentation.GetNumberOfSegments() == 3 and len(reports()) == 2

    assert session.undo().request.lesion_type == "liver_cyst"
    np.testing.assert_array_equal(voxels(out), one)
    assert segmentation.GetNumberOfSegments() == 2 and reports() == ["Liver tumor 1 report"]
    session.undo()
    np.testing.assert_array_equal(voxels(out), host)
    assert segmentation.GetNumberOfSegments() == 0 and reports() == []
    assert session.undo() is None and session.can_redo()

    session.redo()
    np.testing.assert_array_equal(voxels(out), one)
    session.redo()
    np.testing.assert_array_equal(voxels(out), two)
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == ["liver", "Liver tumor 1", "Liver cyst 1"] and len(reports()) == 2
    assert session.redo() is None

    # placing after an undo drops the redo branch
    session.undo()
    session.place("liver_cyst", [liver[0] - 25.0, liver[1], liver[2]], size_mm=12, seed=8)
    assert not session.can_redo() and len(session.lesions) == 2
    np.testing.assert_array_equal(voxels(session.host_node), host)


def test_regenerate_replaces_the_lesion_in_place(session):
    out = session.output_node
    liver = organ_core_ras(session.test_organs, LIVER)
    first = session.place("liver_tumor", liver, size_mm=20, seed=2)
    before_first = first.before.copy()
    old = session.place("liver_tumor", [liver[0] + 25.0, liver[1], liver[2]], size_mm=20,
                        attributes={"density": "hypodense"}, seed=3)
    one = voxels(out).copy()
    one[old.box] = old.before  # the volume with only the first lesion
    new = session.regenerate(attributes={"density": "hyperdense"})
    assert new.key == old.key and new.segment_id == old.segment_id and new.name == "Liver tumor 2"
    assert new.request.seed == 4 and new.request.center_ras == old.request.center_ras
    assert new.lesion.attributes["density"] == "hyperdense"
    after = voxels(out)
    # outside the new lesion's box the volume is the one-lesion volume: the old lesion is gone
    outside = np.ones(after.shape, bool)
    outside[new.box] = False
    np.testing.assert_array_equal(after[outside], one[outside])
    np.testing.assert_array_equal(after[new.box], new.after)
    mask = new.result.lesion_mask
    assert float(after[mask].mean()) > float(one[mask].mean())
    segmentation = session.segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3 and len(session.lesions) == 2
    assert new.report_node.GetName() == "Liver tumor 2 report"
    assert old.report_node is None
    # undo still steps through placed lesions exactly
    session.undo()
    np.testing.assert_array_equal(voxels(out), one)
    session.undo()
    np.testing.assert_array_equal(voxels(out)[first.box], before_first)
    np.testing.assert_array_equal(voxels(out), session.test_host_before)


def test_export_case_is_a_valid_pasta_gen_case(session, tmp_path):
    import jsonschema

    from PASTALib.volume_io import read_volume
    from PASTASynthLib.case_io import CASE_FILES

    liver = organ_core_ras(session.test_organs, LIVER)
    session.place("liver_tumor", liver, size_mm=20, seed=2)
    session.place("liver_tumor", [liver[0] + 25.0, liver[1], liver[2]], size_mm=15, seed=3)
    case = session.export_case(tmp_path / "case")
    assert sorted(p.name for p in case.iterdir()) == sorted(CASE_FILES)
    img, label = read_volume(case / "img.nii.gz"), read_volume(case / "label.nii.gz")
    total = read_volume(case / "total.nii.gz")
    host = session.host.image
    for volume in (img, label, total):
        assert volume.has_same_geometry(host, 1e-4)
    np.testing.assert_array_equal(img.array, voxels(session.output_node))
    lesion = label.array == 2
    assert lesion.any() and np.array_equal(lesion, session.lesions[0].result.lesion_mask
                                           | session.lesions[1].result.lesion_mask)
    report = json.loads((case / "report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    assert report["findings"] and {f["lesion_type"]["key"] for f in report["findings"]} == {"liver_tumor"}
    assert len(report["provenance"]["parameters"]["synthesis"]["request"]["lesions"]) == 2
    type_json = json.loads((case / "type.json").read_text())
    assert list(type_json) == [str(LIVER)] and len(type_json[str(LIVER)][3][0]) == 2
    np.testing.assert_array_equal(voxels(session.host_node), session.test_host_before)


def test_export_refuses_mixed_types_and_empty_sessions(session, tmp_path):
    from PASTALib.errors import PastaInputError

    with pytest.raises(PastaInputError):
        session.export_case(tmp_path / "empty")
    liver = organ_core_ras(session.test_organs, LIVER)
    session.place("liver_tumor", liver, size_mm=20, seed=2)
    session.place("liver_cyst", [liver[0] + 25.0, liver[1], liver[2]], size_mm=15, seed=3)
    with pytest.raises(PastaInputError, match="one lesion type"):
        session.export_case(tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()


def test_organs_from_a_segmentation_node(mrml_scene):
    """Organs given as a segmentation whose segments carry TotalSegmentator class names."""
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTALib import sample_data
    from PASTALib.volume_io import read_volume
    from PASTASynthLib.host import v2_names
    from PASTASynthSlicerLib.session import SynthSession

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    organs_path = sample_data.SAMPLES["sample-organs"].path
    labelmap = load_node(mrml_scene, organs_path, "vtkMRMLLabelMapVolumeNode", "Abdomen organs")
    organs_node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Abdomen organs segmentation")
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, organs_node)
    segmentation = organs_node.GetSegmentation()
    names = v2_names()
    for i in range(segmentation.GetNumberOfSegments()):  # slicer-core names them Label_<value>
        segment = segmentation.GetNthSegment(i)
        segment.SetName(names[int(segment.GetName().split("_")[1])])
    mrml_scene.RemoveNode(labelmap)
    host_before = voxels(ct).copy()

    synth = SynthSession(mrml_scene, ct, organs_node)
    step = synth.place("liver_tumor", organ_core_ras(read_volume(organs_path), LIVER), size_mm=20, seed=2)
    assert step.lesion.record["organ"] == "liver" and step.name == "Liver tumor 1"
    np.testing.assert_array_equal(voxels(ct), host_before)
    assert organs_node.GetSegmentation().GetNumberOfSegments() == segmentation.GetNumberOfSegments()


def test_a_failed_placement_leaves_the_scene_unchanged(session):
    from PASTALib.errors import PastaInputError

    liver = organ_core_ras(session.test_organs, LIVER)
    session.place("liver_tumor", liver, size_mm=20, seed=2)
    scene = session.scene
    nodes = scene.GetNumberOfNodes()
    before = voxels(session.output_node).copy()
    corner = [float(v) for v in session.host.image.index_to_ras_points(np.zeros(3))]  # air, far from the liver
    with pytest.raises(PastaInputError):
        session.place("liver_tumor", corner, size_mm=20, seed=1)
    with pytest.raises(PastaInputError):
        session.regenerate(size_mm=500)  # outside the type's size range
    np.testing.assert_array_equal(voxels(session.output_node), before)
    assert scene.GetNumberOfNodes() == nodes and len(session.lesions) == 1
    assert session.segmentation_node.GetSegmentation().GetNumberOfSegments() == 2
    assert session.lesions[0].report_node.GetScene() is scene
    assert session.place("liver_tumor", [liver[0] + 25.0, liver[1], liver[2]], size_mm=15, seed=3).key == "L2"
