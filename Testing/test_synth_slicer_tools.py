"""The PASTASynth module's tools outside the session, on slicer-core's real MRML.

* The "Place lesion" click: Slicer's point placement armed on the scene's interaction and
  selection nodes; a point defined as a click defines it gives the lesion's RAS seed.
* The drop-downs: which types a segmentation allows, the sizes and attribute values offered,
  and how "random" and typed sizes become a request (bad values refused with a hint).
* The Batch panel's job: the current host written from the scene and ``pasta synth-batch``
  run for real through the PASTA module's ProcessRunner, with JSON progress.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from synth_scene import LIVER, SAMPLE_CT, load_node, organ_core_ras, voxels


@pytest.fixture
def views(mrml_scene):
    """The interaction and selection singletons Slicer's application logic adds to every scene."""
    interaction = mrml_scene.AddNewNodeByClass("vtkMRMLInteractionNode")
    selection = mrml_scene.AddNewNodeByClass("vtkMRMLSelectionNode")
    return interaction, selection


def test_a_click_places_a_lesion_at_the_clicked_point(mrml_scene, views):
    from slicer import vtkMRMLInteractionNode

    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTASynthSlicerLib.placement import PointPlacement
    from PASTASynthSlicerLib.session import SynthSession

    interaction, selection = views
    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    organs_path = sample_data.SAMPLES["sample-organs"].path
    organs = load_node(mrml_scene, organs_path, "vtkMRMLLabelMapVolumeNode", "Abdomen organs")
    synth = SynthSession(mrml_scene, ct, organs)
    placed, ended = [], []
    placement = PointPlacement(mrml_scene, interaction, selection,
                               lambda ras: placed.append(synth.place("liver_tumor", ras, size_mm=20, seed=1)),
                               on_end=lambda: ended.append(True))
    placement.start()
    assert placement.active and interaction.GetCurrentInteractionMode() == vtkMRMLInteractionNode.Place
    assert selection.GetActivePlaceNodeID() == placement.node.GetID()
    assert interaction.GetPlaceModePersistence() == 0

    point = organ_core_ras(read_volume(organs_path), LIVER)
    placement.node.AddControlPoint(*point)  # what Slicer's markups widget does on the click
    assert len(placed) == 1 and ended == [True]
    assert placed[0].request.center_ras == pytest.approx(point)
    assert interaction.GetCurrentInteractionMode() == vtkMRMLInteractionNode.ViewTransform
    assert not placement.active
    placement.clear()
    assert placement.node.GetNumberOfControlPoints() == 0
    # disarmed: a further point (e.g. placed by another tool) does not place a lesion
    placement.node.AddControlPoint(*point)
    assert len(placed) == 1
    placement.cleanup()
    assert placement.node is None and not mrml_scene.GetNodesByName("PASTASynth seed").GetNumberOfItems()


def test_leaving_place_mode_without_a_click_places_nothing(mrml_scene, views):
    from slicer import vtkMRMLInteractionNode

    from PASTASynthSlicerLib.placement import PointPlacement

    interaction, selection = views
    users_list = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "my points")
    selection.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
    selection.SetActivePlaceNodeID(users_list.GetID())
    placed, ended = [], []
    placement = PointPlacement(mrml_scene, interaction, selection, placed.append, on_end=lambda: ended.append(1))
    placement.start()
    assert selection.GetActivePlaceNodeID() == placement.node.GetID()
    interaction.SetCurrentInteractionMode(vtkMRMLInteractionNode.ViewTransform)  # Esc
    assert ended == [1] and not placement.active
    assert selection.GetActivePlaceNodeID() == users_list.GetID()  # Slicer's point tool feeds the user's list
    placement.disarm()  # what the GUI does once the Esc event is handled
    placement.node.AddControlPoint(1.0, 2.0, 3.0)
    assert placed == []
    placement.start()
    placement.stop()  # the button clicked again
    assert ended == [1, 1] and placed == []
    assert interaction.GetCurrentInteractionMode() == vtkMRMLInteractionNode.ViewTransform
    placement.node.AddControlPoint(1.0, 2.0, 3.0)
    assert placed == [] and users_list.GetNumberOfControlPoints() == 0


def test_a_point_reported_just_after_place_mode_ended_still_counts(mrml_scene, views):
    """Some Slicer versions end single-place mode before they add the clicked point."""
    from slicer import vtkMRMLInteractionNode

    from PASTASynthSlicerLib.placement import PointPlacement

    interaction, selection = views
    placed = []
    placement = PointPlacement(mrml_scene, interaction, selection, placed.append)
    placement.start()
    interaction.SetCurrentInteractionMode(vtkMRMLInteractionNode.ViewTransform)
    placement.node.AddControlPoint(4.0, 5.0, 6.0)
    assert placed == [[4.0, 5.0, 6.0]]


