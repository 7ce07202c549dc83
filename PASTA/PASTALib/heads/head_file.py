"""Learned heads on PASTA features, stored as JSON and applied with numpy alone.

A head file holds numbers, never code (no pickle): the scaler's mean and scale, the coefficients
and intercepts of a logistic regression (``stage``, ``binary``) or of a Cox model (``survival``,
with its baseline survival curve), the feature dimension, the model the features came from
(name, SHA256), the crop settings, the training-set size and the cross-validated metrics. Loading
checks every array's shape and value, so a damaged or edited file fails clearly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file

HEAD_FORMAT = "pasta-head"
HEAD_FORMAT_VERSION = 1
TASKS = ("stage", "binary", "survival")
#: The cross-validated metric a report shows for each task.
PRIMARY_METRIC = {"stage": "balanced_accuracy", "binary": "auc", "survival": "c_index"}


@dataclass
class HeadOutput:
    """One prediction: a class with probabilities, or a Cox risk with survival probabilities."""

    value: Optional[str]
    probabilities: dict[str, float] = field(default_factory=dict)
    risk_score: Optional[float] = None  #: log relative hazard against the average training case
    relative_hazard: Optional[float] = None
    survival: dict[str, float] = field(default_factory=dict)  #: time (training units) -> S(t)
    max_abs_z: float = 0.0  #: largest standardised feature: far above training's, the head extrapolates


@dataclass
class Head:
    data: dict[str, Any]
    sha256: str
    path: Optional[Path] = None

    # ------------------------------------------------------------------------------ facts
    @property
    def task(self) -> str:
        return self.data["task"]

    @property
    def kind(self) -> str:
        return self.data["features"]["kind"]

    @property
    def dimension(self) -> int:
        return int(self.data["features"]["dimension"])

    @property
    def model_sha256(self) -> str:
        return self.data["features"]["model_sha256"]

    @property
    def model_name(self) -> str:
        return self.data["features"]["model"]

    @property
    def crop(self) -> dict:
        return self.data["features"]["crop"]

    @property
    def classes(self) -> list[str]:
        return list(self.data["model"].get("classes", []))

    @property
    def cv_metric(self) -> tuple[str, Optional[float]]:
        name = PRIMARY_METRIC[self.task]
        return name, self.data["cv"]["mean"].get(name)

    @property
    def name(self) -> str:
        return self.path.name if self.path else "head"

    def check_model(self, dimension: int, model_sha256: str, model_name: str) -> None:
        """Refuse features of any model but the one the head was trained on."""
        if dimension != self.dimension:
            raise PastaInputError(
                f"Head {self.name} was trained on {self.dimension} features of model '{self.model_name}', "
                f"but model '{model_name}' gives {dimension} features.",
                "Apply the head with the model its features came from (see the head file's "
                "features.model), or fit a new head on this model's features.")
        if model_sha256 != self.model_sha256:
            raise PastaInputError(
                f"Head {self.name} was trained on features of model '{self.model_name}' (weights SHA256 "
                f"{self.model_sha256[:12]}…), not of model '{model_name}' ({model_sha256[:12]}…).",
                "Features of different weights mean different things; use the head's model, or fit a "
                "new head on this model's features.")

    # ------------------------------------------------------------------------------ apply
    def standardise(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dimension:
            raise PastaInputError(f"Head {self.name} needs {self.dimension} features per row, got shape "
                                  f"{list(x.shape)}.", "Use features of the head's model.")
        if not np.all(np.isfinite(x)):
            raise PastaInputError(f"Features given to head {self.name} contain NaN or infinite values.")
        scaler = self.data["scaler"]
        return (x - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])

    def predict(self, features: np.ndarray) -> list[HeadOutput]:
        """Predictions for (N, C) features."""
        x = self.standardise(features)
        model = self.data["model"]
        outputs = self._survival(x, model) if self.task == "survival" else self._classes(x, model)
        for output, row in zip(outputs, x):
            output.max_abs_z = float(np.max(np.abs(row)))
        return outputs

    def extrapolates(self, output: HeadOutput, factor: float = 1.5) -> bool:
        """True when a feature lies far outside the training range (factor x the training maximum)."""
        seen = self.data["training"].get("max_abs_z")
        return seen is not None and output.max_abs_z > factor * float(seen)

    def _classes(self, x: np.ndarray, model: dict) -> list[HeadOutput]:
        coef, intercept = np.asarray(model["coef"]), np.asarray(model["intercept"])
        z = x @ coef.T + intercept
        if z.shape[1] == 1:  # binary logistic regression: one logit for the second class
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            probabilities = np.stack([1.0 - p1, p1], axis=1)
        else:
            z = z - z.max(axis=1, keepdims=True)
            probabilities = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        classes = self.classes
        return [HeadOutput(classes[int(np.argmax(p))], {c: float(v) for c, v in zip(classes, p)})
                for p in probabilities]

    def _survival(self, x: np.ndarray, model: dict) -> list[HeadOutput]:
        risk = (x - np.asarray(model["centre"])) @ np.asarray(model["coef"])
        times = np.asarray(model["baseline_survival"]["times"])
        base = np.asarray(model["baseline_survival"]["survival"])
        out = []
        for r in risk:
            survival = {}
            for t in model["report_times"]:
                index = np.searchsorted(times, t, side="right") - 1
                s0 = 1.0 if index < 0 else float(base[index])
                survival[f"{t:g}"] = float(s0 ** np.exp(r))
            out.append(HeadOutput(f"relative hazard {np.exp(r):.2f}", {}, float(r), float(np.exp(r)), survival))
        return out


# ------------------------------------------------------------------------------------ files
def save(data: dict[str, Any], path: Path, overwrite: bool = False) -> Head:
    from PASTALib.atomic import atomic_write

    validate(data, str(path))
    atomic_write(Path(path), json.dumps(data, indent=1) + "\n", overwrite=overwrite)
    return Head(data, sha256_file(path), Path(path))


def load(path: str | Path) -> Head:
    path = Path(path).expanduser()
    if not path.is_file():
        raise PastaInputError(f"Head file not found: {path}.", "Fit one with `pasta fit-head`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PastaInputError(f"{path} is not a readable head file: {exc}.",
                              "A head is the JSON file written by `pasta fit-head`.") from None
    validate(data, str(path))
    return Head(data, sha256_file(path), path)


def _array(value: Any, shape: tuple, what: str, source: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PastaInputError(f"{source}: {what} is not an array of numbers.") from None
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise PastaInputError(f"{source}: {what} has shape {list(array.shape)} (expected {list(shape)}) "
                              "or holds NaN/infinite values.", "The head file is damaged; fit it again.")
    return array


def validate(data: Any, source: str) -> None:
    """Check a head document completely before anything uses it."""
    if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
        raise PastaInputError(f"{source} is not a PASTA head file (format must be '{HEAD_FORMAT}').",
                              "A head is the JSON file written by `pasta fit-head`.")
    if data.get("format_version") != HEAD_FORMAT_VERSION:
        raise PastaInputError(f"{source} has head format version {data.get('format_version')}; this PASTA "
                              f"reads version {HEAD_FORMAT_VERSION}.", "Update PASTA or fit the head again.")
    try:
        task, features, model = data["task"], data["features"], data["model"]
        d = int(features["dimension"])
        for key in ("model", "model_sha256", "kind", "crop"):
            features[key]
        data["training"]["size"], data["cv"]["mean"], data["cv"]["folds"]
        scaler = data["scaler"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PastaInputError(f"{source} lacks a required entry ({exc}).", "Fit the head again.") from None
    if task not in TASKS:
        raise PastaInputError(f"{source}: unknown task {task!r}.", f"Tasks: {', '.join(TASKS)}.")
    crop = features["crop"]
    crop_keys = ("lesion_size", "organ_size", "lesion_margin", "organ_margin", "spacing_mm")
    if not isinstance(crop, dict) or any(not isinstance(crop.get(k), (int, float)) or crop[k] < 0 for k in crop_keys):
        raise PastaInputError(f"{source}: features.crop must give {', '.join(crop_keys)} as numbers.",
                              "Fit the head again on features from `pasta features`.")
    _array(scaler.get("mean"), (d,), "scaler.mean", source)
    if np.any(_array(scaler.get("scale"), (d,), "scaler.scale", source) <= 0):
        raise PastaInputError(f"{source}: scaler.scale must be positive.", "Fit the head again.")
    if task == "survival":
        _array(model.get("coef"), (d,), "model.coef", source)
        _array(model.get("centre"), (d,), "model.centre", source)
        base = model.get("baseline_survival") or {}
        n = len(base.get("times", []))
        _array(base.get("times"), (n,), "baseline_survival.times", source)
        _array(base.get("survival"), (n,), "baseline_survival.survival", source)
        _array(model.get("report_times"), (len(model.get("report_times") or []),), "report_times", source)
        return
    classes = model.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise PastaInputError(f"{source}: a classification head needs at least two classes.", "Fit it again.")
    rows = 1 if len(classes) == 2 else len(classes)
    _array(model.get("coef"), (rows, d), "model.coef", source)
    _array(model.get("intercept"), (rows,), "model.intercept", source)
