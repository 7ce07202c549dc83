"""`pasta synth` and `pasta synth-batch` run as a user runs them: case folders, errors, datasets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PASTALib.io import sample_data
from PASTALib.io.volume_io import read_volume
from conftest import file_sha256 as sha
from synth_hosts import DATA, write_host_folders

_BESIDE = Path(sys.executable).parent / "pasta"
PASTA = str(_BESIDE) if _BESIDE.exists() else shutil.which("pasta")
SCHEMA = Path(__file__).resolve().parents[1] / "PASTA" / "PASTALib" / "Resources" / "report.schema.json"
CASE_FILES = {"img.nii.gz", "label.nii.gz", "total.nii.gz", "type.json", "report.json"}


def pasta(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PASTA, *args, "--progress", "none"], capture_output=True, text=True, timeout=timeout)


def test_synth_writes_a_pasta_gen_case_and_leaves_inputs_alone(tmp_path):
    import jsonschema

    image_path = sample_data.SAMPLES["sample"].path
    organs_path = sample_data.SAMPLES["sample-organs"].path
    before = sha(image_path), sha(organs_path)
    case = tmp_path / "case"
    result = pasta("synth", str(image_path), "--organs", str(organs_path), "--lesion", "kidney_cyst",
                   "--size-mm", "20", "--attr", "margin=well-defined", "--seed", "3", "-o", str(case))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in case.iterdir()} == CASE_FILES
    assert (sha(image_path), sha(organs_path)) == before
    host, img = read_volume(image_path), read_volume(case / "img.nii.gz")
    label, total = read_volume(case / "label.nii.gz"), read_volume(case / "total.nii.gz")
    for volume in (img, label, total):
        assert volume.has_same_geometry(host, 1e-4)
    assert set(np.unique(label.array).tolist()) == {0, 1, 2}
    assert np.array_equal(total.array, read_volume(organs_path).array)
    organ = int(np.bincount(total.array[label.array == 2].astype(int)).argmax())
    assert total.array[label.array == 1].min() == organ and sample_data.load_label_names(
        sample_data.SAMPLE_DIR / "totalsegmentator_v2_classes.json")[organ].startswith("kidney_")
    # only the lesion's neighbourhood changed
    changed = img.array != host.array
    assert changed.any() and changed.sum() < 10 * (label.array == 2).sum()
    assert -10 <= img.array[label.array == 2].mean() <= 25
    type_json = json.loads((case / "type.json").read_text())
    assert list(type_json) == [str(organ)]
    phrase, _, attributes, boxes = type_json[str(organ)]
    assert attributes["surface characteristics"] == "well-defined margin,"
    assert attributes["enhancement status"] == "non-contrast CT,"
    assert len(boxes[0]) == 1 and len(boxes[0][0]) == 3
    report = json.loads((case / "report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    assert report["findings"][0]["lesion_type"]["key"] == "kidney_cyst"
    synthesis = report["provenance"]["parameters"]["synthesis"]
    assert synthesis["request"]["seed"] == 3 and synthesis["lesions"][0]["attributes_requested"]["margin"] == "well-defined"
    # refuses to overwrite
    again = pasta("synth", "sample", "--lesion", "kidney_cyst", "-o", str(case))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_synth_crop_1mm_and_lesion_list(tmp_path):
    case = tmp_path / "crop"
    result = pasta("synth", "sample", "--lesion", "liver_tumor", "--size-mm", "30", "--crop-1mm", "64",
                   "--seed", "1", "-o", str(case))
    assert result.returncode == 0, result.stderr
    img, label = read_volume(case / "img.nii.gz"), read_volume(case / "label.nii.gz")
    assert img.size == (64, 64, 64) and img.spacing == (1.0, 1.0, 1.0) and label.has_same_geometry(img)
    assert (label.array == 2).sum() > 1000  # a 30 mm lesion at 1 mm
    centre = json.loads((case / "type.json").read_text())["5"][3][0][0]
    assert all(20 <= c <= 44 for c in centre)
    listing = pasta("synth", "--lesion", "list")
    assert listing.returncode == 0
    assert all(key in listing.stdout for key in ("lung_tumor", "kidney_stone", "wall-thickening", "necrotic-core"))


def test_the_lesion_list_gives_each_type_its_drawn_hu_and_whether_a_published_density_backs_it():
    """A reader choosing a type sees what HU it is drawn at and whether that rests on a published series."""
    from PASTASynthLib.catalog import DENSITY_REFERENCES, SPECS, describe, specs

    for spec in specs():
        block = describe(spec)
        hu_line = next(line for line in block.splitlines() if line.strip().startswith("HU "))
        assert all(f"{density}:" in hu_line for density in spec.appearance), hu_line
        source = next(line for line in block.splitlines() if line.strip().startswith("published HU"))
        for reference in DENSITY_REFERENCES.get(spec.key, ()):
            assert reference.source in source
        if spec.key not in DENSITY_REFERENCES:
            assert "Bosniak" in source if spec.kind == "cyst" else "none found" in source
    bone = describe(SPECS["bone_metastasis"])
    assert "keeping 20%-70% of the organ's density" in bone and "357 to 531" in bone


@pytest.mark.parametrize("args, words", [
    (["--lesion", "esophageal_cancer"], "no esophagus"),
    (["--lesion", "liver_tumor", "--center-ijk", "0,0,0"], "not in the host organ"),
    (["--lesion", "pancreas_cyst", "--size-mm", "55"], "cannot fit"),
    (["--lesion", "brain_tumor"], "Unknown lesion type"),
    (["--lesion", "liver_cyst", "--attr", "density=sparkly"], "Unknown value"),
    (["--lesion", "liver_tumor", "--size-mm", "20,30"], "--size-mm"),
    (["--lesion", "liver_tumor", "--center-ras", "nan,nan,nan"], "not a finite number"),
    (["--lesion", "liver_tumor", "--crop-1mm", "-5"], "is too small"),
    (["--lesion", "liver_tumor", "--crop-1mm", "0"], "is too small"),
    (["--lesion", "liver_tumor", "--organs", "sample"], "looks like a CT image, not a segmentation"),
])
def test_bad_synth_requests_exit_2_naming_the_problem(tmp_path, args, words):
    result = pasta("synth", "sample", *args, "-o", str(tmp_path / "bad"))
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert not (tmp_path / "bad").exists()


def _hosts(tmp_path: Path) -> Path:
    return write_host_folders(tmp_path / "hosts")


@pytest.mark.slow
def test_synth_batch_builds_a_resumable_dataset_with_a_manifest(tmp_path):
    import jsonschema

    hosts, out = _hosts(tmp_path), tmp_path / "dataset"
    result = pasta("synth-batch", "--hosts", str(hosts), "--per-type", "1", "-o", str(out), "--workers", "2",
                   timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    # the upper abdomen has no bladder and neither host a real esophagus: those pairs are skipped
    skipped = {(s["host"], s["type"]) for s in summary["skipped"]}
    assert skipped == {("upper", "bladder_cancer"), ("upper", "esophageal_cancer")}
    assert summary["failed"] == [] and summary["made"] == summary["planned"] == 28
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 28 and len({r["case"] for r in records}) == 28
    assert {r["type"] for r in records} == set(json.loads(result.stdout)["types"])
    schema = json.loads(SCHEMA.read_text())
    for record in records:
        case = out / record["case"]
        assert {p.name for p in case.iterdir()} == CASE_FILES
        assert record["files"]["img.nii.gz"] == sha(case / "img.nii.gz")
        assert record["seed"] and record["lesions"][0]["attributes"]
    jsonschema.validate(json.loads((out / records[0]["case"] / "report.json").read_text()), schema)
    assert (out / "Kidney" / "Stone" / "upper_0000").is_dir()
    manifest = (out / "manifest.jsonl").read_text()
    # a re-run does no work and leaves the manifest as it was
    again = pasta("synth-batch", "--hosts", str(hosts), "--per-type", "1", "-o", str(out))
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["made"] == 0 and summary["already_done"] == 28
    assert (out / "manifest.jsonl").read_text() == manifest
    # a lost case is redone, with the same seed and therefore the same image
    lost = records[0]
    shutil.rmtree(out / lost["case"])
    redo = pasta("synth-batch", "--hosts", str(hosts), "--per-type", "1", "-o", str(out), "--types", lost["type"])
    assert json.loads(redo.stdout)["made"] == 1
    assert sha(out / lost["case"] / "img.nii.gz") == lost["files"]["img.nii.gz"]


def test_synth_batch_rejects_bad_hosts_and_strips_identifiers(tmp_path):
    (tmp_path / "hosts" / "empty").mkdir(parents=True)
    result = pasta("synth-batch", "--hosts", str(tmp_path / "hosts"), "--per-type", "1", "-o", str(tmp_path / "d"))
    assert result.returncode == 2 and "exactly one image and one organ mask" in result.stderr
    from PASTALib.io.volume import Volume
    from PASTASynthLib.host import strip_identifiers

    image = Volume(np.zeros((2, 2, 2)), metadata={"StudyInstanceUID": "1.2.3", "PatientName": "Doe^J",
                                                   "Modality": "CT", "ContrastBolusAgent": "APPLIED"})
    assert strip_identifiers(image).metadata == {"Modality": "CT", "ContrastBolusAgent": "APPLIED"}


def test_synth_batch_on_a_dask_scheduler(tmp_path):
    """--scheduler ADDRESS: the same cases, run by Dask workers (an in-process local cluster here)."""
    distributed = pytest.importorskip("distributed")
    from PASTASynthLib.batch import run_dataset

    hosts = tmp_path / "hosts"
    (hosts / "upper").mkdir(parents=True)
    shutil.copy(DATA / "upper_abdomen_native_3mm_ct.nii.gz", hosts / "upper" / "ct.nii.gz")
    shutil.copy(DATA / "upper_abdomen_native_3mm_organs.nii.gz", hosts / "upper" / "total.nii.gz")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        summary = run_dataset(hosts, tmp_path / "dask", 1, ["liver_cyst", "kidney_stone"],
                              scheduler=cluster.scheduler_address)
    local = run_dataset(hosts, tmp_path / "local", 1, ["liver_cyst", "kidney_stone"])
    assert summary["made"] == local["made"] == 2 and not summary["failed"]
    for case in ("Liver/Cyst/upper_0000", "Kidney/Stone/upper_0000"):
        assert sha(tmp_path / "dask" / case / "img.nii.gz") == sha(tmp_path / "local" / case / "img.nii.gz")
