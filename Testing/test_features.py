"""`pasta features`: PASTA encoder features per finding and per organ, on synthetic liver tumours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PASTALib.model.checkpoints import load_model
from PASTALib.heads.features import CropSettings, FeatureExtractor, finding_items, make_crop
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume, write_volume

from feature_cohort import TEST_CROPS, TINY, cohort_features, feature_rows

PASTA = str(Path(sys.executable).parent / "pasta")


def pasta(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PASTA, *args, "--progress", "none"], capture_output=True, text=True, timeout=300)


def run_in_process(capfd, *argv: str) -> tuple[int, str]:
    from PASTALib.cli import main as cli

    code = cli.main([*argv, "--progress", "none"])
    return code, capfd.readouterr().err


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return cohort_features(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY)


def test_one_case_gives_a_row_per_finding_and_organ(cohort, tiny, tmp_path):
    cases, _ = cohort
    case = cases[1]
    out = tmp_path / "one.csv"
    result = pasta("features", str(case.image), "--seg", str(case.seg), "--organs", "sample-organs",
                   "--organ-names", "liver,kidney_left", "--model", str(TINY), "-o", str(out), *TEST_CROPS,
                   "--case-id", "p1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    rows = feature_rows(out)
    assert [(r["id"], r["kind"], r["name"]) for r in rows] == [
        ("p1/F1", "finding", "liver_tumor"), ("p1/F2", "finding", "liver_tumor"),
        ("p1/liver", "organ", "liver"), ("p1/kidney_left", "organ", "kidney_left")]
    # the feature dimension is the encoder's width (the full PASTA model: 1024)
    width = tiny.config.stage_widths[tiny.config.num_pool - 1]
    assert [c for c in rows[0] if c.startswith("f") and c[1:].isdigit()] == [f"f{c}" for c in range(width)]
    assert width == 32
    seg = read_volume(case.seg).array > 0
    assert sum(int(r["voxel_count"]) for r in rows[:2]) == int(seg.sum())
    assert {r["model_sha256"] for r in rows} == {tiny.sha256["model.safetensors"]}
    values = np.array([[float(r[f"f{c}"]) for c in range(width)] for r in rows])
    assert np.all(np.isfinite(values)) and values.std(axis=0).max() > 0
    assert not np.allclose(values[0], values[2])  # a tumour crop is not a liver crop


def test_cohort_manifest_featurises_every_case(cohort):
    cases, csv_path = cohort
    rows = feature_rows(csv_path)
    assert {r["case"] for r in rows} == {c.case for c in cases}
    assert all(r["id"].startswith(r["case"] + "/F") and r["kind"] == "finding" for r in rows)
    assert len({r["id"] for r in rows}) == len(rows) >= 2 * len(cases) - 2


def test_same_input_same_features_whatever_the_voxel_order(cohort, tiny):
    cases, _ = cohort
    image, seg = read_volume(cases[2].image), read_volume(cases[2].seg)
    extractor = FeatureExtractor(tiny, "cpu", CropSettings(32, 32))
    items = finding_items("c", image, seg)
    first, again = extractor.features(image, items), extractor.features(image, items)
    np.testing.assert_array_equal(first, again)
    # The same scan stored with its i axis reversed (another file orientation): same world, same features.
    flipped_direction = image.direction.copy()
    flipped_direction[:, 0] *= -1
    last = image.index_to_lps_points(np.array([image.size[0] - 1, 0, 0]))
    flip = Volume(image.array[:, :, ::-1].copy(), image.spacing, tuple(last), flipped_direction)
    flip_seg = Volume(seg.array[:, :, ::-1].copy(), seg.spacing, tuple(last), flipped_direction)
    flipped = extractor.features(flip, finding_items("c", flip, flip_seg))
    np.testing.assert_allclose(flipped, first, rtol=1e-4, atol=1e-5)


def test_crop_is_the_1mm_resample_of_the_whole_scan_cut_out(cohort):
    """Resampling only the box gives the voxels a whole-scan 1 mm resample would (section 3.3)."""
    from PASTALib.heads.features import LAS_DIRECTION, PAD_HU, crop_grid
    from PASTALib.model.preprocessing import Normalization
    from PASTALib.io.resample import Interpolation, resample_to_reference

    cases, _ = cohort
    image, seg = read_volume(cases[3].image), read_volume(cases[3].seg)
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(seg.array))
    whole = tuple(slice(0, n) for n in image.array.shape)
    grid_all, grid_crop = crop_grid(image, whole, 0, 1.0), crop_grid(image, box, 2, 1.0)
    assert np.allclose(grid_all.direction, LAS_DIRECTION)
    offset = np.round(grid_crop.lps_to_index_points(np.asarray(grid_all.origin)) * -1).astype(int)  # i, j, k
    full = resample_to_reference(image, grid_all, Interpolation.LINEAR, PAD_HU).array
    shape = grid_crop.array.shape
    cut = full[offset[2]:offset[2] + shape[0], offset[1]:offset[1] + shape[1], offset[0]:offset[0] + shape[2]]
    part = resample_to_reference(image, grid_crop, Interpolation.LINEAR, PAD_HU).array
    np.testing.assert_allclose(part, cut, atol=1e-3)
    size = max(shape) + 8 - (max(shape) % 8)
    crop = make_crop(image, box, seg.array[box] > 0, size, 2)
    assert crop.shape == (size,) * 3 and crop.min() >= 0.0 and crop.max() <= 1.0
    expected = np.pad(Normalization("slf").apply(cut), [((size - n) // 2, size - n - (size - n) // 2) for n in shape])
    np.testing.assert_allclose(crop, expected, atol=1e-5)  # padded (value 0 = -1000 HU), no resize needed


def test_cli_defaults_are_pastas_crops():
    from PASTALib.cli.main import build_parser

    args = build_parser().parse_args(["features", "x", "--seg", "s", "--model", "m", "-o", "o"])
    assert (args.lesion_crop, args.organ_crop, args.lesion_margin, args.organ_margin) == (96, 128, 2, 32)
    assert CropSettings() == CropSettings(96, 128, 2, 32, 1.0)


def test_bad_feature_requests_exit_2_naming_the_problem(cohort, tmp_path, capfd):
    cases, _ = cohort
    image, seg = str(cases[0].image), str(cases[0].seg)
    model = ["--model", str(TINY), "--device", "cpu"]
    code, err = run_in_process(capfd, "features", image, *model, "-o", str(tmp_path / "a.csv"))
    assert code == 2 and "Nothing to featurise" in err
    code, err = run_in_process(capfd, "features", image, "--seg", seg, *model, "-o", str(tmp_path / "b.csv"),
                               "--lesion-crop", "36")
    assert code == 2 and "not a multiple of 8" in err
    code, err = run_in_process(capfd, "features", image, "--organs", "sample-organs", "--organ-names", "spleen,heart",
                               *model, "-o", str(tmp_path / "c.csv"), *TEST_CROPS)
    assert code == 2 and "'heart'" in err and "not in the organ mask" in err
    manifest = tmp_path / "m.csv"
    manifest.write_text("case,picture\nx,ct.nii\n")
    code, err = run_in_process(capfd, "features", "--manifest", str(manifest), *model, "-o", str(tmp_path / "d.csv"))
    assert code == 2 and "needs a header with 'image'" in err
    bad = write_volume(read_volume(seg).with_array(read_volume(seg).array * 20), tmp_path / "bad_seg.nii")
    code, err = run_in_process(capfd, "features", image, "--seg", str(bad), *model, "-o", str(tmp_path / "e.csv"))
    assert code == 2 and "not PASTA lesion-type ids" in err
    code, err = run_in_process(capfd, "features", image, "--findings", str(tmp_path), *model,
                               "-o", str(tmp_path / "f.csv"))
    assert code == 2 and "not a `pasta analyze` output folder" in err
    code, err = run_in_process(capfd, "features", image, "--seg", seg, "--organ-names", "liver", *model,
                               "-o", str(tmp_path / "g.csv"))
    assert code == 2 and "needs an organ mask" in err
    assert not any((tmp_path / f"{name}.csv").exists() for name in "abcdefg")


def test_building_the_parser_imports_no_heavy_library():
    """`pasta info` stays fast: features and fit-head import torch, scikit-learn and lifelines only when run."""
    code = ("import sys\nfrom PASTALib.cli.main import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'lifelines', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
