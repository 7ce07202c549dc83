"""The `pasta` console script, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PASTALib.io.volume_io import read_volume

from conftest import DATA

# The console script installed next to this interpreter (the README's venv), else the one on PATH.
_BESIDE = Path(sys.executable).parent / "pasta"
PASTA = str(_BESIDE) if _BESIDE.exists() else shutil.which("pasta")


def pasta(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PASTA, *args], capture_output=True, text=True, timeout=120)


def test_info_sample_json():
    result = pasta("info", "sample", "--json", "--progress", "none")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    geometry = report["geometry"]
    assert geometry["size"] == [122, 101, 112]
    assert geometry["spacing_mm"] == [3.0, 3.0, 3.0]
    assert geometry["orientation"] == "RAS"
    assert report["ct_check"]["looks_like_ct"] is True
    labels = {label["name"]: label for label in report["mask"]["labels"]}
    assert len(labels) == 61
    assert labels["liver"]["id"] == 5
    assert 1000 < labels["liver"]["volume_ml"] < 1300  # adult liver, measured on the bundled mask


def test_info_text_is_readable():
    result = pasta("info", "sample", "--progress", "none")
    assert result.returncode == 0
    for expected in ("122 x 101 x 112 voxels", "Orientation  RAS", "plausible CT in HU", "liver"):
        assert expected in result.stdout


def test_json_progress_lines_parse():
    result = pasta("info", "sample", "--progress", "json")
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and all(set(line) == {"stage", "fraction", "message"} for line in lines)
    assert lines[-1]["stage"] == "done" and lines[-1]["fraction"] == 1.0
    fractions = [line["fraction"] for line in lines if line["fraction"] is not None]
    assert fractions == sorted(fractions)


def test_analyze_progress_moves_forward_across_stages_with_an_eta(tmp_path):
    """Was: 95 -> 0 -> 100 -> 90 -> 100 % in the Slicer panel (each stage restarted the bar)."""
    result = pasta("analyze", "sample-lesions", "-o", str(tmp_path / "out"), "--progress", "json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    overall = [line["overall"] for line in lines]
    assert overall == sorted(overall) and overall[0] < 0.1 and overall[-1] == 1.0
    assert {"reading", "detection", "findings", "rendering", "writing"} <= {line["stage"] for line in lines}
    assert sum(0.0 < value < 1.0 for value in overall) >= 5  # it moves in steps, not 0 then 1
    etas = [line["eta_s"] for line in lines if line["eta_s"] is not None]
    assert etas and all(value >= 0 for value in etas) and lines[-1]["eta_s"] == 0.0


def test_analyze_says_its_work_and_learns_this_computers_speed(tmp_path):
    import os

    env = {**os.environ, "PASTA_HOME": str(tmp_path / "home")}
    first = subprocess.run([PASTA, "analyze", "sample-lesions", "-o", str(tmp_path / "a")], capture_output=True,
                           text=True, env=env)
    assert first.returncode == 0 and "measured by the first run" in first.stderr
    timings = json.loads((tmp_path / "home" / "timings.json").read_text())
    assert list(timings) == ["detector|cpu"] and len(timings["detector|cpu"]) == 1
    second = subprocess.run([PASTA, "analyze", "sample-lesions", "-o", str(tmp_path / "b")], capture_output=True,
                            text=True, env=env)
    assert second.returncode == 0 and "Work: about" in second.stderr and "measured on this computer" in second.stderr


def test_json_progress_reports_errors_on_the_same_channel(tmp_path):
    result = pasta("info", str(tmp_path / "missing.nrrd"), "--progress", "json")
    assert result.returncode == 2
    last = json.loads([line for line in result.stderr.splitlines() if line.startswith("{")][-1])
    assert last["stage"] == "error" and "not found" in last["message"]


def test_convert_dicom_to_nifti_and_resample(tmp_path):
    out = tmp_path / "ct.nii.gz"
    result = pasta("convert", str(DATA / "example_ct_dicom"), "-o", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    dicom = read_volume(DATA / "example_ct_dicom")
    converted = read_volume(out)
    assert converted.has_same_geometry(dicom, tolerance_mm=1e-4)
    np.testing.assert_array_equal(converted.array, dicom.array)
    assert "Image" not in result.stdout  # convert prints nothing on stdout

    mask_out = tmp_path / "organs_on_ct.nrrd"
    result = pasta("convert", str(DATA / "abdomen_contrast_dicom_organs.nii.gz"), "--like", str(out),
                   "--interpolation", "nearest", "-o", str(mask_out))
    assert result.returncode == 0, result.stderr
    result = pasta("info", str(out), "--mask", str(mask_out), "--json", "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert {5, 52} <= {label["id"] for label in json.loads(result.stdout)["mask"]["labels"]}


def test_convert_to_spacing(tmp_path):
    out = tmp_path / "iso.nrrd"
    result = pasta("convert", "sample", "--spacing", "1.5", "1.5", "1.5", "-o", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert read_volume(out).size == (244, 202, 224)


def test_sample_list_verifies_checksums():
    result = pasta("sample", "--json", "--progress", "none")
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert {row["name"] for row in rows} == {"sample", "sample-organs", "sample-lesions", "sample-lesions-truth"}
    assert all(row["verified"] for row in rows)


def test_lesion_sample_is_the_sample_plus_its_truth_and_shares_its_organ_mask():
    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume

    plain = read_volume(sample_data.SAMPLES["sample"].path)
    lesions = read_volume(sample_data.SAMPLES["sample-lesions"].path)
    truth = read_volume(sample_data.SAMPLES["sample-lesions-truth"].path)
    assert lesions.has_same_geometry(plain) and truth.has_same_geometry(plain)
    changed = lesions.array != plain.array
    assert changed.any() and not (changed & (truth.array == 0)).sum() > 0.5 * changed.sum()
    assert sorted(np.unique(truth.array).tolist()) == [0, 2, 10, 14]  # liver tumour, bone metastasis, kidney cyst
    assert sample_data.sample_mask_for("sample-lesions").name == "sample-organs"


@pytest.mark.parametrize("argv", [["--help"], ["info", "--help"], ["convert", "--help"], ["--version"]])
def test_help_and_version(argv):
    result = pasta(*argv)
    assert result.returncode == 0
    assert "pasta" in result.stdout


def test_every_subcommand_is_in_help_and_on_the_end_to_end_list():
    """Every registered command shows in `pasta --help`, and each is on the list of commands that an
    end-to-end test elsewhere runs (the comments say where); a new command must join the list."""
    from PASTALib.cli.main import _commands

    names = {command.name for command in _commands()}
    help_text = pasta("--help").stdout
    assert names <= set(help_text.split())
    # segment: test_inference.py; models: test_checkpoints.py; analyze: test_analyze.py;
    # features: test_features.py; fit-head: test_heads.py
    tested = {"info", "convert", "sample", "report", "segment", "models", "analyze", "synth", "synth-batch",
              "features", "fit-head", "train"}  # train: Testing/test_train.py
    assert names == tested, f"add an end-to-end test for {names - tested}"


def test_report_end_to_end(tmp_path, sample_paths, monkeypatch, capfd):
    """`pasta report` on the bundled sample with a synthetic lesion map, then the bad inputs."""
    import jsonschema

    from PASTALib.io.volume_io import write_volume

    image = read_volume(sample_paths["sample"])
    organs = read_volume(sample_paths["sample-organs"])
    labels = np.zeros(image.array.shape, np.int16)
    k, j, i = np.argwhere(organs.array == 5).mean(axis=0).round().astype(int)  # liver centre
    labels[k - 3:k + 3, j - 4:j + 4, i - 4:i + 4] = 2  # liver tumour
    k, j, i = np.argwhere(organs.array == 2).mean(axis=0).round().astype(int)  # right kidney
    labels[k - 2:k + 2, j - 2:j + 2, i - 2:i + 2] = 14  # kidney cyst
    seg = write_volume(image.with_array(labels), tmp_path / "lesions.nii.gz")
    out = tmp_path / "out"
    result = pasta("report", "sample", str(seg), "-o", str(out), "--progress", "none")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    schema = json.loads((Path(__file__).resolve().parents[1] / "PASTA" / "PASTALib" / "Resources"
                         / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    jsonschema.validate(json.loads((out / "findings.json").read_text()), schema)
    assert [(f["lesion_type"]["key"], f["location"]["organ"], f["location"]["side"])
            for f in report["findings"]] == [("liver_tumor", "liver", None), ("kidney_cyst", "kidney", "right")]
    assert report["provenance"]["inputs"]["organs"] == "sample-organs"  # the sample's own organ mask
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert sorted(p.name for p in (out / "key_images").iterdir()) == ["F1.png", "F2.png"]
    assert "key_images/F1.png" in (out / "report.md").read_text()

    # Bad input, run in-process (the console script's start-up is already covered above).
    from PASTALib.cli import main as cli
    from PASTALib import progress

    monkeypatch.setattr(progress.CancelToken, "install_signal_handlers", lambda self: None)
    import logging

    logger = logging.getLogger("PASTALib")  # main() configures it; restore it afterwards
    for attribute in ("handlers", "propagate", "level"):
        monkeypatch.setattr(logger, attribute, list(logger.handlers) if attribute == "handlers"
                            else getattr(logger, attribute))

    def report_exit(*args):
        return cli.main(["report", *args, "--progress", "none"]), capfd.readouterr().err

    code, err = report_exit("sample", str(seg), "-o", str(out))
    assert code == 2 and "--overwrite" in err
    code, err = report_exit("sample", str(seg), "-o", str(tmp_path / "d"), "--dicom")
    assert code == 2 and "DICOM export needs a DICOM source" in err
    bad = labels.copy()
    bad[0, 0, 0] = 42
    unknown = write_volume(image.with_array(bad), tmp_path / "unknown.nii.gz")
    code, err = report_exit("sample", str(unknown), "-o", str(tmp_path / "u"))
    assert code == 2 and "values 42 that are not PASTA lesion-type ids" in err
    code, err = report_exit(str(DATA / "example_ct_dicom"), str(seg), "-o", str(tmp_path / "g"))
    assert code == 2 and "geometry differs" in err and "size" in err
    import SimpleITK as sitk

    from PASTALib.inference.probabilities import write_probabilities

    channels = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros(image.array.shape, np.float32))] * 3)
    sitk.WriteImage(channels, str(tmp_path / "classes.nii.gz"))  # no geometry: not on the image grid
    code, err = report_exit("sample", str(seg), "--probabilities", str(tmp_path / "classes.nii.gz"),
                            "-o", str(tmp_path / "p"))
    assert code == 2 and "probability map's geometry differs" in err
    # The 4D class probabilities `pasta segment --probabilities` writes: lesion = 1 - background.
    classes = np.zeros((3, *image.array.shape), np.float32)
    classes[0] = np.where(labels > 0, 0.2, 1.0)
    classes[2] = 1.0 - classes[0]
    write_probabilities(classes, image, tmp_path / "segment_probabilities.nii.gz")
    code, err = report_exit("sample", str(seg), "--probabilities", str(tmp_path / "segment_probabilities.nii.gz"),
                            "-o", str(tmp_path / "with_confidence"))
    assert code == 0, err
    confidences = [f["confidence"] for f in json.loads((tmp_path / "with_confidence" / "report.json").read_text())
                   ["findings"]]
    assert confidences and all(abs(c["mean"] - 0.8) < 0.01 for c in confidences)


@pytest.mark.slow
def test_report_dicom_end_to_end(tmp_path):
    """With a DICOM series as IMAGE, --dicom adds seg.dcm and sr.dcm referencing it."""
    import pydicom
    from pydicom.uid import generate_uid

    from PASTALib.io.volume_io import write_volume

    series = tmp_path / "series"
    series.mkdir()
    study_uid, series_uid = generate_uid(), generate_uid()
    for path in sorted((DATA / "example_ct_dicom").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid  # blank in the sample
        ds.save_as(series / path.name)
    image = read_volume(series)
    labels = np.zeros(image.array.shape, np.uint8)
    labels[8:12, 250:270, 150:175] = 1
    seg = write_volume(image.with_array(labels), tmp_path / "lesion.nrrd")
    out = tmp_path / "out"
    result = pasta("report", str(series), str(seg), "--lesion-type", "kidney_tumor", "-o", str(out),
                   "--dicom", "--progress", "none")
    assert result.returncode == 0, result.stderr
    seg_ds, sr_ds = pydicom.dcmread(out / "seg.dcm"), pydicom.dcmread(out / "sr.dcm")
    assert seg_ds.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert seg_ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Neoplasm"
    assert sr_ds.StudyInstanceUID == study_uid
    report = json.loads((out / "report.json").read_text())
    assert report["source"]["series_instance_uid"] == series_uid
