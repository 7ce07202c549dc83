"""Synthetic lesions for the default detector: training patients and held-out patients, never mixed.

Patients (every scan in ``../shared/data``; crops of one scan are one patient):

* training: the native 3 mm abdomen (the bundled sample, with the test suite's stand-in esophagus),
  the chest CTA (crops A and B are one patient), TCGA-HNSC 0005 and 0006 (low-resolution whole body);
* held out: the contrast-enhanced DICOM abdomen, LIDC-IDRI-0001 (chest and upper abdomen, 89 organ
  labels, with a real nodule: see :data:`LIDC_REAL_NODULE_LPS`), TCGA-HNSC 0008 and 0010.

Each case is one synthetic lesion (uniform type among those the host can take, diameter log-uniform
in 10-50 mm within the type's range, a fresh seed) in a host on the detector's working grid. A case
file keeps only the changed box, so hundreds of cases take a few MB. Resumable: existing cases are kept
(``--redo TYPE`` makes one type's cases again after a synthesis change).

    python Testing/tools/detector_data.py --out .cache/detector --per-type 8
    python Testing/tools/detector_data.py --per-type 24 --extra      # more lesions to fit on (never scored)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing"))

from PASTALib.detection.grid import to_working_grid  # noqa: E402
from PASTALib.errors import PastaInputError  # noqa: E402
from PASTALib.io.volume import Volume  # noqa: E402
from PASTALib.io.volume_io import read_volume  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TOTALSEG = SHARED / "totalseg_examples"
MORE = SHARED / "more_hosts"
#: The real, unlabelled lung mass of LIDC-IDRI-0001 (world LPS, mm; a spiculated 31 x 26 mm mass in the
#: left lower lobe, found by the detector and checked on its key image) and a radius that covers it:
#: a candidate there is a real lesion, neither a false finding nor a tissue example.
REAL_LESIONS_LPS = {"lidc_0001": [(56.9, 86.7, -115.4)]}
REAL_LESION_RADIUS_MM = 25.0


@dataclass
class PatientScan:
    name: str
    patient: str
    split: str  #: "train" or "heldout"
    image: Path
    organs: Optional[Path]
    names_json: Optional[Path] = None
    standin_esophagus: bool = False


SCANS = [
    PatientScan("abdomen_native", "totalseg-abdomen", "train", TOTALSEG / "abdomen_native_3mm_ct.nii.gz",
                TOTALSEG / "abdomen_native_3mm_organs.nii.gz", standin_esophagus=True),
    PatientScan("chest_a", "totalseg-cta", "train", TOTALSEG / "chest_crop_a_ct.nii.gz", None),
    PatientScan("chest_b", "totalseg-cta", "train", TOTALSEG / "chest_crop_b_ct.nii.gz", None),
    PatientScan("tcga_0005", "tcga-hnsc-0005", "train", MORE / "tcga_hnsc_0005_wholebody_lowres_ct.nii.gz", None),
    PatientScan("tcga_0006", "tcga-hnsc-0006", "train", MORE / "tcga_hnsc_0006_wholebody_lowres_ct.nii.gz", None),
    PatientScan("dicom_abdomen", "totalseg-dicom", "heldout", TOTALSEG / "example_ct_dicom",
                TOTALSEG / "abdomen_contrast_dicom_organs.nii.gz"),
    PatientScan("lidc_0001", "lidc-idri-0001", "heldout", MORE / "lidc0001_chest_ct.nii.gz",
                MORE / "lidc0001_chest_organs.nii.gz", MORE / "lidc0001_chest_organs_labels.json"),
    PatientScan("tcga_0008", "tcga-hnsc-0008", "heldout", MORE / "tcga_hnsc_0008_wholebody_lowres_ct.nii.gz", None),
    PatientScan("tcga_0010", "tcga-hnsc-0010", "heldout", MORE / "tcga_hnsc_0010_wholebody_lowres_ct.nii.gz", None),
]


def organ_names(scan: PatientScan) -> Optional[dict[int, str]]:
    if scan.names_json is None:
        return None
    return {int(k): v for k, v in json.loads(scan.names_json.read_text(encoding="utf-8")).items()}


def load_scan(scan: PatientScan) -> tuple[Volume, Optional[Volume]]:
    """The scan and its organ labels on the detector's working grid."""
    image = read_volume(scan.image)
    organs = read_volume(scan.organs) if scan.organs else None
    if scan.standin_esophagus and organs is not None:
        import synth_hosts

        organs = synth_hosts.add_standin_esophagus(image, organs)
    return to_working_grid(image, organs)


