"""Fit, calibrate and score the default detector (``PASTA/PASTALib/models/pasta-default``).

1. Cases: ``detector_data.py`` synthesises lesions into training patients and held-out patients.
2. Fit: candidates (:mod:`PASTALib.detection.candidates`) in the training patients are labelled
   lesion (mostly inside a synthetic lesion) or tissue (the healthy scans' candidates); a random
   forest (scikit-learn, balanced class weights) is fitted on their features and stored as arrays.
3. Calibrate: Platt scaling on the held-out patients' candidates, so a confidence of 0.8 means about
   8 in 10 such candidates were lesions there.
4. Operating points, on healthy scans of the training patients only (the bundled abdomen, its upper
   part, chest crops A and B), scored out of bag: ``balanced`` (the default) is the lowest threshold
   with no false finding on any of the four, ``high`` the lowest with one per scan on average, ``strict`` keeps only
   findings whose calibrated confidence is at least 0.95.
5. Score the held-out patients: detection, Dice and type per lesion; false findings per healthy scan.

    python Testing/tools/detector_data.py --per-type 8      # once (about a minute)
    python Testing/tools/train_detector.py                   # fit + card (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing"))
sys.path.insert(0, str(ROOT / "Testing" / "tools"))

from PASTALib.detection.features import FEATURE_NAMES, candidate_features  # noqa: E402
from PASTALib.detection.candidates import find_candidates  # noqa: E402
from PASTALib.detection.organ_context import build_context  # noqa: E402
from PASTALib.detection.scorer import Forest, Scorer, fit_platt  # noqa: E402
from PASTALib.io.volume import Volume  # noqa: E402
from PASTALib.lesions import lesion_types  # noqa: E402
from PASTALib.lesions.type_rules import core_density, decide_type  # noqa: E402

CASES = ROOT / ".cache" / "detector"
OUTPUT = ROOT / "PASTA" / "PASTALib" / "models" / "pasta-default"
#: ``strict`` keeps findings the calibration calls at least this likely
STRICT_CONFIDENCE = 0.95
#: a candidate is a lesion example when at least this share of it lies in a synthetic lesion
POSITIVE_INSIDE = 0.5
#: a finding detects a lesion when their Dice reaches this (a finding that touches a lesion at a few
#: voxels is not counted as having found it)
DETECTED_DICE = 0.1
#: synthetic lesions per type and held-out patient (``detector_data.py --per-type 8 --splits heldout``)
HELD_OUT_PER_TYPE = 8


def load_host(folder: Path):
    data = np.load(folder / "host.npz")
    names = {int(k): v for k, v in json.loads((folder / "names.json").read_text(encoding="utf-8")).items()}
    image = Volume(data["image"].astype(np.float32), tuple(float(s) for s in data["spacing"]),
                   tuple(float(o) for o in data["origin"]), data["direction"])
    return image, build_context(image, image.with_array(data["organs"]), names)


def with_case(image: np.ndarray, case) -> tuple[np.ndarray, np.ndarray]:
    array = image.copy()
    box = tuple(slice(int(a), int(a) + n) for a, n in zip(case["start"], case["patch"].shape))
    array[box] = case["patch"]
    truth = np.zeros(array.shape, bool)
    truth[box] = case["mask"]
    return array, truth


def candidate_rows(image: np.ndarray, context, truth: np.ndarray | None):
    """(features, inside fraction, dice with truth, candidate) for every candidate (with ``truth``: in
    the organ labels within 10 mm of the lesion, where its candidates can be)."""
    rows = []
    labels = None
    if truth is not None:
        from scipy import ndimage

        near = ndimage.binary_dilation(truth, iterations=5)
        labels = {int(v) for v in np.unique(context.labels[near]) if v}
    for cand in find_candidates(image, context, labels=labels):
        inside = dice = 0.0
        if truth is not None:
            region = truth[cand.box]
            inter = float((region & cand.mask).sum())
            inside = inter / cand.mask.sum()
            dice = 2 * inter / (cand.mask.sum() + truth.sum())
        rows.append((candidate_features(cand, image, context), inside, dice, cand))
    return rows


def collect(split: str):
    """Per host: healthy candidates, and per case its lesion's candidates."""
    hosts = {}
    for folder in sorted((CASES / split).iterdir()):
        image, context = load_host(folder)
        healthy, real = split_real_lesions(folder.name, image, candidate_rows(image.array, context, None))
        cases = []
        for path in sorted(folder.glob("*_[0-9][0-9].npz")):
            case = np.load(path)
            array, truth = with_case(image.array, case)
            rows = [r for r in candidate_rows(array, context, truth) if r[1] > 0]
            cases.append({"name": f"{folder.name}/{path.stem}", "type": str(case["type"]),
                          "size_mm": float(case["size_mm"]), "truth": truth, "rows": rows, "image": array})
        hosts[folder.name] = {"healthy": healthy, "cases": cases, "context": context, "real": real}
        print(f"{split} {folder.name}: {len(healthy)} healthy candidates, {len(cases)} cases", flush=True)
    return hosts


