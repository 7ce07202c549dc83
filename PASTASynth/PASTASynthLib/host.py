"""The host scan: its organ mask, contrast phase and per-organ HU statistics.

Lesion HU is set relative to the measured host parenchyma, so the same request looks right in a
native and an enhanced scan (SYNTHESIS_REFERENCE.md section 9). Statistics are computed once per
organ label and cached; everything else in synthesis works on a lesion's bounding box only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy import ndimage

from PASTALib.errors import PastaInputError
from PASTALib.io.input_checks import check_image
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.lesions.anatomy import totalsegmentator_v2_names
from PASTALib.lesions.lung_threshold import (  # noqa: F401  (re-exported for synthesis callers)
    LUNG_LEFT_LABEL,
    LUNG_RIGHT_LABEL,
    LUNG_THRESHOLD_HU,
    THRESHOLDED_LUNG_NAMES,
    lps_x,
    threshold_lung,
)

from .catalog import SynthSpec, organ_names_match

ENHANCED_AORTA_HU = 100.0  #: aorta mean above this -> contrast-enhanced (section 9, [GUIDANCE])
SOFT_TISSUE_HU = (-30.0, 200.0)  #: voxels used for the robust parenchyma estimate
#: Organs whose TotalSegmentator mask holds darker non-parenchyma: renal sinus fat and urine in the
#: kidney, fatty clefts in the pancreas. The most common HU there is a fat/parenchyma mixture (18 HU
#: in the native 3 mm sample's kidneys, where parenchyma measures 30-35), so their parenchyma is the
#: trimmed mean of the upper half of the mask's soft-tissue voxels (50th-95th percentile).
UPPER_HALF_ORGANS = ("kidney_left", "kidney_right", "pancreas")
UPPER_HALF_PERCENTILES = (50.0, 95.0)
MIN_ORGAN_ML = 0.5  #: smaller organ labels are treated as absent (stray voxels of a segmenter)
#: DICOM header fields that may travel into outputs; everything else (UIDs, names) is dropped
SAFE_METADATA = ("Modality", "Manufacturer", "ContrastBolusAgent", "SliceThickness", "KVP",
                 "ConvolutionKernel")


@dataclass(frozen=True)
class OrganStats:
    """Robust HU of one organ label: parenchyma HU P (histogram peak), spread, and noise SD."""

    label: int
    name: str
    voxels: int
    parenchyma_hu: float
    sd_hu: float
    noise_hu: float


@dataclass
class Host:
    """An image with its organ map on the same grid, plus the cached analyses synthesis needs."""

    image: Volume
    organs: np.ndarray  #: integer organ labels on the image grid, [k, j, i]
    names: dict[int, str]
    enhanced: bool
    phase_evidence: str
    notes: list[str] = field(default_factory=list)
    _stats: dict[int, OrganStats] = field(default_factory=dict, repr=False)
    cache: dict = field(default_factory=dict, repr=False)  #: per-label analyses (depth maps)

    @property
    def spacing_kji(self) -> np.ndarray:
        return np.asarray(self.image.spacing[::-1], dtype=np.float64)

    def labels_for(self, spec: SynthSpec) -> list[int]:
        """Organ labels present in the mask that can host ``spec`` (may be empty)."""
        if "counts" not in self.cache:
            self.cache["counts"] = np.bincount(self.organs[self.organs > 0].ravel())
        counts = self.cache["counts"]
        minimum = MIN_ORGAN_ML * 1000.0 / float(np.prod(self.image.spacing))  # drops stray voxels
        return [label for label in range(1, len(counts))
                if counts[label] >= max(1.0, minimum) and organ_names_match(spec, self.names.get(label, ""))]

    def require_labels(self, spec: SynthSpec) -> list[int]:
        labels = self.labels_for(spec)
        if not labels:
            organ = spec.type.organ.replace("_", " ")
            raise PastaInputError(
                f"The organ mask has no {organ} ({', '.join(spec.hosts)}), the host organ of "
                f"{spec.key}.",
                "Choose another lesion type, or pass a TotalSegmentator v2 mask that contains it.")
        return labels

    def stats(self, label: int) -> OrganStats:
        """Median (in the soft-tissue window when the organ has enough such voxels) and noise."""
        if label not in self._stats:
            organ = self.organs == label
            values = self.image.array[organ].astype(np.float64)
            # the eroded organ avoids the partial-volume rim (fat around kidneys and pancreas)
            box = ndimage.find_objects(organ.astype(np.uint8))[0]
            core = ndimage.binary_erosion(organ[box])
            inner = self.image.array[box][core].astype(np.float64) if core.sum() >= 30 else values
            tissue = inner[(inner > SOFT_TISSUE_HU[0]) & (inner < SOFT_TISSUE_HU[1])]
            if tissue.size < max(20, inner.size // 5):
                tissue = inner
            name = self.names.get(label, str(label))
            median = _upper_half_mean(tissue) if name in UPPER_HALF_ORGANS else _histogram_peak(tissue)
            sd = float(1.4826 * np.median(np.abs(tissue - median)))
            self._stats[label] = OrganStats(label, self.names.get(label, str(label)), int(values.size),
                                            median, sd, self._noise(label, sd))
        return self._stats[label]

    def _noise(self, label: int, sd: float) -> float:
        """Voxel noise SD: the MAD of the high-pass residual inside the (eroded) organ."""
        box = ndimage.find_objects((self.organs == label).astype(np.uint8))[0]
        mask = ndimage.binary_erosion(self.organs[box] == label)
        if mask.sum() < 30:
            return max(3.0, min(sd, 25.0))
        region = self.image.array[box].astype(np.float32)
        residual = region - ndimage.uniform_filter(region, 3)
        noise = 1.4826 * float(np.median(np.abs(residual[mask] - np.median(residual[mask]))))
        return float(np.clip(noise * 1.15, 3.0, 20.0))  # 3x3x3 mean removes ~1/27 of the variance


def _upper_half_mean(values: np.ndarray) -> float:
    """Trimmed mean of the voxels between the 50th and 95th percentile: the parenchyma of an organ
    whose mask also holds fat or fluid (the top 5 % drops calcifications and vessels)."""
    if values.size < 50:
        return float(np.median(values))
    low, high = np.percentile(values, UPPER_HALF_PERCENTILES)
    return float(np.mean(values[(values >= low) & (values <= high)]))


def _histogram_peak(values: np.ndarray) -> float:
    """The most common HU (5 HU bins, lightly smoothed): the parenchyma, not the fat-mixed median.

    TotalSegmentator masks include renal sinus fat and the fatty rim of the pancreas, which pull
    the median 20-30 HU below the parenchyma a reader sees.
    """
    if values.size < 50:
        return float(np.median(values))
    low, high = np.floor(values.min()), np.ceil(values.max()) + 5
    counts, edges = np.histogram(values, bins=np.arange(low, high + 5, 5.0))
    smooth = np.convolve(counts, [1, 2, 3, 2, 1], mode="same")
    peak = int(np.argmax(smooth))
    return float(np.median(values[(values >= edges[peak] - 5) & (values < edges[peak + 1] + 5)]))


def estimate_phase(image: Volume, organs: np.ndarray, names: dict[int, str]) -> tuple[bool, str]:
    """(enhanced, evidence): DICOM ContrastBolusAgent first, then the aorta's mean HU."""
    agent = (image.metadata.get("ContrastBolusAgent") or "").strip()
    if agent and agent.upper() not in ("NONE", "NO", "N"):
        return True, f"DICOM ContrastBolusAgent = {agent}"
    aorta = [label for label, name in names.items() if name == "aorta"]
    if aorta:
        values = image.array[np.isin(organs, aorta)]
        if values.size >= 20:
            mean = float(np.mean(values))
            return mean > ENHANCED_AORTA_HU, f"aorta mean {mean:.0f} HU"
    return False, "no aorta in the mask and no DICOM contrast tag: assumed native"


def make_host(image: Volume, organs: Optional[Volume], names: Optional[dict[int, str]] = None) -> Host:
    """Check the image, bring the organ mask onto its grid, and estimate the contrast phase."""
    check_image(image)
    notes: list[str] = []
    names = dict(names or totalsegmentator_v2_names())
    if organs is None:
        array = threshold_lung(image)
        names.update(THRESHOLDED_LUNG_NAMES)
        notes.append("no organ mask: lung found by thresholding at -400 HU and split at the body's midline "
                     "(label 10 = left lung, 12 = right lung; lobes unknown)")
    else:
        if not image.has_same_geometry(organs, image.grid_tolerance_mm):
            organs = resample_to_reference(organs, image, Interpolation.NEAREST)
            notes.append("organ mask resampled onto the image grid (nearest neighbour)")
        array = np.rint(organs.array).astype(np.int16)
    enhanced, evidence = estimate_phase(image, array, names)
    return Host(image, array, names, enhanced, evidence, notes)


def strip_identifiers(image: Volume) -> Volume:
    """The same voxels and grid with only non-identifying DICOM header fields kept."""
    kept = {k: v for k, v in image.metadata.items() if k in SAFE_METADATA}
    return Volume(image.array, image.spacing, image.origin, image.direction, kept)