#: Extra training lesions are numbered from here (three digits: ``train_detector`` fits on them but never
#: scores them, so the held-out figures stay on the same lesions however many extra ones are made)
EXTRA_FIRST = 100


def make_cases(out: Path, per_type: int, splits: set[str], only: Optional[set[str]] = None,
               redo: frozenset[str] = frozenset(), first: int = 0) -> None:
    """Write the missing case files, numbered ``first`` to ``first + per_type - 1`` (``redo``: these lesion
    types' files are made again, for a synthesis change; the others are kept, so their seeds and pixels stay
    what the last refit saw)."""
    from PASTASynthLib.catalog import specs
    from PASTASynthLib.engine import LesionRequest, synthesize
    from PASTASynthLib.host import make_host

    for scan_index, scan in enumerate(SCANS):
        if scan.split not in splits or (only is not None and scan.name not in only):
            continue
        image, organs = load_scan(scan)
        host = make_host(image, organs, organ_names(scan))
        folder = out / scan.split / scan.name
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "host.npz", image=image.array.astype(np.int16), spacing=np.array(image.spacing),
                 organs=host.organs.astype(np.int16), origin=np.array(image.origin), direction=image.direction)
        (folder / "names.json").write_text(json.dumps({str(k): v for k, v in host.names.items()}), encoding="utf-8")
        for spec in specs():
            if not host.labels_for(spec):
                continue
            for number in range(first, first + per_type):
                path = folder / f"{spec.key}_{number:02d}.npz"
                if path.exists() and spec.key not in redo:
                    continue
                rng = np.random.default_rng([scan_index, spec.type.id, number, 2026])
                high = min(50.0, spec.size_mm[1])
                started = time.perf_counter()
                for attempt in range(4):
                    size = float(np.exp(rng.uniform(np.log(10.0), np.log(high)))) * (0.8 ** attempt)
                    size = max(size, spec.size_mm[0])
                    try:
                        result = synthesize(host, LesionRequest(spec.key, size_mm=[size],
                                                                seed=int(rng.integers(2**31))))
                        break
                    except PastaInputError:
                        result = None
                if result is None:
                    print(f"{scan.name} {spec.key} {number}: no fit", flush=True)
                    continue
                changed = (result.image.array != image.array.astype(result.image.array.dtype)) | result.lesion_mask
                nz = np.argwhere(changed)
                lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
                box = tuple(slice(a, b) for a, b in zip(lo, hi))
                np.savez(path, start=lo, patch=result.image.array[box].astype(np.int16),
                         mask=result.lesion_mask[box], size_mm=size, type=spec.key,
                         attributes=json.dumps(result.lesions[0].attributes))
                print(f"{scan.name} {spec.key} {number}: {size:.0f} mm, {int(result.lesion_mask.sum())} voxels, "
                      f"{time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "detector")
    parser.add_argument("--per-type", type=int, default=8)
    parser.add_argument("--splits", default="train,heldout")
    parser.add_argument("--redo", default="", help="comma-separated lesion types whose existing cases are made "
                                                   "again (after a synthesis change to them)")
    parser.add_argument("--extra", action="store_true",
                        help=f"make extra training lesions (numbered from {EXTRA_FIRST}: fitted on, never scored)")
    args = parser.parse_args()
    redo = frozenset(t for t in args.redo.split(",") if t)
    from PASTASynthLib.catalog import SPECS

    unknown = sorted(redo - set(SPECS))
    if unknown:
        parser.error(f"--redo: unknown lesion type(s) {', '.join(unknown)}; use keys such as {next(iter(SPECS))}")
    make_cases(args.out, args.per_type, set(args.splits.split(",")), redo=redo,
               first=EXTRA_FIRST if args.extra else 0)


if __name__ == "__main__":
    main()
