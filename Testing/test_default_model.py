"""The bundled default model, the organ-aware detector: what its card and the README promise is what it does.

* the README's main job finds the three lesions of ``sample-lesions`` with the right types and nothing else;
* healthy scans get at most one false finding in total;
* every finding has a type its organ can host (the invariant of :mod:`PASTALib.lesions.type_rules`);
* the findings do not depend on where the scan starts (no tiles);
* the held-out numbers of the card are recomputed for the held-out patient the test data holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import synth_hosts

from PASTALib.analysis.options import AnalysisOptions
from PASTALib.analysis.pipeline import run_analysis
from PASTALib.detection.detector import detect
from PASTALib.detection.model_folder import detector_folder, load_detector
from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume
from PASTALib.lesions import lesion_types
from PASTALib.model.bundled_models import BUNDLED
from PASTALib.progress import ProgressReporter

FOLDER = BUNDLED["default"]
CARD = json.loads((FOLDER / "model.json").read_text(encoding="utf-8"))


def assert_types_possible(report) -> None:
    """The invariant: a finding's type is one its organ can host."""
    for finding in report.findings:
        assert lesion_types.BY_ID[finding.lesion_type.id].organ == finding.location.organ, finding.id


@pytest.fixture(scope="module")
def scorer():
    return load_detector(FOLDER)[0]


