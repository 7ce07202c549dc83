"""PASTA encoder features of lesion and organ crops, with PASTA's classification preprocessing.

Preprocessing follows PASTA_REFERENCE.md section 3.3: 1 mm isotropic grid, the Segmental Linear
Function HU map (-1000, -200, 200, 1000 HU -> 0, 0.2, 0.9, 1), a crop of the structure's bounding
box plus a margin (lesions: 2 voxels; organs: 32 voxels), zero padding (0 = -1000 HU) of every
axis shorter than the crop size, then a trilinear resize of the whole crop to 96^3 (lesions) or
128^3 (organs). The crop is fed to :meth:`PastaUNet.encode` (encoder stages without the
bottleneck, global average pooled): 1024 features for the full PASTA model.

The 1 mm grid is axis-aligned in PASTA's classification orientation (nibabel "LAS", array
``[z, y, x]``; reference section 3.1), so a scan gives the same features whatever order its file
stores the voxels in. Only the crop's box is resampled, never the whole scan: each crop voxel gets
the same value a whole-volume resample would give it, at a fraction of the cost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.model.preprocessing import Normalization

log = logging.getLogger(__name__)

#: PASTA's classification orientation as an LPS direction matrix: i -> Left, j -> Anterior, k -> Superior.
LAS_DIRECTION = np.diag([1.0, -1.0, 1.0])
#: The padding value in HU (0 after the SLF map).
PAD_HU = -1000.0
_SLF = Normalization(scheme="slf")


@dataclass(frozen=True)
class CropSettings:
    """Crop sizes and margins; the defaults are PASTA's. Heads record them and analyze reuses them."""

    lesion_size: int = 96
    organ_size: int = 128
    lesion_margin: int = 2  #: voxels of the 1 mm grid around the lesion's bounding box
    organ_margin: int = 32
    spacing_mm: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "CropSettings":
        return cls(int(data["lesion_size"]), int(data["organ_size"]), int(data["lesion_margin"]),
                   int(data["organ_margin"]), float(data["spacing_mm"]))


@dataclass
class Item:
    """One structure to featurise: a finding (lesion region) or an organ of one case."""

    id: str  #: "<case>/<finding or organ>"
    case: str
    kind: str  #: "finding" or "organ"
    name: str  #: lesion-type key or organ name
    voxel_count: int  #: voxels on the input image grid
    box: tuple  #: index box (slices, k j i) on the image grid holding the mask
    mask: np.ndarray  #: bool mask inside ``box``


# ----------------------------------------------------------------------------------- geometry
def _corners(box: Sequence[slice]) -> np.ndarray:
    """The 8 outer corners (continuous i, j, k) of an index box given as k, j, i slices."""
    k, j, i = box
    lows = np.array([i.start, j.start, k.start], float) - 0.5
    highs = np.array([i.stop, j.stop, k.stop], float) - 0.5
    return np.array([[(lows, highs)[a][0], (lows, highs)[b][1], (lows, highs)[c][2]]
                     for a in (0, 1) for b in (0, 1) for c in (0, 1)])


def _extent_u(image: Volume, box: Sequence[slice]) -> tuple[np.ndarray, np.ndarray]:
    """Physical extent (min, max) of an index box in the LAS frame (u = D^T LPS), mm."""
    u = image.index_to_lps_points(_corners(box)) @ LAS_DIRECTION
    return u.min(axis=0), u.max(axis=0)


def crop_grid(image: Volume, box: Sequence[slice], margin: int, spacing: float) -> Volume:
    """The crop's 1 mm grid: the voxels whose centres lie in ``box``'s physical extent, plus
    ``margin`` voxels each side, clipped to the scan. Returned as an empty reference volume."""
    whole = tuple(slice(0, n) for n in image.array.shape)
    scan_lo, scan_hi = _extent_u(image, whole)
    count = np.maximum(1, np.round((scan_hi - scan_lo) / spacing)).astype(int)
    first_centre = scan_lo + spacing / 2.0 + ((scan_hi - scan_lo) - count * spacing) / 2.0
    lo_u, hi_u = _extent_u(image, box)
    lo = np.ceil((lo_u - first_centre) / spacing - 1e-6).astype(int)
    hi = np.floor((hi_u - first_centre) / spacing + 1e-6).astype(int)
    centre = np.round(((lo_u + hi_u) / 2.0 - first_centre) / spacing).astype(int)
    lo, hi = np.where(hi < lo, centre, lo), np.where(hi < lo, centre, hi)  # thinner than one voxel
    lo = np.clip(lo - margin, 0, count - 1)
    hi = np.clip(hi + margin, 0, count - 1)
    shape_kji = tuple(int(n) for n in (hi - lo + 1)[::-1])
    origin = LAS_DIRECTION @ (first_centre + lo * spacing)
    return Volume(np.broadcast_to(np.uint8(0), shape_kji), (spacing,) * 3, tuple(origin), LAS_DIRECTION)


