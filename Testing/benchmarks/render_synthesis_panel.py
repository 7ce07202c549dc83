"""Render one axial slice per lesion type (host | synthetic with the lesion contour) to a PNG.

Usage: python Testing/benchmarks/render_synthesis_panel.py [-o Resources/Screenshots/synthesis_panel.png]
       [--seed 3]

Hosts: the bundled 3 mm native abdomen (with the test stand-in esophagus) for every type except
the lung tumour, which goes into the 1.5 mm chest CTA crop (lung by thresholding). Used to judge
realism by eye; not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "PASTA", ROOT / "PASTASynth", ROOT / "Testing"):
    sys.path.insert(0, str(extra))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from PASTALib.lesions.anatomy import window_for
from PASTASynthLib.catalog import SPECS
from PASTASynthLib.engine import LesionRequest, synthesize
from PASTASynthLib.host import make_host
from synth_hosts import add_standin_esophagus, chest_part, sample_pair  # noqa: E402

SIZES = {"kidney_stone": 8, "gallstone": 12, "bone_metastasis": 18, "pancreas_cyst": 15,
         "pancreas_tumor": 20, "lung_tumor": 22}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "Resources" / "Screenshots" / "synthesis_panel.png"))
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    image, organs = sample_pair()
    abdomen = make_host(image, add_standin_esophagus(image, organs))
    chest = make_host(chest_part(), None)
    fig, axes = plt.subplots(5, 6, figsize=(15, 13.5), dpi=110)
    for index, (key, spec) in enumerate(SPECS.items()):
        host = chest if key == "lung_tumor" else abdomen
        size = SIZES.get(key, 30 if spec.size_mm[1] >= 40 else 20)
        result = synthesize(host, LesionRequest(key, size_mm=[size], seed=args.seed))
        mask = result.lesion_mask
        k = int(np.argmax(mask.sum(axis=(1, 2))))
        cj, ci = np.argwhere(mask[k]).mean(axis=0).astype(int)
        half = int(round(45.0 / host.image.spacing[0]))
        sj = slice(max(0, cj - half), cj + half)
        si = slice(max(0, ci - half), ci + half)
        width, level = window_for(spec.type.organ)
        if spec.kind in ("stone", "wall", "cyst") or spec.type.organ in ("kidney", "pancreas"):
            width, level = 300.0, 40.0  # narrower than a reading window, to judge contrast
        elif spec.kind == "bone":
            width, level = 800.0, 200.0
        lo, hi = level - width / 2, level + width / 2
        row, col = divmod(index, 3)
        before, after = axes[row, 2 * col], axes[row, 2 * col + 1]
        # flip rows so anterior is up for both host orientations (display only)
        flip = host.image.direction[1, 1] < 0
        show = (lambda a: a[::-1]) if flip else (lambda a: a)
        before.imshow(show(host.image.array[k, sj, si]), cmap="gray", vmin=lo, vmax=hi)
        after.imshow(show(result.image.array[k, sj, si]), cmap="gray", vmin=lo, vmax=hi)
        after.contour(show(mask[k, sj, si].astype(float)), levels=[0.5], colors="yellow", linewidths=0.6)
        attrs = result.lesions[0].attributes
        before.set_title(f"{spec.type.id} {key}: host", fontsize=7)
        after.set_title(f"{attrs['shape']}, {attrs['density']}, {attrs['heterogeneity']}, "
                        f"{result.lesions[0].record['appearance']['target_hu']:.0f} HU", fontsize=6)
        for ax in (before, after):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("PASTA Synth: one lesion per type (left host, right synthetic; yellow = lesion mask)", fontsize=10)
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
