"""Experiment: one confidence threshold per organ group instead of one for all, measured honestly.

The per-organ curves of the model card show the groups trading false findings very differently (one
false pancreas finding buys ~1 % of pancreatic lesions, one false lung finding ~67 % of lung lesions), so
one pooled threshold spends the false-finding budget where it buys little. This script compares, nested by
patient, the pooled rule with per-group thresholds:

* every patient is scored by the forest fitted without it (as the model card's leave-one-patient-out);
* for each held-out patient, the thresholds are chosen on the *other* patients' out-of-fold scores only:
  pooled = the lowest threshold with at most ``R`` false findings per healthy scan; per group = a greedy
  allocation of the same total budget, each step lowering the group threshold that detects the most
  lesions per extra false finding (on the other patients);
* both are then applied to the held-out patient.

A lesion counts as detected at threshold t when keeping its candidates of confidence >= t reaches Dice 0.1
(``detector_evaluation.DETECTED_DICE``); its group is its type's organ group.

    python Testing/tools/per_group_thresholds.py --candidates .cache/candidates-bB.json [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing" / "tools"))

import train_detector  # noqa: E402
from detector_evaluation import DETECTED_DICE, healthy_groups, lowest_threshold  # noqa: E402

from PASTALib.detection.candidates import SEARCHED_GROUPS  # noqa: E402
from PASTALib.lesions import lesion_types  # noqa: E402

TYPE_GROUP = {t.key: t.organ for t in lesion_types.LESION_TYPES}


def detection_threshold(confidences: np.ndarray, case: dict) -> float:
    """The highest threshold at which this lesion counts as detected (-1: never)."""
    inside = np.array([r[1] for r in case["rows"]], float)
    voxels = np.array([r[2] for r in case["rows"]], float)
    for level in np.unique(confidences)[::-1]:
        kept = confidences >= level
        if 2 * inside[kept].sum() / (voxels[kept].sum() + case["truth_voxels"]) >= DETECTED_DICE:
            return float(level)
    return -1.0


def out_of_fold(hosts: dict, scorers: dict) -> dict:
    """Per patient: healthy candidates (confidence, group), scan count, and lesions (detection threshold, group)."""
    data = {p: {"neg": [], "scans": 0, "pos": []} for p in scorers}
    for host in hosts.values():
        patient = host["patient"]
        if patient not in scorers:
            continue
        scorer = scorers[patient]
        if host["healthy"]:
            features = np.array(host["healthy"])
            data[patient]["neg"] += list(zip(scorer.confidence(features), healthy_groups(features)))
            data[patient]["scans"] += 1
        for case in host["cases"]:
            level = (detection_threshold(scorer.confidence(np.array([r[0] for r in case["rows"]])), case)
                     if case["rows"] else -1.0)
            data[patient]["pos"].append((level, TYPE_GROUP[case["type"]]))
    return data


def pooled_threshold(neg: list, scans: int, rate: float) -> float:
    return lowest_threshold(np.sort(np.array([c for c, _ in neg], float))[::-1], int(np.floor(rate * scans)))


def greedy_thresholds(neg: list, pos: list, scans: int, rate: float) -> dict[str, float]:
    """Spend ``rate * scans`` false findings where each buys the most lesions. A group whose healthy
    candidates run out (the gallbladder and bladder have few or none) falls back to the pooled threshold:
    below its last false finding there is no evidence of how many more a new patient would show."""
    budget = int(np.floor(rate * scans))
    fallback = pooled_threshold(neg, scans, rate)
    negs = {g: np.sort(np.array([c for c, gg in neg if gg == g], float))[::-1] for g in SEARCHED_GROUPS}
    poss = {g: np.array([d for d, gg in pos if gg == g], float) for g in SEARCHED_GROUPS}  # unsearched: never
    spent = {g: 0 for g in SEARCHED_GROUPS}  # false findings allowed in each group so far

    def threshold(g: str, allowed: int) -> float:
        if len(negs[g]) > allowed:
            return lowest_threshold(negs[g], allowed)
        return max(fallback, float(negs[g][-1])) if len(negs[g]) else fallback

    def gain(g: str) -> float:
        now, nxt = threshold(g, spent[g]), threshold(g, spent[g] + 1)
        return float(np.count_nonzero((poss[g] >= nxt) & (poss[g] < now)))

    for _ in range(budget):
        open_groups = [g for g in SEARCHED_GROUPS if len(negs[g]) > spent[g]]
        if not open_groups:
            break
        best = max(open_groups, key=gain)
        if gain(best) <= 0:
            break  # no step buys a lesion: keep the remaining budget unspent
        spent[best] += 1
    return {g: threshold(g, spent[g]) for g in SEARCHED_GROUPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_detector.SEED = args.seed
    hosts = train_detector.collect_cached(args.candidates)
    patients = sorted({h["patient"] for h in hosts.values() if h["cases"]})
    scorers = {}
    for patient in patients:
        scorers[patient] = train_detector.fit_scorer({n: h for n, h in hosts.items() if h["patient"] != patient})
        print("fitted without", patient, flush=True)
    data = out_of_fold(hosts, scorers)
    print("\n| false findings per healthy scan allowed (chosen on the other patients) | rule | detected | "
          "false findings on the held-out healthy scans |\n|---|---|---:|---:|")
    breakdown: dict[float, list[str]] = defaultdict(list)
    for rate in (0.3, 0.5, 0.8, 1.0, 2.0):
        for rule in ("pooled", "per group"):
            detected = lesions = false = 0
            for patient in patients:
                others = [q for q in patients if q != patient]
                neg = [x for q in others for x in data[q]["neg"]]
                pos = [x for q in others for x in data[q]["pos"]]
                scans = sum(data[q]["scans"] for q in others)
                if rule == "pooled":
                    t = pooled_threshold(neg, scans, rate)
                    cut = {g: t for g in SEARCHED_GROUPS}
                else:
                    cut = greedy_thresholds(neg, pos, scans, rate)
                mine = data[patient]
                detected += sum(level >= 0 and level >= cut.get(g, np.inf) for level, g in mine["pos"])
                lesions += len(mine["pos"])
                false += sum(c >= cut.get(g, np.inf) for c, g in mine["neg"])
                if rule == "per group":
                    where = Counter(str(g) for c, g in mine["neg"] if c >= cut.get(g, np.inf))
                    breakdown[rate] += [f"{patient}: {dict(where)}"] if where else []
            print(f"| {rate:g} | {rule} | {100 * detected / lesions:.1f} % | {false} |", flush=True)
    for rate, lines in breakdown.items():
        print(f"\nper group, {rate:g} per scan: held-out false findings by patient and group: " + "; ".join(lines))


if __name__ == "__main__":
    main()
