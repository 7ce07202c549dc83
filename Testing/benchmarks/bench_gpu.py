"""GPU check and timings of the inference engine, for a machine that has PyTorch and CUDA but neither
SimpleITK nor nnU-Net (the lent GPU machines: only the repository travels, 64 MiB with what it carries).

    python Testing/benchmarks/bench_gpu.py --export .gpu/sample.npz        # here: the sample CT as numpy
    python Testing/benchmarks/bench_gpu.py --image .gpu/sample.npz         # there: the check, printed as tables

Three tables:

1. CUDA gives the CPU's answer: the tiny test network (Testing/Data/tiny_pasta_organs) at fp32 on both
   devices, voxel agreement of the labels and the largest probability difference.
2. The GPU default (fp16 autocast) against fp32 on CUDA, the same network: agreement.
3. The full 240 M-parameter PASTA network (random weights, seed 0; 1 mm plan, 128^3 patch, as the
   authors' models) on the sample CT: seconds per predict (median of ``--repeats`` after one warm-up),
   without and with 8x mirroring, fp16 and fp32, and the peak GPU memory. The nnU-Net v2 comparison is
   ``bench_inference.py --model full --device cuda`` where nnU-Net is installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

TESTING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTING))

from nnunet_peer import full_model_folder  # noqa: E402  (numpy and torch only)

from PASTALib.inference.predictor import Predictor  # noqa: E402
from PASTALib.io.volume import Volume  # noqa: E402
from PASTALib.model.checkpoints import load_model  # noqa: E402
from PASTALib.model.network import parameter_count  # noqa: E402


def export(path: Path) -> None:
    """Write the bundled sample CT as an npz (array and geometry), read where SimpleITK is installed."""
    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume

    ct = read_volume(sample_data.SAMPLES["sample"].path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, array=ct.array, spacing=np.array(ct.spacing), origin=np.array(ct.origin),
                        direction=np.array(ct.direction))
    print(f"wrote {path}: {ct.array.shape} {ct.array.dtype}, spacing {ct.spacing}")


def load(path: Path) -> Volume:
    data = np.load(path)
    return Volume(data["array"], tuple(float(v) for v in data["spacing"]), tuple(float(v) for v in data["origin"]),
                  np.asarray(data["direction"], np.float64))


def timed(function, repeats: int) -> tuple[float, object]:
    function()  # warm-up: cuDNN autotuning and allocator growth are not the steady state
    times, result = [], None
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def agreement(a, b) -> tuple[float, float]:
    same = float(np.mean(a.labels.array == b.labels.array))
    return same, float(np.max(np.abs(np.asarray(a.probabilities) - np.asarray(b.probabilities))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, help="write the sample CT to this npz and stop")
    parser.add_argument("--image", type=Path, help="the npz written by --export")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.export:
        export(args.export)
        return
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check needs a GPU")
    ct = load(args.image)
    print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}; CT {ct.array.shape} at {ct.spacing} mm\n")

    tiny = load_model(TESTING / "Data" / "tiny_pasta_organs")
    cpu = Predictor(tiny, device="cpu", tta=True, precision="fp32").predict(ct, return_probabilities=True)
    gpu32 = Predictor(tiny, device="cuda", tta=True, precision="fp32").predict(ct, return_probabilities=True)
    gpu16 = Predictor(tiny, device="cuda", tta=True).predict(ct, return_probabilities=True)
    print("| tiny network, 8x mirroring | label agreement | largest probability difference |")
    print("|---|---:|---:|")
    pairs = {"CUDA fp32 vs CPU fp32": (gpu32, cpu), "CUDA fp16 (default) vs CUDA fp32": (gpu16, gpu32)}
    for name, (a, b) in pairs.items():
        same, diff = agreement(a, b)
        print(f"| {name} | {100 * same:.4f} % | {diff:.2e} |")

    with tempfile.TemporaryDirectory() as tmp:
        full = load_model(full_model_folder(Path(tmp)))
    # the stored-order path: PASTA's standardisation resamples with SimpleITK, which the GPU machine lacks. For
    # this sample it is a flip of two axes plus the 1 mm resampling, so both paths run grids of one size and tiles
    full = replace(full, preprocessing=replace(full.preprocessing, standardise="none"))
    print(f"\nfull PASTA network: {parameter_count(full.config):,} parameters, patch "
          f"{full.preprocessing.patch_size}, {full.preprocessing.spacing_zyx} mm; median of {args.repeats}\n")
    print("| mirroring | precision | s per predict | peak GPU memory GiB | label agreement with fp32 |")
    print("|---|---|---:|---:|---:|")
    for tta in (False, True):
        reference = None
        for precision in ("fp32", "auto"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            predictor = Predictor(full, device="cuda", tta=tta, precision=precision)
            seconds, result = timed(lambda: predictor.predict(ct), args.repeats)
            peak = torch.cuda.max_memory_allocated() / 2 ** 30
            same = 1.0 if reference is None else float(np.mean(result.labels.array == reference))
            reference = result.labels.array if reference is None else reference
            print(f"| {'8x' if tta else 'off'} | {'fp16 (default)' if precision == 'auto' else precision} "
                  f"| {seconds:.2f} | {peak:.1f} | {100 * same:.3f} % |", flush=True)
            del predictor


if __name__ == "__main__":
    main()
