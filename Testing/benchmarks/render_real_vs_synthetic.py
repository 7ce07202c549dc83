"""Real against synthetic lung lesions, side by side, for the eye (issue 19 item 5).

Usage: python Testing/benchmarks/render_real_vs_synthetic.py [OUT.png]

The real lesion is the spiculated lung mass of LIDC-IDRI-0001 (``../shared/data/more_hosts``; TCIA,
CC BY 3.0; located in ``Testing/tools/detector_data.py``). The synthetic ones are ``pasta synth`` lung
tumours placed into the same scan (its own organ mask), away from the real mass, so scanner, noise and
lung are the same. Each column: axial and coronal 64 mm crops, lung window. This is the only real lesion
the project holds; the other types have no real counterpart here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "PASTA", ROOT / "PASTASynth", ROOT / "Testing", ROOT / "Testing" / "tools"):
    sys.path.insert(0, str(extra))

from PASTALib.io.volume_io import read_volume  # noqa: E402
from PASTASynthLib.engine import LesionRequest, synthesize  # noqa: E402
from PASTASynthLib.host import make_host  # noqa: E402
from detector_data import MORE, REAL_LESIONS_LPS  # noqa: E402

OUT = ROOT / "Resources" / "Screenshots" / "lung_real_vs_synthetic.png"
CROP_MM = 64.0
WINDOW = (-1000.0, 200.0)
#: (title, request attributes, size mm, seed): a spread of what the synthesis makes in this scan.
SYNTHETIC = [("synthetic, irregular (spiculated) 30 mm", {"shape": "irregular", "density": "isodense"}, 30.0, 1),
             ("synthetic, irregular 18 mm", {"shape": "irregular", "density": "isodense"}, 18.0, 2),
             ("synthetic, lobulated 22 mm, juxtapleural", {"shape": "lobulated", "relation": "close-contact",
                                                           "density": "isodense"}, 22.0, 3),
             ("synthetic, round 12 mm", {"shape": "round-like", "relation": "none", "density": "isodense"}, 12.0, 4),
             ("synthetic, ground glass 20 mm", {"shape": "round-like", "density": "hypodense"}, 20.0, 5)]


def crops(array: np.ndarray, centre_kji, spacing_kji) -> tuple[np.ndarray, np.ndarray]:
    """Axial and coronal crops of CROP_MM around a voxel (k, j, i)."""
    k, j, i = (int(round(v)) for v in centre_kji)
    half = (CROP_MM / 2 / np.asarray(spacing_kji)).astype(int)

    def window(index, axis):
        return slice(max(0, index - half[axis]), min(array.shape[axis], index + half[axis]))

    axial = array[k, window(j, 1), window(i, 2)]
    coronal = array[window(k, 0), j, window(i, 2)][::-1]
    return axial, coronal


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    image = read_volume(MORE / "lidc0001_chest_ct.nii.gz")
    organs = read_volume(MORE / "lidc0001_chest_organs.nii.gz")
    names = {int(k): v for k, v in json.loads((MORE / "lidc0001_chest_organs_labels.json").read_text()).items()}
    host = make_host(image, organs, names)
    spacing = host.spacing_kji
    real_lps = np.asarray(REAL_LESIONS_LPS["lidc_0001"][0])
    real_kji = image.ras_to_index_points(real_lps * np.array([-1.0, -1.0, 1.0]))[::-1]
    columns = [("real: LIDC-IDRI-0001 lung mass (31 x 26 mm)", image.array, real_kji)]
    for title, attributes, size, seed in SYNTHETIC:
        for attempt in range(20):
            result = synthesize(host, LesionRequest("lung_tumor", size_mm=[size], attributes=attributes,
                                                    seed=seed + 100 * attempt))
            lesion = result.lesions[0]
            centre = np.asarray(lesion.record["seed_ijk"])[::-1]
            if np.linalg.norm((centre - real_kji) * spacing) > 60.0:  # well away from the real mass
                break
        columns.append((title, result.image.array, centre))
        print(f"{title}: seed {seed + 100 * attempt}, {lesion.record['organ']}, geometry "
              f"{ {k: v for k, v in lesion.record['geometry'].items() if not k.endswith('_kji')} }")
    fig, axes = plt.subplots(2, len(columns), figsize=(2.6 * len(columns), 5.6))
    for col, (title, array, centre) in enumerate(columns):
        for row, crop in enumerate(crops(array, centre, spacing)):
            ax = axes[row, col]
            aspect = spacing[0] / spacing[2] if row else 1.0
            ax.imshow(crop, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(title, fontsize=7)
    axes[0, 0].set_ylabel("axial", fontsize=8)
    axes[1, 0].set_ylabel("coronal", fontsize=8)
    fig.suptitle("Real vs synthetic lung lesions in the same scan (LIDC-IDRI-0001, 0.70 x 0.70 x 2.5 mm; "
                 "lung window)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
