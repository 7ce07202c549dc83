"""Detection: one finding per connected component, split where it spans organs, small ones
dropped and counted; location and side from the organ mask; bad input rejected clearly."""

from __future__ import annotations

import numpy as np
import pytest

from PASTALib.errors import PastaInputError
from PASTALib.report.findings import analyse_segmentation, report_from_segmentation
from PASTALib.lesions.lesion_types import BY_KEY
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume

from conftest import DATA

LIVER, STOMACH, KIDNEY_RIGHT, KIDNEY_LEFT, LUNG_UPPER_LEFT = 5, 6, 2, 3, 10


def body(shape=(20, 40, 40), spacing=(2.0, 2.0, 3.0)) -> Volume:
    rng = np.random.default_rng(3)
    array = (np.full(shape, 40.0) + rng.normal(0, 5, shape)).astype(np.int16)
    array[:, :3, :] = -1000  # air in front of the body
    return Volume(array, spacing=spacing)


def test_components_types_and_dropped_specks():
    image = body()
    labels = np.zeros(image.array.shape, np.int16)
    labels[2:6, 5:15, 5:15] = BY_KEY["liver_tumor"].id
    labels[2:6, 5:15, 16:20] = BY_KEY["liver_tumor"].id  # a second, separate tumour
    labels[10:14, 20:30, 20:30] = BY_KEY["kidney_cyst"].id
    labels[10:14, 20:30, 30:33] = BY_KEY["kidney_tumor"].id  # touches the cyst: another type, another finding
    labels[18, 38, 38] = BY_KEY["liver_tumor"].id  # one 12 mm3 voxel: below the 0.02 mL default
    report = report_from_segmentation(image, image.with_array(labels))
    types = [f.lesion_type.key for f in report.findings]
    # ranked by confidence x size (no probabilities here: by size), largest first
    assert types == ["liver_tumor", "kidney_cyst", "liver_tumor", "kidney_tumor"]
    assert [f.id for f in report.findings] == ["F1", "F2", "F3", "F4"]
    volumes = [f.measurements.volume_ml for f in report.findings]
    assert volumes == pytest.approx([400 * 0.012, 400 * 0.012, 160 * 0.012, 120 * 0.012])
    assert (report.dropped.count, report.dropped.total_volume_ml) == (1, pytest.approx(0.012))
    assert "1 component below 0.02 mL not reported" in report.impression
    assert [f.component.component for f in report.findings if f.lesion_type.key == "liver_tumor"] == [1, 2]
    kept = report_from_segmentation(image, image.with_array(labels), min_volume_ml=0.0)
    assert len(kept.findings) == 5 and kept.dropped.count == 0


def test_a_lesion_spanning_two_organs_is_split_and_located():
    image = body()
    organs = np.zeros(image.array.shape, np.int16)
    organs[:, 3:, :20] = LIVER
    organs[:, 3:, 20:] = STOMACH
    labels = np.zeros_like(organs)
    labels[5:10, 10:20, 12:30] = BY_KEY["liver_tumor"].id  # 8 columns in the liver, 10 in the stomach
    analysis = analyse_segmentation(image, image.with_array(labels), organs=image.with_array(organs))
    report = analysis.report
    assert [(f.location.organ, f.component.part, f.component.parts) for f in report.findings] == [
        ("stomach", 1, 2), ("liver", 2, 2)]
    stomach, liver = report.findings
    # the stomach part cannot be a liver tumour: its organ decides, and the report says why
    assert stomach.lesion_type.key == "gastric_cancer" and stomach.location.matches_lesion_type
    assert "the label said Liver tumor, a liver lesion" in stomach.notes[0]
    assert liver.lesion_type.key == "liver_tumor" and "a type the liver can host" in liver.notes[0]
    assert liver.location.code.meaning == "Liver" and liver.location.source == "organ mask"
    assert liver.location.organ_fractions == pytest.approx({"liver": 8 / 18, "stomach": 10 / 18})
    masks = [analysis.mask(f) for f in report.findings]
    assert not (masks[0] & masks[1]).any() and (masks[0] | masks[1]).sum() == (labels > 0).sum()
    assert liver.attributes["Invasion"].value == "Close relationship with adjacent structures"


