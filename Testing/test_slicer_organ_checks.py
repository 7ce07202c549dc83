"""Bad organ input, said before anything runs (issue 17, "Done when"): an organ segmentation on another
voxel grid than the CT is resampled onto it and the panel says so; a segmentation that shows none of the
model's organs is a question before the run. On slicer-core's real MRML classes."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from slicer_scene import kidney_tumor_model, load_ct, load_organs_segmentation


def ct_on_a_2mm_grid(scene, ct):
    from PASTALib.io.resample import resample_to_spacing
    from PASTASlicerLib.volume_nodes import node_to_volume, volume_to_node

    fine = resample_to_spacing(node_to_volume(ct), (2.0, 2.0, 2.0))
    return volume_to_node(fine, scene, "CT 2 mm", "vtkMRMLScalarVolumeNode")


def test_an_organ_segmentation_on_the_cts_grid_needs_no_word(mrml_scene):
    from PASTASlicerLib.analysis import organ_summary
    from PASTASlicerLib.organ_checks import grid_note

    ct, organs = load_ct(mrml_scene), load_organs_segmentation(mrml_scene)
    assert grid_note(organs, ct) is None
    assert "voxel grid" not in organ_summary(organs, ct)


def test_an_organ_segmentation_on_another_grid_is_resampled_and_the_panel_says_so(mrml_scene, tmp_path):
    from PASTALib.analysis.options import AnalysisOptions
    from PASTALib.io.volume_io import read_volume
    from PASTASlicerLib.analysis import ORGANS_FILE, organ_summary, prepare_analysis

    organs = load_organs_segmentation(mrml_scene)
    ct = ct_on_a_2mm_grid(mrml_scene, load_ct(mrml_scene))
    summary = organ_summary(organs, ct)
    assert "another voxel grid (3 x 3 x 3 mm voxels) than the CT (2 x 2 x 2 mm)" in summary
    assert "resampled onto the CT's grid" in summary
    job = prepare_analysis(ct, AnalysisOptions(model=str(kidney_tumor_model(tmp_path / "model")), device="cpu"),
                           tmp_path / "work", REPO / "PASTA", organ_node=organs)
    assert any("another voxel grid" in note for note in job.notes)
    written = read_volume(job.work_dir / ORGANS_FILE)
    assert written.array.shape == tuple(reversed(ct.GetImageData().GetDimensions()))
    assert written.spacing == pytest.approx((2.0, 2.0, 2.0))
    assert set(np.unique(written.array)) >= {2, 3}  # kidneys, now on the CT's grid


def test_no_organ_the_model_looks_for_is_a_question_before_the_run(mrml_scene, tmp_path):
    from PASTALib.analysis.options import AnalysisOptions
    from PASTASlicerLib.analysis import prepare_analysis

    ct, organs = load_ct(mrml_scene), load_organs_segmentation(mrml_scene)
    model = str(kidney_tumor_model(tmp_path / "model"))
    job = prepare_analysis(ct, AnalysisOptions(model=model, device="cpu"), tmp_path / "with", REPO / "PASTA",
                           organ_node=organs)
    assert job.warnings == []  # the sample's kidneys are in view
    segmentation = organs.GetSegmentation()
    for name in ("Kidney left", "Kidney right"):
        segmentation.RemoveSegment(segmentation.GetSegmentIdBySegmentName(name))
    job = prepare_analysis(ct, AnalysisOptions(model=model, device="cpu"), tmp_path / "without", REPO / "PASTA",
                           organ_node=organs)
    assert len(job.warnings) == 1 and "none of the organs this model looks for (kidney)" in job.warnings[0]


def test_a_model_of_the_lung_or_of_every_organ_is_never_out_of_view():
    """The lung is always found by thresholding, so a lung model (or the multi-organ default) never warns."""
    from PASTALib.lesions.lesion_types import BY_KEY, LESION_TYPES
    from PASTASlicerLib.organ_checks import model_organs_note

    assert model_organs_note({1: BY_KEY["lung_tumor"].id}, []) is None
    assert model_organs_note({t.id: t.id for t in LESION_TYPES}, []) is None
    assert "pancreas" in model_organs_note({1: BY_KEY["pancreas_tumor"].id}, [5])  # 5: the liver only


class TotalSegmentatorLogic:
    """The two calls PASTA makes on the TotalSegmentator extension's logic; process() writes the sample's
    organ mask into the output segmentation, as the real one writes its result."""

    def __init__(self, fail: bool = False, fast_parameter: bool = True):
        self.calls, self.fail = [], fail
        if not fast_parameter:  # newer extension versions: no `fast` argument
            self.process = self._process_without_fast

    def setupPythonRequirements(self):
        self.calls.append("setup")

    def process(self, inputVolume, outputSegmentation, fast=True, cpu=False, task=None, subset=None,
                interactive=False, sequenceBrowserNode=None):
        self._fill(inputVolume, outputSegmentation, fast=fast, task=task)

    def _process_without_fast(self, inputVolume, outputSegmentation, cpu=False, task=None):
        self._fill(inputVolume, outputSegmentation, task=task)

    def _fill(self, inputVolume, outputSegmentation, **options):
        from slicer import vtkSlicerSegmentationsModuleLogic

        self.calls.append(("process", inputVolume.GetName(), options))
        if self.fail:
            raise RuntimeError("TotalSegmentator failed")
        organs = load_organs_segmentation(inputVolume.GetScene())
        segmentation = organs.GetSegmentation()
        for index in range(segmentation.GetNumberOfSegments()):
            outputSegmentation.GetSegmentation().CopySegmentFromSegmentation(
                segmentation, segmentation.GetNthSegmentID(index))
        inputVolume.GetScene().RemoveNode(organs)
        assert vtkSlicerSegmentationsModuleLogic is not None


def test_segment_organs_is_offered_only_without_organs_and_with_the_extension(mrml_scene):
    from PASTASlicerLib.organ_segmentation import offer_segmentation

    ct = load_ct(mrml_scene)
    installed, missing = (lambda name: name == "TotalSegmentator"), (lambda name: False)
    assert offer_segmentation(None, ct, installed)
    assert not offer_segmentation(None, ct, missing)
    assert not offer_segmentation(load_organs_segmentation(mrml_scene), ct, installed)
    assert not offer_segmentation(None, None, installed)


@pytest.mark.parametrize("fast_parameter", [True, False])
def test_segment_organs_runs_the_extension_fast_and_its_result_is_a_recognised_organ_input(
        mrml_scene, fast_parameter):
    from PASTASlicerLib.analysis import organ_summary
    from PASTASlicerLib.organ_segmentation import segment_organs

    ct = load_ct(mrml_scene)
    logic = TotalSegmentatorLogic(fast_parameter=fast_parameter)
    organs = segment_organs(ct, logic)
    expected = {"fast": True, "task": "total"} if fast_parameter else {"task": "total"}
    assert logic.calls == ["setup", ("process", "Abdomen CT", expected)]
    assert organs.GetName() == "Abdomen CT organs (TotalSegmentator)" and organs.GetScene() is mrml_scene
    assert "recognised as organs" in organ_summary(organs, ct) and "voxel grid" not in organ_summary(organs, ct)


def test_a_failed_totalsegmentator_run_leaves_the_scene_as_it_was(mrml_scene):
    from PASTASlicerLib.organ_segmentation import segment_organs

    ct = load_ct(mrml_scene)
    before = mrml_scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    with pytest.raises(RuntimeError, match="failed"):
        segment_organs(ct, TotalSegmentatorLogic(fail=True))
    assert mrml_scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == before
