"""Dice + cross-entropy with deep supervision, as nnU-Net trains, with a Dice that suits many rare classes."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def level_weights(levels: int, deep_supervision: bool) -> list[float]:
    """Finest first: 1, 1/2, 1/4, ...; the coarsest level gets 0 (nnU-Net); normalised to sum 1."""
    if not deep_supervision or levels == 1:
        return [1.0] + [0.0] * (levels - 1)
    weights = [0.5 ** i for i in range(levels)]
    weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


def lesion_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """Batch soft Dice over the classes *present in the batch*, plus the Dice of "any lesion".

    With 15 lesion classes and one or two in a batch, a Dice averaged over all classes is
    dominated by absent classes (loss 0 whatever the network does), and the network settles on
    predicting background everywhere: the first default-model run did exactly that. Averaging
    over present classes, and adding the merged foreground (1 - p(background)) as a region, keeps
    the lesion signal strong; cross-entropy penalises predicting classes that are absent.
    """
    probs = torch.softmax(logits.float(), dim=1)
    onehot = nn.functional.one_hot(target[:, 0].long(), logits.shape[1]).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    intersection = (probs * onehot).sum(dims)
    dice = (2 * intersection + smooth) / (probs.sum(dims) + onehot.sum(dims) + smooth)
    present = onehot.sum(dims) > 0
    present[0] = False
    loss = probs.new_zeros(())
    if bool(present.any()):
        loss = loss + (1 - dice[present].mean())
    foreground_prob = 1 - probs[:, 0]
    foreground = (target[:, 0] > 0).float()
    region = (2 * (foreground_prob * foreground).sum() + smooth) / (foreground_prob.sum() + foreground.sum() + smooth)
    return loss + (1 - region)


class DeepSupervisionLoss(nn.Module):
    """Sum over decoder levels of cross-entropy + :func:`lesion_dice_loss`, targets downsampled
    by nearest neighbour, level weights as nnU-Net's."""

    def __init__(self, levels: int, deep_supervision: bool = True, foreground_weight: float = 1.0) -> None:
        super().__init__()
        self.weights = level_weights(levels, deep_supervision)
        self.foreground_weight = foreground_weight

    def forward(self, outputs: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """``outputs`` coarsest first (as ``PastaUNet.forward_deep``); ``target`` (B, 1, D, H, W) class ids."""
        total = outputs[-1].new_zeros((), dtype=torch.float32)
        for weight, logits in zip(self.weights, reversed(outputs)):
            if weight == 0.0:
                continue
            level_target = target
            if logits.shape[2:] != target.shape[2:]:
                level_target = nn.functional.interpolate(target.float(), size=logits.shape[2:],
                                                         mode="nearest").long()
            class_weights = None
            if self.foreground_weight != 1.0:  # lesions are a few % of a patch: weigh them up
                class_weights = logits.new_full((logits.shape[1],), self.foreground_weight, dtype=torch.float32)
                class_weights[0] = 1.0
            ce = nn.functional.cross_entropy(logits.float(), level_target[:, 0], weight=class_weights)
            total = total + weight * (ce + lesion_dice_loss(logits, level_target))
        return total


def attribute_loss(predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the attributes that have labels (-1 = unknown, ignored)."""
    losses = [nn.functional.cross_entropy(predictions[name], target, ignore_index=-1)
              for name, target in targets.items() if bool((target >= 0).any())]
    if not losses:
        return next(iter(predictions.values())).new_zeros(())
    return torch.stack(losses).mean()