def test_side_and_lobe_from_the_organ_mask():
    image = body()
    organs = np.zeros(image.array.shape, np.int16)
    organs[:, 3:, :20] = KIDNEY_RIGHT
    organs[:, 3:, 20:] = LUNG_UPPER_LEFT
    labels = np.zeros_like(organs)
    labels[5:9, 10:16, 5:11] = BY_KEY["kidney_stone"].id
    labels[5:9, 10:16, 28:34] = BY_KEY["lung_tumor"].id
    report = report_from_segmentation(image, image.with_array(labels), organs=image.with_array(organs))
    kidney, lung = sorted(report.findings, key=lambda f: f.lesion_type.id, reverse=True)
    assert (kidney.location.side, kidney.location.site) == ("right", "kidney right")
    assert (lung.location.side, lung.location.lobe, lung.location.code.meaning) == ("left", "upper lobe", "Upper lobe of lung")
    assert "left upper lobe" in report.impression and "right kidney" in report.impression


def test_real_dicom_ct_with_its_las_stored_organ_mask():
    """The organ mask is on another grid (LAS, another origin): it is resampled in world space."""
    image = read_volume(DATA / "example_ct_dicom")
    organs = read_volume(DATA / "abdomen_contrast_dicom_organs.nii.gz")
    from PASTALib.io.resample import Interpolation, resample_to_reference

    liver = resample_to_reference(organs, image, Interpolation.NEAREST).array == LIVER
    k, j, i = np.argwhere(liver).mean(axis=0).round().astype(int)
    labels = np.zeros(image.array.shape, np.int16)
    labels[k - 2:k + 3, j - 8:j + 8, i - 8:i + 8] = BY_KEY["liver_cyst"].id
    report = report_from_segmentation(image, image.with_array(labels), organs=organs)
    (finding,) = report.findings
    assert finding.location.organ == "liver" and finding.location.matches_lesion_type
    assert any("resampled onto the image grid" in n for n in report.provenance.notes)
    assert finding.staging.status == "not_staged_benign"
    assert report.source.modality == "CT" and report.source.series_description == "CT Body 3.0"


def test_binary_map_with_a_lesion_type_and_confidence():
    image = body()
    labels = np.zeros(image.array.shape, np.uint8)
    labels[4:8, 10:20, 10:20] = 1
    probabilities = np.zeros(image.array.shape, np.float32)
    probabilities[4:8, 10:20, 10:20] = np.linspace(0.5, 1.0, 10)[None, None, :]
    report = report_from_segmentation(image, image.with_array(labels), image.with_array(probabilities),
                                      lesion_type="pancreas_tumor")
    (finding,) = report.findings
    assert finding.lesion_type.key == "pancreas_tumor" and finding.staging.value is not None
    assert finding.confidence.mean == pytest.approx(0.75) and finding.confidence.max == pytest.approx(1.0)


def test_empty_label_map_is_a_valid_report_without_findings():
    image = body()
    report = report_from_segmentation(image, image.with_array(np.zeros(image.array.shape, np.uint8)))
    assert report.findings == [] and report.dropped.count == 0
    assert report.impression == "No lesion found in the lesion segmentation."


def test_label_map_on_another_grid_names_the_difference():
    image = body()
    shifted = Volume(np.zeros(image.array.shape, np.uint8), spacing=image.spacing, origin=(0.0, 0.0, 7.5))
    with pytest.raises(PastaInputError, match=r"lesion label map's geometry differs.*origin"):
        report_from_segmentation(image, shifted)
    coarse = Volume(np.zeros((10, 20, 20), np.uint8), spacing=(4.0, 4.0, 6.0))
    with pytest.raises(PastaInputError, match=r"size \(20, 20, 10\) vs \(40, 40, 20\)"):
        report_from_segmentation(image, coarse)


def test_unknown_label_values_are_named():
    image = body()
    labels = np.zeros(image.array.shape, np.int16)
    labels[1, 1, 1], labels[2, 2, 2], labels[3, 3, 3] = 16, 99, 3
    with pytest.raises(PastaInputError, match=r"values 16, 99 that are not PASTA lesion-type ids") as error:
        report_from_segmentation(image, image.with_array(labels))
    assert "1 lung_tumor" in error.value.hint
    with pytest.raises(PastaInputError, match=r"values 3, but .* must be binary"):
        report_from_segmentation(image, image.with_array(labels.clip(0, 3)), lesion_type="kidney_tumor")
    with pytest.raises(PastaInputError, match="Unknown lesion type"):
        report_from_segmentation(image, image.with_array(labels.clip(0, 1)), lesion_type="spleen_tumor")


def test_probabilities_must_be_between_zero_and_one():
    image = body()
    labels = np.zeros(image.array.shape, np.uint8)
    labels[4:8, 10:20, 10:20] = 2
    with pytest.raises(PastaInputError, match="between 0 and 1"):
        report_from_segmentation(image, image.with_array(labels), image.with_array(labels * 50.0))
