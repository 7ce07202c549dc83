"""The Volume type's coordinate conversions are exact inverses and agree with nibabel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from PASTALib.errors import PastaInputError
from PASTALib.io.orientation import axis_codes, obliquity_degrees
from PASTALib.io.volume import Volume, lps_to_ras

from conftest import rotation


def test_index_world_round_trip(ct_volume, probe_indices):
    lps = ct_volume.index_to_lps_points(probe_indices)
    np.testing.assert_allclose(ct_volume.lps_to_index_points(lps), probe_indices, atol=1e-9)
    ras = ct_volume.index_to_ras_points(probe_indices)
    np.testing.assert_allclose(ras, lps_to_ras(lps), atol=0)
    np.testing.assert_allclose(ct_volume.ras_to_index_points(ras), probe_indices, atol=1e-9)


def test_matrices_match_point_conversion(ct_volume, probe_indices):
    homogeneous = np.c_[probe_indices, np.ones(len(probe_indices))]
    np.testing.assert_allclose((ct_volume.index_to_ras @ homogeneous.T).T[:, :3],
                               ct_volume.index_to_ras_points(probe_indices), atol=1e-9)


def test_from_index_to_ras_inverts_index_to_ras(ct_volume, probe_indices):
    rebuilt = Volume.from_index_to_ras(ct_volume.array, ct_volume.index_to_ras)
    assert rebuilt.has_same_geometry(ct_volume, tolerance_mm=1e-9)
    np.testing.assert_allclose(rebuilt.index_to_ras_points(probe_indices),
                               ct_volume.index_to_ras_points(probe_indices), atol=1e-9)


def test_first_voxel_centre_is_origin(ct_volume):
    np.testing.assert_array_equal(ct_volume.index_to_lps_points([0, 0, 0]), ct_volume.origin)


def test_size_is_xyz_and_array_is_kji():
    volume = Volume(np.zeros((4, 5, 6), np.int16), spacing=(1, 2, 3))
    assert volume.size == (6, 5, 4)
    assert volume.extent_mm == (6.0, 10.0, 12.0)


def test_with_array_keeps_geometry_and_rejects_other_shapes(ct_volume):
    doubled = ct_volume.with_array(ct_volume.array * 2)
    assert doubled.has_same_geometry(ct_volume, tolerance_mm=0)
    with pytest.raises(PastaInputError, match="shape"):
        ct_volume.with_array(ct_volume.array[:-1])


def test_non_3d_array_is_rejected():
    with pytest.raises(PastaInputError, match="3D"):
        Volume(np.zeros((4, 5)))


def test_geometry_differences_name_the_difference(ct_volume):
    moved = Volume(ct_volume.array, ct_volume.spacing,
                   np.add(ct_volume.origin, (0, 0, 2.0)), ct_volume.direction)
    differences = ct_volume.geometry_differences(moved)
    assert len(differences) == 1 and differences[0].startswith("origin")


@pytest.mark.parametrize("angles", [(0, 0, 0), (0, 0, 180), (90, 0, 0), (10, 20, 30), (-40, 5, 95)])
def test_axis_codes_agree_with_nibabel(angles):
    volume = Volume(np.zeros((3, 3, 3)), (1.0, 2.0, 3.0), (0, 0, 0), rotation(*angles))
    assert axis_codes(volume.direction) == "".join(nib.aff2axcodes(volume.index_to_ras))


def test_obliquity():
    assert obliquity_degrees(np.diag([-1.0, -1.0, 1.0])) == 0.0
    assert obliquity_degrees(rotation(0, 0, 30)) == pytest.approx(30.0)
