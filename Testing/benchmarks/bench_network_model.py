"""Benchmark: a PASTA network model (``--model``) on the bundled sample CT, on the CPU.

Counts the work first (voxels on the model grid, tiles, network FLOPs per tile), then times
`pasta analyze sample-lesions` (the README's main command) end to end as a user runs it (a fresh
process each time: start-up, model load and checksum, segmentation, findings, attribute heads,
report files), median of repeats, with the number of findings it reported.

    python Testing/benchmarks/bench_network_model.py --model MODEL_FOLDER --repeats 3 --threads 2

(The bundled default is a detector, not a network: ``bench_detector.py`` measures it.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def count_work(image: str, model_path: str) -> dict:
    from PASTALib.inference.work import new_shape
    from PASTALib.inference.sliding_window import tile_starts
    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTALib.model.checkpoints import load_model
    from PASTALib.model.network import PastaUNet

    model = load_model(model_path)
    ct = read_volume(sample_data.resolve(image)[0])
    prep = model.preprocessing
    grid = new_shape(ct.array.shape, ct.spacing[::-1], prep.spacing_zyx)
    tiles = int(np.prod([len(tile_starts(max(s, p), p, 0.5)) for s, p in zip(grid, prep.patch_size)]))
    network = PastaUNet(model.config).eval()
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(torch.zeros(1, 1, *prep.patch_size))
    return {"grid": grid, "tiles": tiles, "gflop_per_tile": counter.get_total_flops() / 1e9,
            "weights_mb": sum(p.stat().st_size for p in Path(model.source).glob("*.safetensors")) / 1e6}


def time_analyze(image: str, model_path: str, threads: int, repeats: int) -> tuple[list[float], int]:
    times, findings = [], -1
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "PASTALib", "analyze", image, "-o", str(Path(tmp) / "out"),
                            "--model", model_path,
                            "--threads", str(threads), "--progress", "none", "-q"], check=True,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
            report = json.loads((Path(tmp) / "out" / "report.json").read_text(encoding="utf-8"))
            findings = len(report["findings"])
    return times, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a PASTA network model folder, nnU-Net folder or checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image", default="sample-lesions", help="a bundled sample name or a CT file")
    args = parser.parse_args()
    work = count_work(args.image, args.model)
    times, findings = time_analyze(args.image, args.model, args.threads, args.repeats)
    print("| image | model grid (voxels) | tiles | GFLOP per tile | GFLOP total | weights MB | threads | "
          "findings | analyze median s | runs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {args.image} | {' x '.join(map(str, work['grid']))} | {work['tiles']} | {work['gflop_per_tile']:.1f} | "
          f"{work['gflop_per_tile'] * work['tiles']:.0f} | {work['weights_mb']:.1f} | {args.threads} | {findings} | "
          f"{statistics.median(times):.1f} | {', '.join(f'{t:.1f}' for t in times)} |")
    print(json.dumps({"torch": torch.__version__, "cpu_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