def test_default_model_is_a_small_verified_detector_with_a_card():
    assert detector_folder("default") == FOLDER
    scorer, card = load_detector(FOLDER)  # checks every listed file's SHA256
    assert sum(p.stat().st_size for p in FOLDER.iterdir()) <= 25 * 1024 * 1024
    assert set(scorer.operating_points) == {"strict", "balanced", "high"}
    assert scorer.operating_points["strict"] >= scorer.operating_points["balanced"] >= scorer.operating_points["high"]
    page = (FOLDER / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "leave one patient out" in page and "What it misses" in page and card["limits"]


def test_a_detector_folder_is_refused_where_a_network_is_needed():
    from PASTALib.model.checkpoints import load_model

    with pytest.raises(PastaInputError, match="is a detector model"):
        load_model("default")


def test_tampered_detector_numbers_are_refused(tmp_path):
    import shutil

    copy = shutil.copytree(FOLDER, tmp_path / "model")
    block = json.loads((copy / "detector.json").read_text())
    block["trees"][0]["threshold"][0] += 5.0
    (copy / "detector.json").write_text(json.dumps(block))
    with pytest.raises(PastaInputError, match="does not match the SHA256"):
        load_detector(copy)


@pytest.fixture(scope="module")
def sample_analysis(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "analysis"
    analysis = run_analysis(AnalysisOptions(image="sample-lesions", output=str(out)), ProgressReporter())
    return analysis, read_volume(out / "findings.nii.gz").array


def test_sample_lesions_gives_its_three_lesions_with_their_types_and_nothing_else(sample_analysis):
    analysis, finding_labels = sample_analysis
    truth = read_volume(sample_data.SAMPLES["sample-lesions-truth"].path).array
    report = analysis.report
    assert len(report.findings) == 3
    assert_types_possible(report)
    dice = {}
    for number, finding in enumerate(report.findings, start=1):
        mask = finding_labels == number
        overlapping = [int(v) for v in np.unique(truth[mask]) if v]
        assert len(overlapping) == 1, finding.id  # each finding is one true lesion
        true_type = lesion_types.BY_ID[overlapping[0]]
        lesion = truth == overlapping[0]
        dice[true_type.key] = 2 * float((mask & lesion).sum()) / (mask.sum() + lesion.sum())
        assert finding.lesion_type.key == true_type.key
        assert any(note.startswith("Type decided by") for note in finding.notes)
    assert set(dice) == {"liver_tumor", "kidney_cyst", "bone_metastasis"}
    # measured with this model (RESULTS.md); the kidney cyst is under-segmented (see the model card)
    assert dice["liver_tumor"] >= 0.65 and dice["bone_metastasis"] >= 0.9 and dice["kidney_cyst"] >= 0.25
    confidences = [f.confidence.max for f in report.findings]
    assert all(0.0 < c <= 1.0 for c in confidences)
    weights = [f.confidence.max * f.measurements.max_3d_diameter.length_mm for f in report.findings]
    assert weights == sorted(weights, reverse=True)  # the first rows are the ones that matter


def healthy_scans():
    """The healthy scans the test data holds: (name, image, organ mask or None)."""
    abdomen, organs = synth_hosts.sample_pair()
    upper, upper_organs = synth_hosts.upper_abdomen_pair()
    dicom, dicom_organs = synth_hosts.contrast_pair()
    return [("native abdomen", abdomen, organs), ("upper abdomen", upper, upper_organs),
            ("contrast DICOM abdomen (held out)", dicom, dicom_organs),
            ("chest crop A part", synth_hosts.chest_part(), None),
            ("chest crop B (same patient as A)", read_volume(synth_hosts.DATA / "chest_crop_b_ct.nii.gz"), None)]


@pytest.mark.slow
def test_healthy_scans_get_at_most_one_false_finding_in_total(scorer):
    counts = {}
    for name, image, organs in healthy_scans():
        detection = detect(image, organs, scorer, "balanced")
        counts[name] = len(detection.kept)
        # the contrast DICOM's own mask is stored flipped (LAS) on another grid: resampled, and said so
        if organs is not None and not image.has_same_geometry(organs, 1e-3):
            assert detection.organs.array.shape == image.array.shape
    assert sum(counts.values()) <= 1, counts


def test_findings_do_not_depend_on_where_the_scan_starts(scorer):
    image = read_volume(sample_data.SAMPLES["sample-lesions"].path)
    organs = read_volume(sample_data.SAMPLES["sample-organs"].path)
    whole = detect(image, organs, scorer, "balanced")
    shift = 7  # slices cut off the start: every world position keeps its voxel
    cropped_image, cropped_organs = synth_hosts.without_slices(image, shift), synth_hosts.without_slices(organs, shift)
    moved = detect(cropped_image, cropped_organs, scorer, "balanced")
    assert len(moved.kept) == len(whole.kept)
    assert np.array_equal(moved.labels.array, whole.labels.array[shift:])


def test_a_scan_without_any_searched_organ_gives_a_valid_empty_report(tmp_path, scorer):
    image = read_volume(sample_data.SAMPLES["sample"].path)
    noise = np.random.default_rng(0).normal(40.0, 10.0, image.array.shape)
    soft = image.with_array(noise.astype(np.int16))  # soft tissue only: no air, no organ
    detection = detect(soft, None, scorer, "balanced")
    assert detection.kept == [] and detection.searched == []
    assert any("nothing was searched, so no finding does not mean no lesion" in note for note in detection.notes)
    out = tmp_path / "analysis"
    from PASTALib.io.volume_io import write_volume

    write_volume(soft, tmp_path / "soft.nii.gz")
    analysis = run_analysis(AnalysisOptions(image=str(tmp_path / "soft.nii.gz"), output=str(out), force=True),
                            ProgressReporter())
    assert analysis.report.findings == [] and (out / "report.json").is_file()
    assert any("nothing was searched" in note for note in analysis.report.provenance.notes)


def test_an_organ_mask_on_another_grid_is_resampled_and_said_so(scorer):
    dicom, organs = synth_hosts.contrast_pair()  # the mask is stored flipped (LAS), on another grid
    detection = detect(dicom, organs, scorer, "balanced")
    assert any("resampled onto it" in note for note in detection.notes)
    assert "liver" in detection.searched


def test_unknown_organ_labels_are_named_and_a_mask_elsewhere_is_refused(scorer):
    image, organs = synth_hosts.sample_pair()
    odd = organs.with_array(np.where(organs.array == 5, 250, organs.array).astype(organs.array.dtype))
    detection = detect(image, odd, scorer, "balanced")
    assert any("Organ labels 250 are not in the label table" in note for note in detection.notes)
    assert "liver" not in detection.searched
    far = Volume(organs.array, organs.spacing, tuple(np.asarray(organs.origin) + 5000.0), organs.direction)
    with pytest.raises(PastaInputError, match="does not overlap the CT"):
        detect(image, far, scorer, "balanced")


def test_organs_auto_without_totalsegmentator_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)  # an import of it fails, as when not installed
    with pytest.raises(PastaInputError, match="TotalSegmentator, which is not installed") as caught:
        run_analysis(AnalysisOptions(image="sample", output=str(tmp_path / "out"), organs="auto"),
                     ProgressReporter())
    assert "--organs" in caught.value.hint and not (tmp_path / "out").exists()


def test_totalsegmentator_weights_are_looked_for_where_it_keeps_them(tmp_path, monkeypatch):
    from PASTALib.lesions.auto_organs import FAST_MODEL_FOLDER, fast_model_present, weights_folder

    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path))
    assert weights_folder() == tmp_path / "nnunet" / "results" and not fast_model_present()
    (weights_folder() / FAST_MODEL_FOLDER).mkdir(parents=True)
    assert fast_model_present()


