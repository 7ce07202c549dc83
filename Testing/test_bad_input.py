"""Every kind of bad input ends with exit code 2 and a message that names the problem."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from PASTALib.cli import main as cli
from PASTALib.errors import PastaCancelled, PastaInputError
from PASTALib.progress import CancelToken, JsonProgress
from PASTALib.io.sitk_bridge import to_sitk
from PASTALib.io.input_checks import check_grid
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume, write_volume

from conftest import ct_like_array


def run_pasta(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ct(shape=(10, 12, 14), **geometry) -> Volume:
    return Volume(ct_like_array(shape), **geometry)


def write_sitk(image: sitk.Image, path) -> str:
    sitk.WriteImage(image, str(path))
    return str(path)


def write_header_only_mha(path, spacing="0 1 1") -> str:
    header = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
              "TransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = 0 0 0\n"
              f"ElementSpacing = {spacing}\nDimSize = 4 4 4\nElementType = MET_SHORT\n"
              "ElementDataFile = LOCAL\n")
    path.write_bytes(header.encode() + (np.arange(64, dtype=np.int16) * 40 - 1000).tobytes())
    return str(path)


def write_bytes(path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


def make_folder(path) -> str:
    path.mkdir()
    return str(path)


BAD_IMAGES = {
    "2d": (lambda p: write_sitk(sitk.GetImageFromArray(ct_like_array((1, 20, 20))[0]), p / "a.nii.gz"),
           "2D image"),
    "single_slice": (lambda p: str(write_volume(Volume(ct_like_array((1, 20, 20))), p / "a.nrrd")),
                     "single slice"),
    "vector": (lambda p: write_sitk(sitk.GetImageFromArray(np.zeros((5, 6, 7, 3), np.uint8), isVector=True),
                                    p / "rgb.nrrd"), "values per voxel"),
    "constant": (lambda p: str(write_volume(Volume(np.full((5, 6, 7), 40, np.int16)), p / "c.nii.gz")),
                 "constant"),
    "all_nan": (lambda p: str(write_volume(Volume(np.full((5, 6, 7), np.nan, np.float32)), p / "n.nrrd")),
                "all voxels are not numbers"),
    "some_nan": (lambda p: str(write_volume(ct().with_array(np.where(ct_like_array((10, 12, 14)) > 0, np.nan,
                                                                      ct_like_array((10, 12, 14))).astype(np.float32)),
                                            p / "n.nii.gz")), "NaN"),
    "huge_spacing": (lambda p: str(write_volume(ct(spacing=(1.0, 1.0, 25.0)), p / "s.nrrd")),
                     "more than 20 mm"),
    "zero_spacing": (lambda p: write_header_only_mha(p / "z.mha"), "must be > 0 mm"),
    "garbage_nifti": (lambda p: write_bytes(p / "g.nii.gz", b"\x1f\x8bnot really gzip"), "Cannot read"),
    "text_as_nrrd": (lambda p: write_bytes(p / "t.nrrd", b"hello"), "Cannot read"),
    "missing": (lambda p: str(p / "nope.nii.gz"), "not found"),
    "zero_bytes": (lambda p: write_bytes(p / "e.nii.gz", b""), "empty (0 bytes)"),
    "zero_size_grid": (lambda p: write_bytes(p / "e.nrrd", b"NRRD0004\ntype: short\ndimension: 3\n"
                                             b"sizes: 0 4 4\nencoding: raw\nendian: little\n\n"),
                       "size is zero"),
    "empty_folder": (lambda p: make_folder(p / "empty"), "No DICOM series"),
    "mr_like": (lambda p: str(write_volume(Volume(np.clip(ct_like_array((10, 12, 14)) + 1000, 0, None) // 3,
                                                  spacing=(16.0, 16.0, 16.0)), p / "mr.nii.gz")),
                "do not look like CT"),
    "normalised": (lambda p: str(write_volume(Volume(((ct_like_array((10, 12, 14)) + 1000) / 2000.0)
                                                     .astype(np.float32)), p / "z.nii.gz")),
                   "span only"),
    "missing_intercept": (lambda p: str(write_volume(Volume(np.clip(ct_like_array((10, 12, 14)) + 1024, 0, None)),
                                                     p / "raw.nrrd")),
                          "subtract 1024"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_exits_2_naming_the_problem(case, tmp_path, capsys):
    make, expected = BAD_IMAGES[case]
    path = make(tmp_path)
    code, out, err = run_pasta(capsys, "info", path, "--progress", "none")
    assert code == 2, err
    assert expected in err
    assert "error:" in err and out == ""


def test_non_ct_is_reported_with_force(tmp_path, capsys):
    path = BAD_IMAGES["mr_like"][0](tmp_path)
    code, out, _ = run_pasta(capsys, "info", path, "--force", "--progress", "none", "--json")
    assert code == 0
    check = json.loads(out)["ct_check"]
    assert check["looks_like_ct"] is False and check["problems"]


def test_4d_uses_first_frame_with_a_warning(tmp_path, capsys):
    frames = [to_sitk(ct()), to_sitk(ct().with_array(ct_like_array((10, 12, 14), seed=5)))]
    path = write_sitk(sitk.JoinSeries(frames), tmp_path / "4d.nii.gz")
    code, out, err = run_pasta(capsys, "info", path, "--json", "--progress", "none")
    assert code == 0
    assert "4D with 2 frames; using the first frame" in err
    assert json.loads(out)["geometry"]["size"] == [14, 12, 10]
    np.testing.assert_array_equal(read_volume(path).array, ct().array)


def test_empty_array_is_rejected():
    with pytest.raises(PastaInputError, match="empty"):
        check_grid(Volume(np.zeros((0, 5, 5), np.int16)))


def test_mask_with_other_geometry_exits_2_naming_the_difference(tmp_path, capsys, sample_paths):
    mask = read_volume(sample_paths["sample-organs"])
    shifted = Volume(mask.array, mask.spacing, np.add(mask.origin, (0.0, 6.0, 0.0)), mask.direction)
    path = write_volume(shifted, tmp_path / "shifted.nii.gz")
    code, _, err = run_pasta(capsys, "info", "sample", "--mask", str(path), "--progress", "none")
    assert code == 2
    assert "geometry differs" in err and "origin" in err
    cropped = write_volume(Volume(mask.array[:, :, :-1], mask.spacing, mask.origin, mask.direction),
                           tmp_path / "cropped.nrrd")
    code, _, err = run_pasta(capsys, "info", "sample", "--mask", str(cropped), "--progress", "none")
    assert code == 2 and "size (121, 101, 112)" in err


def test_convert_never_overwrites_without_asking(tmp_path, capsys):
    target = tmp_path / "out.nrrd"
    target.write_bytes(b"precious")
    code, _, err = run_pasta(capsys, "convert", "sample", "-o", str(target), "--progress", "none")
    assert code == 2 and "already exists" in err
    assert target.read_bytes() == b"precious"


def test_internal_error_exits_1(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr("PASTALib.cli.info.intensity_stats", broken)
    code, _, err = run_pasta(capsys, "info", "sample", "--progress", "none")
    assert code == 1
    assert "internal error" in err and "simulated bug" in err


def test_cancellation_exits_130_and_says_so_in_json(monkeypatch, capsys):
    def cancelled(*args, **kwargs):
        raise PastaCancelled()

    monkeypatch.setattr("PASTALib.cli.info.intensity_stats", cancelled)
    code, _, err = run_pasta(capsys, "info", "sample", "--progress", "json")
    assert code == 130
    last = json.loads(err.strip().splitlines()[-2])
    assert last["stage"] == "cancelled"


def test_cancel_token_stops_work_at_the_next_report():
    token = CancelToken()
    lines = []

    class Sink:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    progress = JsonProgress(Sink(), token)
    progress.report("working", 0.1, "first")
    token.cancel()
    with pytest.raises(PastaCancelled):
        progress.report("working", 0.2, "second")
    assert len(lines) == 1


def test_bad_arguments_exit_2():
    result = subprocess.run([sys.executable, "-m", "PASTALib", "info"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "required: image" in result.stderr
