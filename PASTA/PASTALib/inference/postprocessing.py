"""How class probabilities become the label map users see: the model card's ``postprocessing``.

Three steps, chosen per model (on held-out lesions, by ``Testing/tools/train_compact_network.py``
for the bundled one) and recorded in the card, so the Predictor, validation and the card's Dice agree:

* ``decision``: ``argmax`` is nnU-Net's rule: each voxel takes its most probable class. With 15
  lesion types that look alike at low resolution, a lesion's probability is shared between several
  types, and background wins voxels that are more likely lesion than not. ``lesion_first`` asks the
  two questions a reader asks, in order: is this voxel lesion (P(background) < 0.5), and if so, which
  type is most probable. It is the any-lesion region that ``pasta train``'s region Dice optimises.
* ``type_per_component``: each lesion component (26-connected, any lesion type) takes the one
  type with the most summed probability over its voxels. A weak model paints one lesion in
  several look-alike types, and each fragment would become a finding of its own; a lesion has one
  type. The price: two touching lesions of different types become one.
* ``min_component_ml``: lesion components (26-connected, any lesion type) smaller than this are
  set to background. A weak model scatters specks that each become a finding a reader must dismiss;
  a lesion smaller than the model's grid can resolve is not a finding it can stand behind.

The block itself (:class:`~PASTALib.model.card.Postprocessing`) is part of the model card; this module
applies it (:func:`postprocess`). Models without the keys (nnU-Net folders, PASTA checkpoints) keep argmax, voxel types and every component, so
parity with nnU-Net holds. torch and scipy are imported where used: ``pasta train``'s parser reads
:data:`~PASTALib.model.card.DECISION_RULES` and must stay quick to build.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from PASTALib.model.card import Postprocessing, check_rule


def postprocess(settings: Postprocessing, probabilities, spacing_kji: Sequence[float]) -> tuple[np.ndarray, int]:
    """(C, k, j, i) probabilities (torch tensor) -> (uint8 labels, number of components dropped), by the
    model card's ``postprocessing`` block."""
    labels = labels_from_probabilities(probabilities, settings.decision).cpu().numpy()
    if not (settings.type_per_component or settings.min_component_ml) or not labels.any():
        return labels, 0
    components = lesion_components(labels)  # both steps keep the lesion mask, so one labelling serves both
    if settings.type_per_component:
        one_type_per_component(labels, probabilities, components)
    return drop_small_components(labels, spacing_kji, settings.min_component_ml, components)


def labels_from_probabilities(probabilities, rule: str = "argmax"):
    """(C, ...) class probabilities (torch tensor) -> uint8 labels (...). Class 0 is background."""
    import torch

    check_rule(rule)
    if rule == "argmax" or probabilities.shape[0] < 3:  # one lesion class: both rules agree
        return torch.argmax(probabilities, dim=0).to(torch.uint8)
    lesion_type = torch.argmax(probabilities[1:], dim=0).to(torch.uint8) + 1
    return torch.where(probabilities[0] < 0.5, lesion_type, torch.zeros_like(lesion_type))


def lesion_components(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of all lesion voxels together (any non-zero label), and their count."""
    from scipy import ndimage

    return ndimage.label(labels > 0, structure=np.ones((3, 3, 3), bool))


def one_type_per_component(labels: np.ndarray, probabilities,
                           components: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """Give each lesion component the lesion class with the most summed probability, in place.

    Only the lesion voxels' probabilities leave the compute device (a few thousand columns, not
    the whole (C, k, j, i) array).
    """
    import torch

    lesion = labels > 0
    if not lesion.any() or probabilities.shape[0] < 3:
        return labels
    components, count = components or lesion_components(labels)
    ids = components[lesion]
    inside = probabilities[1:, torch.from_numpy(lesion).to(probabilities.device)].float().cpu().numpy()
    sums = np.stack([np.bincount(ids, weights=row, minlength=count + 1) for row in inside])
    labels[lesion] = (np.argmax(sums, axis=0) + 1).astype(labels.dtype)[ids]
    return labels


def drop_small_components(labels: np.ndarray, spacing_kji: Sequence[float], min_ml: float,
                          components: tuple[np.ndarray, int] | None = None) -> tuple[np.ndarray, int]:
    """Set 26-connected lesion components (any non-zero label) under ``min_ml`` to 0, in place.

    Components are taken over all lesion types together, so a lesion whose voxels the model split
    between two look-alike types is judged by its whole size, not dropped piece by piece.
    """
    if min_ml <= 0 or not labels.any():
        return labels, 0
    components, count = components or lesion_components(labels)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    voxel_ml = float(np.prod(spacing_kji)) / 1000.0
    small = sizes * voxel_ml < min_ml
    small[0] = False
    if small.any():
        labels[small[components]] = 0
    return labels, int(small.sum())
