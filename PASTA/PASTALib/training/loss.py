"""Dice + cross-entropy with deep supervision, as nnU-Net trains (MONAI's DiceCELoss per level)."""

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


class DeepSupervisionLoss(nn.Module):
    """Sum over decoder levels of DiceCE(logits, target downsampled by nearest neighbour)."""

    def __init__(self, levels: int, deep_supervision: bool = True) -> None:
        super().__init__()
        from monai.losses import DiceCELoss

        self.weights = level_weights(levels, deep_supervision)
        # batch Dice without the background channel, as nnU-Net's MemoryEfficientSoftDiceLoss
        self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True,
                                  smooth_nr=1e-5, smooth_dr=1e-5)

    def forward(self, outputs: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """``outputs`` coarsest first (as ``PastaUNet.forward_deep``); ``target`` (B, 1, D, H, W) class ids."""
        total = outputs[-1].new_zeros(())
        for weight, logits in zip(self.weights, reversed(outputs)):
            if weight == 0.0:
                continue
            level_target = target
            if logits.shape[2:] != target.shape[2:]:
                level_target = nn.functional.interpolate(target.float(), size=logits.shape[2:],
                                                         mode="nearest").long()
            total = total + weight * self.dice_ce(logits.float(), level_target)
        return total


def attribute_loss(predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the attributes that have labels (-1 = unknown, ignored)."""
    losses = [nn.functional.cross_entropy(predictions[name], target, ignore_index=-1)
              for name, target in targets.items() if bool((target >= 0).any())]
    if not losses:
        return next(iter(predictions.values())).new_zeros(())
    return torch.stack(losses).mean()
