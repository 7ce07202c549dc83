"""A small synthetic cohort for the feature and head tests: liver tumours synthesised into the
bundled sample host, one density and one size per case, two lesions per case.

Each case's lesion density (hyper/hypo) and size are known, so labels that depend on what a
reader would see (density for a binary head, size for a simulated survival) can be written next to
the features. Nothing here is a clinical cohort.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from PASTALib.io.volume_io import write_volume
from PASTASynthLib.engine import LesionRequest, synthesize
from PASTASynthLib.host import make_host
from synth_hosts import sample_pair

LIVER_TUMOR = 2  #: PASTA lesion-type id


@dataclass
class CohortCase:
    case: str
    density: str
    size_mm: float
    image: Path
    seg: Path


def write_cohort(folder: Path, cases: int = 12, lesions_per_case: int = 2) -> list[CohortCase]:
    """Write ``cases`` image + lesion-seg pairs and a ``manifest.csv`` (case,image,seg) into ``folder``."""
    image, organs = sample_pair()
    host = make_host(image, organs)
    sizes = np.linspace(10.0, 34.0, cases)
    out = []
    for n in range(cases):
        density = "hyperdense" if n % 2 == 0 else "hypodense"
        size = float(sizes[(n * 5) % cases])  # sizes shuffled against density
        result = synthesize(host, LesionRequest("liver_tumor", size_mm=[size], count=lesions_per_case,
                                                attributes={"density": density}, seed=100 + n))
        labels = np.zeros(image.array.shape, np.uint8)
        labels[result.lesion_mask] = LIVER_TUMOR
        case = f"case{n:02d}"
        ct = write_volume(result.image, folder / f"{case}_ct.nii")
        seg = write_volume(image.with_array(labels), folder / f"{case}_seg.nii")
        out.append(CohortCase(case, density, size, ct, seg))
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "image", "seg"])
        writer.writerows([c.case, c.image.name, c.seg.name] for c in out)
    (folder / "cohort.json").write_text(json.dumps([{"case": c.case, "density": c.density, "size_mm": c.size_mm,
                                                     "image": c.image.name, "seg": c.seg.name} for c in out]))
    return out


def write_labels(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


TINY = Path(__file__).resolve().parent / "Data" / "tiny_pasta_organs"
#: Small crops keep the tests fast; the CLI defaults are PASTA's 96 (lesions) and 128 (organs).
TEST_CROPS = ["--lesion-crop", "32", "--organ-crop", "32"]


def cohort_features(base: Path) -> tuple[list[CohortCase], Path]:
    """The cohort and its features CSV (``pasta features --manifest``), built once per test session."""
    import subprocess
    import sys

    folder = base / "feature_cohort"
    csv_path = folder / "features.csv"
    if not csv_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_cohort(folder)
        pasta = str(Path(sys.executable).parent / "pasta")
        result = subprocess.run([pasta, "features", "--manifest", str(folder / "manifest.csv"), "--model", str(TINY),
                                 "-o", str(csv_path), *TEST_CROPS, "--device", "cpu", "--progress", "none"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    cases = [CohortCase(c["case"], c["density"], c["size_mm"], folder / c["image"], folder / c["seg"])
             for c in json.loads((folder / "cohort.json").read_text())]
    return cases, csv_path


def feature_rows(csv_path: Path) -> list[dict]:
    with open(csv_path) as handle:
        return list(csv.DictReader(handle))
