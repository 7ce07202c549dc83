"""Host scans for the synthesis tests, benchmark and panel (all real TotalSegmentator examples).

No shared host has an esophagus label, so :func:`add_standin_esophagus` draws a hand-placed
stand-in (a 16 mm tube anterior-left of the aorta in the top slices of the abdomen sample, where
the distal esophagus runs). It is a test fixture, not anatomy ground truth.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from PASTALib.io import sample_data
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume, write_volume

DATA = Path(__file__).resolve().parent / "Data"
ESOPHAGUS = 15  #: TotalSegmentator v2 id
AORTA = 52


def sample_pair() -> tuple[Volume, Volume]:
    """The bundled 3 mm native abdomen CT and its 61-label organ mask."""
    return (read_volume(sample_data.SAMPLES["sample"].path), read_volume(sample_data.SAMPLES["sample-organs"].path))


def upper_abdomen_pair() -> tuple[Volume, Volume]:
    return (read_volume(DATA / "upper_abdomen_native_3mm_ct.nii.gz"),
            read_volume(DATA / "upper_abdomen_native_3mm_organs.nii.gz"))


def contrast_pair() -> tuple[Volume, Volume]:
    """The contrast-enhanced DICOM series (0.98 x 0.98 x 2 mm) and its (LAS-stored) mask."""
    return read_volume(DATA / "example_ct_dicom"), read_volume(DATA / "abdomen_contrast_dicom_organs.nii.gz")


def chest_part() -> Volume:
    """Part of the 1.5 mm chest CTA crop (no mask: synthesis thresholds the lung)."""
    return read_volume(DATA / "chest_crop_a_part_ct.nii.gz")


def without_slices(volume: Volume, start: int, end: int = 0) -> Volume:
    """The volume without its first ``start`` and last ``end`` slices (k), every voxel at its world position:
    the same scan started or ended elsewhere."""
    origin = volume.index_to_lps_points(np.array([[0, 0, start]]))[0]
    return Volume(volume.array[start:volume.array.shape[0] - end].copy(), volume.spacing, tuple(origin),
                  volume.direction)


def add_standin_esophagus(image: Volume, organs: Volume, radius_mm: float = 8.0, length_mm: float = 36.0) -> Volume:
    """The organ mask with a stand-in esophagus (label 15) drawn next to the aorta's top."""
    labels = organs.array.copy()
    aorta = np.argwhere(labels == AORTA)
    top = aorta[:, 0].max()
    ring = aorta[aorta[:, 0] >= top - 2]
    centre_lps = image.index_to_lps_points(ring.mean(axis=0)[::-1])
    centre_lps = centre_lps + np.array([12.0, -16.0, 0.0])  # left and anterior of the aorta
    k, j, i = np.indices(labels.shape, sparse=True)
    points = np.stack(np.broadcast_arrays(i, j, k), axis=-1).reshape(-1, 3)
    lps = image.index_to_lps_points(points).reshape(labels.shape + (3,))
    radial = np.hypot(lps[..., 0] - centre_lps[0], lps[..., 1] - centre_lps[1])
    along = centre_lps[2] - lps[..., 2]
    tube = (radial <= radius_mm) & (along >= -3.0) & (along <= length_mm) & (labels == 0)
    labels[tube] = ESOPHAGUS
    return organs.with_array(labels)


def write_host_folders(hosts: Path) -> Path:
    """Two synth-batch host folders (image + TotalSegmentator mask each): the sample abdomen with
    its stand-in esophagus, and the upper abdomen."""
    image, organs = sample_pair()
    (hosts / "abdomen").mkdir(parents=True)
    write_volume(image, hosts / "abdomen" / "ct.nii.gz")
    write_volume(add_standin_esophagus(image, organs), hosts / "abdomen" / "total.nii.gz")
    (hosts / "upper").mkdir()
    shutil.copy(DATA / "upper_abdomen_native_3mm_ct.nii.gz", hosts / "upper" / "ct.nii.gz")
    shutil.copy(DATA / "upper_abdomen_native_3mm_organs.nii.gz", hosts / "upper" / "total.nii.gz")
    return hosts


def write_validation_hosts(val: Path) -> Path:
    """The two held-out hosts, from Testing/Data (identical copies of the shared examples), so the
    test suite can rebuild exactly the validation lesions of the model card."""
    data = DATA
    (val / "contrast_abdomen").mkdir(parents=True)
    shutil.copytree(data / "example_ct_dicom", val / "contrast_abdomen" / "dicom")
    shutil.copy(data / "abdomen_contrast_dicom_organs.nii.gz", val / "contrast_abdomen" / "total.nii.gz")
    (val / "chest_b").mkdir()
    shutil.copy(data / "chest_crop_b_ct.nii.gz", val / "chest_b" / "ct.nii.gz")
    return val
