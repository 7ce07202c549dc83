"""Test helper: write a Volume as a DICOM CT series with SimpleITK (geometry in the per-slice tags).

Only tests write DICOM images; the product writes DICOM SEG/SR with highdicom (later issues).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from PASTALib.io.sitk_bridge import to_sitk
from PASTALib.io.volume import Volume


def decimal_string(value: float) -> str:
    """DICOM DS: at most 16 characters, as precise as that allows."""
    for digits in range(15, 4, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(value)


def write_dicom_series(volume: Volume, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image = to_sitk(volume.with_array(volume.array.astype(np.int16)))
    direction = volume.direction
    orientation = "\\".join(decimal_string(v) for v in (*direction[:, 0], *direction[:, 1]))
    study, series = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.1.2"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(volume.size[2]):
        slice_image = image[:, :, k]
        position = volume.index_to_lps_points([0, 0, k])
        tags = {
            "0008|0060": "CT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series}.{k + 1}",
            "0020|000d": study,
            "0020|000e": series,
            "0020|0013": str(k + 1),
            "0020|0037": orientation,
            "0020|0032": "\\".join(decimal_string(v) for v in position),
            "0028|0030": f"{decimal_string(volume.spacing[1])}\\{decimal_string(volume.spacing[0])}",
            "0018|0050": decimal_string(volume.spacing[2]),
            "0028|1052": "0",
            "0028|1053": "1",
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        path = folder / f"slice_{k:04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(slice_image)
        paths.append(path)
    return paths