def split_real_lesions(name: str, image: Volume, rows: list) -> tuple[list, list]:
    """(candidates of a lesion-free scan, candidates on the scan's known real lesions)."""
    from detector_data import REAL_LESION_RADIUS_MM, REAL_LESIONS_LPS

    known = REAL_LESIONS_LPS.get(name, [])
    if not known:
        return rows, []
    healthy, real = [], []
    for row in rows:
        cand = row[3]
        centre = np.argwhere(cand.mask).mean(axis=0) + [s.start for s in cand.box]
        lps = image.index_to_lps_points(centre[::-1][None])[0]
        near = min(float(np.linalg.norm(lps - np.asarray(p))) for p in known) <= REAL_LESION_RADIUS_MM
        (real if near else healthy).append(row)
    return healthy, real


def training_matrix(hosts, extra_healthy: dict | None = None):
    """(features, labels, scan of each healthy example or "" for lesion examples)."""
    x, y, scans = [], [], []
    healthy = {**(extra_healthy or {}), **{name: host["healthy"] for name, host in hosts.items()}}
    for name, rows in healthy.items():
        for features, *_ in rows:
            x.append(features)
            y.append(0.0)
            scans.append(name)
    for host in hosts.values():
        for case in host["cases"]:
            for features, inside, _, _ in case["rows"]:
                if inside >= POSITIVE_INSIDE:
                    x.append(features)
                    y.append(1.0)
                    scans.append("")
    return np.array(x), np.array(y), np.array(scans)


def healthy_extra_scans():
    """The upper abdomen (same patient as the training abdomen) on the working grid."""
    import synth_hosts

    from PASTALib.detection.grid import to_working_grid

    image, organs = synth_hosts.upper_abdomen_pair()
    work, work_organs = to_working_grid(image, organs)
    context = build_context(work, work_organs)
    return {"upper_abdomen": candidate_rows(work.array, context, None)}


def choose_operating_points(healthy_confidences: dict[str, np.ndarray]) -> dict[str, float]:
    """Thresholds from the (out-of-bag, calibrated) confidences of healthy training-patient candidates."""
    pooled = np.sort(np.concatenate(list(healthy_confidences.values())))[::-1]

    def lowest_threshold(allowed_total: int) -> float:
        if len(pooled) <= allowed_total:
            return 0.05
        return float(min(max(pooled[allowed_total] + 1e-6, 0.05), 0.999))

    balanced = lowest_threshold(0)
    strict = max(balanced + 0.02, STRICT_CONFIDENCE)
    return {"strict": min(strict, 0.999), "balanced": balanced,
            "high": min(lowest_threshold(len(healthy_confidences)), balanced)}


def evaluate(scorer: Scorer, hosts, threshold: float) -> dict:
    per_type: dict[str, list] = defaultdict(list)
    healthy_false = {}
    for name, host in hosts.items():
        found = [r for r in host["healthy"] if scorer.confidence(r[0][None])[0] >= threshold]
        healthy_false[name] = int(len(found))
        for case in host["cases"]:
            truth = case["truth"]
            union = np.zeros(truth.shape, bool)
            types = []
            for features, inside, dice, cand in case["rows"]:
                if scorer.confidence(features[None])[0] >= threshold:
                    union[cand.box] |= cand.mask
                    decision = decide_type(cand.group, core_density(case["image"][cand.box], cand.mask))
                    types.append(decision.lesion_type.key if decision else None)
            dice = 2 * float((union & truth).sum()) / (union.sum() + truth.sum())
            per_type[case["type"]].append({"dice": dice, "detected": bool(dice >= DETECTED_DICE),
                                           "type_right": bool(case["type"] in types), "size_mm": case["size_mm"],
                                           "case": case["name"], "host": name})
    table = {}
    for key in [t.key for t in lesion_types.LESION_TYPES if t.key in per_type]:
        rows = per_type[key]
        detected = [r for r in rows if r["detected"]]
        table[key] = {"cases": len(rows), "detected": round(len(detected) / len(rows), 3),
                      "dice_mean": round(float(np.mean([r["dice"] for r in rows])), 3),
                      "type_right_when_detected": round(float(np.mean([r["type_right"] for r in detected])), 3)
                      if detected else None}
    rows = [r for v in per_type.values() for r in v]
    detected = [r for r in rows if r["detected"]]
    per_host = {}
    for name in hosts:
        mine = [r for v in per_type.values() for r in v if r["host"] == name]
        if mine:
            per_host[name] = {"cases": len(mine), "detected": int(sum(r["detected"] for r in mine)),
                              "dice_sum": round(float(sum(r["dice"] for r in mine)), 1),
                              "false_findings_healthy": int(healthy_false[name])}
    real = {name: round(float(max(scorer.confidence(np.array([r[0] for r in host["real"]])))), 3)
            for name, host in hosts.items() if host.get("real")}
    return {"per_type": table, "per_host": per_host, "real_lesion_confidence": real,
            "all": {"cases": len(rows), "detected": round(len(detected) / max(len(rows), 1), 3),
                    "dice_mean": round(float(np.mean([r["dice"] for r in rows])), 3) if rows else None,
                    "dice_mean_detected": round(float(np.mean([r["dice"] for r in detected])), 3) if detected else None,
                    "type_right_when_detected": round(float(np.mean([r["type_right"] for r in detected])), 3)
                    if detected else None},
            "false_findings_healthy_scans": healthy_false,
            "missed": sorted(r["case"] for r in rows if not r["detected"])}


