"""Patches for training: lesion over-sampling, then MONAI augmentation.

nnU-Net centres a third of its patches on foreground; lesions are rarer here (one or two per
scan), so the default is two thirds. Patches are cut from the normalised image and padded with 0
(the normalised mean), exactly as the sliding-window predictor pads at inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .cases import TrainingCase


@dataclass
class Patch:
    image: np.ndarray  #: normalised, float32, (D, H, W)
    labels: np.ndarray  #: uint8 class ids
    lesion: np.ndarray  #: uint8, the voxels of the one lesion the patch was centred on (else zeros)
    attributes: Optional[dict[str, str]]  #: that lesion's report attributes, when known


def _crop(array: np.ndarray, start: Sequence[int], patch: Sequence[int], fill: float) -> np.ndarray:
    out = np.full(tuple(patch), fill, dtype=array.dtype)
    src = tuple(slice(max(0, s), min(n, s + p)) for s, p, n in zip(start, patch, array.shape))
    dst = tuple(slice(a.start - s, a.stop - s) for a, s in zip(src, start))
    out[dst] = array[src]
    return out


def sample_patch(case: TrainingCase, normalized: np.ndarray, patch: Sequence[int], rng: np.random.Generator,
                 foreground_fraction: float) -> Patch:
    """A patch centred on a random voxel of a random lesion (with probability
    ``foreground_fraction``) or anywhere in the scan."""
    lesion_full = np.zeros(case.labels.shape, np.uint8)
    attributes = None
    if case.lesions and rng.random() < foreground_fraction:
        lesion = case.lesions[int(rng.integers(len(case.lesions)))]
        voxels = np.argwhere(lesion.mask)
        centre = voxels[int(rng.integers(len(voxels)))] + np.array([s.start for s in lesion.box])
        lesion_full[lesion.box][lesion.mask] = 1
        attributes = lesion.attributes
    else:
        centre = np.array([rng.integers(0, n) for n in case.labels.shape])
    start = [int(c) - p // 2 for c, p in zip(centre, patch)]
    return Patch(_crop(normalized, start, patch, 0.0), _crop(case.labels, start, patch, 0),
                 _crop(lesion_full, start, patch, 0), attributes)


def make_augmentation(seed: int) -> Callable[[dict], dict]:
    """nnU-Net-like augmentation from MONAI: rotation/scaling, mirroring on every axis, noise,
    brightness and contrast. Mirroring on all axes makes 8-fold test-time mirroring valid."""
    from monai import transforms as mt

    keys = ["image", "labels", "lesion"]
    pipeline = mt.Compose([
        mt.RandAffined(keys, prob=0.25, rotate_range=(0.26, 0.26, 0.26), scale_range=(0.15, 0.15, 0.15),
                       mode=("bilinear", "nearest", "nearest"), padding_mode="border"),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=0),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=2),
        mt.RandGaussianNoised("image", prob=0.15, std=0.1),
        mt.RandScaleIntensityd("image", factors=0.15, prob=0.15),
        mt.RandShiftIntensityd("image", offsets=0.1, prob=0.15),
        mt.RandAdjustContrastd("image", prob=0.15, gamma=(0.7, 1.5)),
    ])
    pipeline.set_random_state(seed=seed)
    return pipeline


def to_batch(patches: Sequence[Patch], augment: Optional[Callable[[dict], dict]]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, labels, lesion) tensors of shape (B, 1, D, H, W), augmented when ``augment`` is given."""
    images, labels, lesions = [], [], []
    for patch in patches:
        item = {"image": torch.from_numpy(patch.image[None].copy()),
                "labels": torch.from_numpy(patch.labels[None].astype(np.float32)),
                "lesion": torch.from_numpy(patch.lesion[None].astype(np.float32))}
        if augment is not None:
            item = augment(item)
        images.append(torch.as_tensor(item["image"]).float())
        labels.append(torch.as_tensor(item["labels"]).round().long())
        lesions.append(torch.as_tensor(item["lesion"]).float())
    plain = [t.as_tensor() if hasattr(t, "as_tensor") else t for t in (torch.stack(images), torch.stack(labels),
                                                                      torch.stack(lesions))]
    return plain[0], plain[1], plain[2]