@pytest.mark.slow
def test_the_cards_numbers_are_what_the_shipped_detector_does(tmp_path, monkeypatch, scorer):
    """The contrast DICOM abdomen is in the test data: regenerate its synthetic lesions (same seeds) and
    re-score them with the shipped detector at every operating point. (The card's held-out figures are
    leave-one-patient-out; this checks that the card describes these very numbers and code.)"""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
    import detector_data
    import train_detector

    scan = next(s for s in detector_data.SCANS if s.name == "dicom_abdomen")
    local = detector_data.PatientScan(scan.name, scan.patient, scan.split, synth_hosts.DATA / "example_ct_dicom",
                                      synth_hosts.DATA / "abdomen_contrast_dicom_organs.nii.gz")
    monkeypatch.setattr(detector_data, "SCANS", [local if s is scan else s for s in detector_data.SCANS])
    detector_data.make_cases(tmp_path, CARD["provenance"]["held_out_cases_per_type"], {"heldout"},
                             only={"dicom_abdomen"})
    monkeypatch.setattr(train_detector, "CASES", tmp_path)
    monkeypatch.setattr(train_detector, "healthy_extra_scans", lambda: {"upper_abdomen": []})
    hosts = train_detector.collect(("heldout",), only={"dicom_abdomen"})
    recorded = CARD["validation"]["shipped_model_check"]
    for sensitivity in ("strict", "balanced", "high"):
        result = train_detector.evaluate(scorer, hosts, scorer.threshold(sensitivity))
        assert result["per_host"] == recorded[sensitivity], sensitivity


def test_the_card_reports_leave_one_patient_out_figures_and_the_misses():
    held = CARD["validation"]["leave_one_patient_out"]["balanced"]
    assert set(CARD["validation"]["folds"]) >= {"totalseg-abdomen", "totalseg-dicom", "lidc-idri-0001"}
    assert held["all"]["cases"] >= 500 and 0.0 <= held["all"]["detected"] <= 1.0
    assert held["per_type"]["gastric_cancer"]["detected"] == 0.0  # not searched, and the card says so
    assert any("esophagus, stomach and colon" in limit for limit in CARD["limits"])


