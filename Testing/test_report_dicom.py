"""DICOM SEG and Comprehensive 3D SR (TID 1500) written from the DICOM sample, read back with
highdicom and pydicom: same measurements, codes and references."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from PASTALib.errors import PastaInputError
from PASTALib.report import review
from PASTALib.report.dicom_export import export_dicom
from PASTALib.report.findings import analyse_segmentation
from PASTALib.lesions.lesion_types import BY_KEY
from PASTALib.io.volume_io import read_volume, write_volume

from conftest import DATA, REPO, pypi_reachable

def lesions(image):
    labels = np.zeros(image.array.shape, np.int16)
    k, j, i = np.indices(image.array.shape)
    labels[((k - 10) * 2.0) ** 2 + ((j - 260) * 0.977) ** 2 + ((i - 170) * 0.977) ** 2 <= 14 ** 2] = BY_KEY["liver_tumor"].id
    labels[((k - 6) * 2.0) ** 2 + ((j - 300) * 0.977) ** 2 + ((i - 330) * 0.977) ** 2 <= 8 ** 2] = BY_KEY["kidney_cyst"].id
    labels[3:5, 100:104, 250:254] = BY_KEY["gallstone"].id
    return image.with_array(labels)


@pytest.fixture(scope="module")
def exported(dicom_series, tmp_path_factory):
    image = read_volume(dicom_series)
    analysis = analyse_segmentation(image, lesions(image))
    report = analysis.report
    ids = {f.lesion_type.key: f.id for f in report.findings}  # findings are ranked by confidence x size
    review.set_review(report, ids["liver_tumor"], "accepted", "Dr A")
    review.set_review(report, ids["kidney_cyst"], "rejected", "Dr A")  # the gallstone stays pending: exported too
    out = tmp_path_factory.mktemp("out")
    written = export_dicom(report, image, analysis.mask, out)
    return report, analysis, image, written


def exported_findings(report):
    """The findings a SEG/SR holds: all but the rejected kidney cyst, in report order."""
    return [f for f in report.findings if f.lesion_type.key != "kidney_cyst"]


def segment_voxel_counts(seg) -> dict[int, int]:
    """Segment number -> set voxels, from a binary SEG's frames and their per-frame segment numbers."""
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    counts: dict[int, int] = {}
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        counts[number] = counts.get(number, 0) + int(frame.sum())
    return counts