def fit_to_cube(array: np.ndarray, size: int) -> np.ndarray:
    """Pad each axis shorter than ``size`` with 0 (centred), then resize the whole crop to size^3
    trilinearly (aspect ratio not kept, as PASTA's Pad2Shape + Resize)."""
    import torch
    from torch.nn import functional

    pads = [max(0, size - n) for n in array.shape]
    if any(pads):
        array = np.pad(array, [(p // 2, p - p // 2) for p in pads], constant_values=0.0)
    if array.shape != (size, size, size):
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
        array = functional.interpolate(tensor, size=(size,) * 3, mode="trilinear",
                                       align_corners=False)[0, 0].numpy()
    return np.ascontiguousarray(array, dtype=np.float32)


def make_crop(image: Volume, box: Sequence[slice], mask: np.ndarray, size: int, margin: int,
              spacing: float = 1.0) -> np.ndarray:
    """A (size, size, size) SLF-mapped crop, array ``[z, y, x]`` in LAS, around ``mask`` in ``box``."""
    nonzero = np.nonzero(mask)
    if not nonzero[0].size:
        raise PastaInputError("A structure to featurise has no voxels.", "Check the label map.")
    tight = tuple(slice(s.start + int(n.min()), s.start + int(n.max()) + 1) for s, n in zip(box, nonzero))
    reference = crop_grid(image, tight, margin, spacing)
    resampled = resample_to_reference(image, reference, Interpolation.LINEAR, default_value=PAD_HU)
    return fit_to_cube(_SLF.apply(resampled.array), size)


# ----------------------------------------------------------------------------------- items
def finding_items(case: str, image: Volume, seg: Volume, organs: Optional[Volume] = None,
                  lesion_type: Optional[str] = None, min_volume_ml: Optional[float] = None) -> list[Item]:
    """The findings of a lesion label map, numbered F1, F2, ... exactly as ``pasta report`` does."""
    from PASTALib.lesions import anatomy, lesion_types
    from PASTALib.lesions.components import find_regions
    from PASTALib.report import DEFAULT_MIN_VOLUME_ML
    from PASTALib.report.findings import check_labels, organs_on_grid
    from PASTALib.report.measurements import voxel_volume_mm3

    chosen = lesion_types.lookup(lesion_type) if lesion_type is not None else None
    labels = check_labels(image, seg, chosen)
    organ_array, _ = organs_on_grid(image, organs)
    groups = {label: site.group for label, site in anatomy.totalsegmentator_v2_sites().items()}
    min_ml = DEFAULT_MIN_VOLUME_ML if min_volume_ml is None else min_volume_ml
    min_voxels = max(1, int(np.ceil(min_ml / (voxel_volume_mm3(image) / 1000.0) - 1e-9)))
    regions, _ = find_regions(labels, image.spacing, min_voxels, organ_array, groups)
    return [Item(f"{case}/F{n}", case, "finding", lesion_types.BY_ID[r.label_value].key, r.voxel_count,
                 r.box, r.mask) for n, r in enumerate(regions, start=1)]


def analysis_items(case: str, image: Volume, folder) -> list[Item]:
    """The findings of a ``pasta analyze`` output folder, exactly as reported: ``findings.nii.gz``
    holds label n on the n-th finding of ``report.json``. Findings the reader rejected are skipped."""
    import json
    from pathlib import Path

    from scipy import ndimage

    from PASTALib.io.input_checks import check_mask_matches
    from PASTALib.io.volume_io import read_volume

    folder = Path(folder)
    report_path, labels_path = folder / "report.json", folder / "findings.nii.gz"
    if not report_path.is_file() or not labels_path.is_file():
        raise PastaInputError(f"{folder} is not a `pasta analyze` output folder with report.json and findings.nii.gz.",
                              "Run `pasta analyze` again (older versions wrote no findings.nii.gz), or pass --seg.")
    try:
        findings = json.loads(report_path.read_text(encoding="utf-8"))["findings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PastaInputError(f"Cannot read the findings of {report_path}: {exc}.") from None
    labels = read_volume(labels_path)
    check_mask_matches(image, labels, "findings label map (findings.nii.gz)")
    array = labels.array.astype(np.int32)
    boxes = ndimage.find_objects(array)
    items = []
    for number, finding in enumerate(findings, start=1):
        box = boxes[number - 1] if number <= len(boxes) else None
        if box is None:
            raise PastaInputError(f"Finding {finding['id']} of {report_path} has no voxels (label {number}) in "
                                  f"{labels_path}.", "The two files do not belong together; run the analysis again.")
        if finding.get("review", {}).get("status") == "rejected":
            log.info("%s: finding %s was rejected by the reader; skipped.", case, finding["id"])
            continue
        mask = array[box] == number
        items.append(Item(f"{case}/{finding['id']}", case, "finding", finding["lesion_type"]["key"],
                          int(mask.sum()), box, mask))
    return items


def organ_items(case: str, image: Volume, organs: Volume, names: Optional[Iterable[str]] = None) -> list[Item]:
    """One item per organ label of a TotalSegmentator v2 mask (all present ones, or ``names``)."""
    from scipy import ndimage

    from PASTALib.lesions.anatomy import totalsegmentator_v2_names
    from PASTALib.report.findings import organs_on_grid

    array, _ = organs_on_grid(image, organs)
    table = totalsegmentator_v2_names()
    present = [int(v) for v in np.unique(array) if v > 0]
    wanted = present
    if names is not None:
        by_name = {name: label for label, name in table.items()}
        wanted = []
        for name in names:
            label = int(name) if name.isdigit() else by_name.get(name)
            if label is None:
                raise PastaInputError(f"Unknown organ '{name}'.", "Use TotalSegmentator v2 names "
                                      "(liver, kidney_left, pancreas, ...) or label ids.")
            if label not in present:
                raise PastaInputError(f"Organ '{name}' (label {label}) is not in the organ mask of case {case}.",
                                      "Leave it out, or check the organ mask.")
            wanted.append(label)
    boxes = ndimage.find_objects(array)
    items = []
    for label in wanted:
        box = boxes[label - 1]
        mask = array[box] == label
        name = table.get(label, f"label_{label}")
        items.append(Item(f"{case}/{name}", case, "organ", name, int(mask.sum()), box, mask))
    return items


# ----------------------------------------------------------------------------------- network
class FeatureExtractor:
    """A PASTA encoder ready to featurise crops; build once, reuse for every case."""

    def __init__(self, model, device: str = "auto", settings: CropSettings = CropSettings(),
                 batch_size: int = 2, threads: Optional[int] = None) -> None:
        import torch

        from PASTALib.inference.predictor import choose_device
        from PASTALib.model.network import PastaUNet

        if threads:
            torch.set_num_threads(int(threads))
        self.device = choose_device(device)
        self.batch_size = max(1, int(batch_size))
        config = model.config
        self.divisor = max(config.divisor)
        self.use(settings)
        if len(model.states) > 1:
            log.info("The model has %d folds; features come from the first fold's encoder.", len(model.states))
        network = PastaUNet(config)
        network.load_state_dict({k: v for k, v in model.states[0].items() if k in network.state_dict()},
                                strict=False)
        self.network = network.eval().to(self.device)
        self.dimension = int(config.stage_widths[config.num_pool - 1])
        self.model_name = str(model.provenance.get("name") or model.source.name)
        self.model_sha256 = model_sha256(model)
        self.seconds_per_crop: list[float] = []

    def use(self, settings: CropSettings) -> None:
        """Switch crop settings (the network stays loaded); sizes must suit the network's stride."""
        for what, size in (("lesion", settings.lesion_size), ("organ", settings.organ_size)):
            if size < self.divisor or size % self.divisor:
                raise PastaInputError(f"The {what} crop size {size} is not a multiple of {self.divisor}, the network's "
                                      f"total stride.", f"Use a multiple of {self.divisor} (PASTA: 96 and 128).")
        self.settings = settings

    def crop(self, image: Volume, item: Item) -> np.ndarray:
        s = self.settings
        size, margin = (s.lesion_size, s.lesion_margin) if item.kind == "finding" else (s.organ_size, s.organ_margin)
        return make_crop(image, item.box, item.mask, size, margin, s.spacing_mm)

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, C) float32 features of same-sized crops, fp32 on CPU or GPU, in batches."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                batch = torch.from_numpy(np.stack(crops[start:start + self.batch_size]))[:, None].to(self.device)
                t = time.perf_counter()
                out.append(self.network.encode(batch).float().cpu().numpy())
                self.seconds_per_crop.extend([(time.perf_counter() - t) / len(batch)] * len(batch))
        return np.concatenate(out) if out else np.zeros((0, self.dimension), np.float32)

    def features(self, image: Volume, items: Sequence[Item], progress=None) -> np.ndarray:
        """Features of every item, in order; findings and organs are batched separately (sizes differ)."""
        result = np.zeros((len(items), self.dimension), np.float32)
        for kind in ("finding", "organ"):
            chosen = [n for n, item in enumerate(items) if item.kind == kind]
            for start in range(0, len(chosen), self.batch_size):
                part = chosen[start:start + self.batch_size]
                if progress is not None:
                    progress(part[0], len(items), items[part[0]].id)
                result[part] = self.encode([self.crop(image, items[n]) for n in part])
        return result


def model_sha256(model) -> str:
    """The SHA256 of the weights the features come from (the first weights file of the model)."""
    for name, digest in model.sha256.items():
        if name.endswith((".safetensors", ".pth", ".pt", ".tar", ".bin")):
            return digest
    return next(iter(model.sha256.values()))
