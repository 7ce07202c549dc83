"""Trial of a wall-cancer search with its own scorer (not shipped; RESULTS.md 2026-12-04 night).

Why: the default detector does not search the oesophagus, stomach or colon (19 % of the held-out synthetic
lesions). Two earlier searches shared the organ scorer and made it worse elsewhere. This one keeps the walls
apart: candidates are soft tissue inside a viscus label thicker than ``2 x --core-mm`` (an opening of the
soft-tissue mask), scored by a random forest that sees only wall candidates, left one patient out. It prints
the search's ceiling per type and wall detection against the wall false findings on the held-out healthy scans.

    python Testing/tools/wall_search_trial.py [--low-hu -10] [--core-mm 3.5]

Needs the detector cases (``detector_data.py``); about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing"))
sys.path.insert(0, str(ROOT / "Testing" / "tools"))

import train_detector as td  # noqa: E402
from detector_data import SCANS  # noqa: E402
from detector_evaluation import candidate_ceiling, is_lesion_example  # noqa: E402
from PASTALib.detection.candidates import Candidate  # noqa: E402
from PASTALib.detection.features import candidate_features  # noqa: E402
from PASTALib.lesions.components import grow_box  # noqa: E402

VISCERA = ("esophagus", "stomach", "colon")
WALL_TYPES = ("esophageal_cancer", "gastric_cancer", "colorectal_cancer")
HIGH_HU = 200.0  #: above: oral contrast, bone
MIN_ORGAN_ML = 5.0
MIN_CANDIDATE_ML = 0.5


def wall_candidates(image: np.ndarray, context, low_hu: float, core_mm: float) -> list[Candidate]:
    """Soft tissue (smoothed ``low_hu``..200 HU) inside each viscus label, where it is more than
    ``2 x core_mm`` thick (cores farther than ``core_mm`` from anything else, grown back)."""
    spacing = context.spacing_kji
    voxel_ml = float(np.prod(spacing)) / 1000.0
    objects = ndimage.find_objects(context.labels)
    out = []
    for label, name in context.names.items():
        if name not in VISCERA or label > len(objects) or objects[label - 1] is None:
            continue
        box = grow_box(objects[label - 1], image.shape, (3, 6, 6))
        organ = context.labels[box] == label
        if organ.sum() * voxel_ml < MIN_ORGAN_ML:
            continue
        hu = image[box].astype(np.float32)
        smooth = ndimage.gaussian_filter(hu, [1.5 / s for s in spacing], mode="nearest")
        soft = organ & (smooth >= low_hu) & (smooth <= HIGH_HU)
        if not soft.any():
            continue
        reference = float(np.median(hu[soft]))
        texture = float(1.4826 * np.median(np.abs(smooth[soft] - reference)))
        core = ndimage.distance_transform_edt(soft, sampling=spacing) > core_mm
        grown = (ndimage.distance_transform_edt(~core, sampling=spacing) <= core_mm) & soft
        parts, _ = ndimage.label(grown, np.ones((3, 3, 3), bool))
        organ_ml = float(organ.sum() * voxel_ml)
        for index, sub in enumerate(ndimage.find_objects(parts), start=1):
            mask = parts[sub] == index
            if mask.sum() * voxel_ml >= MIN_CANDIDATE_ML:
                where = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box, sub))
                out.append(Candidate(name, label, where, mask, +1, reference, texture, organ_ml))
    return out


def wall_features(candidate: Candidate, image: np.ndarray, context) -> np.ndarray:
    """The organ scorer's features plus the viscus, thickness, depth in the organ, HU spread, organ share."""
    spacing = np.asarray(context.spacing_kji)
    organ = context.labels[candidate.box] == candidate.label
    hu = image[candidate.box][candidate.mask]
    extra = [VISCERA.index(context.names[candidate.label]),
             2.0 * float(ndimage.distance_transform_edt(candidate.mask, sampling=spacing).max()),
             float(ndimage.distance_transform_edt(organ, sampling=spacing)[candidate.mask].mean()),
             float(np.percentile(hu, 90) - np.percentile(hu, 10)),
             float(candidate.mask.sum() / max(1, organ.sum()))]
    return np.concatenate([candidate_features(candidate, image, context), extra])