TREES = 200


def forest_arrays(model) -> Forest:
    """A fitted scikit-learn forest as flat arrays (leaf value: the share of lesion examples)."""
    parts = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}
    for tree in model.estimators_:
        t = tree.tree_
        value = t.value[:, 0, :]
        parts["feature"].append(np.where(t.children_left >= 0, t.feature, -1).astype(np.int64))
        parts["threshold"].append(t.threshold.astype(np.float64))
        parts["left"].append(t.children_left.astype(np.int64))
        parts["right"].append(t.children_right.astype(np.int64))
        parts["value"].append(value[:, 1] / np.maximum(value.sum(axis=1), 1e-12))
    return Forest(**parts)


def main() -> None:
    from sklearn.ensemble import RandomForestClassifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    train, held = collect("train"), collect("heldout")
    extra = healthy_extra_scans()  # the upper abdomen: the training patient under another organ mask
    x, y, scans = training_matrix(train, extra)
    forest_model = RandomForestClassifier(n_estimators=TREES, min_samples_leaf=3, class_weight="balanced",
                                          oob_score=True, random_state=0, n_jobs=1).fit(x, y)
    scorer = Scorer(FEATURE_NAMES, forest_arrays(forest_model))
    hx, hy, _ = training_matrix(held)
    scorer.calibration = fit_platt(scorer.logit(hx), hy)
    oob = np.clip(forest_model.oob_decision_function_[:, 1], 1e-3, 1 - 1e-3)
    a, b = scorer.calibration
    oob_confidence = 1.0 / (1.0 + np.exp(-(a * np.log(oob / (1 - oob)) + b)))
    operating_scans = [n for n in set(scans) if n.startswith(("abdomen", "chest", "upper"))]
    scorer.operating_points = choose_operating_points({n: oob_confidence[scans == n] for n in operating_scans})
    print("training examples", len(y), "lesion", int(y.sum()), "held-out examples", len(hy), int(hy.sum()))
    print("operating points", scorer.operating_points)
    results = {}
    for sensitivity, threshold in scorer.operating_points.items():
        results[sensitivity] = {"held_out": evaluate(scorer, held, threshold),
                                "training_patients": evaluate(scorer, train, threshold)}
        summary = results[sensitivity]
        print(f"\n{sensitivity} (confidence >= {threshold:.3f})")
        print("  held-out all:", summary["held_out"]["all"], "healthy false:",
              summary["held_out"]["false_findings_healthy_scans"], "real lesions:",
              summary["held_out"]["real_lesion_confidence"])
        for key, row in summary["held_out"]["per_type"].items():
            print(f"    {key:20} {row}")
        print("  training patients:", summary["training_patients"]["all"], "healthy false:",
              summary["training_patients"]["false_findings_healthy_scans"])
    write_model_folder(args.out, scorer, results, {"training": [len(y), int(y.sum())],
                                                   "calibration": [len(hy), int(hy.sum())]})