def test_lesion_types_follow_the_organs_in_the_segmentation(mrml_scene):
    from PASTASynthSlicerLib import choices

    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs")
    for name in ("liver", "Right kidney", "vertebrae_L1"):
        segmentation.GetSegmentation().AddEmptySegment(name, name)
    names = choices.organ_names(segmentation)
    assert names == ["liver", "kidney_right", "vertebrae_L1"]
    from PASTALib.lesions.organ_terms import class_for

    assert [class_for(n) for n in ("Kidney right", "kidney_right", "Left lung upper lobe", "Urinary bladder")] == [
        "kidney_right", "kidney_right", "lung_upper_lobe_left", "urinary_bladder"]
    enabled = {key for key, ok in choices.available_types(names).items() if ok}
    assert enabled == {"liver_tumor", "liver_cyst", "kidney_tumor", "kidney_cyst", "kidney_stone", "bone_metastasis"}
    assert {key for key, ok in choices.available_types(choices.organ_names(None)).items() if ok} == {"lung_tumor"}
    assert [key for key, _ in choices.lesion_types()][:2] == ["lung_tumor", "liver_tumor"]
    from PASTALib.lesions.lesion_types import LESION_TYPES

    assert len(choices.lesion_types()) == len(LESION_TYPES)  # every type of the table has a synthesis spec


def test_sizes_and_attributes_offered_and_parsed():
    from PASTALib.errors import PastaInputError
    from PASTASynthSlicerLib import choices

    sizes = choices.size_options("kidney_stone")  # 2-25 mm
    assert sizes[0] == "random" and sizes[1:] == ["3", "5", "8", "10", "15", "20", "25"]
    assert choices.attribute_options("liver_cyst", "density") == ["random", "hypodense"]
    assert choices.parse_size("random", "liver_tumor") is None
    assert choices.parse_size(" 22.5 mm", "liver_tumor") == 22.5
    with pytest.raises(PastaInputError, match="5-120 mm"):
        choices.parse_size("300", "liver_tumor")
    with pytest.raises(PastaInputError, match="not a number"):
        choices.parse_size("big", "liver_tumor")
    assert choices.requested_attributes("liver_tumor", {"shape": "random", "density": "hyperdense"}) == {
        "density": "hyperdense"}
    with pytest.raises(PastaInputError, match="not plausible"):
        choices.requested_attributes("liver_cyst", {"density": "hyperdense"})


def test_batch_over_the_current_host_runs_synth_batch_with_progress(mrml_scene, tmp_path):
    """The current host and its organ segmentation go to a temp folder; the run makes real cases."""
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTASlicerLib.process_runner import ProcessRunner
    from PASTALib.lesions.anatomy import totalsegmentator_v2_names as v2_names
    from PASTASynthSlicerLib.batch_job import HOST_IMAGE, HOST_ORGANS, cleanup, prepare_batch

    from conftest import REPO

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    labelmap = load_node(mrml_scene, sample_data.SAMPLES["sample-organs"].path, "vtkMRMLLabelMapVolumeNode", "o")
    organs = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Abdomen organs")
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, organs)
    names = v2_names()
    for i in range(organs.GetSegmentation().GetNumberOfSegments()):  # as TotalSegmentator names them
        segment = organs.GetSegmentation().GetNthSegment(i)
        segment.SetName(names[int(segment.GetName().split("_")[1])])
    host_before = voxels(ct).copy()

    job = prepare_batch(tmp_path / "dataset", 1, module_dirs=[REPO / "PASTA", REPO / "PASTASynth"],
                        host_node=ct, organ_node=organs, work_dir=tmp_path / "work",
                        types=["kidney_cyst"], seed=3, python=sys.executable)
    host_dir = tmp_path / "work" / "hosts" / "Abdomen_CT"
    written = read_volume(host_dir / HOST_ORGANS)
    np.testing.assert_array_equal(written.array, read_volume(sample_data.SAMPLES["sample-organs"].path).array)
    np.testing.assert_array_equal(read_volume(host_dir / HOST_IMAGE).array, host_before)

    runner = ProcessRunner(job.command, env=job.env, log_path=job.log_path)
    runner.start()
    update = runner.wait(timeout=300)
    assert runner.state == "succeeded", "\n".join(runner.log[-20:])
    assert [p.fraction for p in update.progress if p.stage == "synth-batch"][-1] == 1.0
    manifest = [json.loads(line) for line in (tmp_path / "dataset" / "manifest.jsonl").read_text().splitlines()]
    assert [(r["host"], r["type"]) for r in manifest] == [("Abdomen_CT", "kidney_cyst")]
    assert (tmp_path / "dataset" / manifest[0]["case"] / "report.json").is_file()
    cleanup(job)
    assert not (tmp_path / "work").exists() and (tmp_path / "dataset").is_dir()
    np.testing.assert_array_equal(voxels(ct), host_before)


