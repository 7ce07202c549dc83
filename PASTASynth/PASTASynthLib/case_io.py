"""One synthetic case on disk, in the PASTA-Gen-30K layout plus the project's report.

``img.nii.gz`` (modified CT), ``label.nii.gz`` (0 background, 1 host organ, 2 lesion),
``total.nii.gz`` (host organ map), ``type.json`` (LesionDiffusion-style phrases keyed by the host
organ's label id, PASTA_REFERENCE.md 8.1) and ``report.json`` (the project's report schema, built
from the realised lesion by :func:`PASTALib.report.findings.report_from_segmentation`, with the
request and every random draw under ``provenance.parameters.synthesis``).

The folder is written under a temporary name and renamed when complete, so a half-written case
never looks finished (``synth-batch`` relies on this to resume).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional

import numpy as np

from PASTALib.atomic import atomic_write, output_error
from PASTALib.errors import PastaInputError
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import write_volume
from PASTALib.report.findings import report_from_segmentation

from .engine import SynthesisResult
from .host import Host, strip_identifiers

CASE_FILES = ("img.nii.gz", "label.nii.gz", "total.nii.gz", "type.json", "report.json")
SYNTH_SOFTWARE = "PASTA for 3D Slicer (pasta synth)"

_SHAPE = {"round-like": "round-like", "irregular": "irregular", "lobulated": "irregular",
          "wall-thickening": "irregular wall thickening", "punctate-nodular": "punctate",
          "cystic": "cystic"}
_DENSITY = {"hypodense": "hypodense lesion", "isodense": "isodense lesion", "hyperdense": "hyperdense lesion"}
_MARGIN = {"well-defined": "well-defined margin", "ill-defined": "ill-defined margin"}
_RELATION = {"none": "no close relationship with surrounding organs",
             "close-contact": "close relationship with adjacent organs"}
_FEATURE = {"necrotic-core": "presence of decreased density areas",
            "calcified": "presence of increased density areas"}


def label_map(result: SynthesisResult, host: Host) -> np.ndarray:
    """0 background, 1 host organ (the labels holding a lesion), 2 lesion."""
    organs = sorted({lesion.label for lesion in result.lesions})
    label = np.where(np.isin(host.organs, organs), 1, 0).astype(np.uint8)
    label[result.lesion_mask] = 2
    return label


def type_json(result: SynthesisResult, image: Volume, written: Optional[Volume] = None) -> dict:
    """LesionDiffusion-style ``type.json``: ``{organ id: [shape, "", {attributes}, [centres, sizes]]}``.

    Centres and sizes are in voxels (i, j, k) of the written image ``written`` (the 1 mm crop when
    cropping), mapped through world coordinates from the synthesis grid ``image``.
    """
    written = written or image
    document: dict = {}
    for lesion in result.lesions:
        attributes = lesion.attributes
        sl = lesion.box.slices
        region = np.zeros(image.array.shape, bool)
        region[sl] = lesion.mask
        points = np.argwhere(region)
        lo, hi = points.min(axis=0), points.max(axis=0)
        centre_lps = image.index_to_lps_points(((lo + hi) / 2.0)[::-1])
        centre = [int(round(v)) for v in written.lps_to_index_points(centre_lps)]
        scale = np.asarray(image.spacing) / np.asarray(written.spacing)
        extent = [int(round(v)) for v in (hi - lo + 1)[::-1] * scale]
        mean = float(np.mean(image.array[region]))
        kind = result.spec.kind
        density = _DENSITY[attributes["density"]]
        if kind == "cyst":
            density = "hypodense fluid-like lesion"
        elif result.spec.key == "lung_tumor" and attributes["density"] == "hypodense":
            density = "low-density ground-glass opacity"
        feature = "stone" if kind == "stone" else _FEATURE.get(attributes["heterogeneity"], "")
        phrases = {
            "enhancement status": "enhanced CT," if result.enhanced else "non-contrast CT,",
            "lesion location": str(lesion.label),
            "shape": _SHAPE[attributes["shape"]] + ",",
            "size": f"[[{extent[0]} {extent[1]} {extent[2]}]] pixel,",
            "density": density + ",",
            "density variations": ("homogeneous," if attributes["heterogeneity"] == "homogeneous"
                                   else "heterogeneous,"),
            "CT value": f"Mean density of the lesion region is approximately {mean:.0f} HU,",
            "surface characteristics": _MARGIN[attributes["margin"]] + ",",
            "relationship with adjacent organs": _RELATION[attributes["relation"]] + ",",
            "specific features": feature + ("," if feature else ""),
        }
        key = str(lesion.label)
        if key not in document:
            document[key] = [phrases["shape"], "", phrases, [[], []]]
        document[key][3][0].append(centre)
        document[key][3][1].append(extent)
    return document


def synthesis_record(result: SynthesisResult, request_summary: dict) -> dict:
    return {"request": request_summary, "lesion_type": result.spec.key,
            "enhanced": result.enhanced, "phase_evidence": result.phase_evidence,
            "host_notes": result.host_notes, "lesions": [lesion.record for lesion in result.lesions]}


def build_report(result: SynthesisResult, image: Volume, label: Volume, total: Volume, names: dict,
                 request_summary: dict, host_name: str) -> dict:
    """The project-schema report of the realised lesion(s) on the written grid, plus the record."""
    lesion_ids = np.where(label.array == 2, result.spec.type.id, 0).astype(np.int16)
    report = report_from_segmentation(
        image, image.with_array(lesion_ids), organs=total,
        organ_names=names, min_volume_ml=0.0005,
        inputs={"image": host_name, "lesion_labels": "label.nii.gz (lesion = 2)", "organs": "total.nii.gz"})
    document = report.to_dict()
    document["provenance"]["software"] = SYNTH_SOFTWARE
    document["provenance"]["parameters"]["synthesis"] = synthesis_record(result, request_summary)
    document["provenance"]["notes"] = list(document["provenance"]["notes"]) + [
        "Synthetic lesion: attributes are measured on the synthetic image; the requested ones are "
        "under provenance.parameters.synthesis."] + result.host_notes
    return document


def crop_1mm(image: Volume, volumes: list[Volume], centre_kji: np.ndarray, size: int = 280) -> list[Volume]:
    """Resample onto a ``size``^3 grid of 1 mm centred on ``centre_kji`` (PASTA-Gen-30K layout)."""
    centre_lps = image.index_to_lps_points(np.asarray(centre_kji, np.float64)[::-1])
    origin = centre_lps - image.direction @ np.full(3, (size - 1) / 2.0)
    reference = Volume(np.zeros((size, size, size), np.uint8), (1.0, 1.0, 1.0), tuple(origin), image.direction)
    out = [resample_to_reference(image, reference, Interpolation.LINEAR, default_value=-1024.0)]
    out += [resample_to_reference(v, reference, Interpolation.NEAREST, default_value=0.0) for v in volumes]
    return out


def _compact(image: Volume) -> Volume:
    """Integer HU stored as int16 when it fits (as CT files usually are): half the bytes to compress."""
    array = image.array
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize > 2 \
            and array.min() >= -32768 and array.max() <= 32767:
        return image.with_array(array.astype(np.int16))
    return image


#: Ends the hidden name a case folder is written under until it is complete.
PARTIAL_SUFFIX = ".partial"


def check_case_folder(case_dir: Path, overwrite: bool = False) -> None:
    """Refuse (before any work) a case folder that is a file or already holds something."""
    case_dir = Path(case_dir)
    if case_dir.exists() and not case_dir.is_dir():
        raise PastaInputError(f"{case_dir} is a file; a case is written as a folder.",
                              "Pass a new folder name with -o.")
    if case_dir.is_dir() and any(case_dir.iterdir()) and not overwrite:
        raise PastaInputError(f"The output folder {case_dir} already exists and is not empty.",
                              "Choose a new folder.")


def write_case(result: SynthesisResult, host: Host, case_dir: str | os.PathLike, request_summary: dict,
               host_name: str, crop: Optional[int] = None, overwrite: bool = False) -> Path:
    """Write the five case files into ``case_dir`` (created atomically; refuses to overwrite)."""
    case_dir = Path(case_dir)
    check_case_folder(case_dir, overwrite)
    temporary = case_dir.parent / f".{case_dir.name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"
    try:
        case_dir.parent.mkdir(parents=True, exist_ok=True)
        temporary.mkdir()
    except OSError as exc:
        raise output_error(case_dir, exc) from exc
    try:
        image = _compact(strip_identifiers(result.image))
        label = image.with_array(label_map(result, host))
        total = image.with_array(host.organs.astype(np.uint8 if host.organs.max() < 256 else np.int16))
        if crop:
            centre = np.argwhere(result.lesion_mask).mean(axis=0)
            image, label, total = crop_1mm(image, [label, total], centre, crop)
        report = build_report(result, image, label, total, host.names, request_summary, host_name)
        write_volume(image, temporary / "img.nii.gz")
        write_volume(label.with_array(label.array.astype(np.uint8)), temporary / "label.nii.gz")
        write_volume(total, temporary / "total.nii.gz")
        atomic_write(temporary / "type.json", json.dumps(type_json(result, result.image, image), indent=1) + "\n")
        atomic_write(temporary / "report.json", json.dumps(report, indent=1) + "\n")
        if case_dir.exists():
            shutil.rmtree(case_dir)
        try:
            os.replace(temporary, case_dir)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise PastaInputError(f"{case_dir} was filled by another run while this one was writing.",
                                      "Give each run its own case folder.") from None
            raise output_error(case_dir, exc) from exc
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return case_dir
