"""The default detector against the targets of its issue: healthy scans, the sample, held-out lesions, cost.

Each scan runs ``pasta analyze`` in its own process (wall time and peak RSS of that process), at the
default operating point unless ``--sensitivity`` says otherwise. The held-out table is the model
card's (``Testing/tools/train_detector.py`` computes it; ``Testing/test_default_model.py`` re-checks
the part the test data holds).

    python Testing/benchmarks/bench_detector.py [--sensitivity balanced]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "totalseg_examples"
DATA = ROOT / "Testing" / "Data"
CARD = ROOT / "PASTA" / "PASTALib" / "models" / "pasta-default" / "model.json"

HEALTHY = [  # name, image, organ mask (None: the lung by thresholding only)
    ("native abdomen", "sample", None),
    ("upper abdomen", DATA / "upper_abdomen_native_3mm_ct.nii.gz",
     DATA / "upper_abdomen_native_3mm_organs.nii.gz"),
    ("chest crop A", SHARED / "chest_crop_a_ct.nii.gz", None),
    ("chest crop B", DATA / "chest_crop_b_ct.nii.gz", None),
    ("contrast DICOM abdomen", DATA / "example_ct_dicom", DATA / "abdomen_contrast_dicom_organs.nii.gz"),
]


def analyse(image, organs, sensitivity: str, out: Path) -> dict:
    command = [sys.executable, "-m", "PASTALib", "analyze", str(image), "-o", str(out), "--overwrite",
               "--sensitivity", sensitivity]
    if organs is not None:
        command += ["--organs", str(organs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {"findings": [f"{f['lesion_type']['name']} ({f['location']['organ']}, {f['confidence']['max']:.2f})"
                         for f in report["findings"]],
            "seconds": seconds, "peak_rss_mb": max(peak, before) / 1024.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensitivity", default="balanced", choices=("strict", "balanced", "high"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"## Healthy scans ({args.sensitivity}): every finding is false\n")
        print("(All five are scans of patients the shipped detector was fitted on; the held-out figures are the "
              "leave-one-patient-out table below.)\n")
        print("| scan | findings | s | peak RSS MB* |\n|---|---|---|---|")
        total = 0
        for index, (name, image, organs) in enumerate(HEALTHY):
            result = analyse(image, organs, args.sensitivity, Path(tmp) / f"h{index}")
            total += len(result["findings"])
            print(f"| {name} | {len(result['findings'])} {'; '.join(result['findings'])} | "
                  f"{result['seconds']:.1f} | {result['peak_rss_mb']:.0f} |")
        print(f"\nTotal false findings on the five healthy scans: {total} (target: at most 1)\n")
        result = analyse("sample-lesions", None, args.sensitivity, Path(tmp) / "sample")
        print("## sample-lesions (3 synthetic lesions: liver tumour, kidney cyst, bone metastasis)\n")
        print(f"{len(result['findings'])} findings: {'; '.join(result['findings'])}; {result['seconds']:.1f} s, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB*\n")
    card = json.loads(CARD.read_text(encoding="utf-8"))
    held = card["validation"]["leave_one_patient_out"][args.sensitivity]
    print(f"## Leave one patient out, synthetic lesions 10-50 mm (from the model card, {args.sensitivity})\n")
    print("| type | lesions | detected | mean Dice | type right when detected |\n|---|---|---|---|---|")
    for key, row in held["per_type"].items():
        print(f"| {key} | {row['cases']} | {row['detected']:.0%} | {row['dice_mean']:.2f} | "
              f"{row['type_right_when_detected']} |")
    a = held["all"]
    print(f"| all | {a['cases']} | {a['detected']:.0%} | {a['dice_mean']:.2f} | {a['type_right_when_detected']} |")
    print(f"\nFalse findings per healthy scan, each scored without its patient: {held['false_findings_healthy_scans']}")
    print(f"Real lung mass of LIDC-IDRI-0001, scored without its patient: confidence {held['real_lesion_confidence']}")
    print("\n*peak RSS: the largest of the analyses run so far in this benchmark (getrusage of children).")


if __name__ == "__main__":
    main()
