"""The report model: lossless JSON round trip, the versioned JSON Schema, reader edits that keep
the machine's original value, and review status."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import numpy as np
import pytest
from conftest import DATA, rotation

from PASTALib.io.volume import Volume
from PASTALib.lesions.lesion_types import BY_KEY
from PASTALib.report import review
from PASTALib.report.findings import report_from_segmentation
from PASTALib.report.model import SCHEMA_PATH, SCHEMA_VERSION, Report


def test_the_committed_schema_is_generated_from_the_dataclasses():
    """report.schema.json is the output of the generator (regenerate: python -m PASTALib.report.schema --write)."""
    from PASTALib.report.schema import render

    assert SCHEMA_PATH.read_text(encoding="utf-8") == render()


def test_the_generated_schema_follows_the_dataclasses_and_the_vocabulary():
    """The generator reads the model: a field's constraint and the attribute options reach the schema."""
    from PASTALib.report.model import ATTRIBUTE_OPTIONS
    from PASTALib.report.schema import generate

    defs = generate()["$defs"]
    assert defs["finding"]["properties"]["id"] == {"type": "string", "pattern": "^F[0-9]+$"}
    assert defs["finding"]["required"][-1] == "notes" and "heads" in defs["finding"]["properties"]  # heads optional
    for name, options in ATTRIBUTE_OPTIONS.items():
        assert defs[f"attribute_{name.lower()}"]["properties"]["value"] == {"enum": [*options, None]}
    assert defs["report"]["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_a_report_written_by_schema_1_0_0_still_loads(validator):
    """Kept from the version that wrote it (Testing/Data/report_schema_1.0.0.json, with reader edits)."""
    data = json.loads((DATA / "report_schema_1.0.0.json").read_text(encoding="utf-8"))
    report = Report.from_dict(data)
    assert [f.lesion_type.key for f in report.findings] == ["liver_tumor", "bone_metastasis", "kidney_cyst"]
    assert report.finding("F1").attributes["Shape"].value == "Irregular" and len(report.edits) == 3
    assert report.finding("F1").review.status == "accepted"
    assert report.to_dict() == {**data, "schema_version": "1.1.0", "signature": None}  # 1.1.0 added signing
    assert report.signature is None  # an older report is a draft
    validator.validate(report.to_dict())


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version="2.0.0"), "newer PASTA"),
    (lambda d: d.update(schema_version="0.9.0"), "unknown to this PASTA"),
    (lambda d: d.update(schema="something-else"), "not a PASTA report"),
    (lambda d: d["findings"][0].pop("measurements"), "Finding lacks field(s) ['measurements']"),
    (lambda d: d["findings"][0].update(colour="red"), "Finding has no field(s) ['colour']"),
])
def test_a_report_that_does_not_fit_is_refused_in_plain_words(change, message):
    from PASTALib.errors import PastaInputError

    data = json.loads((DATA / "report_schema_1.0.0.json").read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(PastaInputError, match=re.escape(message)):
        Report.from_dict(data)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def report() -> Report:
    """Three findings (liver tumour, kidney cyst, lung tumour) on an oblique anisotropic grid."""
    rng = np.random.default_rng(1)
    array = (np.full((24, 48, 48), 50.0) + rng.normal(0, 8, (24, 48, 48))).astype(np.int16)
    array[:, :4, :] = -1000
    labels = np.zeros(array.shape, np.int16)
    k, j, i = np.indices(array.shape)
    labels[(k - 8) ** 2 / 9 + (j - 16) ** 2 / 36 + (i - 16) ** 2 / 36 <= 1] = BY_KEY["liver_tumor"].id
    labels[(k - 16) ** 2 / 4 + (j - 34) ** 2 / 16 + (i - 34) ** 2 / 16 <= 1] = BY_KEY["kidney_cyst"].id
    labels[(k - 16) ** 2 + (j - 30) ** 2 / 4 + (i - 10) ** 2 / 4 <= 1] = BY_KEY["lung_tumor"].id
    array[labels > 0] -= 30
    image = Volume(array, spacing=(1.2, 0.9, 3.0), origin=(-10.0, 20.0, 5.0), direction=rotation(10, -5, 20))
    probabilities = np.where(labels > 0, 0.9, 0.05).astype(np.float32)
    return report_from_segmentation(image, image.with_array(labels), image.with_array(probabilities))


def test_json_round_trip_is_lossless(report):
    text = report.to_json()
    again = Report.from_json(text)
    assert again == report
    assert again.to_json() == text
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION


def test_reports_validate_against_the_versioned_schema(report, validator):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["version"] == SCHEMA_VERSION and SCHEMA_VERSION in schema["$id"]
    validator.validate(report.to_dict())
    validator.validate(json.loads(json.dumps(report.findings_document())))
    assert len(report.findings) == 3 and all(f.confidence.mean == pytest.approx(0.9) for f in report.findings)


def test_schema_rejects_what_the_vocabulary_does_not_hold(report, validator):
    data = report.to_dict()
    data["findings"][0]["attributes"]["Shape"]["value"] = "Cystic"
    assert not validator.is_valid(data)
    data = report.to_dict()
    data["findings"][0]["review"]["status"] = "maybe"
    assert not validator.is_valid(data)
    data = report.to_dict()
    del data["findings"][0]["measurements"]["recist"]
    assert not validator.is_valid(data)
    data = report.to_dict()
    data["schema_version"] = "0.9.0"
    assert not validator.is_valid(data)


def test_an_edited_field_keeps_its_machine_value(report, validator):
    finding = report.findings[0]
    machine_shape = finding.attributes["Shape"].value
    machine_long = finding.measurements.recist.long_axis.length_mm
    review.edit(report, finding.id, "attributes.Shape.value", "Irregular", "Dr A", when="2025-01-02T10:00:00+00:00")
    review.edit(report, finding.id, "attributes.Shape.value", "Punctate, nodular", "Dr B")
    review.edit(report, finding.id, "measurements.recist.long_axis.length_mm", 31.5, "Dr A",
                comment="measured on the portal venous phase")
    review.edit(report, "report", "impression", "Solitary liver lesion.", "Dr A")

    assert finding.attributes["Shape"].value == "Punctate, nodular"
    assert finding.attributes["Shape"].source == "reader"
    assert finding.attributes["Shape"].rule.value == machine_shape  # the rule's evidence is untouched
    second = report.edits[1]
    assert (second.original, second.previous, second.new, second.editor) == (
        machine_shape, "Irregular", "Punctate, nodular", "Dr B")
    assert review.machine_value(report, finding.id, "attributes.Shape.value") == machine_shape
    assert review.machine_value(report, finding.id, "measurements.recist.long_axis.length_mm") == machine_long
    assert report.edits[0].time == "2025-01-02T10:00:00+00:00" and report.edits[1].time
    # Edits survive the round trip and the schema.
    again = Report.from_json(report.to_json())
    assert again.edits == report.edits and again.impression == "Solitary liver lesion."
    validator.validate(again.to_dict())


def test_typed_measurements_keep_the_machine_value_through_a_re_measure(report, validator):
    """A typed long axis, then a re-measure replacing all measurements: every machine value survives."""
    finding = report.findings[0]
    machine = copy.deepcopy(finding.measurements)
    review.edit_measurement(report, finding.id, "long_axis_mm", "31.5", "Dr A")
    review.edit_measurement(report, finding.id, "volume_ml", 12.25, "Dr A")
    assert finding.measurements.recist.long_axis.length_mm == 31.5 and finding.measurements.volume_ml == 12.25
    remeasured = copy.deepcopy(machine)
    remeasured.volume_ml = 99.0
    remeasured.recist.long_axis.length_mm = 50.0
    review.edit(report, finding.id, "measurements", remeasured, "Dr B", comment="segment edited")
    review.edit_measurement(report, finding.id, "long_axis_mm", 40, "Dr B")

    path = "measurements.recist.long_axis.length_mm"
    assert review.machine_value(report, finding.id, path) == machine.recist.long_axis.length_mm
    assert review.machine_value(report, finding.id, "measurements.volume_ml") == machine.volume_ml
    whole = review.machine_value(report, finding.id, "measurements")
    assert whole["volume_ml"] == machine.volume_ml
    assert whole["recist"]["long_axis"]["length_mm"] == machine.recist.long_axis.length_mm
    assert report.edits[-1].original == machine.recist.long_axis.length_mm
    assert report.edits[-1].previous == 50.0  # what the re-measure set
    validator.validate(Report.from_json(report.to_json()).to_dict())
    before = copy.deepcopy(report)
    for name, value in (("long_axis_mm", -3), ("short_axis_mm", "wide"), ("volume_ml", float("nan")),
                        ("colour", 1.0)):
        with pytest.raises(ValueError):
            review.edit_measurement(report, finding.id, name, value, "Dr A")
    assert report == before


def test_a_typed_largest_diameter_re_stages_unless_the_reader_set_t(report):
    lung = next(f for f in report.findings if f.lesion_type.key == "lung_tumor")
    machine_t = lung.staging.value
    review.edit_measurement(report, lung.id, "max_3d_diameter_mm", 55.0, "Dr A")
    assert lung.staging.value == "T3" != machine_t and lung.staging.size_mm == 55.0
    assert review.machine_value(report, lung.id, "staging.value") == machine_t
    review.edit(report, lung.id, "staging.value", "T4", "Dr A", comment="invades the mediastinum")
    review.edit_measurement(report, lung.id, "max_3d_diameter_mm", 15.0, "Dr A")
    assert lung.staging.value == "T4"  # the reader's T stands
    review.edit_measurement(report, lung.id, "long_axis_mm", 80.0, "Dr A")  # not the size T is read from
    assert lung.staging.value == "T4"


def test_bad_edits_are_refused(report):
    before = copy.deepcopy(report)
    with pytest.raises(ValueError, match="not a Density option"):
        review.edit(report, "F1", "attributes.Density.value", "Dark", "Dr A")
    with pytest.raises(KeyError):
        review.edit(report, "F1", "measurements.colour", "red", "Dr A")
    with pytest.raises(KeyError):
        review.edit(report, "F9", "notes", [], "Dr A")
    with pytest.raises(ValueError, match="reader's name"):
        review.edit(report, "F1", "notes", [], " ")
    assert report == before


def test_review_status_and_what_is_exported(report):
    assert {f.review.status for f in report.findings} == {"pending"}
    review.set_review(report, "F1", "accepted", "Dr A")
    review.set_review(report, "F2", "rejected", "Dr A", comment="vessel")
    assert report.finding("F2").review.comment == "vessel" and report.finding("F2").review.time
    exported = [f.id for f in review.exported_findings(report)]
    assert exported == ["F1", "F3"]  # accepted and pending go out; the rejected one does not
    with pytest.raises(ValueError):
        review.set_review(report, "F1", "maybe", "Dr A")
    assert Report.from_json(report.to_json()).finding("F2").review.status == "rejected"


def test_a_reader_type_change_keeps_the_machine_type_and_refuses_an_impossible_one():
    from PASTALib.report import review

    report = Report.from_dict(json.loads((DATA / "report_schema_1.0.0.json").read_text()))
    finding = report.findings[0]  # a liver tumour
    assert [t.key for t in review.lesion_type_choices(finding)] == ["liver_tumor", "liver_cyst"]
    with pytest.raises(ValueError, match="cannot lie in the liver"):
        review.edit_lesion_type(report, finding.id, "lung_tumor", "Dr X")
    review.edit_lesion_type(report, finding.id, "liver_cyst", "Dr X")
    again = Report.from_json(report.to_json())  # survives the round trip through JSON and the schema
    assert again.finding(finding.id).lesion_type.key == "liver_cyst"
    assert review.machine_value(again, finding.id, "lesion_type")["key"] == "liver_tumor"


def test_a_reader_location_change_offers_the_hosting_organs_sites_and_keeps_the_machine_location(validator):
    from PASTALib.lesions import anatomy
    from PASTALib.report import review

    report = Report.from_dict(json.loads((DATA / "report_schema_1.0.0.json").read_text()))
    bone = next(f for f in report.findings if f.lesion_type.key == "bone_metastasis")
    choices = review.location_choices(bone)
    assert {site.group for site in choices} == {"bone"} and len(choices) > 40  # vertebrae, ribs, pelvis...
    ids = {v: k for k, v in anatomy.totalsegmentator_v2_names().items()}
    with pytest.raises(ValueError, match="cannot lie in label"):
        review.edit_location(report, bone.id, ids["liver"], "Dr X")
    machine = review.machine_value(report, bone.id, "location")
    review.edit_location(report, bone.id, ids["vertebrae_L3"], "Dr X")
    again = Report.from_json(report.to_json())  # survives JSON and the schema
    validator.validate(again.to_dict())
    location = again.finding(bone.id).location
    assert (location.site, location.organ, location.source, location.code.meaning) == (
        "vertebra L3", "bone", "reader", "Vertebra")
    assert review.machine_value(again, bone.id, "location") == machine
    kidney = next(f for f in report.findings if f.lesion_type.key == "kidney_cyst")
    review.edit_location(report, kidney.id, ids["kidney_left"], "Dr X")
    assert report.finding(kidney.id).location.side == "left"
    assert [s.site for s in review.location_choices(kidney)] == ["kidney right", "kidney left"]


@pytest.mark.parametrize("name, code, key", [
    ("Liver tumor 3", None, "liver_tumor"), ("kidney_cyst_2", None, "kidney_cyst"), ("Gallstone", None, "gallstone"),
    ("Segment_1", None, None), ("Tumor", None, None), ("Segment_1", "DOES-NOT-EXIST", None)])
def test_a_drawn_segment_names_its_lesion_type_by_name_or_unique_code(name, code, key):
    from PASTALib.lesions.lesion_types import LESION_TYPES
    from PASTALib.report.reader_findings import lesion_type_of_segment

    found = lesion_type_of_segment(name, code)
    assert (found.key if found else None) == key
    unique = [t for t in LESION_TYPES if sum(u.code.value == t.code.value for u in LESION_TYPES) == 1]
    assert unique, "some lesion type has a code of its own"
    assert lesion_type_of_segment("Segment_1", unique[0].code.value) is unique[0]
