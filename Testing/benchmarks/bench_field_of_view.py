"""The default detector when the scan starts or ends elsewhere: `sample-lesions` cut by N slices.

Each organ's reference comes from the part of it in view, so where the scan's edge cuts an organ can change
a candidate there; the tile-free search itself does not move (Testing/test_default_model.py checks one cut).
This prints, per cut, the findings (type, voxels on the working grid, confidence; "(false)" where a finding
misses every true lesion) at the default operating point, next to the whole scan's, so a search or scorer
change can be checked for it.

    python Testing/benchmarks/bench_field_of_view.py [--cuts 1 3 5 7 10 14 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_hosts import without_slices  # noqa: E402

from PASTALib.detection.detector import detect  # noqa: E402
from PASTALib.detection.model_folder import load_detector  # noqa: E402
from PASTALib.io import sample_data  # noqa: E402
from PASTALib.io.volume import Volume  # noqa: E402
from PASTALib.io.volume_io import read_volume  # noqa: E402
from PASTALib.model.bundled_models import BUNDLED  # noqa: E402


def findings(image: Volume, organs: Volume, truth: Volume, scorer, sensitivity: str) -> list[str]:
    """Each finding as "group voxels confidence", marked "(false)" where it misses every true lesion (the
    sample's 3 mm grid is the detector's working grid, so candidate and truth voxels line up)."""
    detection = detect(image, organs, scorer, sensitivity)
    out = []
    for s in sorted(detection.kept, key=lambda s: s.candidate.group):
        false = " (false)" if not truth.array[s.candidate.box][s.candidate.mask].any() else ""
        out.append(f"{s.candidate.group} {int(s.candidate.mask.sum())} vox {s.confidence:.2f}{false}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuts", type=int, nargs="+", default=[1, 3, 5, 7, 10, 14, 20])
    parser.add_argument("--sensitivity", default="balanced", choices=("strict", "balanced", "high"))
    args = parser.parse_args()
    scorer = load_detector(BUNDLED["default"])[0]
    image = read_volume(sample_data.SAMPLES["sample-lesions"].path)
    organs = read_volume(sample_data.SAMPLES["sample-organs"].path)
    truth = read_volume(sample_data.SAMPLES["sample-lesions-truth"].path)
    whole = findings(image, organs, truth, scorer, args.sensitivity)
    print(f"sample-lesions ({image.array.shape[0]} slices), {args.sensitivity}: {'; '.join(whole)}\n")
    print("| slices cut | at the start (k = 0) | at the end |\n|---:|---|---|")
    for n in args.cuts:
        rows = []
        for start, end in ((n, 0), (0, n)):
            found = findings(without_slices(image, start, end), without_slices(organs, start, end),
                             without_slices(truth, start, end), scorer, args.sensitivity)
            rows.append("same" if found == whole else "; ".join(found) or "none")
        print(f"| {n} | {rows[0]} | {rows[1]} |", flush=True)


if __name__ == "__main__":
    main()
