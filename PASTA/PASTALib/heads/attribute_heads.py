"""Learned report-attribute heads on pooled PASTA encoder features ("synthetic report supervision").

PASTA's second training stage puts a small head on the encoder and trains it with the synthetic
reports' attributes as labels. Here the head is one linear layer per attribute (Shape, Density,
Heterogeneity, Surface, Invasion, in PASTA's option order) on the encoder features averaged
*inside the lesion* (the mask is area-downsampled to each feature map), so a patch with several
structures still describes the lesion it was asked about. The heads live in their own
safetensors file next to the segmentation weights and are optional: without them the report's
attributes come from the measurement rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.model.card import HEADS_FILE, card_files
from PASTALib.report.model import ATTRIBUTE_OPTIONS, ModelPrediction

#: Encoder stages whose features are pooled: the two deepest (a lesion of a few voxels still
#: covers part of a 1/4-resolution map; the 1/8 map adds context).
DEFAULT_STAGES = (-2, -1)


class AttributeHeads(nn.Module):
    """One linear classifier per report attribute on mask-pooled encoder features."""

    def __init__(self, feature_widths: Sequence[int], options: Mapping[str, Sequence[str]] = ATTRIBUTE_OPTIONS,
                 stages: Sequence[int] = DEFAULT_STAGES) -> None:
        super().__init__()
        self.stages = tuple(int(s) for s in stages)
        self.options = {name: list(values) for name, values in options.items()}
        width = sum(int(feature_widths[s]) for s in self.stages)
        self.linears = nn.ModuleDict({name: nn.Linear(width, len(values)) for name, values in self.options.items()})

    def pool(self, skips: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """(B, C) features: each chosen map averaged with the lesion mask (B, 1, D, H, W) as weights."""
        pooled = []
        for stage in self.stages:
            features = skips[stage]
            weights = nn.functional.adaptive_avg_pool3d(mask.float(), features.shape[2:])
            total = weights.sum(dim=(2, 3, 4))
            masked = (features * weights).sum(dim=(2, 3, 4)) / total.clamp_min(1e-6)
            glob = features.mean(dim=(2, 3, 4))
            pooled.append(torch.where(total > 1e-6, masked, glob))  # empty mask: the whole patch
        return torch.cat(pooled, dim=1)

    def forward(self, skips: Sequence[torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.pool(skips, mask)
        return {name: linear(features) for name, linear in self.linears.items()}


def heads_metadata(heads: AttributeHeads, file_sha256: str, extra: Mapping[str, Any] | None = None) -> dict:
    """The model-card entry that says how to rebuild and trust the heads."""
    return {"file": HEADS_FILE, "sha256": file_sha256, "stages": list(heads.stages), "options": heads.options,
            **(extra or {})}


def load_attribute_heads(folder: Path, card: Mapping[str, Any], feature_widths: Sequence[int]) -> AttributeHeads | None:
    """The heads of a model folder, checksum-verified, or None when the model has none."""
    entry = card.get("attribute_heads")
    if not entry:
        return None
    from safetensors.torch import load_file

    hint = "Re-import or re-download the model."
    name = str(entry.get("file", HEADS_FILE))
    # the card's one rule: every file it names is hashed and inside the folder
    expected = card_files(dict(card), f"The model in {folder}", hint, Path(folder))[name]
    file = Path(folder) / name
    if not file.is_file():
        raise PastaInputError(f"The model card lists attribute heads but {file} is missing.", hint)
    digest = sha256_file(file)
    if digest != expected:
        raise PastaInputError(f"{file} is corrupt or was modified (SHA256 {digest[:12]}…, card says "
                              f"{expected[:12]}…).", hint)
    heads = AttributeHeads(feature_widths, entry.get("options", ATTRIBUTE_OPTIONS), entry.get("stages", DEFAULT_STAGES))
    state = load_file(str(file))
    expected = heads.state_dict()
    for name, tensor in expected.items():
        if name not in state or tuple(state[name].shape) != tuple(tensor.shape):
            raise PastaInputError(f"{file}: tensor {name!r} is missing or has the wrong shape.",
                                  "The heads do not belong to this network.")
    heads.load_state_dict(state)
    return heads.eval()


@dataclass
class LearnedAttributeHead:
    """:class:`PASTALib.report.findings.AttributeHead` for ``pasta analyze``: crop, encode, classify.

    The crop is one network patch at the model's spacing, centred on the finding, resampled in
    world space from the original image (so the geometry of the input never matters).
    """

    network: nn.Module
    heads: AttributeHeads
    normalize: Any  #: Normalization.apply
    spacing_xyz: tuple[float, float, float]
    patch_kji: tuple[int, int, int]
    model_id: str
    device: torch.device = torch.device("cpu")

    def crop(self, image: Volume, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image (HU) and mask on a patch-sized grid at model spacing around the mask's centre."""
        centre_ijk = np.argwhere(mask).mean(axis=0)[::-1]
        centre_lps = image.index_to_lps_points(centre_ijk[None])[0]
        size_xyz = np.asarray(self.patch_kji[::-1], dtype=float)
        spacing = np.asarray(self.spacing_xyz, dtype=float)
        origin = np.asarray(centre_lps) - image.direction @ ((size_xyz - 1) / 2.0 * spacing)
        reference = Volume(np.zeros(self.patch_kji, np.uint8), tuple(spacing), tuple(origin), image.direction)
        ct = resample_to_reference(image, reference, Interpolation.LINEAR, default_value=-1024.0).array
        lesion = resample_to_reference(image.with_array(mask.astype(np.uint8)), reference,
                                       Interpolation.NEAREST, default_value=0).array
        return ct, lesion

    @torch.no_grad()
    def probabilities(self, image: Volume, mask: np.ndarray) -> dict[str, np.ndarray]:
        ct, lesion = self.crop(image, mask)
        x = torch.from_numpy(self.normalize(ct))[None, None].to(self.device)
        m = torch.from_numpy(lesion.astype(np.float32))[None, None].to(self.device)
        skips = encoder_maps(self.network, x)
        return {name: torch.softmax(logits, dim=1)[0].cpu().numpy() for name, logits in self.heads(skips, m).items()}

    def predict(self, finding, image: Volume, mask: np.ndarray) -> dict[str, ModelPrediction]:
        out = {}
        for name, probs in self.probabilities(image, mask).items():
            options = self.heads.options[name]
            out[name] = ModelPrediction(options[int(np.argmax(probs))],
                                        {o: round(float(p), 4) for o, p in zip(options, probs)}, self.model_id)
        return out


def encoder_maps(network: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The encoder's feature maps (finest first), without the bottleneck or decoder."""
    maps = []
    for stage in network.conv_blocks_context[:-1]:
        x = stage(x)
        maps.append(x)
    return maps


def head_for_model(model, device: str = "cpu") -> LearnedAttributeHead | None:
    """The attribute head of a loaded PASTA model folder, or None if it has none."""
    card = model.card
    if not card:
        return None
    folder = Path(model.source)
    heads = load_attribute_heads(folder, card, model.config.stage_widths[:model.config.num_pool])
    if heads is None:
        return None
    network = model.network()
    prep = model.preprocessing
    if prep.spacing_zyx is None:
        raise PastaInputError("A model with attribute heads must state its spacing in the model card.")
    torch_device = torch.device(device)
    return LearnedAttributeHead(network.eval().to(torch_device), heads.to(torch_device), prep.normalization.apply,
                                tuple(prep.spacing_zyx[::-1]), tuple(prep.patch_size),
                                f"{card.get('name', folder.name)} attribute heads", torch_device)
