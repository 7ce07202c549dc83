"""Synthetic-lesion realism, measured: per lesion type, what a reader checks first.

Usage: python Testing/benchmarks/bench_realism.py [--per-type 6]

For each PASTA type, ``--per-type`` lesions with default sizes and attributes (seeds 0..N-1) in the hosts
the type can take: the bundled 3 mm native abdomen (with the test stand-in esophagus), the 0.98 mm
contrast-enhanced DICOM abdomen, the 1.5 mm chest CTA crop and the same crop resampled to 5 mm slices
(lung by thresholding), and, where ``../shared/data/more_hosts`` holds it, LIDC-IDRI-0001 (contrast-enhanced
chest and upper abdomen with kidneys in a contrast phase, on the detector's 2 mm working grid). Columns:

* long axis p25/p50/p75 (mm): the largest in-plane extent of the lesion mask;
* equivalent sphere p25/p50/p75 (mm): (6 V / pi)^(1/3) of the lesion mask;
* outside: share of lesion voxels outside the host organ label;
* edge: in-plane 10-90 % rise of the lesion's contrast across its surface (mm), averaged in shells of
  signed distance on the slices of its largest cross-section, and, for comparison, the host's own
  air/tissue 10-90 % edge (2.563 x its measured in-plane blur sigma, PASTASynthLib.psf);
* contrast: mean HU of the lesion minus the mean of a 3-6 mm shell around it;
* contrast to organ: the same against the shell's voxels inside the host organ (what a tumour-to-
  parenchyma contrast measures), "n/a" where the shell leaves the organ entirely. Hollow-organ labels
  hold their lumen (gas, fluid, oral contrast), so for the wall cancers this is not a wall contrast.
  Published densities (PASTASynthLib.catalog.DENSITY_REFERENCES) are listed under the table, each beside what
  synthesis made in its measure, phase and density class (mean +/- SD of the lesions above); "contrast to
  wall" (wall cancers) is the core HU minus the soft tissue the cancer was drawn against (40 HU native, 80 HU
  enhanced), the stand-in for the normal wall.

* core HU: median HU of the lesion's core (one voxel in from its border), beside the fluid bound a
  solid kidney or pancreas tumour must stay above (Bosniak v2019: -9 to 20 HU is a cyst);
* core minus drawn: that core HU minus the HU the lesion was drawn at (its report's target): the scanner's
  blur, the texture and the noise move it; the host's anatomy must not (a lesion's noise once carried a
  contrast-phase kidney's cortex and medulla and moved cysts' cores 20-40 HU);
* published p25/p50/p75: the size prior of the type (PASTASynthLib.catalog.SIZE_PRIORS, fitted to a
  published series of real lesions, listed under the table) and the measure it is of (compare it with
  the column of that measure), or "none found".

The edge column compares with the host itself, the one edge reference this project can measure.

A second table covers lung lesions on the chest hosts (``--lung-lesions`` each, default attributes):
share touching the lung label's surface (pleura or fissure), share placed against a vessel
(juxtavascular), and spicules per irregular lesion. No published shares were collected for these, so
none are printed beside them.
Prints Markdown.
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "PASTA", ROOT / "PASTASynth", ROOT / "Testing"):
    sys.path.insert(0, str(extra))

from PASTALib.errors import PastaInputError  # noqa: E402
from PASTALib.io.resample import Interpolation, resample_to_spacing  # noqa: E402
from PASTALib.io.volume_io import read_volume  # noqa: E402
from PASTALib.lesions.lesion_types import LESION_TYPES  # noqa: E402
from PASTASynthLib.appearance import host_blur  # noqa: E402
from PASTASynthLib.catalog import (DENSITY_REFERENCES, SIZE_PRIORS, WALL_THICKNESS,  # noqa: E402
                                   equivalent_sphere_diameter_mm)  # noqa: E402
from PASTASynthLib.engine import LesionRequest, synthesize  # noqa: E402
from PASTASynthLib.host import make_host  # noqa: E402
from PASTASynthLib.realism import edge_rise_mm  # noqa: E402
from synth_hosts import DATA, add_standin_esophagus, contrast_pair, sample_pair  # noqa: E402


def hosts() -> dict:
    image, organs = sample_pair()
    chest = read_volume(DATA / "chest_crop_b_ct.nii.gz")
    thick = resample_to_spacing(chest, (chest.spacing[0], chest.spacing[1], 5.0), Interpolation.LINEAR)
    out = {"abdomen 3 mm native": make_host(image, add_standin_esophagus(image, organs)),
           "abdomen 0.98 mm contrast": make_host(*contrast_pair()),
           "chest 1.5 mm CTA": make_host(chest, None),
           "chest 5 mm slices": make_host(thick, None)}
    lidc = lidc_host()
    if lidc is not None:
        out["LIDC-IDRI-0001 2 mm contrast"] = lidc
    return out


def lidc_host():
    """LIDC-IDRI-0001 (``../shared/data/more_hosts``) on the detector's working grid: the one host whose
    kidneys are in a contrast phase (cortex and medulla apart), where a lesion's noise once carried the
    kidney's anatomy. None (and a note) when the shared data is not there."""
    sys.path.insert(0, str(ROOT / "Testing" / "tools"))
    import detector_data

    scan = next(s for s in detector_data.SCANS if s.name == "lidc_0001")
    if not scan.image.is_file():
        print(f"(LIDC-IDRI-0001 not found at {scan.image}: that host is left out)\n")
        return None
    return make_host(*detector_data.load_scan(scan), detector_data.organ_names(scan))


