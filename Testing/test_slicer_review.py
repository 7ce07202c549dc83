"""Reader-facing logic of the PASTA module on real slicer-core MRML: typed measurements that survive
an .mrb round trip, and "Replace previous result" removing only the previous run's own nodes."""

from __future__ import annotations

import pytest

from slicer_scene import attach_logics, load_ct, node_names


def job_for(volume, out):
    """The job a finished run hands to the import (the output folder of the shared real run)."""
    from PASTASlicerLib.analysis import AnalysisJob

    return AnalysisJob(volume.GetID(), out.parent, out, [], {}, {})


def node_ids(nodes) -> set[str]:
    """IDs of the nodes and of their display and storage nodes."""
    ids = set()
    for node in nodes:
        ids.add(node.GetID())
        for count, getter in (("GetNumberOfDisplayNodes", "GetNthDisplayNode"),
                              ("GetNumberOfStorageNodes", "GetNthStorageNode")):
            if hasattr(node, count):
                ids |= {getattr(node, getter)(i).GetID() for i in range(getattr(node, count)())}
    return ids


def test_replace_previous_result_removes_only_that_runs_nodes(analysis, scene, monkeypatch):
    from PASTASlicerLib import results_import
    from PASTASlicerLib.analysis import finish_analysis

    _, out = analysis
    ct = load_ct(scene)
    other_ct = load_ct(scene)
    other_ct.SetName("Other CT")
    # The user's own nodes, named like PASTA's.
    mine = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Abdomen CT PASTA findings")
    my_line = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", "Kidney tumor 1 long axis")
    first = finish_analysis(scene, job_for(ct, out))
    other = finish_analysis(scene, job_for(other_ct, out))
    first_name = first.segmentation.GetName()
    first_ids = node_ids([first.segmentation, first.table, first.report, *first.markups])
    assert len(first_ids) > 6  # display nodes included

    # A replacing run whose import fails keeps the previous result.
    before = node_names(scene)
    with monkeypatch.context() as patch:
        patch.setattr(results_import, "fill_table", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
        with pytest.raises(RuntimeError, match="disk full"):
            finish_analysis(scene, job_for(ct, out), replace_previous=True)
    assert node_names(scene) == before
    assert all(scene.GetNodeByID(i) is not None for i in first_ids)

    # What replacing would discard is counted, so the GUI can ask first.
    from PASTASlicerLib import report_store
    from PASTASlicerLib.replace_results import previous_result, reader_work

    assert previous_result(scene, ct) is first.segmentation and reader_work(first.segmentation) == 0
    report_store.set_review(first.report, "F1", "accepted", "Dr Reader")
    report_store.edit_field(first.report, "report", "impression", "Two renal masses.", "Dr Reader")
    assert reader_work(first.segmentation) == 2 and reader_work(mine) == 0

    count = scene.GetNumberOfNodes()
    second = finish_analysis(scene, job_for(ct, out), replace_previous=True)
    assert all(scene.GetNodeByID(i) is None for i in first_ids), "the previous run's nodes must be gone"
    assert scene.GetNumberOfNodes() == count  # nothing of the previous run is left behind
    assert second.segmentation.GetName() == first_name  # the new result takes over the name
    assert second.segmentation.GetSegmentation().GetNumberOfSegments() == 2
    for node in (mine, my_line, other.segmentation, other.table, other.report, *other.markups):
        assert node.GetScene() is scene, f"{node.GetName()} is not the replaced run's and must stay"

    # Without the option, each run adds its result next to the previous one.
    third = finish_analysis(scene, job_for(ct, out))
    assert second.segmentation.GetScene() is scene and third.segmentation.GetScene() is scene


def test_typed_measurements_survive_an_mrb_round_trip(analysis, scene, tmp_path):
    from slicer import vtkMRMLApplicationLogic, vtkMRMLScene

    from PASTASlicerLib import report_store
    from PASTASlicerLib.results_import import import_results, results_of

    _, out = analysis
    results = import_results(scene, load_ct(scene), out)
    node = results.report
    machine_long = report_store.measurement_value(node, "F1", "long_axis_mm")
    machine_volume = report_store.measurement_value(node, "F2", "volume_ml")
    report_store.edit_measurement(node, "F1", "long_axis_mm", 42.5, "Dr Reader", comment="caliper")
    report_store.edit_measurement(node, "F2", "volume_ml", 7.25, "Dr Reader")
    with pytest.raises(ValueError, match="positive"):
        report_store.edit_measurement(node, "F1", "short_axis_mm", 0, "Dr Reader")
    from PASTASlicerLib.results_import import refresh_table

    refresh_table(results.segmentation)
    assert results.table.GetCellText(0, 4) == "42.5" and results.table.GetCellText(1, 6) == "7.25"

    # A real .mrb, written and read by Slicer's application logic.
    logic = vtkMRMLApplicationLogic()
    logic.SetMRMLScene(scene)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert logic.SaveSceneToSlicerDataBundleDirectory(str(bundle), None)
    assert logic.Zip(str(tmp_path / "scene.mrb"), str(bundle))

    reloaded = vtkMRMLScene()
    _logics = attach_logics(reloaded)
    reload_logic = vtkMRMLApplicationLogic()
    reload_logic.SetMRMLScene(reloaded)
    (tmp_path / "unpacked").mkdir()
    assert reload_logic.OpenSlicerDataBundle(str(tmp_path / "scene.mrb"), str(tmp_path / "unpacked"))
    seg_node = reloaded.GetFirstNodeByName(results.segmentation.GetName())
    linked = results_of(seg_node)
    assert report_store.measurement_value(linked["report"], "F1", "long_axis_mm") == 42.5
    assert report_store.measurement_value(linked["report"], "F2", "volume_ml") == 7.25
    assert report_store.machine_value(linked["report"], "F1", "measurements.recist.long_axis.length_mm") == \
        pytest.approx(machine_long)
    assert report_store.machine_value(linked["report"], "F2", "measurements.volume_ml") == \
        pytest.approx(machine_volume)
    edits = report_store.load_report(linked["report"]).edits
    assert [(e.target, e.field, e.editor, e.comment) for e in edits] == [
        ("F1", "measurements.recist.long_axis.length_mm", "Dr Reader", "caliper"),
        ("F2", "measurements.volume_ml", "Dr Reader", None)]
    assert linked["table"].GetCellText(0, 4) == "42.5"
