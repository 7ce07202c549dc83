"""AJCC 8th edition T category from size, at every size boundary, and what is not staged."""

from __future__ import annotations

import pytest

from PASTALib.report import staging
from PASTALib.lesions.lesion_types import BY_KEY, LESION_TYPES
from PASTALib.report.model import ModelPrediction

EPS = 0.01  # mm: just above a boundary ("> 1 cm" starts right after 10.0 mm)

LUNG = [(10.0, "T1a"), (20.0, "T1b"), (30.0, "T1c"), (40.0, "T2a"), (50.0, "T2b"), (70.0, "T3")]
LUNG_ABOVE = ["T1b", "T1c", "T2a", "T2b", "T3", "T4"]
KIDNEY = [(40.0, "T1a"), (70.0, "T1b"), (100.0, "T2a")]
KIDNEY_ABOVE = ["T1b", "T2a", "T2b"]
PANCREAS = [(5.0, "T1a"), (10.0, "T1b"), (20.0, "T1c"), (40.0, "T2")]
PANCREAS_ABOVE = ["T1b", "T1c", "T2", "T3"]


def cases(organ, table, above):
    for (boundary, at), beyond in zip(table, above):
        yield pytest.param(organ, boundary, at, id=f"{organ}-{boundary:g}mm")
        yield pytest.param(organ, boundary + EPS, beyond, id=f"{organ}-over-{boundary:g}mm")


@pytest.mark.parametrize("organ, size_mm, expected", [
    *cases("lung", LUNG, LUNG_ABOVE), *cases("kidney", KIDNEY, KIDNEY_ABOVE),
    *cases("pancreas", PANCREAS, PANCREAS_ABOVE),
    pytest.param("lung", 3.0, "T1a", id="lung-small"), pytest.param("kidney", 180.0, "T2b", id="kidney-huge"),
])
def test_t_category_at_every_size_boundary(organ, size_mm, expected):
    assert staging.t_from_size(organ, size_mm) == expected
    key = {"lung": "lung_tumor", "kidney": "kidney_tumor", "pancreas": "pancreas_tumor"}[organ]
    result = staging.stage_finding(BY_KEY[key], size_mm)
    assert (result.status, result.value, result.rule_value, result.source) == ("size_based", expected, expected, "rule")
    assert "AJCC 8th" in result.rule and result.size_mm == size_mm
    assert result.notes, "a size-based T must say which invasion findings can upstage it"


@pytest.mark.parametrize("sizes, expected, needs_reader", [
    ([20.0], "T1a", False),            # solitary <= 2 cm
    ([20.0 + EPS], "T1b", True),       # solitary > 2 cm: T1b or T2 depending on vascular invasion
    ([15.0, 50.0], "T2", False),       # multiple, none > 5 cm
    ([15.0, 50.0 + EPS], "T3", False),  # multiple, at least one > 5 cm
    ([60.0, 8.0, 9.0], "T3", False),
])
def test_liver_size_and_multiplicity(sizes, expected, needs_reader):
    result = staging.stage_finding(BY_KEY["liver_tumor"], sizes[0], sizes)
    assert result.value == expected and result.requires_reader is needs_reader
    if needs_reader:
        assert result.alternatives == ["T2"] and "vascular invasion" in result.notes[0]


@pytest.mark.parametrize("key", ["esophageal_cancer", "gastric_cancer", "colorectal_cancer",
                                 "bladder_cancer", "gallbladder_cancer"])
def test_wall_invasion_cancers_are_not_staged_by_size(key):
    result = staging.stage_finding(BY_KEY[key], 80.0)
    assert result.status == "not_applicable_from_size" and result.value is None
    assert result.requires_reader and "depth of invasion" in result.rule


def test_benign_types_and_metastases_are_not_staged():
    benign = [t for t in LESION_TYPES if not t.malignant]
    # PASTA's order: the malignant types, then the benign ones (ids follow the table, whatever its length)
    assert [t.malignant for t in LESION_TYPES] == sorted((t.malignant for t in LESION_TYPES), reverse=True)
    assert benign and [t.id for t in LESION_TYPES] == list(range(1, len(LESION_TYPES) + 1))
    for lesion_type in benign:
        result = staging.stage_finding(lesion_type, 30.0)
        assert result.status == "not_staged_benign" and result.value is None
    metastasis = staging.stage_finding(BY_KEY["bone_metastasis"], 30.0)
    assert metastasis.status == "not_staged_metastasis" and metastasis.value is None


class _Head:
    def predict(self, finding):
        return ModelPrediction("T2b", {"T2b": 0.6, "T3": 0.4}, "demo-staging-head")


def test_learned_staging_head_keeps_the_rule_value(report_with_findings):
    report = report_with_findings
    staging.stage_findings(report.findings, _Head())
    kidney = next(f for f in report.findings if f.lesion_type.key == "kidney_tumor")
    assert kidney.staging.value == "T2b" and kidney.staging.source == "model"
    assert kidney.staging.rule_value == staging.t_from_size("kidney", kidney.measurements.max_3d_diameter.length_mm)


@pytest.fixture
def report_with_findings():
    import numpy as np

    from PASTALib.report.findings import report_from_segmentation
    from PASTALib.io.volume import Volume

    array = np.full((20, 40, 40), 30, np.int16)
    array[:, :3, :] = -1000
    labels = np.zeros_like(array)
    labels[5:12, 10:25, 10:30] = BY_KEY["kidney_tumor"].id
    image = Volume(array, spacing=(2.0, 2.0, 4.0))
    return report_from_segmentation(image, image.with_array(labels))
