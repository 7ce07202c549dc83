"""Time `pasta features`' two parts: crop preprocessing and the encoder, per crop.

The encoder has the full PASTA architecture (PASTA_FULL: 1024 features) with random weights, as
the pretrained weights are not bundled: the arithmetic, and so the time, is the same. Crops are
PASTA's 96^3 (lesion) and 128^3 (organ), from a liver tumour synthesised into the bundled sample.

    python Testing/benchmarks/bench_features.py [--repeats 3] [--device cpu|cuda] [--threads N]

Prints Markdown tables (median of the repeats).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_seconds(function, repeats: int) -> tuple[float, float]:
    first = time.perf_counter()
    function()
    first = time.perf_counter() - first
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--part", choices=("all", "crops", "heads"), default="all")
    args = parser.parse_args()
    if args.part in ("all", "heads"):
        bench_heads()
    if args.part in ("all", "crops"):
        bench_crops(args)


def bench_heads(n: int = 80, d: int = 1024) -> None:
    """fit-head on random 1024-d features (n rows): 5-fold CV plus the final fit, as the CLI does."""
    from PASTALib.heads.fitting import Labels, fit_head
    from PASTALib.heads.feature_table import FeatureTable

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    ids = [f"c{i}/F1" for i in range(n)]
    table = FeatureTable(ids, [i.split("/")[0] for i in ids], ["finding"] * n, ["liver_tumor"] * n, [1] * n,
                         ["random"] * n, ["0" * 64] * n, ['{"lesion_size": 96}'] * n, x)
    time_ = np.exp(-x[:, 0] + rng.normal(size=n) * 0.3) + 0.1
    event = (rng.uniform(size=n) < 0.8).astype(int)
    tasks = {"binary": Labels(ids, ["a" if v > 0 else "b" for v in x[:, 0]], np.zeros(0), np.zeros(0), "", Path("l")),
             "survival": Labels(ids, [], time_, event, "", Path("l"))}
    print(f"| fit-head task ({n} rows x {d} features) | Seconds (5-fold CV + final fit) | CV metric (mean) |")
    print("|---|---:|---:|")
    for task, labels in tasks.items():
        start = time.perf_counter()
        head = fit_head(table, labels, task)
        name = "auc" if task == "binary" else "c_index"
        print(f"| {task} | {time.perf_counter() - start:.1f} | {name} {head['cv']['mean'][name]:.2f} |")
    print()


def bench_crops(args: argparse.Namespace) -> None:

    import torch

    from PASTALib.model.card import ClassInfo
    from PASTALib.model.checkpoints import LoadedModel
    from PASTALib.heads.features import CropSettings, FeatureExtractor, finding_items, organ_items
    from PASTALib.model.network import PASTA_FULL, PastaUNet
    from PASTALib.model.preprocessing import pasta_defaults
    from PASTASynthLib.engine import LesionRequest, synthesize
    from PASTASynthLib.host import make_host
    from synth_hosts import sample_pair

    if args.threads:
        torch.set_num_threads(args.threads)
    image, organs = sample_pair()
    result = synthesize(make_host(image, organs), LesionRequest("liver_tumor", size_mm=[30], seed=1))
    seg = image.with_array(result.lesion_mask.astype(np.uint8) * 2)
    torch.manual_seed(0)
    state = PastaUNet(PASTA_FULL).state_dict()
    classes = [ClassInfo(i, n) for i, n in enumerate(("background", "organ", "lesion"))]
    model = LoadedModel("benchmark", Path("random PASTA_FULL"), PASTA_FULL, [state], pasta_defaults(), classes,
                        {"random": "0" * 64})
    extractor = FeatureExtractor(model, args.device, CropSettings(), batch_size=1)
    lesion = finding_items("b", result.image, seg)[0]
    liver = organ_items("b", result.image, organs, ["liver"])[0]
    print(f"torch {torch.__version__}, device {extractor.device}, threads {torch.get_num_threads()}, "
          f"{args.repeats} repeats (median), encoder width {extractor.dimension}\n")
    print("| Step | Crop | First call (s) | Median (s) |\n|---|---|---:|---:|")
    for name, item in (("lesion (30 mm liver tumour)", lesion), ("organ (liver)", liver)):
        size = 96 if item.kind == "finding" else 128
        first, median = _median_seconds(lambda: extractor.crop(result.image, item), args.repeats)
        print(f"| crop: 1 mm resample of the box + SLF + pad/resize, {name} | {size}^3 | {first:.3f} | {median:.3f} |")
        crop = extractor.crop(result.image, item)
        first, median = _median_seconds(lambda: extractor.encode([crop]), args.repeats)
        print(f"| encoder (PASTA_FULL, fp32), {name} | {size}^3 | {first:.3f} | {median:.3f} |")


if __name__ == "__main__":
    main()
