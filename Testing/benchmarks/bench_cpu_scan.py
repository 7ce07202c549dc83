"""The full PASTA network over a whole scan on the CPU, with and without the region of interest (issue 16
item 4): wall time of ``pasta analyze`` on the bundled sample, measured, not estimated.

The network is PASTA's full configuration (240 M parameters, 128^3 patches, PASTA's standardisation to
1 mm LPS) with random weights (no fine-tuned PASTA weights ship, and the time does not depend on them),
saved as a bare checkpoint and run with ``--pasta-defaults --lesion-type TYPE``. Runs:

* ``roi``: ``--organs sample-organs``: only the tiles touching TYPE's organ and 20 mm around it;
* ``whole``: ``--whole-volume``: every tile.

    python Testing/benchmarks/bench_cpu_scan.py [--precision fp32|bf16] [--lesion-type liver_tumor] [--runs roi,whole]

Tens of minutes on a 2-core machine: run it alone. Prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from PASTALib.model.network import PASTA_FULL, PastaUNet

RUNS = {"roi": ["--organs", "sample-organs"], "whole": ["--organs", "sample-organs", "--whole-volume"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--lesion-type", default="liver_tumor")
    parser.add_argument("--runs", default="roi,whole")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / "PASTA_final.pth"
        torch.save(PastaUNet(PASTA_FULL).state_dict(), weights)
        for run in args.runs.split(","):
            out = Path(tmp) / run
            command = [sys.executable, "-m", "PASTALib", "analyze", "sample", "--model", str(weights),
                       "--pasta-defaults", "--lesion-type", args.lesion_type, "--device", "cpu",
                       "--precision", args.precision, "-o", str(out), *RUNS[run]]
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(f"{run} failed:\n{result.stderr[-3000:]}")
            batches = [int(m) for m in re.findall(r"tile batch \d+/(\d+)", result.stdout + result.stderr)]
            rows.append((run, seconds, f"{max(batches)} tile batches" if batches else "not in the log"))
            print(f"{run}: {seconds:.0f} s", flush=True)
    print(f"\nFull PASTA network (random weights), `pasta analyze sample --pasta-defaults "
          f"--lesion-type {args.lesion_type} --precision {args.precision} --device cpu`; {platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}\n")
    print("| run | wall time | work (from the progress log) |\n|---|---:|---|")
    for run, seconds, tiles in rows:
        print(f"| {run} | {seconds / 60:.1f} min | {tiles} |")


if __name__ == "__main__":
    main()
