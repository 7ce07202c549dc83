"""Fitting small heads on PASTA features, with cross-validated metrics.

Classes (``stage``, ``binary``): standardised features -> L2 logistic regression (scikit-learn).
Time to event (``survival``): standardised features -> L2-penalised Cox proportional hazards
(lifelines). One penalty ``lambda`` on the same scale for both (mean loss + lambda/2 ||w||^2):
scikit-learn's ``C = 1 / (lambda n)``, lifelines' ``penalizer = lambda``. Folds keep each case's
rows together (several findings of one patient never sit on both sides of a split), stratified by
class or by event. The result is a plain JSON document (:mod:`.head_file`); scikit-learn and
lifelines are needed to fit, never to apply.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from PASTALib import __version__
from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file

from .feature_table import FeatureTable, crop_settings, first_few
from .head_file import HEAD_FORMAT, HEAD_FORMAT_VERSION, PRIMARY_METRIC, TASKS

log = logging.getLogger(__name__)

#: Fewer events than this cannot give a Cox model or a cross-validated C-index worth reporting.
MIN_EVENTS = 5
_MISSING = {"", "nan", "na", "n/a", "none", "null"}


@dataclass
class Labels:
    ids: list[str]
    values: list[str]  #: class labels (empty for survival)
    time: np.ndarray  #: survival only
    event: np.ndarray  #: survival only (0/1)
    sha256: str
    path: Path


# ----------------------------------------------------------------------------------- labels
def read_labels(path: Path, task: str) -> Labels:
    """``id,label`` for classes; ``id,time,event`` for survival. Missing values are refused."""
    if task not in TASKS:
        raise PastaInputError(f"Unknown task {task!r}.", f"Use one of {', '.join(TASKS)}.")
    path = Path(path).expanduser()
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except OSError as exc:
        raise PastaInputError(f"Cannot read the labels file {path}: {exc.strerror or exc}.") from None
    needed = ("id", "time", "event") if task == "survival" else ("id", "label")
    header = {name.strip().lower(): name for name in (rows[0].keys() if rows else [])}
    missing = [c for c in needed if c not in header]
    if not rows or missing:
        raise PastaInputError(f"The labels file {path} needs columns {', '.join(needed)}"
                              + (f"; {', '.join(missing)} missing" if rows else " and at least one row") + ".",
                              "For --task survival: id,time,event (event 1 = event observed, 0 = censored); "
                              "otherwise id,label.")
    ids = [(row[header["id"]] or "").strip() for row in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PastaInputError(f"{path}: ids occur more than once: {first_few(duplicates)}.", "Give one label per id.")
    sha = sha256_file(path)
    if task != "survival":
        values = [(row[header["label"]] or "").strip() for row in rows]
        bad = [i for i, v in zip(ids, values) if v.lower() in _MISSING]
        if bad:
            raise PastaInputError(f"{path}: {len(bad)} label(s) are missing or NaN: {first_few(bad)}.",
                                  "Give every row a label, or remove rows without one.")
        return Labels(ids, values, np.zeros(0), np.zeros(0), sha, path)
    time, event, bad = np.zeros(len(rows)), np.zeros(len(rows), int), []
    for n, row in enumerate(rows):
        try:
            time[n] = float(row[header["time"]])
            text = (row[header["event"]] or "").strip().lower()
            event[n] = {"1": 1, "0": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0}[text]
            if not np.isfinite(time[n]) or time[n] <= 0:
                raise ValueError
        except (KeyError, ValueError, TypeError):
            bad.append(ids[n])
    if bad:
        raise PastaInputError(f"{path}: {len(bad)} row(s) have a missing, NaN or non-positive time, or an event "
                              f"that is not 0/1: {first_few(bad)}.",
                              "time: follow-up > 0 (any unit, the same for all); event: 1 observed, 0 censored.")
    return Labels(ids, [], time, event, sha, path)


def match(table: FeatureTable, labels: Labels) -> np.ndarray:
    """Row index in ``table`` of every label id; unknown ids, mixed kinds or models are refused."""
    where = {fid: n for n, fid in enumerate(table.ids)}
    unknown = [i for i in labels.ids if i not in where]
    if unknown:
        example = table.ids[0] if table.ids else "(none)"
        raise PastaInputError(
            f"{len(unknown)} of {len(labels.ids)} label ids have no row in the features: {first_few(unknown)}.",
            f"Label ids must be the features' ids, '<case>/<finding or organ>' (e.g. '{example}'); "
            f"the features hold {len(table.ids)} rows.")
    rows = np.array([where[i] for i in labels.ids], int)
    unlabelled = len(table.ids) - len(rows)
    if unlabelled:
        log.info("%d feature row(s) have no label and are left out.", unlabelled)
    for what, values in (("kinds", table.kinds), ("models (weights SHA256)", table.model_sha256)):
        distinct = sorted({values[n] for n in rows})
        if len(distinct) > 1:
            raise PastaInputError(f"The labelled rows mix {len(distinct)} {what}: {first_few(distinct)}.",
                                  "One head is fitted on one kind of row (finding or organ) from one model.")
    return rows


# ----------------------------------------------------------------------------------- folds
def _splits(y_strata: np.ndarray, groups: Sequence[str], folds: int, seed: int) -> tuple[list, str]:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    grouped = len(set(groups)) < len(groups)
    if grouped:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        name = f"StratifiedGroupKFold({folds}, by case, shuffled, seed {seed})"
        return list(splitter.split(np.zeros(len(y_strata)), y_strata, groups)), name
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y_strata)), y_strata)), f"StratifiedKFold({folds}, shuffled, seed {seed})"


def _fold_count(requested: int, smallest: int, groups: Sequence[str], what: str) -> int:
    folds = min(int(requested), smallest, len(set(groups)))
    if folds < 2:
        raise PastaInputError(f"Cross-validation needs at least 2 {what}; there are {smallest}.",
                              "Label more cases.")
    if folds < requested:
        log.info("Using %d folds (fewest %s: %d).", folds, what, smallest)
    return folds


# ----------------------------------------------------------------------------------- fitting
def _classifier(x: np.ndarray, y: np.ndarray, penalty: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0 / (penalty * len(y)), max_iter=10000).fit(scaler.transform(x), y)
    return scaler, model


def _class_metrics(y: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, Optional[float]]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    predicted = np.asarray(classes)[np.argmax(probabilities, axis=1)]
    auc: Optional[float] = None
    present = set(y.tolist())
    if len(classes) == 2 and len(present) == 2:
        auc = float(roc_auc_score(y == classes[1], probabilities[:, 1]))
    elif len(classes) > 2 and present == set(classes):
        auc = float(roc_auc_score(y, probabilities, multi_class="ovr", labels=classes))
    return {"accuracy": float(accuracy_score(y, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted)), "auc": auc}


def _fit_classes(x, y, groups, task, penalty, folds, seed) -> tuple[dict, dict, list]:
    classes = sorted(set(y.tolist()))
    counts = {c: int((y == c).sum()) for c in classes}
    if len(classes) < 2:
        raise PastaInputError(f"Every label is '{classes[0]}': a head needs at least two classes.",
                              "Label cases of both (all) classes.")
    if task == "binary" and len(classes) != 2:
        raise PastaInputError(f"--task binary needs exactly two classes; the labels have {len(classes)}: "
                              f"{first_few(classes)}.", "Use --task stage for more than two classes.")
    k = _fold_count(folds, min(counts.values()), groups, "examples of the rarest class")
    splits, splitter = _splits(y, groups, k, seed)
    oof = np.zeros((len(y), len(classes)))
    per_fold = []
    for n, (train, test) in enumerate(splits, start=1):
        if len(set(y[train].tolist())) < len(classes):
            raise PastaInputError(f"Fold {n} has no training example of some class.", "Label more cases.")
        scaler, model = _classifier(x[train], y[train], penalty)
        oof[test] = model.predict_proba(scaler.transform(x[test]))
        per_fold.append({"fold": n, "n_train": len(train), "n_test": len(test),
                         **_class_metrics(y[test], oof[test], classes), "test_cases": _cases_of(groups, test)})
    scaler, model = _classifier(x, y, penalty)
    body = {"type": "logistic_regression", "classes": classes, "coef": model.coef_.tolist(),
            "intercept": model.intercept_.tolist(),
            "positive_class": classes[1] if len(classes) == 2 else None}
    cv = {"folds": k, "splitter": splitter, "seed": seed, "per_fold": per_fold, "mean": _mean(per_fold),
          "pooled": _class_metrics(y, oof, classes)}
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}, body, [cv, {"class_counts": counts}]


@dataclass
class _CoxFit:
    """A penalised Cox model on standardised features, fitted in their row space when n <= d.

    With an L2 penalty the optimum lies in the span of the training rows (the partial likelihood
    sees beta only through X beta), so fitting on Z = X V (V: orthonormal basis of the rows, r <= n
    columns) and mapping back, beta = V gamma, gives the same model as fitting all d features, but
    with an r x r Hessian instead of d x d: seconds instead of minutes for PASTA's 1024 features.
    lifelines rescales each column to unit SD before penalising; per-column penalizers undo that, so
    the penalty stays lambda/2 |beta|^2 on the standardised features either way.
    """

    scaler: Any
    basis: np.ndarray  #: (d, r)
    model: Any

    @property
    def coef(self) -> np.ndarray:
        return self.basis @ self.model.params_.values

    @property
    def centre(self) -> np.ndarray:
        return self.basis @ self.model._norm_mean.values  # lifelines' own centring, in feature space

    def risk(self, x: np.ndarray) -> np.ndarray:
        return (self.scaler.transform(x) - self.centre) @ self.coef


def _cox(x: np.ndarray, time: np.ndarray, event: np.ndarray, penalty: float) -> _CoxFit:
    import pandas
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    _, singular, rows = np.linalg.svd(xs, full_matrices=False)
    basis = rows[singular > 1e-8 * max(singular.max(), 1e-30)].T
    z = xs @ basis
    n = len(xs)
    # lifelines penalises n * penalizer/2 * (sd_j * gamma_j)^2 with sd_j its column SD (ddof 1); a
    # StandardScaler column has SD sqrt(n / (n - 1)), so this is penalizer = lambda on all d features.
    penalizers = penalty * (n / (n - 1)) / np.var(z, axis=0, ddof=1)
    frame = pandas.DataFrame(z, columns=[f"z{c}" for c in range(z.shape[1])])
    frame["time"], frame["event"] = time, event
    try:
        model = CoxPHFitter(penalizer=penalizers).fit(frame, duration_col="time", event_col="event")
    except ConvergenceError as exc:
        raise PastaInputError(f"The Cox model did not converge ({str(exc).splitlines()[0][:120]}).",
                              "Increase --penalty (e.g. 1.0), or check the labels (times, events).") from None
    return _CoxFit(scaler, basis, model)


def _fit_survival(x, time, event, groups, penalty, folds, seed) -> tuple[dict, dict, list]:
    from lifelines.utils import concordance_index

    events = int(event.sum())
    if events < MIN_EVENTS:
        raise PastaInputError(f"Only {events} event(s) among {len(event)} cases: too few for a Cox model "
                              f"(at least {MIN_EVENTS} needed).", "Label more cases with observed events, or "
                              "use a binary head on a dichotomised endpoint.")
    k = _fold_count(folds, min(events, int(len(event) - events) or events), groups, "events or censored cases")
    splits, splitter = _splits(event, groups, k, seed)
    oof, per_fold = np.zeros(len(event)), []
    for n, (train, test) in enumerate(splits, start=1):
        oof[test] = _cox(x[train], time[train], event[train], penalty).risk(x[test])
        c = (float(concordance_index(time[test], -oof[test], event[test]))
             if event[test].any() and len(test) > 1 else None)
        per_fold.append({"fold": n, "n_train": len(train), "n_test": len(test),
                         "events": int(event[test].sum()), "c_index": c, "test_cases": _cases_of(groups, test)})
    fit = _cox(x, time, event, penalty)
    scaler, baseline = fit.scaler, fit.model.baseline_survival_.iloc[:, 0]
    quartiles = np.percentile(time[event == 1], [25, 50, 75], method="lower")  # observed event times
    body = {"type": "cox_ph", "coef": fit.coef.tolist(), "centre": fit.centre.tolist(),
            "baseline_survival": {"times": baseline.index.values.astype(float).tolist(),
                                  "survival": baseline.values.astype(float).tolist()},
            "report_times": sorted({float(np.round(v, 6)) for v in quartiles}),
            "time_unit": "as in the labels file"}
    cv = {"folds": k, "splitter": splitter, "seed": seed, "per_fold": per_fold, "mean": _mean(per_fold),
          "pooled": {"c_index": float(concordance_index(time, -oof, event))}}
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}, body, [cv, {"events": events}]


def _cases_of(groups: Sequence[str], rows: np.ndarray) -> list[str]:
    return sorted({groups[n] for n in rows})


def _mean(per_fold: list[dict]) -> dict[str, Optional[float]]:
    """Mean of each metric over the folds where it is defined (the primary, reported figure:
    pooling out-of-fold scores of differently fitted models mixes their scales and intercepts)."""
    out: dict[str, Optional[float]] = {}
    for name in ("accuracy", "balanced_accuracy", "auc", "c_index"):
        values = [row[name] for row in per_fold if row.get(name) is not None]
        if name in per_fold[0]:
            out[name] = float(np.mean(values)) if values else None
    return out


def fit_head(table: FeatureTable, labels: Labels, task: str, penalty: float = 0.1, folds: int = 5,
             seed: int = 0, feature_files: Sequence[Path] = ()) -> dict[str, Any]:
    """Fit a head and cross-validate it; returns the head document (see :mod:`.head_file`)."""
    if not penalty > 0:
        raise PastaInputError(f"--penalty must be > 0, got {penalty}.", "Try 0.1 (default); larger is smoother.")
    rows = match(table, labels)
    x = table.features[rows].astype(np.float64)
    groups = [table.cases[n] for n in rows]
    if task == "survival":
        scaler, body, (cv, extra) = _fit_survival(x, labels.time, labels.event, groups, penalty, folds, seed)
        estimator = "lifelines CoxPHFitter (L2 penalizer = lambda), fitted in the row space of the features"
    else:
        scaler, body, (cv, extra) = _fit_classes(x, np.asarray(labels.values), groups, task, penalty, folds, seed)
        estimator = "scikit-learn LogisticRegression (L2, lbfgs, C = 1 / (lambda n))"
    return {
        "format": HEAD_FORMAT, "format_version": HEAD_FORMAT_VERSION, "task": task,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "software": {"name": "PASTA for 3D Slicer", "version": __version__, "libraries": _versions(task)},
        "features": {"dimension": int(x.shape[1]), "model": table.models[rows[0]],
                     "model_sha256": table.model_sha256[rows[0]], "kind": table.kinds[rows[0]],
                     "crop": crop_settings(table),
                     "files": [{"name": Path(p).name, "sha256": sha256_file(p)} for p in feature_files]},
        "training": {"size": len(rows), "cases": len(set(groups)), "penalty_lambda": penalty,
                     "max_abs_z": float(np.max(np.abs((x - scaler["mean"]) / np.asarray(scaler["scale"])))),
                     "estimator": estimator, "names": sorted({table.names[n] for n in rows}),
                     "labels_file": labels.path.name, "labels_sha256": labels.sha256, **extra},
        "scaler": scaler, "model": body, "cv": cv,
        "note": "Research use only. Metrics are cross-validated on the training cohort; they say nothing "
                "about other scanners, hospitals or populations.",
    }


def _versions(task: str) -> dict[str, str]:
    import sklearn

    versions = {"numpy": np.__version__, "scikit-learn": sklearn.__version__}
    if task == "survival":
        import lifelines

        versions["lifelines"] = lifelines.__version__
    return versions


def metrics_table(head: dict[str, Any]) -> str:
    """The cross-validation results as a Markdown table: one row per fold, then pooled out-of-fold."""
    cv = head["cv"]
    names = ["c_index"] if head["task"] == "survival" else ["accuracy", "balanced_accuracy", "auc"]
    counts = ["n_train", "n_test"] + (["events"] if head["task"] == "survival" else [])
    lines = ["| fold | " + " | ".join(counts + names) + " |", "|" + "---|" * (1 + len(counts) + len(names))]

    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    for row in cv["per_fold"]:
        lines.append(f"| {row['fold']} | " + " | ".join(fmt(row[c]) for c in counts + names) + " |")
    for label in ("mean", "pooled"):
        lines.append(f"| {label} | " + " | ".join("" for _ in counts) + " | "
                     + " | ".join(fmt(cv[label][n]) for n in names) + " |")
    lines.append("Test cases per fold:")
    lines += [f"  fold {row['fold']}: {first_few(row['test_cases'], 8)}" for row in cv["per_fold"]]
    primary = PRIMARY_METRIC[head["task"]]
    return "\n".join([f"Cross-validation: {cv['splitter']}; {head['training']['size']} rows from "
                      f"{head['training']['cases']} cases; primary metric {primary} (mean over folds; "
                      "pooled = out-of-fold predictions scored together).", *lines]) + "\n"
