"""The source DICOM series of a volume: the headers a DICOM SEG and SR must reference.

Only headers are read (no pixel data, so compressed series need no codec). Each file is matched
to its slice of the volume by its Image Position (Patient), and checked to lie on the volume's
grid, so a SEG frame is always the right slice. Blank SOP Class/Instance UIDs, which some
anonymisers leave, are restored from the file meta header, which must hold the same values; blank
Study or Series Instance UIDs cannot be restored, and a SEG or SR without them references
nothing, so export stops and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume

REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
DICOM_SOURCE_HINT = ("Pass the DICOM series folder as IMAGE (with the lesion map on its grid), or "
                     "leave out --dicom to write the JSON, Markdown and HTML reports only.")


def dicom_folder(volume: Volume) -> Path:
    """The folder the volume was read from, or a clear error if it did not come from DICOM."""
    source = volume.metadata.get("source")
    if not source or not Path(source).is_dir():
        raise PastaInputError(
            f"DICOM export needs a DICOM source: the image was read from {source or 'memory'}, not "
            "a DICOM series, so a DICOM SEG and SR would have no study, series or images to "
            "reference.", DICOM_SOURCE_HINT)
    return Path(source)


def _read_headers(folder: Path) -> list[pydicom.Dataset]:
    datasets = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError):
            continue
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            datasets.append(ds)
    return datasets


def _restore_sop_uids(ds: pydicom.Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    if not str(ds.get("SOPInstanceUID", "")).strip() and meta is not None:
        ds.SOPInstanceUID = meta.get("MediaStorageSOPInstanceUID", "")
    if not str(ds.get("SOPClassUID", "")).strip() and meta is not None:
        ds.SOPClassUID = meta.get("MediaStorageSOPClassUID", "")


def source_series(volume: Volume) -> list[pydicom.Dataset]:
    """Header datasets of the volume's series, one per slice, ordered by slice index k."""
    folder = dicom_folder(volume)
    n_slices = volume.array.shape[0]
    rows, cols = volume.array.shape[1:]
    by_k: dict[int, pydicom.Dataset] = {}
    for ds in _read_headers(folder):
        if int(ds.get("Rows", -1)) != rows or int(ds.get("Columns", -1)) != cols:
            continue
        orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        if not (np.allclose(orientation[:3], volume.direction[:, 0], atol=1e-4)
                and np.allclose(orientation[3:], volume.direction[:, 1], atol=1e-4)):
            continue
        ijk = volume.lps_to_index_points(np.asarray([float(v) for v in ds.ImagePositionPatient]))
        k = int(round(ijk[2]))
        if np.max(np.abs(ijk - [0.0, 0.0, k])) > 1e-2 or not 0 <= k < n_slices:
            continue
        by_k.setdefault(k, ds)
    missing = [k for k in range(n_slices) if k not in by_k]
    if missing:
        raise PastaInputError(
            f"Could not match {len(missing)} of {n_slices} slices of the image to DICOM files in "
            f"{folder} (first missing slice k={missing[0]}).",
            "Use the folder the image was read from, unchanged, and no resampled copy of it.")
    datasets = [by_k[k] for k in range(n_slices)]
    for ds in datasets:
        _restore_sop_uids(ds)
    blank = sorted({name for ds in datasets for name in (*REQUIRED_UIDS, "SOPInstanceUID", "SOPClassUID")
                    if not str(ds.get(name, "")).strip()})
    if blank:
        raise PastaInputError(
            f"The DICOM series in {folder} has blank {', '.join(blank)}, probably removed by an "
            "anonymiser; a DICOM SEG or SR must reference them, so it cannot be written.",
            "Re-export the series with its UIDs (anonymisers should replace UIDs consistently, not "
            "blank them), or leave out --dicom.")
    series = {str(ds.SeriesInstanceUID) for ds in datasets}
    if len(series) != 1:
        raise PastaInputError(f"The slices of the image come from {len(series)} DICOM series.",
                              "Export one series per folder.")
    return datasets