def measure(host, result) -> dict:
    mask = result.lesion_mask
    spacing = host.spacing_kji
    extent = max(float(np.ptp(np.nonzero(mask[k])[a]) + 1) * spacing[1 + a]
                 for k in np.nonzero(mask.any(axis=(1, 2)))[0] for a in (0, 1))
    organ = np.isin(host.organs, [lesion.label for lesion in result.lesions])
    change = result.image.array.astype(np.float64) - host.image.array.astype(np.float64)
    distance = ndimage.distance_transform_edt(~mask, sampling=spacing)
    shell = (distance > 3.0) & (distance <= 6.0)
    image = result.image.array.astype(np.float64)
    core = ndimage.binary_erosion(mask)
    core_hu = float(np.median(image[core if core.any() else mask]))
    equivalent = equivalent_sphere_diameter_mm(mask.sum() * float(np.prod(spacing)))
    return {"diameter": extent, "equivalent": equivalent, "outside": 1.0 - float((mask & organ).sum()) / mask.sum(),
            "edge": edge_rise_mm(change, mask, spacing),
            "contrast": float(image[mask].mean() - image[shell].mean()),
            "organ_contrast": (float(image[mask].mean() - image[shell & organ].mean())
                               if (shell & organ).sum() >= 10 else float("nan")),
            "core_hu": core_hu,
            # what a reader measures against what was drawn: only blur, texture and noise move it
            "core_minus_drawn": core_hu - float(result.lesions[0].record["appearance"]["target_hu"]),
            # the thickest place of a wall cancer: twice the largest distance from its border (mm)
            "thickness": 2.0 * float(ndimage.distance_transform_edt(mask, sampling=spacing).max()),
            # a wall cancer against the soft tissue it was drawn relative to (the stand-in for the normal wall)
            "wall_contrast": core_hu - float(result.lesions[0].record["appearance"]["reference_hu"]),
            "density": result.lesions[0].attributes["density"], "enhanced": bool(host.enhanced)}


#: A published series' phase against our hosts' two: before contrast, after it, or either.
PHASE_OF = {"unenhanced": False, "any": None}


def made_beside(reference, rows: list[dict]) -> str:
    """What synthesis made in the published series' measure, phase and density class: mean +/- SD (n)."""
    measure = {"lesion HU": "core_hu", "contrast to organ": "organ_contrast",
               "contrast to wall": "wall_contrast"}[reference.measure]
    enhanced = PHASE_OF.get(reference.phase, True)  # every other published phase is a contrast phase
    values = [r[measure] for r in rows if (enhanced is None or r["enhanced"] == enhanced)
              and (reference.density is None or r["density"] == reference.density) and np.isfinite(r[measure])]
    if not values:
        return "made: none (no host of this phase holds the organ)"
    return f"made: {np.mean(values):+.1f} +/- {np.std(values):.1f} HU (n {len(values)})"


def lung_anatomy(all_hosts: dict, per_host: int) -> None:
    """Where lung lesions sit and how spiculated ones look (geometry records plus the mask)."""
    print("\n| lung host | n | touching the pleura or a fissure | juxtavascular | irregular: with spicules | "
          "spicules per irregular lesion |\n|---|---:|---:|---:|---:|---:|")
    for name, host in all_hosts.items():
        if not name.startswith("chest"):
            continue
        touching, juxta, spicules = [], [], []
        for seed in range(per_host):
            result = synthesize(host, LesionRequest("lung_tumor", seed=seed))
            lesion = result.lesions[0]
            mask, lung = result.lesion_mask, host.organs == lesion.label
            surface = mask & ~ndimage.binary_erosion(mask)
            touching.append(bool((surface & ndimage.binary_dilation(~lung)).any()))
            juxta.append(bool(lesion.record["geometry"].get("juxtavascular")))
            if lesion.attributes["shape"] == "irregular":
                spicules.append(int(lesion.record["geometry"].get("spicules", 0)))
        spiculated = f"{np.mean([s > 0 for s in spicules]):.0%}" if spicules else "n/a"
        per_lesion = f"{np.mean(spicules):.1f}" if spicules else "n/a"
        print(f"| {name} | {per_host} | {np.mean(touching):.0%} | {np.mean(juxta):.0%} | {spiculated} | {per_lesion} |")


