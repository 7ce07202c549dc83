"""The learned part of the detector: a random forest over candidate features, with its calibration
and operating points, stored as plain numbers (no pickle, nothing executable; numpy evaluates it).

The forest is fitted on synthetic lesions and healthy tissue of the training patients
(``Testing/tools/train_detector.py``, scikit-learn); a Platt calibration on held-out patients'
synthetic lesions turns its vote into a confidence that means "this share of findings like it were
lesions"; each operating point (``--sensitivity``) is a confidence threshold chosen on healthy scans
of the training patients, each scored by a forest fitted without that patient (a new patient's false
findings, not a familiar one's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from PASTALib.errors import PastaInputError

from .features import FEATURE_NAMES
from .sensitivity import SENSITIVITIES



@dataclass
class Forest:
    """Decision trees as flat arrays (sklearn's layout: go left when feature <= threshold; a leaf has
    feature -1 and holds the share of lesion examples that reached it)."""

    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    left: list[np.ndarray]
    right: list[np.ndarray]
    value: list[np.ndarray]
    _stack: Optional[tuple[np.ndarray, ...]] = field(default=None, init=False, repr=False, compare=False)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """The share of trees' lesion votes per row: all trees walked together, one level per step (a
        thousand trees one at a time cost 0.07 s for three candidates)."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        feature, threshold, left, right, value = self._stacked()
        trees = np.arange(feature.shape[0])[None, :]
        out = np.empty(len(x))
        for start in range(0, len(x), 512):  # bounds the (rows x trees) index arrays
            rows = np.arange(start, min(start + 512, len(x)))[:, None]
            node = np.zeros((len(rows), feature.shape[0]), np.int64)
            while True:
                f = feature[trees, node]
                inner = f >= 0
                if not inner.any():
                    break
                go_left = x[rows, np.where(inner, f, 0)] <= threshold[trees, node]
                node = np.where(inner, np.where(go_left, left[trees, node], right[trees, node]), node)
            out[rows[:, 0]] = value[trees, node].mean(axis=1)
        return out

    def _stacked(self) -> tuple[np.ndarray, ...]:
        """The trees padded to one (trees x nodes) array per field (a padded node is a leaf never reached)."""
        if self._stack is None:
            width = max(len(f) for f in self.feature)

            def pad(arrays, fill, dtype):
                out = np.full((len(arrays), width), fill, dtype)
                for i, a in enumerate(arrays):
                    out[i, :len(a)] = a
                return out

            self._stack = (pad(self.feature, -1, np.int64), pad(self.threshold, 0.0, np.float64),
                           pad(self.left, 0, np.int64), pad(self.right, 0, np.int64),
                           pad(self.value, 0.0, np.float64))
        return self._stack

    def as_dict(self) -> dict[str, Any]:
        return {"trees": [{"feature": f.tolist(), "threshold": t.tolist(), "left": a.tolist(), "right": b.tolist(),
                           "value": v.tolist()} for f, t, a, b, v in
                          zip(self.feature, self.threshold, self.left, self.right, self.value)]}

    @classmethod
    def from_dict(cls, block: Mapping[str, Any], n_features: int) -> "Forest":
        trees = block["trees"]
        parts = {k: [np.asarray(t[k], np.float64 if k in ("threshold", "value") else np.int64) for t in trees]
                 for k in ("feature", "threshold", "left", "right", "value")}
        for i in range(len(trees)):
            n = len(parts["feature"][i])
            if not n or any(len(parts[k][i]) != n for k in parts):
                raise ValueError(f"tree {i} has arrays of different lengths")
            inner = parts["feature"][i] >= 0
            if np.any(parts["feature"][i] >= n_features) or np.any(
                    (parts["left"][i][inner] <= np.nonzero(inner)[0]) | (parts["right"][i][inner] >= n)
                    | (parts["right"][i][inner] <= np.nonzero(inner)[0]) | (parts["left"][i][inner] >= n)):
                raise ValueError(f"tree {i} points outside itself")  # children come after their parent
        return cls(parts["feature"], parts["threshold"], parts["left"], parts["right"], parts["value"])


@dataclass
class Scorer:
    features: tuple[str, ...]
    forest: Forest
    calibration: tuple[float, float] = (1.0, 0.0)  #: Platt: confidence = sigmoid(a * logit(p) + b)
    operating_points: dict[str, float] = field(default_factory=dict)  #: sensitivity -> confidence threshold

    def logit(self, x: np.ndarray) -> np.ndarray:
        return logit(self.forest.probability(x))

    def confidence(self, x: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return sigmoid(a * self.logit(x) + b)

    def threshold(self, sensitivity: str) -> float:
        if sensitivity not in self.operating_points:
            raise PastaInputError(f"Unknown sensitivity {sensitivity!r}.",
                                  f"Use one of: {', '.join(self.operating_points) or ', '.join(SENSITIVITIES)}.")
        return self.operating_points[sensitivity]

    def as_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "model": "random_forest", **self.forest.as_dict(),
                "calibration": {"a": self.calibration[0], "b": self.calibration[1]},
                "operating_points": dict(self.operating_points)}

    @classmethod
    def from_dict(cls, block: Mapping[str, Any], where: str = "the model card") -> "Scorer":
        try:
            features = tuple(block["features"])
            if block.get("model") != "random_forest":
                raise ValueError(f"unknown scorer model {block.get('model')!r}")
            scorer = cls(features, Forest.from_dict(block, len(features)),
                         (float(block["calibration"]["a"]), float(block["calibration"]["b"])),
                         {str(k): float(v) for k, v in block["operating_points"].items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise PastaInputError(f"The detector in {where} is incomplete or malformed ({exc}).",
                                  "Reinstall the model folder.") from exc
        if features != FEATURE_NAMES:
            raise PastaInputError(f"The detector in {where} was fitted on other features than this version "
                                  "computes.", "Use the model folder that came with this version of PASTA.")
        missing = [s for s in SENSITIVITIES if s not in scorer.operating_points]
        if missing:
            raise PastaInputError(f"{where} names no operating point for: {', '.join(missing)}.",
                                  "Reinstall the model folder.")
        return scorer


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def logit(p: np.ndarray) -> np.ndarray:
    """The forest's vote as a logit, clipped to 0.001-0.999 (a unanimous vote is not certainty); the
    calibration is fitted and applied on this same scale."""
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))
