"""Reading and writing volumes with exact geometry (SimpleITK underneath).

Reads NIfTI, NRRD, MetaImage and DICOM series folders; writes NIfTI, NRRD and MetaImage.
Writes are atomic (a temporary file in the target folder, then a rename) and never replace an
existing file unless asked, so an interrupted or failed run cannot destroy a user's data.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from PASTALib.atomic import atomic_write
from PASTALib.errors import PastaInputError

from .file_checks import check_direction, check_volume_file
from .sitk_bridge import from_sitk, to_sitk
from .volume import Volume

log = logging.getLogger(__name__)

READ_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
WRITE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")

#: Non-identifying DICOM tags kept as metadata (never patient name, ID, dates or UIDs of people).
_DICOM_TAGS = {
    "0008|0060": "Modality",
    "0008|0070": "Manufacturer",
    "0018|0010": "ContrastBolusAgent",
    "0018|0050": "SliceThickness",
    "0018|0060": "KVP",
    "0018|1210": "ConvolutionKernel",
    "0020|000e": "SeriesInstanceUID",
    "0020|000d": "StudyInstanceUID",
    "0008|103e": "SeriesDescription",
}


#: Volume files a folder of scans may hold (a DICOM series is a sub-folder of .dcm files).
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Words that mark a file in a scan folder as a mask rather than the image (e.g. total.nii.gz).
MASK_WORDS = ("total", "organ", "seg", "mask")


def images_and_masks(folder: Path) -> tuple[list[Path], list[Path]]:
    """A scan folder's images (volume files and DICOM series folders) and masks, told apart by name."""
    volumes = [p for p in sorted(folder.iterdir()) if p.name.lower().endswith(VOLUME_SUFFIXES)]
    masks = [p for p in volumes if any(w in p.name.lower() for w in MASK_WORDS)]
    images = [p for p in volumes if p not in masks]
    images += [p for p in sorted(folder.iterdir()) if p.is_dir() and any(p.glob("*.dcm"))]
    return images, masks


def suffix_of(path: Path) -> str:
    """Lower-case file suffix, treating ``.nii.gz`` as one suffix."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


# ------------------------------------------------------------------------------------ reading
def read_volume(path: str | os.PathLike) -> Volume:
    """Read a 3D scalar volume from a file or a DICOM series folder.

    A 4D image yields its first frame (with a warning); 2D, vector (e.g. RGB) and unreadable
    inputs raise :class:`PastaInputError` naming the problem.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise PastaInputError(f"File or folder not found: {path}.", "Check the path and spelling.")
    if path.is_dir():
        image, metadata = _read_dicom_folder(path)
    else:
        image, metadata = _read_file(path), {}
    image = _as_3d_scalar(image, path)
    check_direction(np.array(image.GetDirection()).reshape(3, 3), path)
    metadata["source"] = str(path)
    return from_sitk(image, metadata)


def _read_file(path: Path) -> sitk.Image:
    if path.stat().st_size == 0:
        raise PastaInputError(f"The file {path} is empty (0 bytes).",
                              "The export or copy was probably interrupted; export it again.")
    try:
        check_volume_file(path)
    except OSError as exc:
        raise PastaInputError(f"Cannot read {path}: {exc.strerror or exc}.",
                              "Check that the file exists and that you may read it.") from None
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        if "Zero-valued spacing" in str(exc):
            raise PastaInputError(
                f"{path} has a voxel spacing of 0 in its header; spacing must be > 0 mm.",
                "Fix the header (e.g. re-export the scan) so every axis has its real spacing.",
            ) from None
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise PastaInputError(
            f"Cannot read {path}: {reason}",
            "PASTA reads NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) and "
            "DICOM series folders. Check that the file is complete and not corrupt.",
        ) from None


