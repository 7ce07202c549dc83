"""Organ masks from what users have: a TotalSegmentator label map, or a Slicer segmentation file
(``.seg.nrrd``, as the TotalSegmentator extension saves it), turned into TotalSegmentator v2 ids.

A ``.seg.nrrd`` is read with slicerio (the maintained reader of Slicer's format); its segments are mapped
by :mod:`.organ_terms` (terminology codes first, then names), and segments that are no TotalSegmentator
class are named in the notes, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.io.input_checks import check_label_map
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume

from .organ_terms import map_segments

SEGMENTATION_SUFFIX = ".seg.nrrd"


def read_segmentation_file(path: str | Path) -> tuple[Volume, list[str]]:
    """A ``.seg.nrrd`` as a label map of TotalSegmentator v2 ids, and notes on segments not recognised."""
    try:
        import slicerio
        from slicerio.segmentation import terminology_entry_to_string
    except ImportError:
        raise PastaInputError(f"{Path(path).name} is a Slicer segmentation; reading it needs slicerio.",
                              'pip install "pasta-slicer[segmentations]" (or pip install slicerio).') from None
    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure to parse is the file's, not ours
        raise PastaInputError(f"Cannot read the Slicer segmentation {path}: {exc}.",
                              "Save it again from Slicer as .seg.nrrd.") from None
    voxels = np.asarray(segmentation["voxels"])
    layers = voxels if voxels.ndim == 4 else voxels[np.newaxis]  # (layer, i, j, k)
    matrix = np.asarray(segmentation["ijkToLPS"], dtype=np.float64)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    if np.any(spacing <= 0):
        raise PastaInputError(f"The Slicer segmentation {path} has a degenerate grid.")
    segments = segmentation.get("segments", [])
    terms = {}
    for number, segment in enumerate(segments, start=1):
        terminology = segment.get("terminology")
        entry = terminology_entry_to_string(terminology) if terminology else None
        terms[number] = (str(segment.get("name", f"segment {number}")), entry)
    mapping, unknown = map_segments(terms)
    labels = np.zeros(layers.shape[1:], np.int16)
    for number, segment in enumerate(segments, start=1):
        if number in mapping:
            labels[layers[int(segment.get("layer", 0))] == int(segment.get("labelValue", number))] = mapping[number]
    volume = Volume(np.ascontiguousarray(labels.transpose(2, 1, 0)), tuple(spacing), tuple(matrix[:3, 3]),
                    matrix[:3, :3] / spacing)
    notes = [f"organ segment not recognised, ignored: {name}" for name in unknown]
    return volume, notes


def read_organ_mask(path: str | Path) -> tuple[Volume, list[str]]:
    """A label map (TotalSegmentator v2 ids) or a Slicer ``.seg.nrrd``; notes say what was not used."""
    if str(path).lower().endswith(SEGMENTATION_SUFFIX):
        return read_segmentation_file(path)
    volume = read_volume(path)
    check_label_map(volume, f"organ mask {Path(path).name}")
    return volume, []


def read_organs(organs_arg: Optional[str], sample, image: Optional[Volume] = None
                ) -> tuple[Optional[str], Optional[Volume], list[str]]:
    """The organ mask asked for (``auto``: TotalSegmentator run on ``image``), or the bundled one of a
    sample image: (name, Volume or None, notes)."""
    from .auto_organs import AUTO, totalsegmentator_organs

    if organs_arg == AUTO:
        if image is None:
            raise PastaInputError("--organs auto needs the CT it segments.", "Pass --organs with an organ mask.")
        volume, notes = totalsegmentator_organs(image)
        return "auto (TotalSegmentator, fast)", volume, notes
    if organs_arg is None and sample is not None:
        bundled = sample_data.sample_mask_for(sample.name)
        organs_arg = bundled.name if bundled else None
    if not organs_arg:
        return organs_arg, None, []
    volume, notes = read_organ_mask(sample_data.resolve(organs_arg)[0])
    return organs_arg, volume, notes
