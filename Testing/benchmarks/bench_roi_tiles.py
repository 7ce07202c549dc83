"""Tiles a PASTA network runs on the bundled sample with and without the region of interest (issue 16).

Counts only (no network): the full PASTA configuration (PASTA's standardisation to LPS at 1 mm, 128^3
patches, overlap 0.5, as ``--pasta-defaults``), and for each organ group the tiles that touch the
group's TotalSegmentator labels grown by ``analysis.pipeline.ROI_MARGIN_MM``, as ``pasta analyze``
selects them. Usage: ``python Testing/benchmarks/bench_roi_tiles.py`` (prints a Markdown table).
"""

from __future__ import annotations

import itertools

import numpy as np

from PASTALib.analysis.pipeline import ROI_MARGIN_MM, roi_region
from PASTALib.inference.standardise import standardise
from PASTALib.inference.work import tile_starts
from PASTALib.io import sample_data
from PASTALib.io.volume_io import read_volume
from PASTALib.lesions import lesion_types
from PASTALib.model.preprocessing import pasta_defaults

GROUPS = {"liver": "liver_tumor", "kidneys": "kidney_tumor", "pancreas": "pancreas_tumor", "lungs": "lung_tumor"}


def tiles_touching(region: np.ndarray | None, shape, patch, overlap: float) -> int:
    starts = [tile_starts(s, p, 1.0 - overlap) for s, p in zip(shape, patch)]
    count = 0
    for origin in itertools.product(*starts):
        box = tuple(slice(a, a + p) for a, p in zip(origin, patch))
        count += 1 if region is None or region[box].any() else 0
    return count


def main() -> None:
    ct = read_volume(sample_data.SAMPLES["sample"].path)
    organs = read_volume(sample_data.SAMPLES["sample-organs"].path)
    prep = pasta_defaults()
    standard = standardise(ct)
    shape = standard.volume.array.shape
    padded = tuple(max(s, p) for s, p in zip(shape, prep.patch_size))
    total = tiles_touching(None, padded, prep.patch_size, 0.5)
    print(f"Sample: {ct.array.shape[::-1]} voxels at {ct.spacing} mm -> {shape[::-1]} at 1 mm (LPS); "
          f"patch {prep.patch_size}, overlap 0.5, margin {ROI_MARGIN_MM:g} mm\n")
    print("| region | tiles run | of | share |\n|---|---:|---:|---:|")
    print(f"| whole volume | {total} | {total} | 100 % |")
    for name, key in GROUPS.items():
        region, _ = roi_region(organs, [lesion_types.BY_KEY[key].id], ct.array.shape)
        if region is None:
            print(f"| {name} | (not in the mask) | {total} | |")
            continue
        on_grid = standard.labels_forward(region.astype(np.uint8)) > 0
        run = tiles_touching(on_grid, shape, prep.patch_size, 0.5)
        print(f"| {name} | {run} | {total} | {100 * run / total:.0f} % |")


if __name__ == "__main__":
    main()
