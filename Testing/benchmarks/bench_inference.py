"""Benchmark: `pasta segment`'s engine against nnU-Net v2's nnUNetPredictor, same run, same settings.

Both segment the bundled sample CT. Setup (loading, building the predictor) is excluded; each timing
is one full predict call (preprocessing, sliding window, resampling back, argmax), median of repeats.

    python Testing/benchmarks/bench_inference.py --model tiny            # CPU: the small test network
    python Testing/benchmarks/bench_inference.py --model full --device cuda   # GPU: full PASTA, 1 mm grid

`full` is the 240 M-parameter PASTA network with random weights (no fine-tuned weights ship), planned
at 1 mm with a 128^3 patch like the authors' models; `tiny` is Testing/Data/tiny_pasta_organs.
Both are written as a plain ``nnUNetTrainer`` folder, so both engines see the same arrays: a PASTA trainer's
folder makes `pasta segment` apply PASTA's standardisation (LPS order at 1 mm) first, which nnUNetPredictor
does not do, and the table would compare different work (it did from 2026-12-02 to 2026-12-04: 17 s against
3.4 s and 97.4 % agreement for the tiny model, which then ran at 1 mm instead of its 3.5 mm plan).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TESTING = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTING))

from nnunet_peer import full_model_folder, nnunet_predictor, write_results_folder  # noqa: E402

from PASTALib.io import sample_data
from PASTALib.model.checkpoints import load_model
from PASTALib.model.network import parameter_count
from PASTALib.inference.predictor import Predictor
from PASTALib.io.volume_io import read_volume


#: nnU-Net's own trainer: its folders run as stored (no PASTA standardisation), as nnUNetPredictor runs them
PLAIN_TRAINER = "nnUNetTrainer"


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ct = read_volume(sample_data.SAMPLES["sample"].path)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "full":
            folder = full_model_folder(Path(tmp), trainer_name=PLAIN_TRAINER)
        else:
            tiny = load_model(TESTING / "Data" / "tiny_pasta_organs")
            folder = write_results_folder(Path(tmp) / "tiny", tiny.states, tiny.preprocessing, tiny.config,
                                          [c.name for c in tiny.classes], trainer_name=PLAIN_TRAINER,
                                          mirror_axes=tiny.mirror_axes)
        model = load_model(folder)
        device = torch.device(args.device)
        print(f"model {args.model}: {parameter_count(model.config):,} parameters, patch {model.preprocessing.patch_size}, "
              f"spacing {model.preprocessing.spacing_zyx} mm; device {device} "
              f"({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}); "
              f"torch {torch.__version__}; median of {args.repeats}\n")
        print("| mirroring | nnUNetPredictor s | pasta s | speed-up | voxel agreement |")
        print("|---|---:|---:|---:|---:|")
        for mirroring in (False, True):
            peer = nnunet_predictor(folder, model.states, model.config, mirroring, model.mirror_axes, device)
            peer_seconds, reference = timed(lambda: peer.predict_single_npy_array(
                ct.array[None].astype(np.float32), {"spacing": list(ct.spacing[::-1])}, None, None, False),
                args.repeats)
            ours = Predictor(model, device=args.device, tta=mirroring)
            ours_seconds, result = timed(lambda: ours.predict(ct), args.repeats)
            agreement = float(np.mean(result.labels.array == reference))
            print(f"| {'8x' if mirroring and len(model.mirror_axes) == 3 else 'on' if mirroring else 'off'} "
                  f"| {peer_seconds:.2f} | {ours_seconds:.2f} | {peer_seconds / ours_seconds:.2f}x "
                  f"| {100 * agreement:.3f} % |", flush=True)


if __name__ == "__main__":
    main()
