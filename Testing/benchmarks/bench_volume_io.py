"""Benchmark of the foundation's hot paths: reading, writing, statistics, resampling, `pasta info`.

Counts the work (voxels, bytes) next to each timing so figures can be compared across machines.
Usage:  python Testing/benchmarks/bench_volume_io.py [--repeats 5]
Prints a Markdown table (median of the repeats) ready for RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from PASTALib.io import sample_data
from PASTALib.io.input_checks import assess_ct, intensity_stats
from PASTALib.io.resample import resample_to_spacing
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import read_volume, write_volume

DICOM = Path(__file__).resolve().parents[1] / "Data" / "example_ct_dicom"


def large_ct(shape=(300, 512, 512)) -> Volume:
    """A 512x512x300 int16 CT-like volume (air, body, bone, noise): a typical abdomen series."""
    rng = np.random.default_rng(0)
    array = np.full(shape, -1000, np.int16)
    j, i = np.ogrid[: shape[1], : shape[2]]
    body = ((i - 256) ** 2 / 200**2 + (j - 256) ** 2 / 150**2) < 1
    array[:, body] = 40
    array[:, ((i - 256) ** 2 + (j - 330) ** 2) < 30**2] = 700
    array += rng.integers(-20, 21, size=shape, dtype=np.int16)
    return Volume(array, (0.78, 0.78, 1.25), (-200.0, -200.0, -400.0))


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sample = read_volume(sample_data.SAMPLES["sample"].path)
    big = large_ct()
    rows = []

    def add(name: str, voxels: int, nbytes: int, seconds: float) -> None:
        rows.append((name, voxels, nbytes, seconds))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        add("read sample .nii.gz (int32)", sample.array.size, sample.array.nbytes,
            timed(lambda: read_volume(sample_data.SAMPLES["sample"].path), args.repeats))
        dicom = read_volume(DICOM)
        add("read DICOM series, 20 JPEG2000 slices", dicom.array.size, dicom.array.nbytes,
            timed(lambda: read_volume(DICOM), args.repeats))
        for suffix, compress in ((".nrrd", False), (".nrrd", True), (".nii.gz", True)):
            label = f"write 512x512x300 {suffix}{' gzip' if compress and suffix == '.nrrd' else ''}"
            path = tmp / f"big{suffix}"
            add(label, big.array.size, big.array.nbytes,
                timed(lambda: write_volume(big, path, overwrite=True, compress=compress), args.repeats))
            add(label.replace("write", "read"), big.array.size, big.array.nbytes,
                timed(lambda: read_volume(path), args.repeats))
        add("intensity_stats + assess_ct 512x512x300", big.array.size, big.array.nbytes,
            timed(lambda: assess_ct(intensity_stats(big)), args.repeats))
        resampled = resample_to_spacing(sample, (1.0, 1.0, 1.0))
        add("resample sample 3 mm -> 1 mm (linear, output voxels)", resampled.array.size,
            resampled.array.nbytes, timed(lambda: resample_to_spacing(sample, (1.0, 1.0, 1.0)), args.repeats))
        pasta = Path(sys.executable).parent / "pasta"
        add("`pasta info sample` end to end (process)", sample.array.size, sample.array.nbytes,
            timed(lambda: subprocess.run([str(pasta), "info", "sample", "--progress", "none"],
                                         check=True, capture_output=True), args.repeats))

    print(f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, "
          f"median of {args.repeats} runs\n")
    print("| operation | voxels | MB | median s | MB/s |")
    print("|---|---:|---:|---:|---:|")
    for name, voxels, nbytes, seconds in rows:
        mb = nbytes / 2**20
        print(f"| {name} | {voxels:,} | {mb:.0f} | {seconds:.3f} | {mb / seconds:.0f} |")


if __name__ == "__main__":
    main()
