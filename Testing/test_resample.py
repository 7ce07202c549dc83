"""Resampling happens in world space: a linear function of position is reproduced exactly."""

from __future__ import annotations

import numpy as np
import pytest

from PASTALib.errors import PastaInputError
from PASTALib.io.resample import Interpolation, resample_to_reference, resample_to_spacing
from PASTALib.io.volume import Volume

from conftest import rotation

GRADIENT = np.array([0.5, -1.25, 2.0])  # value change per mm along L, P, S


def linear_field(volume: Volume) -> Volume:
    """Voxel value = a fixed linear function of the voxel's LPS position."""
    k, j, i = np.indices(volume.array.shape)
    lps = volume.index_to_lps_points(np.stack([i, j, k], axis=-1).reshape(-1, 3))
    return volume.with_array((lps @ GRADIENT + 10.0).reshape(volume.array.shape).astype(np.float64))


def expected_values(volume: Volume) -> np.ndarray:
    return linear_field(volume).array


def strictly_inside(target: Volume, source: Volume, margin: float = 0.0) -> np.ndarray:
    """Target voxels whose centres fall ``margin`` voxels inside the source's outer voxel centres."""
    k, j, i = np.indices(target.array.shape)
    lps = target.index_to_lps_points(np.stack([i, j, k], axis=-1).reshape(-1, 3))
    index = source.lps_to_index_points(lps)
    inside = np.all((index >= margin) & (index <= np.asarray(source.size) - 1 - margin), axis=1)
    return inside.reshape(target.array.shape)


@pytest.mark.parametrize("interpolation", [Interpolation.LINEAR, Interpolation.BSPLINE])
def test_resample_onto_oblique_grid_keeps_world_positions(interpolation):
    source = linear_field(Volume(np.zeros((30, 40, 50)), (1.0, 0.9, 1.2), (-20.0, -15.0, -10.0),
                                 rotation(5, -10, 20)))
    target = Volume(np.zeros((8, 9, 10)), (1.7, 1.3, 2.1), (-5.0, 0.0, 3.0), rotation(-30, 25, 60))
    out = resample_to_reference(source, target, interpolation, default_value=np.nan)
    assert out.has_same_geometry(target, tolerance_mm=1e-9)
    # B-splines use mirrored boundaries, which bend a linear ramp within a few voxels of the edge.
    inside = strictly_inside(target, source, margin=4.0 if interpolation is Interpolation.BSPLINE else 0.0)
    assert inside.mean() > 0.5  # the target overlaps the source substantially
    assert np.all(np.isfinite(out.array[inside]))
    np.testing.assert_allclose(out.array[inside], expected_values(target)[inside], rtol=1e-4, atol=1e-2)


def test_resample_to_spacing_keeps_the_field_of_view(ct_volume):
    out = resample_to_spacing(ct_volume, (0.5, 0.5, 0.5), Interpolation.LINEAR)
    expected_size = tuple(int(round(n * s / 0.5)) for n, s in zip(ct_volume.size, ct_volume.spacing))
    assert out.size == expected_size
    assert np.allclose(out.direction, ct_volume.direction)
    # Centre of the field of view is unchanged.
    centre_in = ct_volume.index_to_lps_points((np.asarray(ct_volume.size) - 1) / 2.0)
    centre_out = out.index_to_lps_points((np.asarray(out.size) - 1) / 2.0)
    np.testing.assert_allclose(centre_out, centre_in, atol=1e-9)
    assert out.array.dtype == np.float32


def test_resample_to_spacing_linear_field_is_exact_inside():
    source = linear_field(Volume(np.zeros((20, 24, 28)), (1.5, 1.5, 3.0), (4.0, 5.0, 6.0), rotation(0, 0, 15)))
    out = resample_to_spacing(source, (1.0, 1.0, 1.0), Interpolation.LINEAR, default_value=np.nan)
    inside = strictly_inside(out, source)
    assert inside.mean() > 0.8
    np.testing.assert_allclose(out.array[inside], expected_values(out)[inside], rtol=1e-4, atol=1e-2)


def test_nearest_keeps_labels_and_type():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2:8, 3:7, 4:6] = 5
    labels[0:2, 0:2, 0:2] = 2
    volume = Volume(labels, (2.0, 2.0, 2.0))
    out = resample_to_spacing(volume, (0.7, 0.7, 0.7), Interpolation.NEAREST)
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == {0, 2, 5}
    # The label stays where it was in the world; its volume changes only by boundary voxels.
    np.testing.assert_allclose(label_centre(out, 5), label_centre(volume, 5), atol=1e-9)
    volume_in = np.count_nonzero(labels == 5) * 8.0
    volume_out = np.count_nonzero(out.array == 5) * 0.7**3
    assert volume_out == pytest.approx(volume_in, rel=0.2)


def label_centre(volume: Volume, label: int) -> np.ndarray:
    k, j, i = np.nonzero(volume.array == label)
    return volume.index_to_lps_points(np.c_[i, j, k]).mean(axis=0)


def test_bad_target_spacing_is_rejected(ct_volume):
    with pytest.raises(PastaInputError, match="positive"):
        resample_to_spacing(ct_volume, (1.0, 0.0, 1.0))
