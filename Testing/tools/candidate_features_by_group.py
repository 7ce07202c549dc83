#!/usr/bin/env python3
"""How the detector's candidates in one organ group look: lesion candidates against healthy ones.

Why: where the candidate ceiling of a type is high but its detection is low (pancreas, kidney), the
scorer cannot tell its lesion candidates from the group's healthy-tissue candidates. This prints, per
feature (:data:`PASTALib.detection.features.FEATURE_NAMES`), the median and IQR of the healthy-scan
candidates and of the candidates mostly inside a synthetic lesion (what a lesion looks like; the detector's
training also counts a candidate that holds a lesion merged with tissue beside it, ``is_lesion_example``,
whose features are mostly that tissue's), per lesion type of the group, from the candidates cache ``train_detector.py
--candidates`` writes. A feature whose ranges overlap cannot separate them.

    python Testing/tools/candidate_features_by_group.py .cache/candidates.json --group pancreas
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from PASTALib.detection.features import FEATURE_NAMES
from PASTALib.lesions import lesion_types
from detector_evaluation import POSITIVE_INSIDE  # a candidate this much inside a lesion stands for it


def group_rows(hosts: dict, group: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(healthy candidates of the group, lesion candidates of the group per lesion type)."""
    column = FEATURE_NAMES.index(f"group_{group}")
    healthy = [np.asarray(f) for host in hosts.values() for f in host["healthy"] if f[column] == 1]
    lesions: dict[str, list] = {}
    for host in hosts.values():
        for case in host["cases"]:
            for features, inside, voxels, *_ in case["rows"]:  # voxels inside the lesion, candidate voxels
                if features[column] == 1 and inside / voxels >= POSITIVE_INSIDE:
                    lesions.setdefault(case["type"], []).append(np.asarray(features))
    return np.array(healthy), {key: np.array(rows) for key, rows in sorted(lesions.items())}


def describe(values: np.ndarray) -> str:
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    return f"{p50:.2f} ({p25:.2f} to {p75:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", type=Path, help="candidates cache written by train_detector.py")
    parser.add_argument("--group", required=True, help="organ group, e.g. pancreas, kidney, liver")
    args = parser.parse_args(argv)
    if f"group_{args.group}" not in FEATURE_NAMES:
        raise SystemExit(f"{args.group} is not a searched group: "
                         + ", ".join(n[6:] for n in FEATURE_NAMES if n.startswith("group_") and "_x_" not in n))
    hosts = json.loads(args.candidates.read_text(encoding="utf-8"))["hosts"]
    lengths = {len(f) for host in hosts.values() for f in host["healthy"]}
    if lengths != {len(FEATURE_NAMES)}:
        raise SystemExit(f"{args.candidates} holds {sorted(lengths)} features per candidate, this code names "
                         f"{len(FEATURE_NAMES)}: it was collected with other features")
    healthy, lesions = group_rows(hosts, args.group)
    if healthy.size == 0 or not lesions:
        raise SystemExit(f"no healthy or no lesion candidates in the {args.group} group")
    names = [lesion_types.BY_KEY[key].name if key in lesion_types.BY_KEY else key for key in lesions]
    print(f"| feature | healthy ({len(healthy)}) | "
          + " | ".join(f"{name} ({len(rows)})" for name, rows in zip(names, lesions.values())) + " |")
    print("|---|---|" + "---|" * len(lesions))
    for index, name in enumerate(FEATURE_NAMES):
        if name.startswith("group_"):
            continue
        print(f"| {name} | {describe(healthy[:, index])} | "
              + " | ".join(describe(rows[:, index]) for rows in lesions.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
