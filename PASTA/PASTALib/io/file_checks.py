"""A volume file's header, checked against its bytes before any voxel is read.

ITK's readers trust the header. A truncated NIfTI is zero-filled and analysed; a header claiming
1500 x 1500 x 1000 voxels allocates gigabytes before the read fails; a NIfTI spacing of 0 becomes
1 mm and a negative one silently mirrors the axis; a sheared direction matrix is kept. Each is a
wrong answer that looks right, so the header is read here with plain Python and held to:

- **spacing**: every spatial axis finite and > 0 mm, as stored (not as a reader repaired it);
- **direction**: orthonormal within :data:`DIRECTION_TOLERANCE` (a shear or two parallel axes is
  no scanner's grid);
- **length**: the voxel bytes the header promises are in the file, counted without holding them
  (compressed data is streamed, so a 1 KB file never costs more than a few MB); a float NIfTI is
  scanned for NaN on the way, because ITK turns NaN into 0 (water).

Formats: NIfTI-1/2 (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr`` with its data file) and
MetaImage (``.mha``, ``.mhd``). DICOM series are left to GDCM.
"""

from __future__ import annotations

import bz2
import gzip
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional

import numpy as np

from PASTALib.errors import PastaInputError

#: Largest |D^T D - I| accepted for a direction matrix D: about 0.06 degrees of shear, far above the
#: rounding of headers written with float32 (1e-7) or DICOM's six decimals (1e-6).
DIRECTION_TOLERANCE = 1e-3
_BLOCK = 1 << 24  # bytes read at a time from an uncompressed file
_COMPRESSED_BLOCK = 1 << 16  # from a decompressor: a cut stream loses at most this much of the count

_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4",
                 1024: "i8", 1280: "u8"}
_NRRD_BYTES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t",
                     "ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32",
                     "uint32_t", "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int",
                     "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int",
                     "uint64", "uint64_t", "double"), 8),
}
_META_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
               "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
               "MET_DOUBLE": 8}


@dataclass(frozen=True)
class VoxelData:
    """Where a file's voxel bytes are and how many the header promises."""

    path: Path
    offset: int  #: where the (possibly compressed) stream starts in the file
    expected: int  #: voxel bytes the header promises
    opener: Optional[Callable[[BinaryIO], BinaryIO]] = None  #: decompressor around the raw stream
    float_dtype: Optional[str] = None  #: scan for NaN (numpy dtype with byte order)
    skip: int = 0  #: bytes of the decoded stream before the voxels (a .nii.gz's header, NRRD's byte skip)


