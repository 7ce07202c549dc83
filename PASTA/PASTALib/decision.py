"""How class probabilities become a label map: the model card's ``postprocessing.decision``.

``argmax`` is nnU-Net's rule: each voxel takes its most probable class. With 15 lesion types that
look alike at low resolution, a lesion's probability is shared between several types, and
background wins voxels that are more likely lesion than not. ``lesion_first`` asks the two
questions a reader asks, in order: is this voxel lesion (P(background) < 0.5), and if so, which
type is most probable. It is the any-lesion region that ``pasta train``'s region Dice optimises.
Models without the key (nnU-Net folders, PASTA checkpoints) keep argmax, so parity with nnU-Net holds.
"""

from __future__ import annotations

import torch

from .errors import PastaInputError

DECISION_RULES = ("argmax", "lesion_first")


def check_rule(rule: str, where: str = "the model card") -> str:
    if rule not in DECISION_RULES:
        raise PastaInputError(f"Unknown decision rule {rule!r} in {where}.",
                              f"Use one of: {', '.join(DECISION_RULES)}.")
    return rule


def labels_from_probabilities(probabilities: torch.Tensor, rule: str = "argmax") -> torch.Tensor:
    """(C, ...) class probabilities -> uint8 labels (...). Class 0 is background."""
    if rule == "argmax" or probabilities.shape[0] < 3:  # one lesion class: both rules agree
        return torch.argmax(probabilities, dim=0).to(torch.uint8)
    check_rule(rule)
    lesion_type = torch.argmax(probabilities[1:], dim=0).to(torch.uint8) + 1
    return torch.where(probabilities[0] < 0.5, lesion_type, torch.zeros_like(lesion_type))