def test_seg_holds_the_exported_findings_with_snomed_codes(exported):
    report, analysis, image, written = exported
    seg = hd.seg.segread(written["seg"])
    raw = pydicom.dcmread(written["seg"])
    assert raw.Modality == "SEG" and raw.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    f1, f2 = exported_findings(report)
    assert seg.number_of_segments == 2  # the rejected kidney cyst is left out
    for number, finding in ((1, f1), (2, f2)):
        description = seg.get_segment_description(number)
        assert description.segment_label.startswith(finding.id)
        assert description.segmented_property_category.value == "49755003"
        assert description.segmented_property_type.value == finding.lesion_type.code.value
        assert description.tracking_id == finding.id
    assert seg.get_segment_description(1).segmented_property_type.meaning == "Neoplasm"
    assert seg.get_segment_description(2).segmented_property_type.meaning == "Calculus"
    assert seg.get_segment_description(1).anatomic_regions[0].meaning == "Liver"
    # Same voxels as the findings, frame by frame on the source slices.
    source_uids = [ds.SOPInstanceUID or ds.file_meta.MediaStorageSOPInstanceUID for ds in
                   sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in Path(image.metadata["source"]).glob("*.dcm")),
                          key=lambda ds: -float(ds.ImagePositionPatient[2]))]
    voxels = segment_voxel_counts(raw)  # read with pydicom alone: the same on every highdicom release
    for number, finding in ((1, f1), (2, f2)):
        assert voxels[number] == finding.component.voxel_count
    referenced = {item.ReferencedSOPInstanceUID for item in raw.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(source_uids) and "" not in referenced


def test_seg_and_sr_reference_the_source_series(exported, dicom_series):
    report, analysis, image, written = exported
    source = pydicom.dcmread(next(dicom_series.glob("*.dcm")), stop_before_pixels=True)
    seg = pydicom.dcmread(written["seg"])
    sr = pydicom.dcmread(written["sr"])
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == source.StudyInstanceUID
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    # highdicom >= 0.23 lists the SEG as current evidence, 0.22 (for pydicom 2) as pertinent other evidence
    evidence = {item.SeriesInstanceUID
                for sequence in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence")
                for study in sr.get(sequence, []) for item in study.ReferencedSeriesSequence}
    assert evidence == {source.SeriesInstanceUID, seg.SeriesInstanceUID}
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR


def test_sr_measurements_equal_the_report(exported):
    report, analysis, image, written = exported
    sr = hd.sr.srread(written["sr"])
    seg = pydicom.dcmread(written["seg"])
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert [str(g.tracking_identifier) for g in groups] == [f.id for f in exported_findings(report)]
    for group, finding in zip(groups, exported_findings(report)):
        m = finding.measurements

        def value(name, group=group):
            (item,) = group.get_measurements(name=name)
            return item

        assert value(codes.SCT.Volume).value == pytest.approx(m.volume_ml, rel=1e-6)
        assert value(codes.SCT.Volume).unit.value == "ml"
        assert value(codes.SCT.LongAxis).value == pytest.approx(m.recist.long_axis.length_mm, rel=1e-6)
        assert value(codes.SCT.ShortAxis).value == pytest.approx(m.recist.short_axis.length_mm, rel=1e-6)
        assert value(codes.SCT.Diameter).value == pytest.approx(m.max_3d_diameter.length_mm, rel=1e-6)
        assert group.finding_type.value == finding.lesion_type.code.value
        assert group.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        evaluations = {e.name.meaning: e.value.meaning for e in group.get_qualitative_evaluations()}
        for name, attribute in finding.attributes.items():
            if attribute.value is not None:
                assert evaluations[name] == attribute.value
    f1 = report.finding("F1")
    evaluations = {e.name.meaning: e.value.meaning for e in groups[0].get_qualitative_evaluations()}
    assert evaluations["AJCC 8th T category from size"] == f1.staging.value
    # The liver tumour lies in no organ mask here, so its site is its type's host organ.
    assert groups[0].finding_sites[0].value.value == "10200004"


def test_blank_series_uids_and_non_dicom_input_are_explained(tmp_path):
    image = read_volume(DATA / "example_ct_dicom")  # the anonymiser left Study/Series Instance UID blank
    analysis = analyse_segmentation(image, lesions(image))
    with pytest.raises(PastaInputError, match=r"blank .*SeriesInstanceUID.*StudyInstanceUID"):
        export_dicom(analysis.report, image, analysis.mask, tmp_path)
    nifti = write_volume(image, tmp_path / "ct.nrrd")
    from_file = read_volume(nifti)
    analysis = analyse_segmentation(from_file, lesions(from_file))
    with pytest.raises(PastaInputError, match="DICOM export needs a DICOM source") as error:
        export_dicom(analysis.report, from_file, analysis.mask, tmp_path)
    assert "DICOM series folder" in error.value.hint
    assert not list(tmp_path.glob("*.dcm"))


def test_nothing_to_export_writes_no_dicom(dicom_series, tmp_path):
    """TID 1500 needs a measurement group: without exported findings no SEG or SR is written."""
    image = read_volume(dicom_series)
    analysis = analyse_segmentation(image, image.with_array(np.zeros(image.array.shape, np.uint8)))
    assert export_dicom(analysis.report, image, analysis.mask, tmp_path) == {}
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("version, keyword", [("3.0.2", "enforce_file_format"), ("2.4.4", "write_like_original")])
def test_dicom_files_are_saved_with_the_keyword_this_pydicom_has(monkeypatch, version, keyword):
    """pydicom 2.4 (Slicer 5.10's) has no enforce_file_format and pydicom 3 no write_like_original; a run
    against the real pydicom 2.4.4 wheel wrote a readable file with the 2.4 branch (session note)."""
    import pydicom

    from PASTALib.report.dicom_export import save_dicom_file

    calls = []

    class Recording:
        def save_as(self, path, **kwargs):
            calls.append((path, kwargs))

    monkeypatch.setattr(pydicom, "__version__", version)
    save_dicom_file(Recording(), "x.dcm")
    expected = {"enforce_file_format": True} if keyword == "enforce_file_format" else {"write_like_original": False}
    assert calls == [("x.dcm", expected)]


def observers(sr):
    """(observer types, person observer names) of the SR's observation context, in document order."""
    types = [item.ConceptCodeSequence[0].CodeMeaning for item in sr.ContentSequence
             if item.ConceptNameCodeSequence[0].CodeValue == "121005"]
    names = [str(item.PersonName) for item in sr.ContentSequence
             if item.ConceptNameCodeSequence[0].CodeValue == "121008"]
    return types, names


def impressions(sr):
    return [item.TextValue for item in sr.ContentSequence if item.ValueType == "TEXT"
            and item.ConceptNameCodeSequence[0].CodeValue == codes.DCM.Impression.value]


def test_an_unsigned_report_is_a_partial_unverified_draft_with_its_impression(exported):
    report, analysis, image, written = exported
    sr = pydicom.dcmread(written["sr"])
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
    assert "VerifyingObserverSequence" not in sr and "draft" in sr.SeriesDescription
    assert observers(sr) == (["Device"], [])
    assert impressions(sr) == [report.impression.strip()]


def test_a_signed_report_is_complete_final_and_verified_by_its_reader(dicom_series, tmp_path):
    """Sign report (issue 17): the reader is the person observer and the verifying observer; the SR holds
    the impression as the reader edited it; an edit after signing makes it a draft again."""
    image = read_volume(dicom_series)
    analysis = analyse_segmentation(image, lesions(image))
    report = analysis.report
    with pytest.raises(ValueError, match="still pending: F1, F2, F3"):
        review.sign_report(report, "Doe, Jane")
    for finding in report.findings:
        review.set_review(report, finding.id, "accepted", "Doe, Jane")
    review.edit(report, "report", "impression", "Liver tumour, 28 mm. Reader's impression.", "Doe, Jane")
    signature = review.sign_report(report, "Doe, Jane", organization="Example Hospital")
    assert report.signature is signature and signature.reader == "Doe, Jane"
    written = export_dicom(report, image, analysis.mask, tmp_path)
    sr = pydicom.dcmread(written["sr"])
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("COMPLETE", "VERIFIED", "FINAL")
    (verifier,) = sr.VerifyingObserverSequence
    assert str(verifier.VerifyingObserverName) == "Doe^Jane"
    assert verifier.VerifyingOrganization == "Example Hospital"
    assert observers(sr) == (["Person", "Device"], ["Doe^Jane"])
    assert impressions(sr) == ["Liver tumour, 28 mm. Reader's impression."]

    review.set_review(report, "F2", "rejected", "Doe, Jane")  # a later change voids the signature
    assert report.signature is None
    (tmp_path / "again").mkdir()
    again = export_dicom(report, image, analysis.mask, tmp_path / "again")
    assert pydicom.dcmread(again["sr"]).VerificationFlag == "UNVERIFIED"


@pytest.mark.parametrize("typed, dicom", [("Doe^Jane", "Doe^Jane"), ("Doe, Jane", "Doe^Jane"),
                                          ("Jane Doe", "Jane Doe^")])
def test_reader_names_become_dicom_person_names_without_guessing(typed, dicom):
    from PASTALib.report.dicom_export import person_name

    assert person_name(typed) == dicom


#: What the install plan resolves to on Slicer 5.8 and 5.10, which ship pydicom 2.4.4 (test_slicer_install.py):
#: the last highdicom for pydicom 2. Slicer 5.10 also ships NumPy 2, which that highdicom predates.
OLD_DICOM_STACK = ("highdicom==0.22.0", "pydicom==2.4.4")


@pytest.mark.slow
@pytest.mark.skipif(not pypi_reachable(), reason="fetching the older packages needs the Python Package Index")
def test_dicom_export_works_with_the_pydicom_2_stack_slicer_5_8_and_5_10_get(tmp_path):
    """Issue 17 item 2, "test both": this file's tests again, in a subprocess whose pydicom and highdicom are
    the ones Slicer 5.8/5.10 end up with (the rest, NumPy 2 included, as in this environment)."""
    import os
    import subprocess
    import sys

    target = tmp_path / "old"
    fetched = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                              *OLD_DICOM_STACK], capture_output=True, text=True, timeout=600)
    assert fetched.returncode == 0, fetched.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    versions = subprocess.run([sys.executable, "-c", "import highdicom, pydicom; print(highdicom.__version__, "
                               "pydicom.__version__)"], capture_output=True, text=True, env=env)
    assert versions.stdout.split() == ["0.22.0", "2.4.4"]
    inner = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider",
                            "-k", "not pydicom_2_stack"], capture_output=True, text=True, env=env, cwd=REPO,
                           timeout=900)
    assert inner.returncode == 0, inner.stdout[-3000:]
    assert " passed" in inner.stdout.splitlines()[-1] and "failed" not in inner.stdout.splitlines()[-1]