def _read_dicom_folder(folder: Path) -> tuple[sitk.Image, dict[str, str]]:
    """Read the largest DICOM series found in ``folder`` (or its sub-folders)."""
    candidates: list[tuple[int, Path, str]] = []
    for directory in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory)) or ():
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid)
            candidates.append((len(files), directory, uid))
    if not candidates:
        raise PastaInputError(
            f"No DICOM series found in folder {folder}.",
            "Pass a folder that holds the .dcm files of one CT series, or a NIfTI/NRRD file.",
        )
    candidates.sort(key=lambda c: (-c[0], str(c[1]), c[2]))
    count, directory, uid = candidates[0]
    if len(candidates) > 1:
        others = ", ".join(f"{c[2]} ({c[0]} files)" for c in candidates[1:4])
        log.warning("Folder holds %d DICOM series; using %s (%d files). Others: %s",
                    len(candidates), uid, count, others)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid)
    if len(files) < 2:
        raise PastaInputError(
            f"The DICOM series in {directory} has a single slice; PASTA needs a 3D CT series.",
            "Export the whole series, not one image.",
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise PastaInputError(
            f"Cannot read the DICOM series in {directory}: {str(exc).strip().splitlines()[-1]}",
            "The files may be incomplete, compressed with an unsupported codec, or not images.",
        ) from None
    return image, _dicom_metadata(files[0])


def _dicom_metadata(first_file: str) -> dict[str, str]:
    header = sitk.ImageFileReader()
    header.SetFileName(first_file)
    header.ReadImageInformation()
    keys = set(header.GetMetaDataKeys())
    return {name: header.GetMetaData(tag).strip() for tag, name in _DICOM_TAGS.items() if tag in keys}


def _as_3d_scalar(image: sitk.Image, path: Path) -> sitk.Image:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise PastaInputError(
            f"{path} has {image.GetNumberOfComponentsPerPixel()} values per voxel (colour or "
            "vector image); PASTA needs a scalar CT volume.",
            "Export the CT itself, not a screenshot or colour rendering.",
        )
    dimension = image.GetDimension()
    if dimension == 3:
        return image
    if dimension == 4:
        frames = image.GetSize()[3]
        if frames > 1:
            log.warning("%s is 4D with %d frames; using the first frame only.", path, frames)
        size = list(image.GetSize())
        size[3] = 0
        return sitk.Extract(image, size=size, index=[0, 0, 0, 0])
    raise PastaInputError(
        f"{path} is a {dimension}D image of size {image.GetSize()}; PASTA needs a 3D CT volume.",
        "For DICOM, pass the folder holding all slices of the series rather than one file.",
    )


# ------------------------------------------------------------------------------------ writing
def write_volume(
    volume: Volume, path: str | os.PathLike, *, overwrite: bool = False, compress: bool = True
) -> Path:
    """Write atomically to ``.nii``, ``.nii.gz``, ``.nrrd`` or ``.mha``; refuse to overwrite."""
    path = Path(path).expanduser()
    suffix = suffix_of(path)
    if suffix not in WRITE_SUFFIXES:
        raise PastaInputError(
            f"Cannot write {path.name}: unsupported output format {suffix or '(no suffix)'}.",
            f"Use one of {', '.join(WRITE_SUFFIXES)}.",
        )
    atomic_write(path, lambda temporary: write_sitk_image(to_sitk(volume), temporary, compress),
                 overwrite=overwrite, suffix=suffix,
                 verify=lambda temporary: verify_written(temporary, volume.array.shape[::-1]))
    return path


def write_sitk_image(image: sitk.Image, path: str, compress: bool = True) -> None:
    """``sitk.WriteImage`` with its failures (full disk, permissions) raised as the OSError they are."""
    try:
        sitk.WriteImage(image, path, useCompression=compress)
    except RuntimeError as exc:
        raise OSError(errno.EIO, str(exc).strip().splitlines()[-1]) from None


def verify_written(path: str | os.PathLike, size: tuple[int, ...]) -> None:
    """Re-read a just-written file's header: its length must match the voxels it claims (no
    truncation) and its size (i, j, k[, frames]) be ``size``. Raises OSError, as a failed write would."""
    try:
        check_volume_file(Path(path), values=False)
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
    except (PastaInputError, RuntimeError) as exc:
        raise OSError(errno.EIO, f"the written file does not read back: {exc}") from None
    if tuple(reader.GetSize()) != tuple(size):
        raise OSError(errno.EIO, f"the written file holds {reader.GetSize()} voxels, not {tuple(size)}")
