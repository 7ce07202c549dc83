"""The detector's arithmetic: its forest's votes (PASTALib.detection.scorer), and its evaluation
(Testing/tools/detector_evaluation.py), where per organ group detection is read against that group's own
false findings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

from detector_evaluation import FALSE_BUDGETS, against_false_findings, against_false_findings_by_group  # noqa: E402

from PASTALib.detection.features import FEATURE_NAMES  # noqa: E402


class ConfidenceIsTheFirstFeature:
    """A scorer whose confidence is written into each candidate's first feature."""

    def confidence(self, features: np.ndarray) -> np.ndarray:
        return np.atleast_2d(features)[:, 0]


def _candidate(group: str, confidence: float) -> np.ndarray:
    row = np.zeros(len(FEATURE_NAMES))
    row[0] = confidence
    row[FEATURE_NAMES.index(f"group_{group}")] = 1.0
    return row


def _case(lesion_type: str, group: str, confidence: float) -> dict:
    """One lesion of 100 voxels whose only candidate is 90 % inside it (Dice 0.9 when kept)."""
    return {"name": f"x/{lesion_type}", "type": lesion_type, "size_mm": 20.0, "truth_voxels": 100,
            "rows": [(_candidate(group, confidence), 90.0, 100, 40.0, group)]}


def test_a_group_is_read_against_its_own_false_findings():
    # patient a: liver tissue that looks more like a lesion than anything in the lung
    hosts = {
        "a": {"patient": "a", "real": [], "healthy": [_candidate("liver", c) for c in (0.99, 0.98, 0.97)]
              + [_candidate("lung", 0.5)],
              "cases": [_case("lung_tumor", "lung", 0.9), _case("liver_tumor", "liver", 0.95)]},
        "b": {"patient": "b", "real": [], "healthy": [_candidate("lung", 0.4)],
              "cases": [_case("lung_tumor", "lung", 0.45), _case("lung_tumor", "lung", 0.2)]},
    }
    scorers = {"a": ConfidenceIsTheFirstFeature(), "b": ConfidenceIsTheFirstFeature()}
    pooled = {r["false_findings_total"]: r["detected"] for r in against_false_findings(scorers, hosts)}
    assert pooled[1] == 0.0  # one false finding overall: the threshold sits in the liver's 0.98
    by_group = against_false_findings_by_group(scorers, hosts)
    lung = {r["false_findings_total"]: r for r in by_group["lung"]}
    assert lung[1]["lesions"] == 3
    assert lung[1]["detected"] == round(2 / 3, 3)  # one lung false finding (0.5) allowed: above 0.4
    liver = {r["false_findings_total"]: r["detected"] for r in by_group["liver"]}
    assert liver[1] == 0.0 and liver[5] == 1.0  # below the liver tissue (0.97-0.99) until all three are allowed
    assert set(by_group) == {"lung", "liver"}  # groups without lesions have no curve
    assert [r["false_findings_total"] for r in by_group["lung"]] == list(FALSE_BUDGETS[:-1])


def test_lesions_made_only_to_fit_on_are_never_scored():
    """``detector_data.py --extra`` lesions: in the training matrix of the patients that hold them, in no
    held-out figure (so every fit is scored on the same lesions)."""
    from detector_evaluation import candidate_ceiling, score_cases
    from train_detector import training_matrix

    host = {"patient": "a", "real": [], "healthy": [_candidate("liver", 0.1)],
            "cases": [_case("liver_tumor", "liver", 0.9)],
            "extra_cases": [_case("liver_cyst", "liver", 0.9), _case("liver_cyst", "liver", 0.8)]}
    x, y, _ = training_matrix({"a": host})
    assert y.tolist() == [0.0, 1.0, 1.0, 1.0]
    per_type, healthy_false, _ = score_cases(ConfidenceIsTheFirstFeature(), {"a": host}, 0.5)
    assert set(per_type) == {"liver_tumor"} and len(per_type["liver_tumor"]) == 1 and healthy_false == {"a": 0}
    assert set(candidate_ceiling({"a": host})) == {"liver_tumor"}


def test_the_forest_walks_trees_of_different_depths_to_their_own_leaves():
    """All trees are walked together on padded arrays: a shallow tree must stop at its leaf while a
    deeper one goes on, and a padded node is never reached."""
    from PASTALib.detection.scorer import Forest

    stump = dict(feature=[0, -1, -1], threshold=[0.5, 0.0, 0.0], left=[1, -1, -1], right=[2, -1, -1],
                 value=[0.0, 0.2, 0.8])  # x0 <= 0.5 -> 0.2, else 0.8
    deep = dict(feature=[1, -1, 0, -1, -1], threshold=[0.0, 0.0, 2.0, 0.0, 0.0], left=[1, -1, 3, -1, -1],
                right=[2, -1, 4, -1, -1], value=[0.0, 0.0, 0.0, 0.6, 1.0])  # x1 <= 0 -> 0; else x0 <= 2 -> 0.6, 1
    forest = Forest(*[[np.asarray(t[k]) for t in (stump, deep)] for k in ("feature", "threshold", "left", "right",
                                                                          "value")])
    x = np.array([[0.0, -1.0], [1.0, 1.0], [3.0, 1.0], [3.0, -1.0]])
    expected = np.array([(0.2 + 0.0) / 2, (0.8 + 0.6) / 2, (0.8 + 1.0) / 2, (0.8 + 0.0) / 2])
    assert np.allclose(forest.probability(x), expected)
    assert np.allclose(forest.probability(np.repeat(x, 300, axis=0)), np.repeat(expected, 300))  # chunked
