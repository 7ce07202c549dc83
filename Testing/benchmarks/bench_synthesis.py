"""Lesion-synthesis speed: median ms per lesion per type on one CPU core, set-up costs, batch throughput.

Usage: python Testing/benchmarks/bench_synthesis.py [--repeats 15] [--skip-batch]

Hosts: the 1.5 mm chest CTA crop (lung by thresholding; the full crop from shared/data when
present, else the part in Testing/Data) for the lung tumour, and the bundled 3 mm native abdomen
(with the test stand-in esophagus) for every type. Lesions are 30 mm where the type allows it
(stones and small-organ types get their largest size that fits; the table says which). Timing
covers synthesize() only (seed, shape, texture, blend, quality gate), not file I/O. Batch
throughput runs ``synth-batch`` (with I/O and reports) over the two 3 mm hosts with 1 and 2
worker processes. Prints Markdown tables.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "PASTA", ROOT / "PASTASynth", ROOT / "Testing"):
    sys.path.insert(0, str(extra))

from PASTALib.io.volume_io import read_volume
from PASTASynthLib.catalog import SPECS
from PASTASynthLib.engine import LesionRequest, synthesize
from PASTASynthLib.host import make_host
from synth_hosts import add_standin_esophagus, chest_part, sample_pair, write_host_folders  # noqa: E402

SHARED_CHEST = Path("/work/shared/data/totalseg_examples/chest_crop_a_ct.nii.gz")
SIZE_MM = {"kidney_stone": 10.0, "gallstone": 15.0, "bone_metastasis": 20.0, "pancreas_cyst": 15.0,
           "pancreas_tumor": 20.0, "gallbladder_cancer": 20.0, "esophageal_cancer": 20.0}


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, (time.perf_counter() - start) * 1000.0


def bench_host(name: str, host, keys, repeats: int) -> list[tuple]:
    rows = []
    for key in keys:
        size = SIZE_MM.get(key, 30.0)
        request = lambda seed: LesionRequest(key, size_mm=[size], seed=seed)  # noqa: E731
        _, first = timed(synthesize, host, request(1000))  # includes this organ's one-off analyses
        times = [timed(synthesize, host, request(seed))[1] for seed in range(repeats)]
        rows.append((name, key, size, first, statistics.median(times), max(times)))
    return rows


def bench_batch(workers: int) -> tuple[int, float]:
    from PASTASynthLib.batch import run_dataset

    with tempfile.TemporaryDirectory() as tmp:
        hosts = write_host_folders(Path(tmp) / "hosts")
        start = time.perf_counter()
        summary = run_dataset(hosts, Path(tmp) / "out", per_type=2, workers=workers)
        seconds = time.perf_counter() - start
    return summary["made"], seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"# Synthesis benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, one core\n")

    chest_image, read_ms = timed(read_volume, SHARED_CHEST) if SHARED_CHEST.exists() else timed(chest_part)
    chest, chest_setup = timed(make_host, chest_image, None)
    (image, organs), abdomen_read = timed(sample_pair)
    organs = add_standin_esophagus(image, organs)
    abdomen, abdomen_setup = timed(make_host, image, organs)
    print("| Set-up step | ms |\n|---|---:|")
    print(f"| read chest CT ({chest_image.size}, 1.5 mm) | {read_ms:.0f} |")
    print(f"| chest host: checks + lung threshold mask | {chest_setup:.0f} |")
    print(f"| read abdomen CT + organ mask (3 mm) | {abdomen_read:.0f} |")
    print(f"| abdomen host: checks + phase estimate | {abdomen_setup:.0f} |")

    rows = bench_host("chest 1.5 mm", chest, ["lung_tumor"], args.repeats)
    rows += bench_host("abdomen 3 mm", abdomen, list(SPECS), args.repeats)
    print("\n| Host | Lesion type | Size (mm) | First call, with organ analysis (ms) | Median (ms) | Max (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for host, key, size, first, median, worst in rows:
        print(f"| {host} | {key} | {size:g} | {first:.0f} | {median:.1f} | {worst:.1f} |")
    if not args.skip_batch:
        print("\n| synth-batch, 2 hosts (3 mm) x 15 types x 2 | Cases | Seconds | Cases/min |\n|---|---:|---:|---:|")
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        for workers in (1, 2):
            made, seconds = bench_batch(workers)
            print(f"| {workers} worker(s) | {made} | {seconds:.1f} | {60.0 * made / seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