def published(key: str) -> str:
    prior = SIZE_PRIORS.get(key)
    if prior is None:
        return "none found"
    return " / ".join(f"{prior.quantile(p):.0f}" for p in (0.25, 0.5, 0.75)) + f" ({prior.measure})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-type", type=int, default=6)
    parser.add_argument("--lung-lesions", type=int, default=24,
                        help="lung lesions per chest host for the anatomy table (0: no table)")
    args = parser.parse_args()
    print(f"# Synthesis realism ({datetime.now(timezone.utc):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
          f"{args.per_type} lesions per type and host, default sizes and attributes)\n")
    print("| host | host edge 10-90 (mm) | in-plane blur sigma k/j/i (mm) |\n|---|---:|---|")
    all_hosts = hosts()
    for name, host in all_hosts.items():
        sigma = host_blur(host).sigma_kji_mm
        print(f"| {name} | {2.563 * float(np.mean(sigma[1:])):.1f} | {' / '.join(f'{s:.2f}' for s in sigma)} |")
    print("\n| type | host | n | long axis p25/p50/p75 (mm) | equivalent sphere p25/p50/p75 (mm) | "
          "published p25/p50/p75 (mm) | outside organ | lesion edge 10-90 (mm) median | "
          "contrast to 3-6 mm shell (HU) median | contrast to organ (HU) median | core HU median | "
          "core minus drawn (HU) median |\n|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|")
    made: dict[str, list[dict]] = {}
    for lesion_type in LESION_TYPES:
        for name, host in all_hosts.items():
            rows = []
            for seed in range(args.per_type):
                try:
                    rows.append(measure(host, synthesize(host, LesionRequest(lesion_type.key, seed=seed))))
                except PastaInputError:
                    break  # the host cannot take this type
            if not rows:
                continue
            made.setdefault(lesion_type.key, []).extend(rows)
            d = np.percentile([r["diameter"] for r in rows], [25, 50, 75])
            e = np.percentile([r["equivalent"] for r in rows], [25, 50, 75])
            edges = [r["edge"] for r in rows if np.isfinite(r["edge"])]
            organ_contrast = [r["organ_contrast"] for r in rows if np.isfinite(r["organ_contrast"])]
            print(f"| {lesion_type.key} | {name} | {len(rows)} | {d[0]:.0f} / {d[1]:.0f} / {d[2]:.0f} | "
                  f"{e[0]:.0f} / {e[1]:.0f} / {e[2]:.0f} | {published(lesion_type.key)} | "
                  f"{np.mean([r['outside'] for r in rows]):.0%} | "
                  f"{f'{np.median(edges):.1f}' if edges else 'n/a'} | "
                  f"{np.median([r['contrast'] for r in rows]):.0f} | "
                  f"{f'{np.median(organ_contrast):.0f}' if organ_contrast else 'n/a'} | "
                  f"{np.median([r['core_hu'] for r in rows]):.0f} | "
                  f"{np.median([r['core_minus_drawn'] for r in rows]):+.0f} |")
    if args.lung_lesions > 0:  # 0 skips the lung anatomy table
        lung_anatomy(all_hosts, args.lung_lesions)
    print("\nSize priors (published series): " + "; ".join(f"{key}: {prior.source}"
                                                         for key, prior in SIZE_PRIORS.items()))
    print("\nWall cancers: thickest place (twice the largest distance from the lesion's border; a plaque of thickness "
          "T reads about T), pooled over the hosts, beside the published wall thickness "
          "(PASTASynthLib.catalog.WALL_THICKNESS):")
    for key, rows in made.items():
        if key in WALL_THICKNESS:
            values = [r["thickness"] for r in rows]
            print(f"- {key}: made {np.mean(values):.1f} +/- {np.std(values):.1f} mm (n {len(values)}); published mean "
                  f"{WALL_THICKNESS[key].mean_mm:.1f} mm ({WALL_THICKNESS[key].source})")
    print("\nPublished densities, and beside each what synthesis made in the same measure (core HU or contrast to "
          "the organ), phase (unenhanced: native hosts; a contrast phase: enhanced hosts) and density class:")
    for key, references in DENSITY_REFERENCES.items():
        for ref in references:
            share = f", {ref.share:.0%} of lesions" if np.isfinite(ref.share) else ""
            kind = f" [{ref.density}]" if ref.density else ""
            print(f"- {key}{kind}, {ref.measure}, {ref.phase} phase: {ref.mean_hu:+.1f} +/- {ref.sd_hu:.1f} HU{share} "
                  f"({ref.source}); {made_beside(ref, made.get(key, []))}")


if __name__ == "__main__":
    main()
