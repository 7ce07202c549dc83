"""Validation: whole-case sliding-window prediction, then Dice per class and per lesion type.

Validation cases are drawn once with fixed seeds (from held-out hosts when given), so every
evaluation of a run, and the model card's table, scores the same lesions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from PASTALib.inference.postprocessing import lesion_components, postprocess
from PASTALib.inference.predictor import default_batch_size
from PASTALib.inference.sliding_window import WindowSettings, predict_logits
from PASTALib.model.card import Postprocessing

from .cases import TrainingCase


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty (nothing to find, nothing found)."""
    total = int(prediction.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(prediction, truth).sum()) / total


def false_components(predicted: np.ndarray, truth: np.ndarray) -> int:
    """Predicted lesion components (26-connected, any type) that touch no true lesion voxel: each
    would be a false finding in the report."""
    components, count = lesion_components(predicted)
    return count - len(np.setdiff1d(np.unique(components[truth > 0]), [0]))


@torch.no_grad()
def predict_probabilities(network: torch.nn.Module, normalized: np.ndarray, patch: Sequence[int],
                          device: torch.device, mirror_axes: tuple[int, ...] = ()) -> torch.Tensor:
    """(C, k, j, i) softmax of a whole case, sliding window at 50 % overlap."""
    was_training = network.training
    network.eval()
    data = torch.from_numpy(normalized)[None].to(device)
    settings = WindowSettings(tuple(patch), 0.5, mirror_axes, default_batch_size(device, tuple(patch)), None)
    logits = predict_logits([network], data, settings, device, device)
    network.train(was_training)
    return torch.softmax(logits, dim=0)


@dataclass
class CaseScore:
    name: str
    class_id: int
    dice: float  #: the case's class vs prediction of that class
    lesion_dice: float  #: any lesion vs any predicted lesion (type confusions forgiven)
    detected: bool  #: the predicted class overlaps the lesion
    false_components: int = 0  #: predicted lesion components away from the lesion


def score_case(case: TrainingCase, predicted: np.ndarray) -> CaseScore:
    class_id = int(case.lesions[0].class_id) if case.lesions else 0
    truth = case.labels == class_id
    mine = predicted == class_id
    return CaseScore(case.name, class_id, dice(mine, truth), dice(predicted > 0, case.labels > 0),
                     bool(np.logical_and(mine, truth).any()), false_components(predicted, case.labels))


def evaluate_variants(network: torch.nn.Module, cases: Sequence[TrainingCase],
                      normalize: Callable[[np.ndarray], np.ndarray], patch: Sequence[int], device: torch.device,
                      spacing_kji: Sequence[float], variants: Sequence[Postprocessing]) -> list[list[CaseScore]]:
    """Scores of each postprocessing variant (one list per variant) from one network pass per case:
    the variants differ only after the probabilities, so choosing between them costs no extra pass."""
    scores: list[list[CaseScore]] = [[] for _ in variants]
    for case in cases:
        probabilities = predict_probabilities(network, normalize(case.image), patch, device)
        for rules, into in zip(variants, scores):
            into.append(score_case(case, postprocess(rules, probabilities, spacing_kji)[0]))
    return scores


def evaluate(network: torch.nn.Module, cases: Sequence[TrainingCase], normalize: Callable[[np.ndarray], np.ndarray],
             patch: Sequence[int], device: torch.device, rules: Postprocessing = Postprocessing(),
             spacing_kji: Sequence[float] = (1.0, 1.0, 1.0)) -> list[CaseScore]:
    """Scores of one postprocessing (``spacing_kji``, the cases' grid, sizes its components)."""
    return evaluate_variants(network, cases, normalize, patch, device, spacing_kji, [rules])[0]


def summarise(scores: Sequence[CaseScore], class_names: dict[int, str]) -> dict[str, Any]:
    """Per-class mean Dice, lesion-level Dice and detection rate, and their means over classes."""
    by_class: dict[int, list[CaseScore]] = defaultdict(list)
    for score in scores:
        by_class[score.class_id].append(score)
    rows = {}
    for class_id in sorted(by_class):
        group = by_class[class_id]
        rows[class_names.get(class_id, str(class_id))] = {
            "cases": len(group), "dice": round(float(np.mean([s.dice for s in group])), 4),
            "lesion_dice": round(float(np.mean([s.lesion_dice for s in group])), 4),
            "detected": round(float(np.mean([s.detected for s in group])), 4),
            "false_components": round(float(np.mean([s.false_components for s in group])), 2)}
    mean = {key: round(float(np.mean([r[key] for r in rows.values()])), 4) if rows else None
            for key in ("dice", "lesion_dice", "detected", "false_components")}
    return {"per_class": rows, "mean": mean}
