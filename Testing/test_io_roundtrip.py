"""World coordinates survive every read, write and conversion (NIfTI, NRRD, MHA, DICOM, MRML)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from PASTALib.errors import PastaInputError
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume_io import read_volume, write_volume

from conftest import DATA, FLOAT32_HEADER_MM
from dicom_writer import write_dicom_series

#: NIfTI stores its matrix in float32: ~1e-5 mm error at 600 mm from the origin. DICOM DS strings
#: hold 16 characters. Both are far below any clinically or computationally relevant distance.


def assert_same_world(a, b, probes, atol):
    np.testing.assert_allclose(b.index_to_ras_points(probes), a.index_to_ras_points(probes), atol=atol)
    np.testing.assert_array_equal(b.array, a.array)


@pytest.mark.parametrize("suffix, atol", [(".nii.gz", FLOAT32_HEADER_MM), (".nii", FLOAT32_HEADER_MM),
                                          (".nrrd", 1e-9), (".mha", 1e-9)])
def test_file_round_trip(ct_volume, probe_indices, tmp_path, suffix, atol):
    path = write_volume(ct_volume, tmp_path / f"ct{suffix}")
    assert_same_world(ct_volume, read_volume(path), probe_indices, atol)


def test_nifti_world_coordinates_match_nibabel(ct_volume, probe_indices, tmp_path):
    """An independent reader (nibabel, RAS affine) finds every voxel where we put it."""
    path = write_volume(ct_volume, tmp_path / "ct.nii.gz")
    affine = nib.load(str(path)).affine
    homogeneous = np.c_[probe_indices, np.ones(len(probe_indices))]
    np.testing.assert_allclose((affine @ homogeneous.T).T[:, :3],
                               ct_volume.index_to_ras_points(probe_indices), atol=FLOAT32_HEADER_MM)


def test_dicom_series_round_trip(ct_volume, probe_indices, tmp_path):
    write_dicom_series(ct_volume, tmp_path / "dicom")
    assert_same_world(ct_volume, read_volume(tmp_path / "dicom"), probe_indices, FLOAT32_HEADER_MM)


def test_chain_nifti_nrrd_dicom_mrml_and_back(ct_volume, probe_indices, tmp_path, mrml_scene):
    from PASTASlicerLib.volume_nodes import node_to_volume, volume_to_node

    step = read_volume(write_volume(ct_volume, tmp_path / "a.nii.gz"))
    step = read_volume(write_volume(step, tmp_path / "b.nrrd"))
    write_dicom_series(step, tmp_path / "c")
    step = read_volume(tmp_path / "c")
    node = volume_to_node(step, mrml_scene, "chain")
    step = node_to_volume(node)
    step = read_volume(write_volume(step, tmp_path / "d.nii.gz"))
    assert_same_world(ct_volume, step, probe_indices, 2 * FLOAT32_HEADER_MM)


def test_real_dicom_series_geometry_matches_its_tags():
    folder = DATA / "example_ct_dicom"
    volume = read_volume(folder)
    assert volume.size == (512, 512, 20)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]
    normal = np.cross(*np.reshape(np.array(headers[0].ImageOrientationPatient, float), (2, 3)))
    first = min(headers, key=lambda h: float(np.dot(normal, np.array(h.ImagePositionPatient, float))))
    np.testing.assert_allclose(volume.origin, np.array(first.ImagePositionPatient, float), atol=1e-6)
    np.testing.assert_allclose(volume.direction[:, :2].T.reshape(-1),
                               np.array(first.ImageOrientationPatient, float), atol=1e-6)
    assert volume.metadata["Modality"] == "CT"
    assert volume.metadata["ContrastBolusAgent"]
    assert not {"PatientName", "PatientID", "PatientBirthDate"} & set(volume.metadata)


def test_real_mask_with_other_orientation_lands_on_the_right_organs():
    """The organ mask is stored LAS with another origin; resampled in world space, the liver mask
    must sit on liver-like contrast-enhanced HU (89 +- 22 per the data README), the aorta on blood."""
    ct = read_volume(DATA / "example_ct_dicom")
    mask = read_volume(DATA / "abdomen_contrast_dicom_organs.nii.gz")
    assert not np.allclose(mask.direction, ct.direction)
    on_ct = resample_to_reference(mask, ct, Interpolation.NEAREST)
    liver = ct.array[on_ct.array == 5]
    aorta = ct.array[on_ct.array == 52]
    assert liver.size > 10_000
    assert 75 < np.median(liver) < 105
    assert np.median(aorta) > 140
    assert np.mean(liver < -300) < 0.001  # no air inside the resampled liver
    # The raw mask array is row-flipped relative to the CT: a naive array overlay puts "liver" on air.
    assert np.mean(ct.array[mask.array == 5] < -300) > 0.05


def test_write_refuses_to_overwrite_and_keeps_the_file(ct_volume, tmp_path):
    path = write_volume(ct_volume, tmp_path / "keep.nrrd")
    before = path.read_bytes()
    with pytest.raises(PastaInputError, match="already exists"):
        write_volume(ct_volume.with_array(ct_volume.array + 1), path)
    assert path.read_bytes() == before
    write_volume(ct_volume.with_array(ct_volume.array + 1), path, overwrite=True)
    np.testing.assert_array_equal(read_volume(path).array, ct_volume.array + 1)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nrrd"]  # no temporary left behind


def test_write_rejects_unknown_format(ct_volume, tmp_path):
    with pytest.raises(PastaInputError, match="unsupported output format"):
        write_volume(ct_volume, tmp_path / "out.png")