def test_the_balanced_point_allows_one_false_finding_per_healthy_scan_on_average():
    """Was: one on every scan, so one scan's second candidate set the default (0.95 in one refit, which
    dropped the sample's bone metastasis); then also two at most on any one scan, which the scan with the
    most candidates set (held out: 0.1 false findings per scan on average). Now: one per scan on average."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
    from train_detector import choose_operating_points

    healthy = {"a": np.array([0.97, 0.96, 0.30]), "b": np.array([0.20, 0.10]), "c": np.array([0.50]),
               "d": np.array([])}
    points = choose_operating_points(healthy)
    assert points["strict"] == pytest.approx(0.97, abs=1e-5)  # nothing on any scan
    assert points["balanced"] == pytest.approx(0.20, abs=1e-5)  # a: 3, c: 1 -> 1.0 per scan; lower: b adds 1
    assert points["high"] == pytest.approx(0.05)  # 1.5 per scan at the floor
    counts = [int(np.count_nonzero(v >= points["balanced"])) for v in healthy.values()]
    assert np.mean(counts) <= 1 and max(counts) == 3
    # no cap per scan: one crowded scan among quiet ones may hold all of its candidates
    crowded = {"a": np.array([0.9, 0.8, 0.7]), "b": np.array([]), "c": np.array([]), "d": np.array([])}
    assert choose_operating_points(crowded)["balanced"] == pytest.approx(0.05)


def test_a_candidate_that_would_find_its_lesion_is_taught_as_a_lesion_and_one_that_only_touches_it_is_not():
    """The labels the forest learns: mostly inside a lesion, or merged with tissue beside it but still
    finding it (Dice >= 0.2); a candidate touching a lesion, or holding it in much more, is neither lesion
    nor tissue."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
    from train_detector import training_matrix

    hosts = {"scan": {"healthy": [[9.0, 0, 0, 0]], "cases": [{"truth_voxels": 100, "rows": [
        ([1.0, 0, 0, 0], 40.0, 50, 0.0, "kidney"),    # a fragment, mostly inside
        ([2.0, 0, 0, 0], 95.0, 700, 0.0, "kidney"),   # the lesion inside a region 7x its size: Dice 0.24
        ([3.0, 0, 0, 0], 10.0, 400, 0.0, "kidney"),   # touches it: 2.5 % inside, Dice 0.04
        ([4.0, 0, 0, 0], 60.0, 700, 0.0, "kidney"),   # 60 % of it in a region 7x its size: Dice 0.15
    ]}]}}
    x, y, scans = training_matrix(hosts)
    assert x[:, 0].tolist() == [9.0, 1.0, 2.0] and y.tolist() == [0.0, 1.0, 1.0]
    assert scans.tolist() == ["scan", "", ""]


def test_the_candidate_feature_tool_splits_a_group_into_healthy_and_lesion_candidates(tmp_path, capsys):
    """The diagnosis behind RESULTS' pancreas/kidney tables: only the group's candidates, lesions only
    when mostly inside one, per type."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
    from candidate_features_by_group import group_rows, main

    from PASTALib.detection.features import FEATURE_NAMES

    def features(group: str, volume: float) -> list[float]:
        row = [0.0] * len(FEATURE_NAMES)
        row[FEATURE_NAMES.index(f"group_{group}")] = 1.0
        row[FEATURE_NAMES.index("log_volume_ml")] = volume
        return row

    hosts = {"scan": {"healthy": [features("pancreas", -1.0), features("liver", 5.0)],
                      # rows as the cache holds them: features, voxels inside the lesion, candidate voxels
                      "cases": [{"type": "pancreas_tumor", "rows": [[features("pancreas", 0.5), 90.0, 100],
                                                                   [features("pancreas", 9.0), 20.0, 100]]},
                                {"type": "liver_cyst", "rows": [[features("liver", 1.0), 100.0, 100]]}]}}
    healthy, lesions = group_rows(hosts, "pancreas")
    assert healthy.shape == (1, len(FEATURE_NAMES)) and list(lesions) == ["pancreas_tumor"]
    assert lesions["pancreas_tumor"][:, FEATURE_NAMES.index("log_volume_ml")].tolist() == [0.5]
    cache = tmp_path / "candidates.json"
    cache.write_text(json.dumps({"key": "k", "hosts": hosts}))
    assert main([str(cache), "--group", "pancreas"]) == 0
    assert "| log_volume_ml | -1.00 (-1.00 to -1.00) | 0.50 (0.50 to 0.50) |" in capsys.readouterr().out
