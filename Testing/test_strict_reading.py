"""Reading is strict: a header that disagrees with its file is an error before any voxel is read.

Each case here was read wrongly before (zero-filled, mirrored, moved or gigabytes allocated) and
exited 0 or failed late; see issue 20. Valid files of every format still read exactly.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from PASTALib.cli import main as cli
from PASTALib.errors import PastaInputError
from PASTALib.io import file_checks
from PASTALib.io.volume_io import read_volume

from conftest import ct_like_array

SHAPE = (12, 14, 16)  # k, j, i


def ct_image(dtype=np.int16) -> sitk.Image:
    image = sitk.GetImageFromArray(ct_like_array(SHAPE).astype(dtype))
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-10.0, 20.0, 30.0))
    return image


def written(tmp_path, name: str, dtype=np.int16, compress: bool = False):
    path = tmp_path / name
    sitk.WriteImage(ct_image(dtype), str(path), useCompression=compress)
    return path


def cut(path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def cut_inside_gzip(path, keep: float):
    """A complete gzip stream whose *content* (the NIfTI) is cut: the gzip layer is intact."""
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content[: int(len(content) * keep)]))
    return path


def patched_pixdim(path, axis: int, value: float):
    header = bytearray(path.read_bytes())
    struct.pack_into("<f", header, 76 + 4 * axis, value)
    path.write_bytes(bytes(header))
    return path


def nrrd_with(tmp_path, name: str, directions: bytes, sizes: bytes = b"16 14 12", payload: bytes | None = None):
    source = written(tmp_path, "source.nrrd")
    header, body = source.read_bytes().split(b"\n\n", 1)
    lines = [line for line in header.split(b"\n") if not line.startswith((b"space directions", b"sizes"))]
    lines += [b"sizes: " + sizes, b"space directions: " + directions]
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n\n" + (body if payload is None else payload))
    return path


TRUNCATED = {
    "nifti_int16": lambda p: cut(written(p, "a.nii"), 0.33),
    "nifti_gz_float64": lambda p: cut_inside_gzip(written(p, "a.nii.gz", np.float64, True), 0.33),
    "nifti_gz_int32": lambda p: cut_inside_gzip(written(p, "a.nii.gz", np.int32, True), 0.5),
    "nifti_gz_stream_cut": lambda p: cut(written(p, "a.nii.gz", compress=True), 0.5),
    "nrrd_raw": lambda p: cut(written(p, "a.nrrd"), 0.5),
    "nrrd_gzip": lambda p: cut(written(p, "a.nrrd", compress=True), 0.6),
    "mha_raw": lambda p: cut(written(p, "a.mha"), 0.5),
    "mha_zlib": lambda p: cut(written(p, "a.mha", compress=True), 0.6),
}


@pytest.mark.parametrize("case", sorted(TRUNCATED))
def test_truncated_file_is_refused_not_zero_filled(case, tmp_path):
    path = TRUNCATED[case](tmp_path)
    with pytest.raises(PastaInputError, match="is truncated") as error:
        read_volume(path)
    assert "--force" not in str(error.value)  # not a CT-likeness question: the data is missing


def test_truncated_nifti_exits_2_from_the_cli(tmp_path, capsys):
    path = cut(written(tmp_path, "scan.nii"), 0.4)
    code = cli.main(["info", str(path), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "truncated" in err and "copy or export the scan again" in err


@pytest.mark.parametrize("name, make", [
    ("nifti", lambda p: _huge_nifti(p / "huge.nii")),
    ("nifti_gz", lambda p: _huge_nifti(p / "huge.nii.gz")),
    ("nrrd", lambda p: nrrd_with(p, "huge.nrrd", b"(0.8,0,0) (0,0.9,0) (0,0,2.5)", b"1500 1500 1000", b"\0" * 1000)),
])
def test_header_promising_gigabytes_fails_before_reading_a_voxel(name, make, tmp_path, monkeypatch):
    path = make(tmp_path)

    def no_pixel_read(*args, **kwargs):
        raise AssertionError("the pixel reader was reached")

    monkeypatch.setattr(sitk, "ReadImage", no_pixel_read)
    with pytest.raises(PastaInputError, match="4,500,000,000 bytes"):
        read_volume(path)


def _huge_nifti(path):
    header = bytearray(written(path.parent, "small.nii").read_bytes()[:352 + 1000])
    struct.pack_into("<hhhh", header, 40, 3, 1500, 1500, 1000)
    data = bytes(header)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("value", [0.0, -0.8, float("nan")])
def test_nifti_spacing_must_be_positive_as_stored(value, tmp_path):
    """ITK reads 0 as 1 mm and -0.8 as a mirrored axis; both are refused as they are stored."""
    path = patched_pixdim(written(tmp_path, "a.nii"), 1, value)
    with pytest.raises(PastaInputError, match=r"must be > 0 mm") as error:
        read_volume(path)
    assert "pixdim" in str(error.value)


def test_nrrd_zero_direction_vector_is_a_spacing_error(tmp_path):
    path = nrrd_with(tmp_path, "z.nrrd", b"(0,0,0) (0,0.9,0) (0,0,2.5)")
    with pytest.raises(PastaInputError, match="must be > 0 mm"):
        read_volume(path)


@pytest.mark.parametrize("directions, words", [
    (b"(0.8,0,0) (0.3,0.9,0) (0,0,2.5)", "not orthonormal"),
    (b"(0.8,0,0) (0.9,0,0) (0,0,2.5)", "degenerate"),
])
def test_nrrd_direction_must_be_orthonormal(directions, words, tmp_path):
    path = nrrd_with(tmp_path, "d.nrrd", directions)
    with pytest.raises(PastaInputError, match=words) as error:
        read_volume(path)
    assert f"tolerance {file_checks.DIRECTION_TOLERANCE:g}" in str(error.value)


def test_metaimage_sheared_transform_is_refused(tmp_path):
    path = written(tmp_path, "a.mha")
    data = path.read_bytes().replace(b"TransformMatrix = 1 0 0 0 1 0 0 0 1", b"TransformMatrix = 1 0 0 0.3 1 0 0 0 1")
    path.write_bytes(data)
    with pytest.raises(PastaInputError, match="not orthonormal"):
        read_volume(path)


def test_detached_nrrd_without_its_data_file_names_the_file(tmp_path):
    path = written(tmp_path, "a.nhdr")
    data_files = [p for p in tmp_path.iterdir() if p.name != "a.nhdr"]
    assert data_files
    for extra in data_files:
        extra.unlink()
    with pytest.raises(PastaInputError, match="which is not there"):
        read_volume(path)


def test_oblique_but_orthonormal_direction_reads(tmp_path):
    image = ct_image()
    angle = np.deg2rad(17.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image.SetDirection(rotation.ravel().tolist())
    path = tmp_path / "oblique.nrrd"
    sitk.WriteImage(image, str(path))
    volume = read_volume(path)
    assert np.allclose(volume.direction, rotation, atol=1e-9)


@pytest.mark.parametrize("name, compress", [
    ("a.nii", False), ("a.nii.gz", True), ("a.nrrd", False), ("a.nrrd", True), ("a.nhdr", False),
    ("a.mha", False), ("a.mha", True), ("a.mhd", False),
])
def test_valid_files_of_every_format_read_exactly(name, compress, tmp_path):
    path = written(tmp_path, name, compress=compress)
    volume = read_volume(path)
    assert np.array_equal(volume.array, ct_like_array(SHAPE).astype(np.int16))
    assert np.allclose(volume.spacing, (0.8, 0.9, 2.5))
    assert np.allclose(volume.origin, (-10.0, 20.0, 30.0))


def test_float_nifti_nan_scan_still_reports_nan(tmp_path):
    array = ct_like_array(SHAPE).astype(np.float32)
    array[3, 4, 5] = np.nan
    path = tmp_path / "nan.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    with pytest.raises(PastaInputError, match="1 voxels are not numbers"):
        read_volume(path)
