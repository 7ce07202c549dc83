#!/usr/bin/env python3
"""Size distribution of real lesions from a folder of published label masks.

Why: the synthesis draws default lesion sizes from real series (``PASTASynthLib/catalog.py:
SIZE_PRIORS``). Where a public dataset ships lesion masks but its paper gives no size table, the
distribution is measured here, the same way for every dataset, so the numbers in the catalog can be
recomputed by anyone holding the masks.

The size is the equivalent-sphere diameter, (6 V / pi)^(1/3): the geometric mean of the three axis
diameters the synthesis draws (an ellipsoid of axes a, b, c has exactly this diameter).

Example (PANORAMA manual PDAC labels, label 1; 1-10 s per mask and core):
    python Testing/tools/lesion_sizes_from_masks.py /path/to/panorama_labels/manual_labels --label 1 --jobs 2
"""
from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from PASTASynthLib.catalog import equivalent_sphere_diameter_mm

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def equivalent_diameters(mask: np.ndarray, voxel_ml: float, min_ml: float) -> list[float]:
    """Equivalent-sphere diameters (mm) of the mask's 26-connected lesions, largest first."""
    boxes = ndimage.find_objects(mask.astype(np.uint8))
    if not boxes:
        return []
    components, _ = ndimage.label(mask[boxes[0]], structure=np.ones((3, 3, 3), bool))
    volumes_ml = np.sort(np.bincount(components.ravel())[1:] * voxel_ml)[::-1]
    return [equivalent_sphere_diameter_mm(v * 1000.0) for v in volumes_ml if v >= min_ml]


def measure_file(path: Path, label: int, min_ml: float) -> list[float]:
    image = sitk.ReadImage(str(path))
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    return equivalent_diameters(sitk.GetArrayViewFromImage(image) == label, voxel_ml, min_ml)


def measure_folder(folder: Path, label: int, min_ml: float, jobs: int = 1) -> list[list[float]]:
    """Per mask in ``folder``: its lesions' diameters, largest first (empty without the label)."""
    files = sorted(p for p in folder.iterdir() if p.name.endswith(MASK_SUFFIXES))
    if not files:
        raise SystemExit(f"no label masks ({', '.join(MASK_SUFFIXES)}) in {folder}")
    measure = functools.partial(measure_file, label=label, min_ml=min_ml)
    cases = []
    # decompressing the masks is the slow part. Spawned, not forked: a fork of a process whose other threads
    # hold a lock (torch, SimpleITK, as in the test suite) can leave the child waiting on it for ever
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for number, found in enumerate(pool.imap(measure, files), 1):
            print(f"\r{number}/{len(files)}", end="", file=sys.stderr, flush=True)
            cases.append(found)
    print(file=sys.stderr)
    return cases


def summary(diameters: list[float]) -> str:
    values = np.asarray(diameters)
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    spread = f"  SD {values.std(ddof=1):.1f}" if values.size > 1 else ""
    return (f"n={values.size}  median {p50:.1f} mm  IQR {p25:.1f}-{p75:.1f} mm  mean {values.mean():.1f}{spread}"
            f"  range {values.min():.1f}-{values.max():.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="folder of label masks, one case per file")
    parser.add_argument("--label", type=int, default=1, help="label value of the lesion class")
    parser.add_argument("--min-ml", type=float, default=0.05,
                        help="components below this volume are not lesions (annotation specks)")
    parser.add_argument("--jobs", type=int, default=1, help="masks read in parallel")
    args = parser.parse_args(argv)
    cases = measure_folder(args.folder, args.label, args.min_ml, args.jobs)
    with_lesion = [c for c in cases if c]
    if not with_lesion:
        print(f"no lesion with label {args.label} in {args.folder}", file=sys.stderr)
        return 1
    print(f"{args.folder}, label {args.label}: {len(with_lesion)} of {len(cases)} cases hold a lesion "
          f">= {args.min_ml:g} mL")
    print("equivalent-sphere diameter, largest per case: " + summary([c[0] for c in with_lesion]))
    print("equivalent-sphere diameter, every lesion:     " + summary([d for c in with_lesion for d in c]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
