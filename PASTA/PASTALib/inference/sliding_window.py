"""Sliding-window inference with Gaussian importance weighting and mirroring test-time augmentation.

The tiling, the Gaussian (sigma = 1/8 of the tile) and the mirroring average follow nnU-Net v2
(``nnUNetPredictor.predict_sliding_window_return_logits``), so results agree with it; tiles are
batched, accumulators live on the compute device, and every batch is a progress/cancel point.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from PASTALib.progress import ProgressReporter

from .work import tile_starts


@lru_cache(maxsize=8)
def gaussian_weights(tile: tuple[int, int, int], sigma_scale: float = 1.0 / 8) -> np.ndarray:
    """Importance map peaking at the tile centre (scaled to 10, zeros replaced by the minimum)."""
    delta = np.zeros(tile)
    delta[tuple(t // 2 for t in tile)] = 1
    weights = ndimage.gaussian_filter(delta, [t * sigma_scale for t in tile], 0, mode="constant", cval=0)
    weights = weights / (weights.max() / 10.0)
    weights[weights == 0] = weights[weights > 0].min()
    return weights.astype(np.float32)


def mirror_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every non-empty subset of the spatial axes (as tensor dims); 7 flips for axes (0, 1, 2)."""
    dims = [a + 2 for a in axes]
    return [c for r in range(1, len(dims) + 1) for c in itertools.combinations(dims, r)]


@dataclass
class WindowSettings:
    patch_size: tuple[int, int, int]
    overlap: float = 0.5
    mirror_axes: tuple[int, ...] = ()
    batch_size: int = 1
    amp_dtype: torch.dtype | None = None  # autocast dtype (fp16/bf16 on a GPU, bf16 on a CPU); None = fp32


def pad_to_patch(data: torch.Tensor, patch: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Pad (C, Z, Y, X) with zeros to at least the patch size, centred like nnU-Net's pad_nd_image."""
    pads, crop = [], []
    for size, p in zip(data.shape[1:], patch):
        missing = max(0, p - size)
        before, after = missing // 2, missing // 2 + missing % 2
        pads.append((before, after))
        crop.append(slice(before, before + size))
    if not any(b or a for b, a in pads):
        return data, tuple(crop)
    flat = [v for b, a in reversed(pads) for v in (b, a)]
    return torch.nn.functional.pad(data, flat, mode="constant", value=0.0), tuple(crop)


def predict_logits(networks: Sequence[nn.Module], data: torch.Tensor, settings: WindowSettings,
                   device: torch.device, results_device: torch.device,
                   progress: ProgressReporter | None = None, region: torch.Tensor | None = None,
                   counts: dict | None = None) -> torch.Tensor:
    """Logits (C, Z, Y, X) for ``data`` (C_in, Z, Y, X), averaged over networks (folds) and mirrors.

    With a ``region`` (bool, Z, Y, X), only the tiles that touch it run. Every tile that covers a region
    voxel touches the region, so inside it the result equals the whole-volume run exactly; outside,
    voxels no tile reached get logits 0 (the caller decides what they mean). ``counts`` receives
    ``tiles`` (run) and ``tiles_total``.
    """
    padded, crop = pad_to_patch(data, settings.patch_size)
    shape = padded.shape[1:]
    patch = settings.patch_size
    starts = [tile_starts(s, p, 1.0 - settings.overlap) for s, p in zip(shape, patch)]
    tiles = [tuple(slice(a, a + p) for a, p in zip(origin, patch)) for origin in itertools.product(*starts)]
    total_tiles = len(tiles)
    if region is not None:
        inside = pad_to_patch(region[None].float(), patch)[0][0] > 0.5
        tiles = [tile for tile in tiles if bool(inside[tile].any())]
    if counts is not None:
        counts.update(tiles=len(tiles), tiles_total=total_tiles)
    weights = torch.from_numpy(gaussian_weights(tuple(patch))).to(results_device)
    num_classes = networks[0].config.num_classes  # type: ignore[attr-defined]
    # Accumulators are plain tensors (not inference tensors) so callers may keep computing on them.
    logits = torch.zeros((num_classes, *shape), dtype=torch.float32, device=results_device)
    coverage = torch.zeros(shape, dtype=torch.float32, device=results_device)
    for tile in tiles:
        coverage[tile] += weights
    flips = mirror_combinations(settings.mirror_axes)
    batches = [tiles[i:i + settings.batch_size] for i in range(0, len(tiles), settings.batch_size)]
    total = len(networks) * len(batches)
    autocast = (torch.autocast(device.type, dtype=settings.amp_dtype)
                if settings.amp_dtype is not None and device.type in ("cuda", "cpu") else nullcontext())
    done = 0
    for network in networks:
        for batch in batches:
            if progress is not None:
                progress.report("segmenting", done / total, f"tile batch {done + 1}/{total}")
            x = torch.stack([padded[(slice(None), *tile)] for tile in batch]).to(device, non_blocking=True)
            with torch.inference_mode():
                with autocast:
                    prediction = network(x).float()
                    for dims in flips:
                        prediction += torch.flip(network(torch.flip(x, dims)), dims).float()
                prediction /= len(flips) + 1
                prediction = prediction.to(results_device)
                for index, tile in enumerate(batch):
                    logits[(slice(None), *tile)] += prediction[index] * weights
            done += 1
    logits /= torch.where(coverage > 0, coverage, torch.ones_like(coverage)) * len(networks)
    return logits[(slice(None), *crop)]
