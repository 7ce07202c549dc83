"""Peak memory of ``pasta analyze`` with the default model on a full-size CT (issue 20, item 6).

Builds a 512 x 512 x 400 int16 CT (and its organ mask) by resampling the bundled native abdomen
(real anatomy, 0.72 x 0.59 x 0.84 mm voxels), then runs ``pasta analyze`` on it under
``/usr/bin/time -v`` and prints peak resident memory, wall time and the voxel counts beside them.

Usage:  python Testing/benchmarks/bench_memory.py [--shape 400,512,512] [--keep DIR]
Prints a Markdown table for RESULTS.md. Needs GNU time (``/usr/bin/time``), i.e. Linux.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from PASTALib.io import sample_data
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume, write_volume

TIME = "/usr/bin/time"


def full_size_case(folder: Path, shape: tuple[int, int, int]) -> tuple[Path, Path]:
    """The bundled abdomen resampled onto ``shape`` (k, j, i) voxels over the same field of view."""
    sample = read_volume(sample_data.SAMPLES["sample"].path)
    organs = read_volume(sample_data.sample_mask_for("sample").path)
    extent = np.asarray(sample.array.shape[::-1]) * np.asarray(sample.spacing)  # x, y, z in mm
    spacing = tuple(float(v) for v in extent / np.asarray(shape[::-1]))
    origin = np.asarray(sample.origin) + sample.direction @ (
        (np.asarray(spacing) - np.asarray(sample.spacing)) / 2.0)
    reference = Volume(np.zeros(shape, np.uint8), spacing, tuple(origin), sample.direction)
    ct = resample_to_reference(sample, reference, Interpolation.LINEAR, default_value=-1024.0)
    mask = resample_to_reference(organs, reference, Interpolation.NEAREST, default_value=0.0)
    image_path, mask_path = folder / "ct.nii.gz", folder / "organs.nii.gz"
    if image_path.exists() and mask_path.exists() and read_volume(image_path).array.shape == shape:
        return image_path, mask_path  # made by an earlier run with --keep
    write_volume(ct.with_array(np.round(ct.array).astype(np.int16)), image_path)
    write_volume(mask.with_array(mask.array.astype(np.uint8)), mask_path)
    return image_path, mask_path


def measured(command: list[str]) -> tuple[float, float, int]:
    """(peak RSS in GiB, wall seconds, exit code) of ``command`` under GNU time."""
    run = subprocess.run([TIME, "-v", *command], capture_output=True, text=True)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", run.stderr)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-3000:])
    return peak_kb / 2**20, seconds, run.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="400,512,512", help="k,j,i voxels (default 400,512,512)")
    parser.add_argument("--keep", type=Path, help="keep the generated CT and outputs here")
    args = parser.parse_args()
    if not Path(TIME).exists():
        sys.exit(f"{TIME} (GNU time) is needed to measure peak memory.")
    shape = tuple(int(v) for v in args.shape.split(","))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="pasta-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        image, organs = full_size_case(folder, shape)
        pasta = [sys.executable, "-m", "PASTALib.cli.main"]
        rows = []
        for label, extra in (("with --organs (mask on the CT grid)", ["--organs", str(organs)]),
                             ("no organ mask (lung by thresholding)", [])):
            out = folder / f"out-{len(rows)}"
            shutil.rmtree(out, ignore_errors=True)
            peak, wall, code = measured([*pasta, "analyze", "--quiet", str(image), *extra, "-o", str(out)])
            rows.append((label, peak, wall, code))
        voxels = int(np.prod(shape))
        print(f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}")
        print(f"CT: {shape[2]} x {shape[1]} x {shape[0]} voxels (i x j x k) = {voxels / 1e6:.0f} M voxels, "
              f"int16 on disk; default model\n")
        print("| pasta analyze | peak RSS (GiB) | bytes per input voxel | wall (s) | exit |")
        print("|---|---:|---:|---:|---:|")
        for label, peak, wall, code in rows:
            if code != 0:
                print(f"| {label} | failed (exit {code}, see stderr) | | | {code} |")
                continue
            print(f"| {label} | {peak:.2f} | {peak * 2**30 / voxels:.0f} | {wall:.0f} | {code} |")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