def collect(low_hu: float, core_mm: float) -> dict:
    patient_of = {scan.name: scan.patient for scan in SCANS}
    data = {}
    for split in ("train", "heldout"):
        for folder in sorted((td.CASES / split).iterdir()):
            image, context = td.load_host(folder)
            healthy = [wall_features(c, image.array, context)
                       for c in wall_candidates(image.array, context, low_hu, core_mm)]
            cases = []
            for path in sorted(folder.glob("*_[0-9][0-9].npz")):
                case = np.load(path)
                if str(case["type"]) not in WALL_TYPES:
                    continue
                array, truth = td.with_case(image.array, case)
                rows = []
                for c in wall_candidates(array, context, low_hu, core_mm):
                    inside = float((truth[c.box] & c.mask).sum())
                    if inside > 0:
                        # the rows detector_evaluation reads: (features, inside, voxels, core density, group)
                        rows.append((wall_features(c, array, context), inside, int(c.mask.sum()), None, c.group))
                cases.append({"type": str(case["type"]), "truth_voxels": int(truth.sum()), "rows": rows})
            data[folder.name] = {"patient": patient_of[folder.name], "healthy": healthy, "cases": cases}
            print(f"{folder.name}: {len(healthy)} healthy wall candidates, {len(cases)} wall cases", flush=True)
    return data


def main() -> None:
    from sklearn.ensemble import RandomForestClassifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--low-hu", type=float, default=-10.0)
    parser.add_argument("--core-mm", type=float, default=3.5)
    args = parser.parse_args()
    data = collect(args.low_hu, args.core_mm)
    print("\n| type | touched | ceiling (a perfect scorer) |\n|---|---:|---:|")
    for key, row in candidate_ceiling(data).items():
        print(f"| {key} | {row['touched']:.0%} | {row['detected']:.0%} |")
    healthy_scores, lesion_scores = [], []
    for patient in sorted({h["patient"] for h in data.values()}):
        x, y = [], []
        for host in data.values():
            if host["patient"] == patient:
                continue
            x += host["healthy"]
            y += [0] * len(host["healthy"])
            for c in host["cases"]:
                positives = [f for f, i, v, _, _ in c["rows"] if is_lesion_example(i, v, c["truth_voxels"])]
                x += positives
                y += [1] * len(positives)
        if 0 < sum(y) < len(y):
            forest = RandomForestClassifier(300, min_samples_leaf=3, class_weight="balanced", random_state=0,
                                            n_jobs=2).fit(np.array(x), np.array(y))
        else:
            forest = None
        for name, host in data.items():
            if host["patient"] != patient:
                continue
            score = (lambda f: forest.predict_proba(np.array(f))[:, 1]) if forest else (lambda f: np.zeros(len(f)))
            if host["healthy"]:
                healthy_scores += [(name, float(s)) for s in score(host["healthy"])]
            for c in host["cases"]:
                positives = [f for f, i, v, _, _ in c["rows"] if is_lesion_example(i, v, c["truth_voxels"])]
                lesion_scores.append((c["type"], float(max(score(positives))) if positives else -1.0))
    ranked = sorted((s for _, s in healthy_scores), reverse=True)
    print(f"\nheld-out healthy scans with wall candidates: {sorted({n for n, _ in healthy_scores})}")
    print("\n| wall false findings in total | threshold | wall cancers detected | " + " | ".join(WALL_TYPES)
          + " |\n|---:|---:|---:|" + "---:|" * len(WALL_TYPES))
    for budget in (0, 1, 2, 5, 10):
        threshold = ranked[budget] if budget < len(ranked) else 0.0
        found = [s > threshold for _, s in lesion_scores]
        per_type = [np.mean([s > threshold for k, s in lesion_scores if k == key]) for key in WALL_TYPES]
        print(f"| {budget} | {threshold:.3f} | {np.mean(found):.1%} | " + " | ".join(f"{v:.0%}" for v in per_type)
              + " |")


if __name__ == "__main__":
    main()
