"""The `pasta` console script, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PASTALib.volume_io import read_volume

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
    assert {row["name"] for row in rows} == {"sample", "sample-organs"}
    assert all(row["verified"] for row in rows)


@pytest.mark.parametrize("argv", [["--help"], ["info", "--help"], ["convert", "--help"], ["--version"]])
def test_help_and_version(argv):
    result = pasta(*argv)
    assert result.returncode == 0
    assert "pasta" in result.stdout


def test_every_listed_subcommand_works_end_to_end():
    """No subcommand may be a placeholder: each must run, not print 'not implemented'."""
    from PASTALib.cli import _commands

    names = {command.name for command in _commands()}
    help_text = pasta("--help").stdout
    assert names <= set(help_text.split())
    tested = {"info", "convert", "sample", "segment", "models"}  # the last two: test_inference, test_checkpoints
    assert names == tested, f"add an end-to-end test for {names - tested}"
