"""Results of a real `pasta analyze` run imported into a real slicer-core MRML scene.

The run uses the bundled sample CT and the tiny test network presented as a kidney-tumour model
(so the two kidneys become two findings). Everything is checked on real MRML nodes: segments,
names, colours, SNOMED CT terminology, reference geometry, study placement, table rows, markups,
failure leaving the scene unchanged, and report edits surviving a scene save and reload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vtk

from conftest import DATA, REPO
from slicer_scene import SAMPLE_CT, attach_logics, load_ct, load_organs_segmentation, node_names, put_in_study  # noqa: F401



@pytest.fixture(scope="module")
def split_analysis(tmp_path_factory) -> Path:
    """Output folder of a real `analyze` run whose one lesion component spans two organs.

    The tiny network's liver class plays a liver tumour; in the organ mask the upper half of the
    liver is relabelled stomach, so `analyze` splits the component into two findings by organ.
    """
    from PASTALib.io.volume_io import read_volume, write_volume

    root = tmp_path_factory.mktemp("split")
    model = shutil.copytree(DATA / "tiny_pasta_organs", root / "model")
    card = json.loads((model / "model.json").read_text())
    card["classes"][1]["lesion_type"] = "liver_tumor"
    (model / "model.json").write_text(json.dumps(card))
    organs = read_volume(REPO / "PASTA" / "PASTALib" / "sample_data" / "abdomen_native_3mm_organs.nii.gz")
    array = organs.array.copy()
    ks = np.nonzero((array == 5).any(axis=(1, 2)))[0]  # 5: liver, 6: stomach (TotalSegmentator v2)
    upper = np.zeros(array.shape, bool)
    upper[ks[len(ks) // 2]:] = True
    array[upper & (array == 5)] = 6
    write_volume(organs.with_array(array), root / "organs.nii.gz")
    out = root / "out"
    result = subprocess.run([sys.executable, "-m", "PASTALib", "analyze", str(SAMPLE_CT), "--organs",
                             str(root / "organs.nii.gz"), "--model", str(model), "-o", str(out), "--device", "cpu",
                             "--quiet"], capture_output=True, text=True, cwd=REPO / "PASTA")
    assert result.returncode == 0, result.stderr
    return out


def tag(segment, name) -> str:
    value = vtk.mutable("")
    assert segment.GetTag(name, value), f"segment {segment.GetName()} has no tag {name}"
    return str(value)


def test_class_map_is_read_from_the_model_card_without_torch(analysis):
    from PASTASlicerLib.results_import import model_class_map

    model, _ = analysis
    assert model_class_map(model) == {2: 5}  # class 2 -> kidney_tumor
    assert model_class_map(DATA / "no_such_model", "liver_tumor") == {2: 2}  # bare checkpoint layout


def test_import_builds_segments_table_markups_and_report(analysis, scene):
    from PASTALib.report.model import Report
    from PASTASlicerLib import report_store
    from PASTASlicerLib.results_import import FINDING_TAG, TABLE_COLUMNS, import_results, results_of
    from PASTASlicerLib.volume_nodes import node_to_volume

    _, out = analysis
    report = Report.from_json((out / "report.json").read_text())
    assert len(report.findings) == 2
    ct = load_ct(scene)
    sh, study = put_in_study(scene, ct)

    results = import_results(scene, ct, out)
    seg_node = results.segmentation
    assert seg_node.GetName() == "Abdomen CT PASTA findings"
    segmentation = seg_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    sides = {f.id: f.location.side for f in report.findings}
    for index, finding in enumerate(report.findings):
        segment = segmentation.GetSegment(results.segment_ids[finding.id])
        assert segment.GetName() == f"Kidney tumor {index + 1}"
        assert segment.GetColor() == pytest.approx((1.0, 0.5, 0.0))
        assert tag(segment, FINDING_TAG) == finding.id
        side = {"right": "SCT^24028007^Right", "left": "SCT^7771000^Left"}[sides[finding.id]]
        assert tag(segment, segment.GetTerminologyEntryTagName()) == (
            "Segmentation category and type - DICOM master list~SCT^49755003^Morphologically Abnormal Structure"
            "~SCT^108369006^Neoplasm~^^~Anatomic codes - DICOM master list~SCT^64033007^Kidney~" + side)

    # Reference geometry is the input's, and each segment holds exactly its finding's voxels.
    probe = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "probe")
    probe.SetReferenceImageGeometryParameterFromVolumeNode(ct)
    geometry = segmentation.GetConversionParameter("Reference image geometry")
    assert geometry and geometry == probe.GetSegmentation().GetConversionParameter("Reference image geometry")
    scene.RemoveNode(probe)
    for finding in report.findings:  # the stored binary labelmaps lie on the input's voxel grid
        image = segmentation.GetSegment(results.segment_ids[finding.id]).GetRepresentation("Binary labelmap")
        matrix = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(matrix)
        ct_matrix = vtk.vtkMatrix4x4()
        ct.GetIJKToRASMatrix(ct_matrix)
        assert [matrix.GetElement(r, c) for r in range(4) for c in range(4)] == pytest.approx(
            [ct_matrix.GetElement(r, c) for r in range(4) for c in range(4)], abs=1e-9)
    from slicer import vtkMRMLLabelMapVolumeNode, vtkSlicerSegmentationsModuleLogic

    ct_volume = node_to_volume(ct)
    for finding in report.findings:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(results.segment_ids[finding.id])
        labelmap = scene.AddNewNodeByClass(vtkMRMLLabelMapVolumeNode.__name__, "check")
        assert vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg_node, ids, labelmap, ct)
        exported = node_to_volume(labelmap)
        assert exported.has_same_geometry(ct_volume, 1e-9)
        assert int((exported.array > 0).sum()) == finding.component.voxel_count
        scene.RemoveNode(labelmap)

    # Placed in the input's study.
    assert sh.GetItemParent(sh.GetItemByDataNode(seg_node)) == study

    # The findings table: one row per finding, in the report's order.
    table = results.table
    assert table.GetNumberOfRows() == 2
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == list(TABLE_COLUMNS)
    for row, finding in enumerate(report.findings):
        assert table.GetCellText(row, 0) == finding.id
        assert table.GetCellText(row, 2) == "Kidney tumor"
        assert table.GetCellText(row, 3) == finding.location.site
        assert float(table.GetCellText(row, 4)) == pytest.approx(
            finding.measurements.recist.long_axis.length_mm, abs=0.05)
        assert float(table.GetCellText(row, 6)) == pytest.approx(finding.measurements.volume_ml, abs=0.005)
        assert table.GetCellText(row, 7) == finding.staging.value
        assert table.GetCellText(row, 9) == "pending"
        assert table.GetCellText(row, 10) == " ".join(finding.notes)  # the finding's notes, in its row
    # Measurements are numbers (a header click sorts 9.8 after 10.2 by value, not as text); text columns stay text.
    for title in ("Long axis (mm)", "Short axis (mm)", "Volume (mL)", "Confidence"):
        column = table.GetTable().GetColumnByName(title)
        assert column.IsNumeric() and column.GetDataTypeAsString() == "double", title
        assert table.GetColumnProperty(title, "type") == "double"
    assert not table.GetTable().GetColumnByName("Type").IsNumeric()
    volumes = [table.GetTable().GetValueByName(row, "Volume (mL)").ToDouble() for row in range(2)]
    assert volumes == [round(f.measurements.volume_ml, 2) for f in report.findings]

    # Markups: an ROI around each finding and its RECIST long axis.
    assert len(results.markups) == 4
    rois = [n for n in results.markups if n.IsA("vtkMRMLMarkupsROINode")]
    lines = [n for n in results.markups if n.IsA("vtkMRMLMarkupsLineNode")]
    for finding, roi, line in zip(report.findings, rois, lines):
        bbox = finding.measurements.bbox
        center = [0.0, 0.0, 0.0]
        roi.GetCenter(center)
        np.testing.assert_allclose(center, (np.array(bbox.ras_min) + np.array(bbox.ras_max)) / 2, atol=1e-6)
        assert line.GetLineLengthWorld() == pytest.approx(finding.measurements.recist.long_axis.length_mm, abs=1e-6)
        assert roi.GetAttribute(FINDING_TAG) == finding.id == line.GetAttribute(FINDING_TAG)

    # Only the selected finding's markups are shown: the first (most confident) one after import.
    def shown():
        return sorted({n.GetAttribute(FINDING_TAG) for n in results.markups if n.GetDisplayNode().GetVisibility()})

    assert shown() == [report.findings[0].id]
    from PASTASlicerLib.results_import import show_markups_of

    show_markups_of(seg_node, report.findings[1].id)
    assert shown() == [report.findings[1].id]

    # The report text node is linked and holds the report.
    linked = results_of(seg_node)
    assert linked["report"] is results.report and linked["table"] is table and len(linked["markups"]) == 4
    assert report_store.load_report(results.report).to_dict() == report.to_dict()


def test_each_run_adds_new_nodes_and_keeps_existing_segmentations(analysis, scene):
    from PASTASlicerLib.results_import import import_results

    _, out = analysis
    ct = load_ct(scene)
    mine = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Abdomen CT PASTA findings")
    mine.GetSegmentation().AddEmptySegment("mine", "My liver")
    first = import_results(scene, ct, out)
    second = import_results(scene, ct, out)
    assert first.segmentation is not mine and second.segmentation is not first.segmentation
    assert first.segmentation.GetName() == "Abdomen CT PASTA findings (2)"
    assert second.segmentation.GetName() == "Abdomen CT PASTA findings (3)"
    assert mine.GetSegmentation().GetNumberOfSegments() == 1
    assert mine.GetSegmentation().GetSegment("mine").GetName() == "My liver"


def test_a_failed_import_leaves_the_scene_unchanged(analysis, scene, tmp_path, monkeypatch):
    from PASTALib.errors import PastaInputError
    from PASTASlicerLib import results_import
    from PASTASlicerLib.results_import import import_results

    _, out = analysis
    ct = load_ct(scene)
    before = node_names(scene)
    # A report whose findings are not the voxels in findings.nii.gz (a mismatched run) must add nothing.
    broken = shutil.copytree(out, tmp_path / "broken")
    report = json.loads((broken / "report.json").read_text())
    report["findings"][1]["component"]["voxel_count"] += 1
    (broken / "report.json").write_text(json.dumps(report))
    with pytest.raises(PastaInputError, match="findings.nii.gz does not match report.json: F2"):
        import_results(scene, ct, broken)
    assert node_names(scene) == before
    # An output folder of an older PASTA (no findings.nii.gz) is explained, not guessed at.
    (broken / "findings.nii.gz").unlink()
    shutil.copy(out / "report.json", broken / "report.json")
    with pytest.raises(PastaInputError, match="wrote no findings.nii.gz"):
        import_results(scene, ct, broken)
    assert node_names(scene) == before
    # A failure half-way through the import removes the nodes it had already added.
    monkeypatch.setattr(results_import, "fill_table", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):
        import_results(scene, ct, out)
    assert node_names(scene) == before
    # A run that wrote nothing is explained, not a traceback.
    (tmp_path / "empty").mkdir()
    with pytest.raises(PastaInputError, match="wrote no report.json"):
        import_results(scene, ct, tmp_path / "empty")
    assert node_names(scene) == before


def test_report_edits_survive_saving_and_reloading_the_scene(analysis, scene, tmp_path):
    from slicer import vtkMRMLScene

    from PASTASlicerLib import report_store
    from PASTASlicerLib.results_import import import_results, refresh_table, results_of

    _, out = analysis
    ct = load_ct(scene)
    results = import_results(scene, ct, out)
    node = results.report
    machine_shape = report_store.load_report(node).finding("F1").attributes["Shape"].value
    machine_t = report_store.load_report(node).finding("F1").staging.value
    new_shape = "Irregular" if machine_shape != "Irregular" else "Round-like"
    report_store.edit_field(node, "F1", "attributes.Shape.value", new_shape, "Dr Reader")
    report_store.edit_field(node, "F1", "staging.value", "T1b", "Dr Reader", comment="measured by hand")
    report_store.edit_field(node, "report", "impression", "Two renal masses.", "Dr Reader")
    report_store.set_review(node, "F2", "rejected", "Dr Reader")
    refresh_table(results.segmentation)
    assert results.table.GetCellText(0, 7) == "T1b" and results.table.GetCellText(1, 9) == "rejected"
    with pytest.raises(ValueError, match="not a Shape option"):
        report_store.edit_field(node, "F1", "attributes.Shape.value", "Square", "Dr Reader")

    # Save the scene as Slicer does: each data node through its storage node, then the .mrml
    # (the report text node is written inline there).
    for number, data_node in enumerate([results.segmentation, results.table, *results.markups]):
        storage = data_node.CreateDefaultStorageNode()
        scene.AddNode(storage)
        extension = {"vtkMRMLSegmentationNode": "seg.nrrd", "vtkMRMLTableNode": "tsv"}.get(
            data_node.GetClassName(), "mrk.json")
        storage.SetFileName(str(tmp_path / f"node{number}.{extension}"))
        assert storage.WriteData(data_node), data_node.GetName()
        data_node.SetAndObserveStorageNodeID(storage.GetID())
    scene.SetURL(str(tmp_path / "scene.mrml"))
    assert scene.Commit()

    reloaded = vtkMRMLScene()
    _logics = attach_logics(reloaded)  # keep the logics alive while the scene loads
    reloaded.SetURL(str(tmp_path / "scene.mrml"))
    assert reloaded.Connect()
    seg_node = reloaded.GetFirstNodeByName(results.segmentation.GetName())
    linked = results_of(seg_node)
    report = report_store.load_report(linked["report"])
    finding = report.finding("F1")
    assert finding.attributes["Shape"].value == new_shape and finding.attributes["Shape"].source == "reader"
    assert finding.staging.value == "T1b" and finding.staging.source == "reader"
    assert report.impression == "Two renal masses."
    assert report.finding("F2").review.status == "rejected"
    assert report_store.machine_value(linked["report"], "F1", "attributes.Shape.value") == machine_shape
    assert report_store.machine_value(linked["report"], "F1", "staging.value") == machine_t
    assert {(e.target, e.field, e.editor) for e in report.edits} == {
        ("F1", "attributes.Shape.value", "Dr Reader"), ("F1", "staging.value", "Dr Reader"),
        ("report", "impression", "Dr Reader")}
    assert linked["table"].GetCellText(0, 7) == "T1b"
    assert len(linked["markups"]) == 4
    line = [n for n in linked["markups"] if n.IsA("vtkMRMLMarkupsLineNode")][0]
    assert line.GetNumberOfControlPoints() == 2
    assert seg_node.GetSegmentation().GetNumberOfSegments() == 2


def test_report_text_node_also_survives_a_file_storage_round_trip(analysis, scene, tmp_path):
    """In an .mrb, Slicer may store long text in a .txt next to the scene: that path keeps edits too."""
    from slicer import vtkMRMLTextNode

    from PASTASlicerLib import report_store
    from PASTASlicerLib.results_import import import_results

    _, out = analysis
    results = import_results(scene, load_ct(scene), out)
    report_store.edit_field(results.report, "F2", "attributes.Density.value", "Hyperdense", "Dr Reader")
    storage = results.report.CreateDefaultStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "report.txt"))
    assert storage.WriteData(results.report)
    copy = scene.AddNewNodeByClass(vtkMRMLTextNode.__name__, "copy")
    assert storage.ReadData(copy)
    copy.SetAttribute(report_store.REPORT_ATTRIBUTE, "1.0.0")
    assert report_store.load_report(copy).finding("F2").attributes["Density"].value == "Hyperdense"


@pytest.mark.slow
def test_logic_end_to_end_from_scene_to_scene(analysis, scene, tmp_path):
    """Scene volume -> files -> real `pasta analyze` subprocess (JSON progress) -> new nodes."""
    from PASTALib.analysis.options import AnalysisOptions
    from PASTASlicerLib.analysis import cleanup, finish_analysis, prepare_analysis
    from PASTASlicerLib.process_runner import SUCCEEDED, ProcessRunner

    model, _ = analysis
    ct = load_ct(scene)
    organs = load_organs_segmentation(scene)
    job = prepare_analysis(ct, AnalysisOptions(model=str(model), device="cpu"), tmp_path / "work", REPO / "PASTA",
                           organ_node=organs, python=sys.executable)
    assert job.class_map == {2: 5} and job.notes == []
    before = node_names(scene)
    runner = ProcessRunner(job.command, env=job.env, log_path=job.log_path)
    runner.start()
    update = runner.wait(timeout=300)
    assert runner.state == SUCCEEDED, "\n".join(runner.log)
    assert [p.stage for p in update.progress][-1] == "done"
    assert node_names(scene) == before  # nothing is added until the run has succeeded
    results = finish_analysis(scene, job)
    cleanup(job)
    assert not job.work_dir.exists()
    segmentation = results.segmentation.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())] == [
        "Kidney tumor 1", "Kidney tumor 2"]
    # The organ segmentation from the scene gave the findings their side.
    assert sorted(results.table.GetCellText(row, 3) for row in range(2)) == ["kidney left", "kidney right"]


def test_editing_a_segment_re_measures_its_finding(analysis, scene):
    """A Segment Editor change (here: erasing the upper half of a kidney) updates the report and table."""
    import slicer

    from PASTASlicerLib import report_store
    from PASTASlicerLib.remeasure import remeasure_segment
    from PASTASlicerLib.results_import import import_results
    from PASTASlicerLib.volume_nodes import node_to_volume

    model, _ = analysis
    ct = load_ct(scene)
    results = import_results(scene, ct, analysis[1])
    segment_id = results.segment_ids["F1"]
    before = report_store.load_report(results.report).finding("F1")
    f2_before = report_store.load_report(results.report).finding("F2").measurements.volume_ml
    assert not remeasure_segment(results.segmentation, segment_id, "Dr Reader")  # unchanged: nothing to do

    mask = slicer.util.arrayFromSegmentBinaryLabelmap(results.segmentation, segment_id, ct)
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    mask[ks[len(ks) // 2]:] = 0
    # What a Segment Editor stroke amounts to: new voxels for the segment, on the CT's grid.
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTASlicerLib.volume_nodes import volume_to_node

    labelmap = volume_to_node(node_to_volume(ct).with_array(mask.astype(np.uint8)), scene, "edit",
                              "vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, results.segmentation, ids)
    scene.RemoveNode(labelmap)
    assert remeasure_segment(results.segmentation, segment_id, "Dr Reader")

    after = report_store.load_report(results.report)
    finding = after.finding("F1")
    voxel_ml = float(np.prod(node_to_volume(ct).spacing)) / 1000.0
    assert finding.measurements.volume_ml == pytest.approx(int(mask.sum()) * voxel_ml)
    assert finding.measurements.volume_ml < before.measurements.volume_ml
    assert report_store.machine_value(results.report, "F1", "measurements")["volume_ml"] == pytest.approx(
        before.measurements.volume_ml)
    assert any(e.field == "measurements" and e.editor == "Dr Reader" for e in after.edits)
    assert float(results.table.GetCellText(0, 6)) == pytest.approx(finding.measurements.volume_ml, abs=0.005)
    assert after.finding("F2").measurements.volume_ml == f2_before


def test_exports_hold_the_edits_and_key_images_from_the_scene(analysis, scene, tmp_path):
    from PASTALib.report.model import Report
    from PASTASlicerLib import report_exports, report_store
    from PASTASlicerLib.results_import import import_results

    _, out = analysis
    results = import_results(scene, load_ct(scene), out)
    report_store.edit_field(results.report, "report", "impression", "Edited impression.", "Dr Reader")
    report_exports.export_json(results.report, tmp_path / "report.json")
    assert Report.from_json((tmp_path / "report.json").read_text()).impression == "Edited impression."
    report_exports.export_html(results.report, tmp_path / "report.html", results.segmentation)
    html = (tmp_path / "report.html").read_text()
    assert "Edited impression." in html and html.count("data:image/png;base64,") == 2


def test_dicom_seg_and_sr_hold_the_reviewed_findings(analysis, scene, tmp_path):
    """A CT loaded from DICOM: SEG + SR are written from the scene, without the rejected finding."""
    import pydicom

    from PASTALib.io.volume_io import read_volume
    from PASTASlicerLib import report_exports, report_store
    from PASTASlicerLib.results_import import import_results
    from PASTASlicerLib.volume_nodes import volume_to_node

    from dicom_writer import write_dicom_series

    _, out = analysis
    frame_of_reference = pydicom.uid.generate_uid()
    for path in write_dicom_series(read_volume(SAMPLE_CT), tmp_path / "dicom"):
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = frame_of_reference  # the test writer leaves it out; scanners do not
        ds.save_as(path)
    ct = volume_to_node(read_volume(tmp_path / "dicom"), scene, "CT from DICOM")
    results = import_results(scene, ct, out)
    report_store.set_review(results.report, "F2", "rejected", "Dr Reader")
    written = report_exports.export_dicom(results.report, results.segmentation, tmp_path / "dicom", tmp_path / "export")
    seg = pydicom.dcmread(written["seg"])
    assert len(seg.SegmentSequence) == 1  # F2 was rejected
    assert seg.FrameOfReferenceUID == frame_of_reference
    assert pydicom.dcmread(written["sr"]).Modality == "SR"


@pytest.mark.slow
def test_a_component_split_between_organs_imports_exactly(split_analysis, scene):
    """Each part of a component that spans liver and stomach becomes a segment with exactly its voxels."""
    from PASTALib.report.model import Report
    from PASTALib.io.volume_io import read_volume
    from PASTASlicerLib.remeasure import segment_mask
    from PASTASlicerLib.results_import import import_results

    report = Report.from_json((split_analysis / "report.json").read_text())
    split = [f for f in report.findings if f.component.parts > 1]
    assert len(split) >= 2 and {f.location.organ for f in split} >= {"liver", "stomach"}
    # The parts' boxes overlap, so cutting the component to a box could not tell them apart.
    a, b = (f.measurements.bbox for f in split[:2])
    assert all(a.ijk_min[x] <= b.ijk_max[x] and b.ijk_min[x] <= a.ijk_max[x] for x in range(3))

    ct = load_ct(scene)
    results = import_results(scene, ct, split_analysis)
    written = read_volume(split_analysis / "findings.nii.gz").array
    masks = {}
    for number, finding in enumerate(report.findings, start=1):
        masks[finding.id] = segment_mask(results.segmentation, results.segment_ids[finding.id], ct)
        assert int(masks[finding.id].sum()) == finding.component.voxel_count, finding.id
        assert np.array_equal(masks[finding.id], written == number), finding.id
    assert not (masks[split[0].id] & masks[split[1].id]).any()


def test_a_report_without_confidences_shows_a_blank_confidence_not_nan(mrml_scene):
    """A report made from a label map alone (pasta report without --probabilities) has no confidence."""
    from PASTALib.report.model import Report
    from PASTASlicerLib.results_import import fill_table

    report = Report.from_dict(json.loads((DATA / "report_schema_1.0.0.json").read_text()))
    table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode")
    fill_table(table, report, {})
    assert [table.GetCellText(row, 8) for row in range(3)] == ["", "", ""]
    assert not table.GetTable().GetColumnByName("Confidence").IsNumeric()
    assert table.GetTable().GetColumnByName("Volume (mL)").IsNumeric()