def check_volume_file(path: Path, values: bool = True) -> None:
    """Raise :class:`PastaInputError` when ``path``'s header and bytes disagree (see module doc).
    ``values=False`` checks the structure only (a just-written output may hold NaN on purpose)."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        _check_nifti(path, values)
    elif name.endswith((".nrrd", ".nhdr")):
        _check_nrrd(path)
    elif name.endswith((".mha", ".mhd")):
        _check_metaimage(path)


def check_direction(direction: np.ndarray, path: Path) -> None:
    """An orthonormal direction matrix (columns: the voxel axes in LPS), or a clear error."""
    direction = np.asarray(direction, dtype=np.float64)
    if not np.all(np.isfinite(direction)):
        raise PastaInputError(f"{path} has a direction matrix with invalid numbers: {direction.tolist()}.",
                              "Fix the orientation in the file header (re-export the scan).")
    error = float(np.max(np.abs(direction.T @ direction - np.eye(len(direction)))))
    if error > DIRECTION_TOLERANCE:
        rounded = np.round(direction, 4).tolist()
        kind = "degenerate (two axes parallel or one zero)" if abs(np.linalg.det(direction)) < 1e-3 \
            else "not orthonormal (its axes are sheared or scaled)"
        raise PastaInputError(
            f"{path} has a direction matrix that is {kind}: {rounded} (|D^T D - I| = {error:.3g}, "
            f"tolerance {DIRECTION_TOLERANCE:g}). Reading it would place voxels in the wrong place.",
            "Re-export the scan from the scanner or PACS; a CT grid's axes are perpendicular unit vectors.")


def _check_spacing(values, path: Path, where: str) -> None:
    spacing = [float(v) for v in values]
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        shown = ", ".join(f"{s:g}" for s in spacing)
        raise PastaInputError(
            f"{path} has voxel spacing ({shown}) mm in its {where}; every axis must be > 0 mm "
            "(0 would be read as 1 mm, a negative value as a mirrored axis).",
            "Fix the header (re-export the scan) so every axis has its real, positive spacing.")


def _check_length(data: VoxelData, source: Path) -> None:
    """The voxel bytes are all there (and, for float NIfTI, all numbers)."""
    counted, nonfinite, ended = _count(data)
    if counted < data.expected:
        share = 100.0 * counted / max(data.expected, 1)
        there = f"its compressed stream ends after about {counted:,}" if ended else f"only {counted:,} are there"
        raise PastaInputError(
            f"{source} is truncated: its header promises {data.expected:,} bytes of voxel data but "
            f"{there} ({share:.1f} %).",
            "The copy or export was interrupted; copy or export the scan again.")
    if nonfinite:
        itemsize = int(data.float_dtype[-1])
        what = "all voxels are" if nonfinite * itemsize >= data.expected else f"{nonfinite:,} voxels are"
        raise PastaInputError(
            f"The image {source} has NaN or infinite values: {what} not numbers.",
            "Re-export the scan, or replace the invalid voxels (e.g. with -1024 HU, air) first.")


def _count(data: VoxelData) -> tuple[int, int, bool]:
    """(voxel bytes present up to the expected count, non-finite floats among them, stream cut)."""
    if data.opener is None and data.float_dtype is None:
        available = max(0, data.path.stat().st_size - data.offset - data.skip)
        return min(available, data.expected), 0, False
    counted = nonfinite = 0
    ended = False
    itemsize = int(data.float_dtype[-1]) if data.float_dtype else 1
    carry = b""
    with open(data.path, "rb") as raw:
        raw.seek(data.offset if data.opener else data.offset + data.skip)  # a raw file seeks past its skip
        stream = data.opener(raw) if data.opener else raw
        try:
            if data.opener:
                _skip(stream, data.skip)
            while counted < data.expected:
                block = stream.read(min(_COMPRESSED_BLOCK if data.opener else _BLOCK, data.expected - counted))
                if not block:
                    break
                counted += len(block)
                if data.float_dtype:
                    block = carry + block
                    usable = len(block) - len(block) % itemsize
                    values = np.frombuffer(block[:usable], data.float_dtype)
                    nonfinite += int(np.count_nonzero(~np.isfinite(values)))
                    carry = block[usable:]
        except (EOFError, OSError, zlib.error):
            ended = True
    return counted, nonfinite, ended


def _skip(stream: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(_BLOCK, count))
        if not chunk:
            raise EOFError
        count -= len(chunk)


def _gunzip(raw: BinaryIO) -> BinaryIO:
    return gzip.GzipFile(fileobj=raw)


def _bunzip(raw: BinaryIO) -> BinaryIO:
    return bz2.BZ2File(raw)


#: NRRD encodings whose length is checked here -> the decoder around the raw bytes (None: raw)
_NRRD_DECODERS = {"raw": None, "gzip": _gunzip, "gz": _gunzip, "bzip2": _bunzip, "bz2": _bunzip}


# ------------------------------------------------------------------------------------ NIfTI
def _check_nifti(path: Path, values: bool = True) -> None:
    compressed = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
            header = handle.read(540)
    except (OSError, EOFError, zlib.error):
        return  # not readable as such: ITK's reader gives the message
    if len(header) < 348:
        return
    for endian in "<>":
        size = struct.unpack(endian + "i", header[:4])[0]
        if size in (348, 540):
            break
    else:
        return  # not NIfTI: ITK decides
    if size == 348:
        dims = struct.unpack(endian + "8h", header[40:56])
        datatype, bitpix = struct.unpack(endian + "hh", header[70:74])
        pixdim = struct.unpack(endian + "8f", header[76:108])
        offset = int(struct.unpack(endian + "f", header[108:112])[0])
    else:
        if len(header) < 540:
            return
        datatype, bitpix = struct.unpack(endian + "hh", header[12:16])
        dims = struct.unpack(endian + "8q", header[16:80])
        pixdim = struct.unpack(endian + "8d", header[104:168])
        offset = int(struct.unpack(endian + "q", header[168:176])[0])
    ndim = int(dims[0])
    if not 1 <= ndim <= 7 or any(d < 1 for d in dims[1:ndim + 1]) or bitpix <= 0:
        return  # ITK reports a malformed header itself
    _check_spacing(pixdim[1:min(ndim, 3) + 1], path, "NIfTI header (pixdim)")
    voxels = int(np.prod([int(d) for d in dims[1:ndim + 1]], dtype=object))
    dtype = _NIFTI_DTYPES.get(datatype)
    float_dtype = endian + dtype if values and dtype in ("f4", "f8") else None
    _check_length(VoxelData(path, 0, voxels * bitpix // 8, _gunzip if compressed else None, float_dtype,
                            skip=max(offset, size)), path)


# ------------------------------------------------------------------------------------ NRRD
def _read_text_header(path: Path, end_of_header: Callable[[str], bool]) -> tuple[list[str], int, str]:
    """Header lines before the line for which ``end_of_header`` is true, the byte offset after that
    line, and the line itself ("" when the file ended first)."""
    lines: list[str] = []
    offset = 0
    with open(path, "rb") as handle:
        while len(lines) <= 4096:
            line = handle.readline(65536)
            if not line:
                break
            offset += len(line)
            text = line.decode("latin-1").rstrip("\r\n")
            if end_of_header(text):
                return lines, offset, text
            lines.append(text)
    return lines, offset, ""


def _nrrd_vectors(text: str) -> list[Optional[list[float]]]:
    vectors: list[Optional[list[float]]] = []
    for part in re.findall(r"\([^)]*\)|none", text):
        if part == "none":
            vectors.append(None)
        else:
            vectors.append([float(v) for v in part.strip("()").split(",")])
    return vectors


def _check_nrrd(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError:
        return
    if not magic.startswith(b"NRRD"):
        return
    lines, offset, _ = _read_text_header(path, lambda text: text == "")
    fields = {}
    for line in lines[1:]:
        if line.startswith("#") or ":" not in line or ":=" in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    try:
        sizes = [int(v) for v in fields.get("sizes", "").split()]
        if "space directions" in fields:
            vectors = [v for v in _nrrd_vectors(fields["space directions"]) if v is not None]
            _check_spacing([np.linalg.norm(v) for v in vectors], path, "NRRD header (space directions)")
            if len(vectors) == 3:
                columns = np.array(vectors, dtype=np.float64).T
                check_direction(columns / np.linalg.norm(columns, axis=0), path)
        elif "spacings" in fields:
            spacings = [float(v) for v in fields["spacings"].split() if v.lower() != "nan"]
            _check_spacing(spacings, path, "NRRD header (spacings)")
    except ValueError:
        return  # malformed numbers: ITK's reader reports them
    type_bytes = _NRRD_BYTES.get(fields.get("type", "").lower())
    if not sizes or type_bytes is None or int(fields.get("line skip", "0") or 0) != 0:
        return
    byte_skip = int(fields.get("byte skip", "0") or 0)
    if byte_skip < 0:
        return  # data at the end of the file: its start is not in the header
    data_file = fields.get("data file") or fields.get("datafile")
    if data_file:
        if data_file.startswith("LIST") or "%" in data_file or " " in data_file:
            return
        data_path, start = path.parent / data_file, 0
        if not data_path.is_file():
            raise PastaInputError(f"{path} names its voxel data file {data_file}, which is not there.",
                                  f"Keep {data_file} next to {path.name} (copy both files together).")
    else:
        data_path, start = path, offset
    expected = int(np.prod(sizes, dtype=object)) * type_bytes
    encoding = fields.get("encoding", "raw").lower()
    if encoding not in _NRRD_DECODERS:
        return  # ascii / hex: ITK counts those itself
    _check_length(VoxelData(data_path, start, expected, _NRRD_DECODERS[encoding], skip=byte_skip), path)


# ------------------------------------------------------------------------------------ MetaImage
def _check_metaimage(path: Path) -> None:
    try:
        lines, consumed, data_line = _read_text_header(
            path, lambda text: text.replace(" ", "").startswith("ElementDataFile="))
    except OSError:
        return
    if not data_line:
        return
    fields = {}
    for line in lines:
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip()] = value.strip()
    data_file = data_line.split("=", 1)[1].strip()
    try:
        sizes = [int(v) for v in fields.get("DimSize", "").split()]
        spacing = fields.get("ElementSpacing") or fields.get("ElementSize")
        if spacing:
            _check_spacing(spacing.split()[:3], path, "MetaImage header (ElementSpacing)")
        matrix = fields.get("TransformMatrix") or fields.get("Orientation") or fields.get("Rotation")
        if matrix and len(sizes) == 3:
            values = [float(v) for v in matrix.split()]
            if len(values) == 9:
                check_direction(np.array(values).reshape(3, 3).T, path)
        channels = int(fields.get("ElementNumberOfChannels", "1"))
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        return
    type_bytes = _META_BYTES.get(fields.get("ElementType", ""))
    if not sizes or type_bytes is None or header_size < 0:
        return
    if data_file == "LOCAL":
        data_path, start = path, consumed
    elif data_file.startswith("LIST") or "%" in data_file or " " in data_file:
        return
    else:
        data_path, start = path.parent / data_file, 0
        if not data_path.is_file():
            raise PastaInputError(f"{path} names its voxel data file {data_file}, which is not there.",
                                  f"Keep {data_file} next to {path.name} (copy both files together).")
    expected = int(np.prod(sizes, dtype=object)) * type_bytes * channels
    compressed = fields.get("CompressedData", "False").lower() == "true"
    _check_length(VoxelData(data_path, start, expected, _ZlibReader if compressed else None,
                            skip=0 if compressed else header_size), path)


class _ZlibReader:
    """A zlib stream as a readable file (MetaImage's CompressedData), raising EOFError when cut."""

    def __init__(self, raw: BinaryIO):
        self._raw, self._inflate, self._done = raw, zlib.decompressobj(), False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read(self, count: int) -> bytes:
        out = b""
        while len(out) < count and not self._done:
            chunk = self._raw.read(1 << 20)
            if not chunk:
                if not self._inflate.eof:
                    raise EOFError("zlib stream ends early")
                break
            out += self._inflate.decompress(chunk)
            self._done = self._inflate.eof
        return out
