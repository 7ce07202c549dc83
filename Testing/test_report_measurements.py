"""Known-answer tests of lesion measurements: ellipsoids of known semi-axes on isotropic,
anisotropic and oblique grids must give their volume, RECIST long and short axis and largest 3D
diameter to within one voxel, with end points in RAS on the ellipsoid."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import GEOMETRIES, rotation
from PASTALib.report.measurements import measure, slice_axis
from PASTALib.io.volume import Volume, lps_to_ras


def ellipsoid(geometry: dict, semi_axes, axes_lps: np.ndarray, centre_ijk, shape_kji, inside=100, outside=0):
    """A CT-like volume holding an ellipsoid (``axes_lps`` columns are its axes in LPS)."""
    volume = Volume(np.zeros(shape_kji, np.int16), **geometry)
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape_kji], indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3)
    centre = volume.index_to_lps_points(np.asarray(centre_ijk, dtype=float))
    local = (volume.index_to_lps_points(ijk) - centre) @ axes_lps
    mask = (((local / np.asarray(semi_axes, dtype=float)) ** 2).sum(axis=1) <= 1.0).reshape(shape_kji)
    array = np.where(mask, inside, outside).astype(np.int16)
    return volume.with_array(array), mask, centre


def in_plane_axes(direction: np.ndarray, degrees: float) -> np.ndarray:
    """Ellipsoid axes: two in the slice (i-j) plane, turned by ``degrees`` from i; one along k."""
    t = np.radians(degrees)
    u = np.cos(t) * direction[:, 0] + np.sin(t) * direction[:, 1]
    v = -np.sin(t) * direction[:, 0] + np.cos(t) * direction[:, 1]
    return np.stack([u, v, direction[:, 2]], axis=1)


def shape_for(geometry, extent_mm: float) -> tuple[int, int, int]:
    sx, sy, sz = geometry["spacing"]
    return (int(2 * extent_mm / sz) + 7, int(2 * extent_mm / sy) + 9, int(2 * extent_mm / sx) + 9)


SEMI = (20.0, 12.0, 9.0)  # mm: long and short axis in the slice plane, the third across slices


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_ellipsoid_measurements_within_one_voxel(name):
    geometry = GEOMETRIES[name]
    shape = shape_for(geometry, SEMI[0])
    axes = in_plane_axes(np.asarray(geometry["direction"]), 30.0)
    centre_ijk = (shape[2] / 2 - 0.3, shape[1] / 2 + 0.4, shape[0] // 2)  # centre on a slice
    volume, mask, centre = ellipsoid(geometry, SEMI, axes, centre_ijk, shape)
    m = measure(mask, volume)
    in_plane = max(geometry["spacing"][:2])
    a, b, c = SEMI

    assert m.recist.slice_axis == "k" and m.recist.slice_index == shape[0] // 2
    assert m.recist.long_axis.length_mm == pytest.approx(2 * a, abs=in_plane)
    assert m.recist.short_axis.length_mm == pytest.approx(2 * b, abs=in_plane)
    assert m.max_3d_diameter.length_mm == pytest.approx(2 * a, abs=max(geometry["spacing"]))

    # Volume: the voxel count lies between the ellipsoids half a voxel inside and outside.
    true_ml = 4 / 3 * np.pi * a * b * c / 1000
    half = max(geometry["spacing"]) / 2
    assert 4 / 3 * np.pi * (a - half) * (b - half) * (c - half) / 1000 < m.volume_ml
    assert m.volume_ml < 4 / 3 * np.pi * (a + half) * (b + half) * (c + half) / 1000
    assert m.volume_ml == pytest.approx(true_ml, rel=0.06)

    # End points are RAS positions on the ellipsoid, along its long and short axes.
    ras_centre = lps_to_ras(centre)
    for line, axis, semi in ((m.recist.long_axis, lps_to_ras(axes[:, 0]), a),
                             (m.recist.short_axis, lps_to_ras(axes[:, 1]), b)):
        ends = np.array([line.start_ras, line.end_ras])
        direction = (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
        assert abs(abs(direction @ axis) - 1) < 0.02  # parallel to the ellipsoid axis
        assert np.linalg.norm(ends - ras_centre, axis=1) == pytest.approx([semi, semi], abs=in_plane)
    long_dir = np.subtract(m.recist.long_axis.end_ras, m.recist.long_axis.start_ras)
    short_dir = np.subtract(m.recist.short_axis.end_ras, m.recist.short_axis.start_ras)
    assert abs(long_dir @ short_dir) / (np.linalg.norm(long_dir) * np.linalg.norm(short_dir)) < 1e-9
    assert np.allclose(m.centroid_ras, ras_centre, atol=in_plane / 2)


def test_world_aligned_ellipsoid_on_an_oblique_grid():
    """Axes that are not the grid's: volume and 3D diameter still come out right in mm."""
    geometry = dict(spacing=(0.8, 1.1, 2.0), origin=(5.0, -20.0, 40.0), direction=rotation(20.0, -15.0, 35.0))
    semi = (18.0, 10.0, 7.0)
    shape = shape_for(geometry, 22.0)
    volume, mask, _ = ellipsoid(geometry, semi, np.eye(3), (shape[2] / 2, shape[1] / 2, shape[0] / 2), shape)
    m = measure(mask, volume)
    assert m.max_3d_diameter.length_mm == pytest.approx(36.0, abs=2.0)
    ends = np.array([m.max_3d_diameter.start_ras, m.max_3d_diameter.end_ras])
    direction = (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
    assert abs(direction[0]) > 0.99  # the long axis is world x (R-L in RAS too)
    assert m.volume_ml == pytest.approx(4 / 3 * np.pi * 18 * 10 * 7 / 1000, rel=0.05)
    assert m.recist.long_axis.length_mm <= m.max_3d_diameter.length_mm + 1e-9


def test_hu_statistics_and_bounding_box():
    geometry = GEOMETRIES["ras_flipped"]
    volume, mask, _ = ellipsoid(geometry, (9.5, 9.5, 9.5), np.eye(3), (10, 10, 10), (21, 21, 21),
                                inside=30, outside=-50)
    values = np.where(mask, 30 + 20 * (np.indices(mask.shape)[0] % 2), -50).astype(np.int16)
    m = measure(mask, volume.with_array(values))
    inside = values[mask]
    assert m.hu.mean == pytest.approx(inside.mean()) and m.hu.std == pytest.approx(inside.std())
    assert (m.hu.min, m.hu.max) == (30.0, 50.0)
    assert set(m.hu.percentiles) == {"p5", "p25", "p50", "p75", "p95"}
    # A 9.5 mm radius at 3 mm spacing spans indices 7..13 along each axis.
    assert m.bbox.ijk_min == [7, 7, 7] and m.bbox.ijk_max == [13, 13, 13]
    size = np.subtract(m.bbox.ras_max, m.bbox.ras_min)
    assert np.allclose(size, 7 * 3.0)


def test_axial_is_the_index_axis_closest_to_superior():
    assert slice_axis(Volume(np.zeros((2, 2, 2)), direction=rotation(25, 10, 0))) == 2
    sagittal_stack = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # i points S
    assert slice_axis(Volume(np.zeros((2, 2, 2)), direction=sagittal_stack)) == 0
