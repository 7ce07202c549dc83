"""The PASTASynth module's scene logic on slicer-core's real MRML, with the bundled sample host.

Lesions are placed at given RAS points into the sample CT loaded as a scalar volume node with
its organ mask as a label map node. Checked: the host node is untouched, the synthetic volume
changes only inside each lesion's influence region, segments carry name/colour/terminology, undo
and redo restore exact voxels, regenerate replaces in place, and the exported case is valid.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import vtk

from conftest import REPO
from synth_scene import KIDNEY_RIGHT, LIVER, SAMPLE_CT, load_node, organ_core_ras, voxels  # noqa: F401

SCHEMA = REPO / "PASTA" / "PASTALib" / "Resources" / "report.schema.json"


def tag(segment, name: str) -> str:
    value = vtk.mutable("")
    assert segment.GetTag(name, value), f"segment {segment.GetName()} has no tag {name}"
    return str(value)


@pytest.fixture
def session(mrml_scene):
    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
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

    from PASTALib.io.volume_io import read_volume
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

    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTALib.lesions.anatomy import totalsegmentator_v2_names as v2_names
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


# ---------------------------------------------------------------------------------- GUI-facing session features
def segment_names(session) -> list[str]:
    segmentation = session.segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


def test_regenerate_a_selected_earlier_lesion_keeps_the_later_ones(session):
    """A lesion in the middle is replaced in place; a later lesion elsewhere keeps its exact voxels."""
    out = session.output_node
    liver = organ_core_ras(session.test_organs, LIVER)
    kidney = organ_core_ras(session.test_organs, KIDNEY_RIGHT)
    first = session.place("liver_tumor", liver, size_mm=15, attributes={"density": "hypodense"}, seed=2)
    second = session.place("kidney_cyst", kidney, size_mm=12, seed=3)
    third = session.place("kidney_stone", [kidney[0], kidney[1], kidney[2] - 6.0], size_mm=5, seed=4)
    assert not any(_overlap(first.box, step.box) for step in (second, third))
    names = segment_names(session)
    assert names == ["liver", "Liver tumor 1", "kidney_right", "Kidney cyst 1", "Kidney stone 1"]
    later_voxels = voxels(out)[second.box].copy(), voxels(out)[third.box].copy()
    second_report = second.report_node

    new = session.regenerate(first.key, attributes={"density": "hyperdense"})
    assert new.key == "L1" and new.segment_id == first.segment_id and new.name == "Liver tumor 1"
    assert new.lesion.attributes["density"] == "hyperdense" and new.request.seed == 3
    assert [s.key for s in session.lesions] == ["L1", "L2", "L3"]
    assert session.lesions[1] is second and session.lesions[2] is third
    assert segment_names(session) == names  # same segments, same order
    np.testing.assert_array_equal(voxels(out)[second.box], later_voxels[0])
    np.testing.assert_array_equal(voxels(out)[third.box], later_voxels[1])
    assert second.report_node is second_report and first.report_node is None
    mask = new.result.lesion_mask
    assert float(voxels(out)[mask].mean()) > float(session.test_host_before[mask].mean())
    np.testing.assert_array_equal(voxels(session.host_node), session.test_host_before)
    for _ in range(3):
        session.undo()
    np.testing.assert_array_equal(voxels(out), session.test_host_before)
    assert segment_names(session) == []


def test_regenerate_redraws_a_later_lesion_that_overlaps(session):
    out = session.output_node
    liver = organ_core_ras(session.test_organs, LIVER)
    first = session.place("liver_tumor", liver, size_mm=25, seed=2)
    second = session.place("liver_cyst", [liver[0] + 12.0, liver[1], liver[2]], size_mm=15, seed=3)
    assert _overlap(first.box, second.box)
    session.accept("L1")
    session.accept("L2")
    new = session.regenerate("L1", size_mm=30, seed=9)
    assert not new.accepted and session.lesions[1].accepted  # the redrawn neighbour stays kept
    redrawn = session.lesions[1]
    assert redrawn is not second and redrawn.key == "L2" and redrawn.request == second.request
    assert redrawn.name == "Liver cyst 1" and redrawn.segment_id == second.segment_id
    assert segment_names(session) == ["liver", "Liver tumor 1", "Liver cyst 1"]
    # the volume is exactly: host, then the new first lesion, then the redrawn second one
    expected = session.test_host_before.copy()
    expected[new.box] = new.after
    expected[redrawn.box] = redrawn.after
    np.testing.assert_array_equal(voxels(out), expected)
    session.undo()
    session.undo()
    np.testing.assert_array_equal(voxels(out), session.test_host_before)


def test_a_failed_regenerate_of_an_earlier_lesion_changes_nothing(session):
    from PASTALib.errors import PastaInputError

    liver = organ_core_ras(session.test_organs, LIVER)
    session.place("liver_tumor", liver, size_mm=15, seed=2)
    session.place("liver_tumor", [liver[0] + 25.0, liver[1], liver[2]], size_mm=15, seed=3)
    before, names, nodes = voxels(session.output_node).copy(), segment_names(session), session.scene.GetNumberOfNodes()
    with pytest.raises(PastaInputError, match="outside|size"):
        session.regenerate("L1", size_mm=500)
    with pytest.raises(PastaInputError, match="L7"):
        session.regenerate("L7")
    np.testing.assert_array_equal(voxels(session.output_node), before)
    assert segment_names(session) == names and session.scene.GetNumberOfNodes() == nodes


def test_accept_is_stored_on_the_report_node_and_a_regenerated_lesion_is_pending(session):
    from PASTASynthSlicerLib.session import ACCEPTED_ATTRIBUTE

    liver = organ_core_ras(session.test_organs, LIVER)
    step = session.place("liver_tumor", liver, size_mm=15, seed=2)
    assert step.report_node.GetAttribute(ACCEPTED_ATTRIBUTE) is None
    assert session.accept().accepted
    assert step.report_node.GetAttribute(ACCEPTED_ATTRIBUTE) == "yes"
    session.undo()
    session.redo()
    assert step.report_node.GetAttribute(ACCEPTED_ATTRIBUTE) == "yes"  # a new node, same state
    new = session.regenerate()
    assert not new.accepted and new.report_node.GetAttribute(ACCEPTED_ATTRIBUTE) is None


def test_report_edits_survive_undo_and_redo(session):
    from PASTASlicerLib import report_store

    liver = organ_core_ras(session.test_organs, LIVER)
    step = session.place("liver_tumor", liver, size_mm=20, seed=2)
    report_store.edit_field(step.report_node, "report", "impression", "Synthetic, checked by JD.", "JD")
    session.undo()
    assert step.report_node is None
    session.redo()
    report = report_store.load_report(step.report_node)
    assert report.impression == "Synthetic, checked by JD."
    assert report_store.machine_value(step.report_node, "report", "impression") != report.impression


def test_session_nodes_go_into_the_hosts_study(mrml_scene):
    from slicer import vtkMRMLSubjectHierarchyNode

    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTASynthSlicerLib.session import SynthSession

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    organs_path = sample_data.SAMPLES["sample-organs"].path
    organs = load_node(mrml_scene, organs_path, "vtkMRMLLabelMapVolumeNode", "Abdomen organs")
    sh = vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient"), "CT study")
    sh.CreateItem(study, ct)  # Slicer's (Qt) subject hierarchy plugins would do this
    synth = SynthSession(mrml_scene, ct, organs)
    step = synth.place("liver_tumor", organ_core_ras(read_volume(organs_path), LIVER), size_mm=20, seed=2)
    for node in (synth.output_node, synth.segmentation_node, step.report_node):
        assert sh.GetItemParent(sh.GetItemByDataNode(node)) == study, node.GetName()
    synth.undo()
    synth.redo()
    assert sh.GetItemParent(sh.GetItemByDataNode(step.report_node)) == study


def _overlap(a, b) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


def test_regenerate_can_return_to_a_sampled_size(session):
    liver = organ_core_ras(session.test_organs, LIVER)
    session.place("liver_tumor", liver, size_mm=20, seed=2)
    assert session.regenerate(seed=2).request.size_mm == [20.0]  # kept
    sampled = session.regenerate(size_mm=None, seed=2)
    assert sampled.request.size_mm is None and sampled.lesion.size_mm != [20.0, 20.0, 20.0]


def test_export_carries_the_readers_impression(session, tmp_path):
    import jsonschema

    from PASTALib.report import review
    from PASTALib.report.model import Report
    from PASTASlicerLib import report_store

    liver = organ_core_ras(session.test_organs, LIVER)
    first = session.place("liver_tumor", liver, size_mm=20, seed=2)
    session.place("liver_tumor", [liver[0] + 25.0, liver[1], liver[2]], size_mm=15, seed=3)
    plain = json.loads((session.export_case(tmp_path / "plain") / "report.json").read_text())
    assert plain["edits"] == []
    report_store.edit_field(first.report_node, "report", "impression", "Two synthetic liver tumours.", "JD")
    case = session.export_case(tmp_path / "edited")
    document = json.loads((case / "report.json").read_text())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    report = Report.from_dict(document)
    assert report.impression == "Two synthetic liver tumours."
    assert review.machine_value(report, "report", "impression") == plain["impression"]
    assert [e.editor for e in report.edits] == ["JD"]