def test_batch_refuses_missing_inputs_before_writing_anything(mrml_scene, tmp_path):
    from PASTALib.errors import PastaInputError
    from PASTASynthSlicerLib.batch_job import prepare_batch

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    with pytest.raises(PastaInputError, match="organ segmentation"):
        prepare_batch(tmp_path / "out", 1, module_dirs=["."], host_node=ct, organ_node=None, work_dir=tmp_path / "w")
    with pytest.raises(PastaInputError, match="does not exist"):
        prepare_batch(tmp_path / "out", 1, module_dirs=["."], hosts_dir=tmp_path / "nowhere")
    with pytest.raises(PastaInputError, match="output folder"):
        prepare_batch("", 1, module_dirs=["."], hosts_dir=tmp_path)
    with pytest.raises(PastaInputError, match="at least 1"):
        prepare_batch(tmp_path / "out", 0, module_dirs=["."], hosts_dir=tmp_path)
    with pytest.raises(PastaInputError, match="inside the hosts folder"):
        prepare_batch(tmp_path / "out", 1, module_dirs=["."], hosts_dir=tmp_path)
    assert not (tmp_path / "out").exists()


def test_batch_over_a_hosts_folder_builds_the_command(tmp_path):
    from PASTASynthSlicerLib.batch_job import prepare_batch

    (tmp_path / "hosts").mkdir()
    job = prepare_batch(tmp_path / "out", 2, module_dirs=["/m/PASTA", "/m/PASTASynth"], hosts_dir=tmp_path / "hosts",
                        types=["liver_tumor", "gallstone"], seed=5, workers=2, python="py")
    assert job.command == ["py", "-m", "PASTALib", "synth-batch", "--hosts", str(tmp_path / "hosts"), "-o",
                           str(tmp_path / "out"), "--per-type", "2", "--seed", "5", "--workers", "2",
                           "--progress", "json", "--types", "liver_tumor", "gallstone"]
    assert job.env["PYTHONPATH"].split(":")[:2] == ["/m/PASTA", "/m/PASTASynth"]
    assert job.work_dir is None and job.log_path is None


def test_the_gui_actions_from_drop_down_values(mrml_scene, tmp_path):
    """What the buttons do, from the drop-downs' text: one session per host and segmentation,
    "random" and typed sizes, re-generation with the same seed, export into a chosen folder."""
    from PASTALib.io import sample_data
    from PASTALib.errors import PastaInputError
    from PASTALib.io.volume_io import read_volume
    from PASTASlicerLib import report_store
    from PASTASynthSlicerLib import actions

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    organs_path = sample_data.SAMPLES["sample-organs"].path
    organs = load_node(mrml_scene, organs_path, "vtkMRMLLabelMapVolumeNode", "Abdomen organs")
    liver = organ_core_ras(read_volume(organs_path), LIVER)
    sessions = actions.Sessions()
    assert sessions.existing(ct, organs) is None
    nodes = mrml_scene.GetNumberOfNodes()
    with pytest.raises(PastaInputError, match="outside"):  # refused before any node is made
        sessions.place(ct, organs, "liver_tumor", liver, "300", {})
    with pytest.raises(PastaInputError, match="not plausible"):
        sessions.place(ct, organs, "liver_cyst", liver, "random", {"density": "hyperdense"})
    assert mrml_scene.GetNumberOfNodes() == nodes

    step = sessions.place(ct, organs, "liver_tumor", liver, "22", {"shape": "random", "density": "hypodense"}, 4)
    session = sessions.existing(ct, organs)
    assert session is sessions.get(ct, organs) and session.lesions == [step]
    assert step.request.size_mm == [22.0] and step.request.attributes == {"density": "hypodense"}
    assert actions.describe(step).startswith("Liver tumor 1: liver, 22 x 22 x 22 mm")
    assert sessions.existing(ct, None) is None  # another segmentation: another session

    report_store.edit_field(step.report_node, "report", "impression", "Checked.", "JD")
    same = actions.regenerate(session, "L1", "22", {"shape": "random", "density": "hypodense"}, keep_seed=True)
    assert same is step and report_store.load_report(step.report_node).impression == "Checked."
    new = actions.regenerate(session, "L1", "random", {"density": "hyperdense"}, keep_seed=True)
    assert new.request.seed == 4 and new.request.size_mm is None and new.lesion.attributes["density"] == "hyperdense"
    assert actions.regenerate(session, "L1").request.seed == 5  # the button: a new draw
    with pytest.raises(PastaInputError, match="Place a lesion"):
        actions.regenerate(None)

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("keep me")
    case = actions.export_case(session, tmp_path / "full")
    assert case == tmp_path / "full" / "Abdomen_CT_synthetic" and (case / "report.json").is_file()
    assert actions.export_case(session, tmp_path / "full") == tmp_path / "full" / "Abdomen_CT_synthetic_2"
    assert (tmp_path / "full" / "notes.txt").read_text() == "keep me"
    assert actions.export_case(session, tmp_path / "empty") == tmp_path / "empty"

    mrml_scene.RemoveNode(session.output_node)  # the user deleted the synthetic volume: start afresh
    assert sessions.existing(ct, organs) is None
    assert sessions.get(ct, organs) is not session
