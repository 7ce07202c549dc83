"""`pasta analyze`: segment with a model, map its classes to lesion types, write the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PASTALib.lesions.lesion_types import BY_KEY
from PASTALib.model.checkpoints import load_model
from PASTALib.io.volume_io import read_volume

from conftest import DATA
from nnunet_peer import write_results_folder

TINY = DATA / "tiny_pasta_organs"
PASTA = str(Path(sys.executable).parent / "pasta")


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PASTA, "analyze", *args, "--device", "cpu", "--quiet"], capture_output=True, text=True)


@pytest.fixture(scope="module")
def lesion_model(tmp_path_factory) -> Path:
    """The tiny network presented as a fine-tuned PASTA model: classes background, organ, lesion.

    Its class 2 (trained on kidneys) plays the lesion, so the findings land in both kidneys. Its
    trainer is a plain nnU-Net one: the tiny network learned arrays as stored, not PASTA's standardised
    ones (a PASTA-recipe trainer name would turn the standardisation on; test_standardise.py).
    """
    tiny = load_model(TINY)
    folder = tmp_path_factory.mktemp("models") / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    return write_results_folder(folder, tiny.states, tiny.preprocessing, tiny.config,
                                ["background", "organ", "lesion"], trainer_name="nnUNetTrainer",
                                mirror_axes=tiny.mirror_axes)


@pytest.mark.slow
def test_analyze_sample_with_a_fine_tuned_model(lesion_model, tmp_path, sample_paths):
    out = tmp_path / "analysis"
    result = analyze("sample", "--model", str(lesion_model), "--lesion-type", "kidney_tumor", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} >= {"segmentation.nii.gz", "report.json", "report.md", "report.html",
                                               "findings.json", "key_images", "findings.nii.gz"}
    assert read_volume(out / "segmentation.nii.gz").has_same_geometry(read_volume(sample_paths["sample"]), 1e-4)
    report = json.loads((out / "report.json").read_text())
    findings = report["findings"]
    # findings.nii.gz: label n on finding Fn's voxels, on the input grid.
    labels = read_volume(out / "findings.nii.gz")
    assert labels.has_same_geometry(read_volume(sample_paths["sample"]), 1e-4)
    counts = np.bincount(labels.array.astype(np.int64).ravel())
    assert counts[1:].tolist() == [f["component"]["voxel_count"] for f in findings]
    assert findings, "the kidneys should be found"
    assert {f["lesion_type"]["key"] for f in findings} == {"kidney_tumor"}
    assert {f["location"]["side"] for f in findings} == {"left", "right"}
    assert all(f["confidence"] is not None and f["confidence"]["mean"] > 0.5 for f in findings)
    assert "nnUNetTrainer__nnUNetPlans__3d_fullres" in report["provenance"]["model_id"]


@pytest.mark.slow
def test_model_card_lesion_types_need_no_flag(tmp_path):
    folder = shutil.copytree(TINY, tmp_path / "model")
    card = json.loads((folder / "model.json").read_text())
    card["classes"][1]["lesion_type"] = "liver_tumor"
    (folder / "model.json").write_text(json.dumps(card))
    out = tmp_path / "analysis"
    result = analyze("sample", "--model", str(folder), "-o", str(out))
    assert result.returncode == 0, result.stderr
    findings = json.loads((out / "report.json").read_text())["findings"]
    assert findings and {f["lesion_type"]["key"] for f in findings if f["location"]["organ"] == "liver"} == {
        "liver_tumor"}
    # a part that spills into another organ takes a type that organ can host: never an impossible type
    assert all(BY_KEY[f["lesion_type"]["key"]].organ == f["location"]["organ"] for f in findings)
    assert max(f["measurements"]["volume_ml"] for f in findings) > 500  # the whole liver, as trained


@pytest.mark.slow
def test_the_model_cards_component_floor_is_the_smallest_finding(tmp_path):
    folder = shutil.copytree(TINY, tmp_path / "model")
    card = json.loads((folder / "model.json").read_text())
    card["classes"][1]["lesion_type"] = "liver_tumor"
    card["classes"][2]["lesion_type"] = "kidney_tumor"
    card["postprocessing"] = {"decision": "argmax", "min_component_ml": 300.0}  # the liver, not a kidney
    (folder / "model.json").write_text(json.dumps(card))
    result = analyze("sample", "--model", str(folder), "-o", str(tmp_path / "floor"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "floor" / "report.json").read_text())
    assert report["dropped"]["min_volume_ml"] == 300.0
    assert report["findings"] and all(f["measurements"]["volume_ml"] >= 300.0 for f in report["findings"])
    # an explicit --min-volume wins over the card
    result = analyze("sample", "--model", str(folder), "--min-volume", "0.02", "-o", str(tmp_path / "all"))
    everything = json.loads((tmp_path / "all" / "report.json").read_text())
    assert everything["dropped"]["min_volume_ml"] == 0.02
    assert len(everything["findings"]) > len(report["findings"])


@pytest.mark.slow
def test_analyze_explains_what_is_missing(lesion_model, tmp_path):
    result = analyze("sample", "--model", str(lesion_model), "-o", str(tmp_path / "a"))
    assert result.returncode == 2 and "--lesion-type" in result.stderr
    result = analyze("sample", "--model", str(TINY), "-o", str(tmp_path / "b"))
    assert result.returncode == 2 and "name no lesion type" in result.stderr
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "report.json").write_text("{}")
    result = analyze("sample", "--model", str(lesion_model), "--lesion-type", "kidney_tumor", "-o", str(tmp_path / "c"))
    assert result.returncode == 2 and "never overwrites" in result.stderr
    assert (tmp_path / "c" / "report.json").read_text() == "{}"


@pytest.mark.slow
def test_an_organ_mask_limits_the_network_to_its_organs_and_whole_volume_lifts_it(lesion_model, tmp_path):
    """A kidney-tumour model with the sample's organ mask runs on the kidneys + 20 mm; the findings
    (all in the kidneys) are the same as from the whole-volume run."""
    runs = {}
    for name, extra in (("roi", []), ("whole", ["--whole-volume"])):
        out = tmp_path / name
        result = analyze("sample", "--model", str(lesion_model), "--lesion-type", "kidney_tumor", "-o", str(out),
                         *extra)
        assert result.returncode == 0, result.stderr
        runs[name] = json.loads((out / "report.json").read_text())
    notes = " ".join(runs["roi"]["provenance"]["notes"])
    assert "The network ran on the kidney and 20 mm around them" in notes and "Region of interest:" in notes
    assert "Region of interest" not in " ".join(runs["whole"]["provenance"]["notes"])
    summary = [[(f["lesion_type"]["key"], f["location"]["side"], f["component"]["voxel_count"]) for f in r["findings"]]
               for r in runs.values()]
    assert summary[0] == summary[1] and summary[0]


def test_a_folder_of_scans_is_analysed_case_by_case_with_one_model_load(tmp_path, sample_paths, monkeypatch,
                                                                          capsys):
    """`pasta analyze FOLDER`: one output folder per case, one model load, a bad case reported while the
    others are written, and the organ masks matched to the cases by name."""
    import shutil

    import SimpleITK as sitk

    from PASTALib.cli import main as cli
    from PASTALib.detection import model_folder
    from PASTALib.io import sample_data

    scans, organs = tmp_path / "scans", tmp_path / "organs"
    scans.mkdir()
    organs.mkdir()
    shutil.copy(sample_data.SAMPLES["sample-lesions"].path, scans / "lesions.nii.gz")
    shutil.copy(sample_paths["sample"], scans / "healthy.nii.gz")
    sitk.WriteImage(sitk.Image(8, 8, sitk.sitkInt16), str(scans / "flat.nii.gz"))  # 2D: refused
    for case in ("lesions", "healthy"):
        shutil.copy(sample_paths["sample-organs"], organs / f"{case}.nii.gz")
    loads = []
    real = model_folder.load_detector
    monkeypatch.setattr(model_folder, "load_detector", lambda folder: loads.append(folder) or real(folder))
    out = tmp_path / "out"
    code = cli.main(["analyze", str(scans), "--organs", str(organs), "-o", str(out), "--progress", "none"])
    captured = capsys.readouterr()
    assert code == 2 and "1 of 3 case(s) failed: flat" in captured.err
    assert len(loads) == 1  # the detector was read once for the whole folder
    assert sorted(p.name for p in out.iterdir()) == ["batch.csv", "batch.json", "healthy", "lesions"]
    summary = {c["case"]: c for c in json.loads((out / "batch.json").read_text())["cases"]}
    assert summary["lesions"]["findings"] == 3 and summary["healthy"]["findings"] == 0
    assert "2D" in summary["flat"]["error"] and summary["flat"]["findings"] is None
    report = json.loads((out / "lesions" / "report.json").read_text())
    assert report["provenance"]["inputs"]["organs"].endswith("lesions.nii.gz")  # its own organ mask
    assert (out / "batch.csv").read_text().splitlines()[0] == "case,image,status,findings,error"

    # A rerun resumes: the complete cases are kept as they are, only the failed one is tried again.
    before = (out / "lesions" / "report.json").read_bytes()
    code = cli.main(["analyze", str(scans), "--organs", str(organs), "-o", str(out), "--progress", "none"])
    assert code == 2 and "lesions" in capsys.readouterr().out
    statuses = {c["case"]: c["status"] for c in json.loads((out / "batch.json").read_text())["cases"]}
    assert statuses == {"healthy": "already done", "lesions": "already done", "flat": "failed"}
    assert (out / "lesions" / "report.json").read_bytes() == before and len(loads) == 1

    # Folders that are no batch say why.
    only_masks = tmp_path / "masks"
    only_masks.mkdir()
    shutil.copy(sample_paths["sample-organs"], only_masks / "total.nii.gz")
    assert cli.main(["analyze", str(only_masks), "-o", str(tmp_path / "m"), "--progress", "none"]) == 2
    assert "only files named like masks" in capsys.readouterr().err
    (scans / "stray.dcm").write_bytes(b"not a series")
    assert cli.main(["analyze", str(scans), "-o", str(tmp_path / "x"), "--progress", "none"]) == 2
    assert "mixes DICOM files with other scans" in capsys.readouterr().err
