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

from ..decision import labels_from_probabilities
from ..sliding_window import WindowSettings, predict_logits
from .cases import TrainingCase


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty (nothing to find, nothing found)."""
    total = int(prediction.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(prediction, truth).sum()) / total


@torch.no_grad()
def predict_case(network: torch.nn.Module, normalized: np.ndarray, patch: Sequence[int],
                 device: torch.device, mirror_axes: tuple[int, ...] = (), decision: str = "argmax") -> np.ndarray:
    was_training = network.training
    network.eval()
    data = torch.from_numpy(normalized)[None].to(device)
    logits = predict_logits([network], data, WindowSettings(tuple(patch), 0.5, mirror_axes, 1, None), device, device)
    network.train(was_training)
    return labels_from_probabilities(torch.softmax(logits, dim=0), decision).cpu().numpy()


@dataclass
class CaseScore:
    name: str
    class_id: int
    dice: float  #: the case's class vs prediction of that class
    lesion_dice: float  #: any lesion vs any predicted lesion (type confusions forgiven)
    detected: bool  #: the predicted class overlaps the lesion


def evaluate(network: torch.nn.Module, cases: Sequence[TrainingCase], normalize: Callable[[np.ndarray], np.ndarray],
             patch: Sequence[int], device: torch.device, decision: str = "argmax") -> list[CaseScore]:
    scores = []
    for case in cases:
        predicted = predict_case(network, normalize(case.image), patch, device, decision=decision)
        class_id = int(case.lesions[0].class_id) if case.lesions else 0
        truth = case.labels == class_id
        mine = predicted == class_id
        scores.append(CaseScore(case.name, class_id, dice(mine, truth), dice(predicted > 0, case.labels > 0),
                                bool(np.logical_and(mine, truth).any())))
    return scores


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
            "detected": round(float(np.mean([s.detected for s in group])), 4)}
    mean = {key: round(float(np.mean([r[key] for r in rows.values()])), 4) if rows else None
            for key in ("dice", "lesion_dice", "detected")}
    return {"per_class": rows, "mean": mean}