LIMITS = [
    "Not searched: esophagus, stomach and colon (their cancers are wall thickenings, which contrast to the "
    "organ does not find): the default model reports no esophageal, gastric or colorectal cancer.",
    "Lesions that barely differ from their organ are missed: isodense tumours, most pancreatic tumours (the "
    "pancreas at 3 mm is a partial-volume blur of fat and gland), tumours in a kidney whose sinus fat dilutes "
    "the reference, lytic or sclerotic metastases close to the cortex of a vertebra.",
    "Exophytic parts of a lesion outside its organ mask are not segmented (the search stays in the organ).",
    "Fitted on synthetic lesions (this project's synthesis) in four real patients; real lesions differ.",
    "Needs organ masks for everything but the lung (TotalSegmentator's classes: pass --organs); without a "
    "mask only the lung, found by thresholding, is searched.",
    "Research use only; not a medical device; never use it for diagnosis.",
]


def write_model_folder(out: Path, scorer: Scorer, results: dict, examples: dict) -> None:
    """model.json (card) + detector.json (scorer numbers, hashed) + MODEL_CARD.md."""
    from PASTALib.detection.candidates import SEARCH_RULES
    from PASTALib.hashing import sha256_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "detector.json").write_text(json.dumps(scorer.as_dict(), indent=1), encoding="utf-8")
    searched = ["lung", *SEARCH_RULES]
    types = [t for t in lesion_types.LESION_TYPES if t.organ in searched]
    card = {
        "format": "pasta-model", "format_version": 1,
        "name": "pasta-default (organ-aware lesion detector)", "version": "0.2.0",
        "weights": ["detector.json"], "sha256": {"detector.json": sha256_file(out / "detector.json")},
        "detector": {"file": "detector.json", "searched_organs": searched, "working_grid_min_mm": 2.0,
                     "method": "candidates that differ from their own organ's parenchyma (per-organ reference and "
                               "texture), cut at half their contrast; a random forest over 25 features scores "
                               "them; Platt-calibrated; operating points chosen on healthy scans"},
        "classes": [{"id": 0, "name": "background", "lesion_type": None}]
                   + [{"id": t.id, "name": t.name, "lesion_type": t.key} for t in types],
        "license": "Apache-2.0", "intended_use": "Research only; not a medical device.",
        "provenance": {
            "trained_by": "Testing/tools/train_detector.py",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "training_patients": "native 3 mm abdomen (bundled sample), chest CTA (crops A and B: one patient)",
            "held_out_patients": "contrast DICOM abdomen, LIDC-IDRI-0001 (its real, unlabelled lung mass is "
                                 "kept out of the tissue examples and scored on its own: real_lesion_confidence)",
            "examples": examples, "held_out_cases_per_type": HELD_OUT_PER_TYPE,
            "operating_points_chosen_on": "healthy scans of the training patients: the abdomen, its upper part, "
                                          "chest crops A and B"},
        "validation": results,
        "limits": LIMITS,
    }
    (out / "model.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    lines = [f"# {card['name']} {card['version']}", "",
             "Finds lesions as a reader does: regions that differ from their own organ. Every finding lies in an "
             "organ that hosts PASTA lesion types and has a type that organ can host; its confidence is calibrated "
             "on held-out synthetic lesions.", "",
             f"Searched organs: {', '.join(searched)}.", "",
             "## Held-out patients (never used for fitting): synthetic lesions 10-50 mm", "",
             "| sensitivity | threshold | lesions | detected | mean Dice | Dice (detected) | type right | "
             "false findings per healthy scan |", "|---|---|---|---|---|---|---|---|"]
    for sensitivity, threshold in scorer.operating_points.items():
        held = results[sensitivity]["held_out"]
        a = held["all"]
        false = ", ".join(f"{k} {v}" for k, v in held["false_findings_healthy_scans"].items())
        lines.append(f"| {sensitivity} | {threshold:.2f} | {a['cases']} | {a['detected']:.0%} | {a['dice_mean']:.2f} | "
                     f"{a['dice_mean_detected']} | {a['type_right_when_detected']} | {false} |")
    lines += ["", "Per type at the default operating point (balanced):", "",
              "| type | lesions | detected | mean Dice | type right when detected |", "|---|---|---|---|---|"]
    for key, row in results["balanced"]["held_out"]["per_type"].items():
        lines.append(f"| {key} | {row['cases']} | {row['detected']:.0%} | {row['dice_mean']:.2f} | "
                     f"{row['type_right_when_detected']} |")
    lines += ["", "## What it misses", ""] + [f"- {limit}" for limit in LIMITS]
    lines += ["", "Reproduce: `python Testing/tools/detector_data.py --per-type 24 --splits train`, "
              "`python Testing/tools/detector_data.py --per-type 8 --splits heldout`, then "
              "`python Testing/tools/train_detector.py`.", ""]
    (out / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
