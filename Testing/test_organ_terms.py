"""Organ segments are recognised by meaning (SNOMED CT codes, as the TotalSegmentator extension writes
them) and by either naming convention, over all 117 TotalSegmentator v2 classes, with the extension's
own code table; the PASTA and PASTASynth modules use the one mapping."""

from __future__ import annotations

import json

import pytest

from PASTALib.lesions.anatomy import TOTALSEGMENTATOR_V2_TABLE
from PASTALib.lesions.organ_terms import class_for, map_segments, organ_terms, terminology_codes

from slicer_scene import terminology_entry as entry

V2 = {int(k): v for k, v in json.loads(TOTALSEGMENTATOR_V2_TABLE.read_text()).items()}


def display_name(term) -> str:
    """The name the extension's terminology gives a segment, e.g. 'Left Kidney' or 'Left Kidney Cyst'."""
    if term.region_meaning:
        return f"{term.region_modifier_meaning} {term.region_meaning} {term.type_meaning}".strip()
    return f"{term.modifier_meaning} {term.type_meaning}".strip()


def test_the_code_table_covers_every_v2_class():
    assert len(V2) == 117 and set(V2.values()) <= set(organ_terms())


@pytest.mark.parametrize("label, name", sorted(V2.items()))
def test_every_v2_class_is_found_by_codes_by_class_name_and_by_display_name(label, name):
    term = organ_terms()[name]
    assert class_for("Segment_7", entry(term)) == name  # renamed segment: the codes decide
    assert class_for(name) == name
    assert class_for(display_name(term)) == name
    assert class_for(display_name(term).upper()) == name


def test_codes_win_over_a_misleading_name_and_unknown_segments_are_listed():
    kidney_left = organ_terms()["kidney_left"]
    segments = {1: ("liver", entry(kidney_left)), 2: ("Right kidney", None), 3: ("Tumour", None),
                4: ("femur", None)}  # 'femur' alone could be either side: not guessed
    mapping, unknown = map_segments(segments)
    ids = {name: label for label, name in V2.items()}
    assert mapping == {1: ids["kidney_left"], 2: ids["kidney_right"]}
    assert unknown == ["Tumour", "femur"]


def test_terminology_codes_read_slicer_entries():
    assert terminology_codes("ctx~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney~SCT^7771000^Left~a~^^~^^") \
        == ("64033007", "7771000", "", "")
    assert terminology_codes(None) is None and terminology_codes("garbage") is None


def test_both_modules_read_a_real_segmentation_by_its_terminology(mrml_scene):
    """slicer-core segments named as a user might, tagged as the TotalSegmentator extension tags them."""
    from PASTASlicerLib.analysis import organ_label_ids
    from PASTASlicerLib.volume_nodes import segment_terms
    from PASTASynthSlicerLib import choices

    node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "TotalSegmentator")
    segmentation = node.GetSegmentation()
    for segment_id, name, cls in (("a", "superior lobe of left lung", "lung_upper_lobe_left"),
                                  ("b", "my kidney", "kidney_right"), ("c", "L1 vertebra", "vertebrae_L1"),
                                  ("d", "scratch", None)):
        segmentation.AddEmptySegment(segment_id, name)
        if cls:
            segmentation.GetSegment(segment_id).SetTag("TerminologyEntry", entry(organ_terms()[cls]))
    terms = segment_terms(node)
    assert [t[0] for t in terms] == ["superior lobe of left lung", "my kidney", "L1 vertebra", "scratch"]
    mapping, unknown = organ_label_ids({index + 1: t for index, t in enumerate(terms)})
    ids = {name: label for label, name in V2.items()}
    assert mapping == {1: ids["lung_upper_lobe_left"], 2: ids["kidney_right"], 3: ids["vertebrae_L1"]}
    assert unknown == ["scratch"]
    assert choices.organ_names(node) == ["lung_upper_lobe_left", "kidney_right", "vertebrae_L1", "scratch"]
    # the panel lists what it recognised and what it will ignore before anything runs (was: the log only)
    from PASTASlicerLib.analysis import NO_ORGANS_TEXT, organ_summary

    assert organ_summary(node) == ("3 of 4 segments recognised as organs (kidney_right, lung_upper_lobe_left, "
                                   "vertebrae_L1). Not recognised, ignored: scratch.")
    assert organ_summary(None) == NO_ORGANS_TEXT
    stray = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Not organs")
    stray.GetSegmentation().AddEmptySegment("x", "tumour sketch")
    assert organ_summary(stray).startswith("None of the 1 segments is a TotalSegmentator organ")


@pytest.fixture
def organs_seg_nrrd(mrml_scene, tmp_path):
    """The sample's organs as a .seg.nrrd written by slicer-core's own segmentation storage node, named and
    tagged as the TotalSegmentator extension does it, plus one segment that is no organ."""
    from slicer import vtkMRMLSegmentationStorageNode

    from slicer_scene import load_organs_segmentation

    node = load_organs_segmentation(mrml_scene, extension_style=True)
    node.GetSegmentation().AddEmptySegment("extra", "Scratch segment")
    storage = vtkMRMLSegmentationStorageNode()
    mrml_scene.AddNode(storage)
    path = tmp_path / "TotalSegmentator.seg.nrrd"
    storage.SetFileName(str(path))
    assert storage.WriteData(node)
    return path


def test_a_slicer_seg_nrrd_reads_as_v2_ids_by_its_codes(organs_seg_nrrd):
    """It reads back (slicerio) as the organ mask it was made from, and names the segment it could not use."""
    import numpy as np

    from PASTALib.io import sample_data
    from PASTALib.io.resample import Interpolation, resample_to_reference
    from PASTALib.io.volume_io import read_volume
    from PASTALib.lesions.organ_masks import read_organ_mask

    organs, notes = read_organ_mask(organs_seg_nrrd)
    truth = read_volume(sample_data.SAMPLES["sample-organs"].path)
    on_grid = resample_to_reference(organs, truth, Interpolation.NEAREST)
    assert np.mean(on_grid.array == truth.array) > 0.999
    assert set(np.unique(on_grid.array)) == set(np.unique(truth.array))
    assert notes == ["organ segment not recognised, ignored: Scratch segment"]


def test_pasta_report_takes_a_seg_nrrd_as_organs(organs_seg_nrrd, tmp_path):
    """`--organs FILE.seg.nrrd` gives the findings the same organs as the bundled label map, and the report
    names the segment it could not use."""
    from PASTALib.cli.main import main

    organs = {}
    for name, organs_arg in (("labelmap", "sample-organs"), ("segnrrd", str(organs_seg_nrrd))):
        out = tmp_path / name
        assert main(["report", "sample-lesions", "sample-lesions-truth", "--organs", organs_arg, "-o", str(out),
                     "--progress", "none", "-q"]) == 0
        report = json.loads((out / "report.json").read_text())
        organs[name] = [(f["lesion_type"]["key"], f["location"]["organ_name"], f["location"]["site"])
                        for f in report["findings"]]
        notes = report["provenance"]["notes"]
    assert organs["segnrrd"] == organs["labelmap"] and len(organs["labelmap"]) == 3
    assert "organ segment not recognised, ignored: Scratch segment" in notes
