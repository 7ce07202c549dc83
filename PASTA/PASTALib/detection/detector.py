"""The organ-aware detector end to end: working grid -> organ context -> candidates -> confidence ->
type -> findings on the input grid.

Every finding lies in an organ that hosts PASTA lesion types, has a type that organ can host
(:mod:`PASTALib.lesions.type_rules`), and a calibrated confidence at or above the chosen operating
point. No tiles: the answer does not depend on where a window falls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Optional

import numpy as np
from scipy import ndimage

from PASTALib.errors import PastaInputError
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.lesions.anatomy import group_name
from PASTALib.lesions.type_rules import core_density, decide_type
from PASTALib.progress import ProgressReporter

from .candidates import SEARCH_RULES, SEARCHED_GROUPS, Candidate, find_candidates
from .features import candidate_features
from .grid import to_working_grid
from .organ_context import OrganContext, build_context, host_groups
from .scorer import Scorer


@dataclass
class ScoredCandidate:
    candidate: Candidate
    features: np.ndarray
    confidence: float


@dataclass
class Detection:
    labels: Volume  #: lesion-type ids on the input grid
    confidence: Volume  #: each finding's confidence on its voxels (0 elsewhere), input grid
    kept: list[ScoredCandidate]
    candidates: int
    searched: list[str]
    not_searched: list[str]
    organs: Volume  #: the organ labels it searched (mask + thresholded lung), input grid
    organ_names: dict[int, str]
    lung_thresholded: bool  #: the lung was found by thresholding (the organ mask had none)
    notes: list[str] = field(default_factory=list)


def searched_groups(context: OrganContext) -> tuple[list[str], list[str]]:
    """(host groups in view that the detector searches, host groups in view it cannot search)."""
    present = context.present_groups
    return [g for g in present if g in SEARCHED_GROUPS], [g for g in present if g not in SEARCHED_GROUPS]


def score_candidates(image: np.ndarray, context: OrganContext, scorer: Scorer) -> list[ScoredCandidate]:
    candidates = find_candidates(image, context)
    if not candidates:
        return []
    features = np.stack([candidate_features(c, image, context) for c in candidates])
    confidence = scorer.confidence(features)
    return [ScoredCandidate(c, f, float(p)) for c, f, p in zip(candidates, features, confidence)]


def _union_box(candidates: list[Candidate]) -> tuple[slice, ...]:
    return tuple(slice(min(c.box[a].start for c in candidates), max(c.box[a].stop for c in candidates))
                 for a in range(3))


def _touch(a: Candidate, b: Candidate) -> bool:
    """True when the two regions share a face, edge or corner."""
    if any(y.start > x.stop or x.start > y.stop for x, y in zip(a.box, b.box)):  # a voxel or more apart
        return False
    box = _union_box([a, b])
    return bool((ndimage.binary_dilation(a.mask_in(box), np.ones((3, 3, 3), bool)) & b.mask_in(box)).any())


def merge_touching(kept: list[ScoredCandidate]) -> list[ScoredCandidate]:
    """Kept candidates that touch, in one organ label and of one polarity, as one finding (the most
    confident one's confidence and features): cutting a darker region at its necks can leave a tumour's
    rim and its necrotic core as two regions (the sample's liver tumour came out as a tumour and a
    19-voxel "cyst" inside it), and a reader sees one lesion."""
    parent = list(range(len(kept)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in range(len(kept)):
        for b in range(a + 1, len(kept)):
            ca, cb = kept[a].candidate, kept[b].candidate
            if ca.label == cb.label and ca.polarity == cb.polarity and _touch(ca, cb):
                parent[root(b)] = root(a)
    groups: dict[int, list[ScoredCandidate]] = {}
    for i, item in enumerate(kept):
        groups.setdefault(root(i), []).append(item)
    merged = []
    for members in groups.values():
        best = max(members, key=lambda m: m.confidence)
        if len(members) == 1:
            merged.append(best)
            continue
        box = _union_box([m.candidate for m in members])
        mask = np.logical_or.reduce([m.candidate.mask_in(box) for m in members])
        merged.append(ScoredCandidate(replace(best.candidate, box=box, mask=mask), best.features, best.confidence))
    return merged


def detect(image: Volume, organs: Optional[Volume], scorer: Scorer, sensitivity: str,
           names: Optional[Mapping[int, str]] = None, progress: Optional[ProgressReporter] = None) -> Detection:
    progress = progress or ProgressReporter()
    threshold = scorer.threshold(sensitivity)
    progress.report("detection", 0.0, "organ context")
    work, work_organs = to_working_grid(image, organs)
    grid_notes = []
    if organs is not None:
        if not image.has_same_geometry(organs, image.grid_tolerance_mm):
            grid_notes.append("The organ mask was on another grid than the CT and was resampled onto it "
                              "(nearest neighbour, in world space).")
        if organs.array.any() and not work_organs.array.any():
            raise PastaInputError("The organ mask does not overlap the CT in physical space.",
                                  "Pass the organ mask made from this CT (same patient, same series).")
    context = build_context(work, work_organs, names)
    searched, not_searched = searched_groups(context)
    progress.report("detection", 0.2, "candidates")
    scored = score_candidates(work.array, context, scorer)
    kept = merge_touching([s for s in scored if s.confidence >= threshold])
    labels = np.zeros(work.array.shape, np.uint8)
    confidence = np.zeros(work.array.shape, np.float32)
    for item in sorted(kept, key=lambda s: s.confidence):  # the most confident wins where two overlap
        cand = item.candidate
        decision = decide_type(cand.group, core_density(work.array[cand.box], cand.mask))
        if decision is None:
            continue
        labels[cand.box][cand.mask] = decision.lesion_type.id
        confidence[cand.box][cand.mask] = item.confidence
    notes = grid_notes + list(context.notes)
    notes.append(f"Detector: {len(scored)} candidates in {', '.join(searched) or 'no searchable organ'}; "
                 f"{len(kept)} at or above the '{sensitivity}' operating point (confidence {threshold:.2f}).")
    notes += [f"{group_name(g).capitalize()} is searched in {SEARCH_RULES[g].scope} only." for g in searched
              if g in SEARCH_RULES and SEARCH_RULES[g].scope]
    if not_searched:
        notes.append("Not searched (the default detector has no rule for them): "
                     + ", ".join(not_searched) + ".")
    absent = [g for g in host_groups() if g not in context.present_groups]
    if not context.present_groups:
        notes.append("No organ that hosts a PASTA lesion type is in view (nor in the organ mask): nothing "
                     "was searched, so no finding does not mean no lesion.")
    elif absent:
        notes.append("Not in view or not in the organ mask: " + ", ".join(absent) + ".")
    progress.report("detection", 0.9, "back to the input grid")
    labels_volume, confidence_volume = work.with_array(labels), work.with_array(confidence)
    organs_volume = work.with_array(context.labels)
    if not image.has_same_geometry(work, image.grid_tolerance_mm):
        labels_volume, confidence_volume, organs_volume = (
            resample_to_reference(v, image, Interpolation.NEAREST, default_value=0)
            for v in (labels_volume, confidence_volume, organs_volume))
    progress.report("detection", 1.0, f"{len(kept)} findings")
    return Detection(labels_volume.with_array(_as_type(labels_volume.array, np.uint8)),
                     confidence_volume.with_array(_as_type(confidence_volume.array, np.float32)),
                     kept, len(scored), searched, not_searched,
                     organs_volume.with_array(_as_type(organs_volume.array, np.int16)), dict(context.names),
                     context.lung_thresholded, notes)


def _as_type(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` as ``dtype`` without a full-grid copy when it already is (a 512 x 512 x 400 grid
    costs 0.1-0.8 GB per copy); label values are rounded only when they arrive as floats."""
    if array.dtype == dtype:
        return array
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(array.dtype, np.integer):
        array = np.rint(array)
    return array.astype(dtype)
