"""Lesion candidates: regions that differ from their own organ, as a reader sees a lesion.

A reader finds a liver metastasis because it is darker than *this* liver, a stone because it is
brighter than *this* kidney, a nodule because it is a soft-tissue blob in air. So each organ label
gets its own reference (the median HU of its eroded parenchyma, robust to lesions) and its own
texture level; voxels that differ by more than the group's contrast floor, or two texture levels
(one in bone, pancreas, bladder, gallbladder and above the kidney, where the texture is near a
lesion's contrast), form candidates. Each candidate is then cut at half its own contrast (the edge a
blurred lesion shows), which is where the lesion border lies whatever its contrast; a region larger
than any lesion (a faint plateau that would swallow the cyst inside it) is first split at its peaks,
and in the liver a darker region is cut at its necks (a tumour on a vessel of its darkness).
The learned scorer (:mod:`.scorer`) decides which candidates are lesions; everything here is
deterministic and independent of where any tile falls.

The search rules are one table, :data:`SEARCH_RULES`; groups without a rule (the hollow viscera
stomach, colon and esophagus, whose cancers are wall thickenings) are not searched, and the
model card says so. (Soft tissue denser than what the viscus holds was tried: it found 7-9 % of
held-out gastric and colorectal cancers but called the enhancing mucosa of a healthy contrast-phase
stomach gastric cancer twice; see RESULTS.md, 2026-12-03 afternoon.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from PASTALib.lesions.components import fill_holes_per_slice, grow_box

from .organ_context import OrganContext

SMOOTHING_MM = 1.5  #: Gaussian sigma before comparing with the reference (noise, not lesions)
MIN_CANDIDATE_MM3 = 65.0  #: a 5 mm sphere: smaller regions are noise at the working grid


@dataclass(frozen=True)
class SearchRule:
    """How one organ group is searched."""

    group: str
    erode_mm: float  #: the organ rim left out of the reference (partial volume with fat)
    hypo_hu: Optional[float]  #: smallest contrast below the reference searched (None: not searched)
    hyper_hu: Optional[float]  #: smallest contrast above it
    floor_hu: float  #: voxels below are fat or air, never lesion
    reference_range: tuple[float, float]  #: HU used to estimate the parenchyma
    #: the parenchyma's quantile among those voxels: the median, except where the mask holds much
    #: that is not parenchyma (a kidney mask holds its sinus fat and collecting system: the upper quartile)
    reference_quantile: float = 0.5
    #: split seeds larger than any lesion at their peaks (:func:`_peak_regions`). Not in patchy organs,
    #: where splitting made new patients' normal anatomy look like lesions (leave-one-patient-out): bone
    #: (a fatty sacrum became many small "lytic" regions) and the kidney (the medullary pyramids of an
    #: enhancing kidney became round "tumours")
    split_at_peaks: bool = True
    #: a voxel is searched when it differs by this many texture levels (or the contrast floor, if larger),
    #: below and above the reference. One level where two left most lesions without a candidate (held-out
    #: candidate ceilings, RESULTS.md 2026-12-03 evening): bone metastases 30 -> 75 %, pancreatic tumours
    #: 2 -> 41 %, pancreatic cysts 18 -> 32 %, bladder cancers 33 -> 46 %, and above the kidney (solid tumours
    #: of a native kidney) 20 -> 50 %; below the kidney two (one merged cysts with the medulla)
    texture_factor: tuple[float, float] = (2.0, 2.0)
    #: cut each darker region at its necks (:func:`_split_at_necks`, as the lung's blobs): a round tumour or cyst
    #: touching a vessel or duct of the same darkness (native hepatic veins read like a hypodense metastasis)
    #: survives the opening as a core, the tube does not. Candidate ceilings (RESULTS.md 2026-12-04 night, before
    #: the scan-edge exception, :func:`_touches_scan_edge`): liver tumours 64 -> 88 %, liver cysts 73 -> 91 %. Not
    #: in the pancreas (cysts 32 -> 45 %, but LIDC-IDRI-0001's darker pancreas became 5 false findings held out)
    #: nor the kidney (no gain)
    split_darker_at_necks: bool = False
    #: only organ labels whose name starts with one of these are searched (None: every label of the group)
    label_prefixes: Optional[tuple[str, ...]] = None
    scope: str = ""  #: where the group is searched, in words, when not in every label (the run's notes say it)

    def searches(self, name: str) -> bool:
        return self.label_prefixes is None or name.startswith(self.label_prefixes)


SEARCH_RULES: dict[str, SearchRule] = {r.group: r for r in (
    SearchRule("liver", 4.0, 12.0, 18.0, -60.0, (-30.0, 250.0), split_darker_at_necks=True),
    # pancreas above its reference too: a fatty native pancreas (median -6 HU in the sample abdomen) makes a
    # solid tumour brighter than the organ
    SearchRule("pancreas", 2.0, 12.0, 18.0, -60.0, (-30.0, 250.0), texture_factor=(1.0, 1.0)),
    SearchRule("kidney", 2.0, 12.0, 18.0, -40.0, (0.0, 300.0), 0.75, split_at_peaks=False,
               texture_factor=(2.0, 1.0)),
    SearchRule("gallbladder", 0.0, None, 18.0, -60.0, (-30.0, 120.0), texture_factor=(1.0, 1.0)),
    SearchRule("urinary_bladder", 0.0, None, 18.0, -60.0, (-30.0, 120.0), texture_factor=(1.0, 1.0)),
    # bone brighter by 150 HU (was 200): sclerotic metastases drawn at the published 444 +/- 87 HU stand 200-400 HU
    # above a 110-185 HU vertebra and lose part of that to smoothing (candidate ceiling 39 -> 43 %). Darker by 40
    # was tried for lytic ones: ceiling 57 %, but 9-13 false findings at balanced (RESULTS.md 2026-12-04)
    # the spine only: bone metastases are synthesised, fitted and validated in vertebrae; elsewhere (a femur cut
    # by the scan's edge, ribs, pelvis) bright cortex made unvalidated "metastases"
    SearchRule("bone", 3.0, 70.0, 150.0, 0.0, (50.0, 700.0), split_at_peaks=False, texture_factor=(1.0, 1.0),
               label_prefixes=("vertebrae_",), scope="the vertebrae (where bone metastases were fitted and validated)"),
)}
#: Lung: a soft-tissue or ground-glass blob in air. Voxels above this (smoothed) HU inside the lung.
LUNG_BLOB_HU = -600.0
#: A nodule on the pleura is no hole in the lung's mask (it touches the chest wall, so neither the
#: thresholded lung nor filling its holes holds it; TotalSegmentator's lobes may leave it out too): the
#: lung's dents narrower than a ball of this radius are searched as lung. Synthetic juxtapleural lung
#: tumours with the lung thresholded on the scan that holds them (RESULTS.md 2026-12-05): at least half
#: inside the searched field 20 -> 37 of 51 with the dents up to :data:`JUXTAPLEURAL_MAX_ML` (45 with every dent)
JUXTAPLEURAL_MM = 15.0
#: ... only dents up to this volume (mL): the larger ones are the mediastinum and the hila between the
#: lobes (100-160 mL per healthy scan at 15 mm), whose vessels then swallowed the nodules beside them
JUXTAPLEURAL_MAX_ML = 25.0
#: Radius of the opening that cuts a nodule from the vessels it touches.
LUNG_OPENING_MM = 2.5
#: Radius of a second, stronger opening inside each lung blob (and each darker region of an organ whose rule
#: says ``split_darker_at_necks``): a nodule that touches a vessel thicker than the first opening removes
#: survives it as a compact core, the vessel does not, so the two become separate candidates
#: (:func:`_split_at_necks`). Never below 1.5 in-plane voxels (a smaller ball is a cross of voxels and cuts
#: nothing), and not at all where that exceeds :data:`NECK_SPLIT_MAX_MM` (a 10 mm nodule would not survive it).
NECK_SPLIT_MM = 3.5
NECK_SPLIT_MAX_MM = 5.0
#: A core keeps a blob whole unless it is at most this share of the blob (a lone nodule's core is most
#: of it; a nodule on a vessel is a small part of the pair).
NECK_SPLIT_SHARE = 0.6
#: A piece left between cores joins the largest core it touches when that core is more than this many
#: times larger (a spicule, a core's partial-volume rim); a larger piece (a vessel) is a candidate of its own.
NECK_SPLIT_MERGE_RATIO = 4.0
#: Every organ group the detector searches: the lung by its own rule, the others by the table.
SEARCHED_GROUPS: tuple[str, ...] = ("lung", *SEARCH_RULES)


@dataclass
class Candidate:
    """One candidate region on the working grid (a box and the mask inside it)."""

    group: str
    label: int  #: the organ label it was found in
    box: tuple[slice, slice, slice]
    mask: np.ndarray
    polarity: int  #: -1 darker than the organ, +1 brighter
    reference_hu: float
    texture_hu: float
    organ_ml: float

    def full_mask(self, shape) -> np.ndarray:
        full = np.zeros(shape, bool)
        full[self.box] |= self.mask
        return full

    def mask_in(self, box: tuple[slice, ...]) -> np.ndarray:
        """The candidate's mask on ``box``'s grid (``box`` holds the candidate's own box)."""
        return _placed(self.mask, self.box, box)


def _placed(mask: np.ndarray, where: tuple[slice, ...], box: tuple[slice, ...]) -> np.ndarray:
    """``mask``, which lies at ``where``, on the grid of ``box`` (which holds ``where``)."""
    out = np.zeros(tuple(b.stop - b.start for b in box), bool)
    out[tuple(slice(w.start - b.start, w.stop - b.start) for w, b in zip(where, box))] = mask
    return out


def _touches_scan_edge(mask: np.ndarray, where: tuple[slice, ...], shape) -> bool:
    """True when the region (``mask`` at ``where`` in the scan) reaches a face of the scan. Such a region is
    not cut at its necks: its shape there is the scan's cut, not anatomy (the darker hepatic-vein region under
    a liver dome cut by the scan's edge became a compact 0.97 "tumour"; whole, it scored 0.24)."""
    for axis, (part, n) in enumerate(zip(where, shape)):
        if (part.start == 0 and mask.take(0, axis=axis).any()) or (part.stop == n and mask.take(-1, axis=axis).any()):
            return True
    return False


def _within(outer, inner) -> tuple[slice, ...]:
    """``inner`` (slices relative to ``outer``'s start) in the coordinates ``outer`` is given in."""
    return tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner))


def _voxels(mm: float, spacing_kji) -> tuple[int, ...]:
    return tuple(max(1, int(round(mm / s))) for s in spacing_kji)


def _ellipsoid(radius_vox: tuple[int, ...], spacing_kji, radius_mm: float) -> np.ndarray:
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius_vox)]
    return sum((g * s / radius_mm) ** 2 for g, s in zip(grids, spacing_kji)) <= 1.0


def _erode(mask: np.ndarray, mm: float, spacing_kji) -> np.ndarray:
    if mm <= 0:
        return mask
    if not mask.any():
        return mask
    distance = ndimage.distance_transform_edt(mask, sampling=spacing_kji)
    return distance > mm


def find_candidates(image: np.ndarray, context: OrganContext, groups: Optional[list[str]] = None,
                    labels: Optional[set[int]] = None) -> list[Candidate]:
    """Candidates in every searched organ label of the context (``groups`` or ``labels`` limit the
    search; each label is searched on its own, so a limited search finds exactly what a whole one
    finds there)."""
    spacing = context.spacing_kji
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = max(3, int(np.ceil(MIN_CANDIDATE_MM3 / voxel_mm3)))
    plateau_voxels = int(np.ceil(PLATEAU_MIN_ML * 1000.0 / voxel_mm3))
    margin = _voxels(3.0 * SMOOTHING_MM + 4.0, spacing)
    candidates: list[Candidate] = []
    objects = ndimage.find_objects(context.labels)  # index label - 1; only host labels are looked up
    lung_labels = context.labels_of("lung")
    if lung_labels and (groups is None or "lung" in groups) and (labels is None or labels & set(lung_labels)):
        candidates += _lung_candidates(image, context, lung_labels, objects, margin, min_voxels)
    for label, group in sorted(context.groups.items()):
        rule = SEARCH_RULES.get(group)
        if rule is None or (groups is not None and group not in groups) or objects[label - 1] is None \
                or (labels is not None and label not in labels) or not rule.searches(context.names.get(label, "")):
            continue
        box = grow_box(objects[label - 1], image.shape, margin)
        organ = context.labels[box] == label
        hu = image[box].astype(np.float32)
        smooth = ndimage.gaussian_filter(hu, [SMOOTHING_MM / s for s in spacing], mode="nearest")
        core = _erode(organ, rule.erode_mm, spacing)
        if core.sum() < min_voxels:
            core = organ
        in_range = core & (hu >= rule.reference_range[0]) & (hu <= rule.reference_range[1])
        if in_range.sum() < min_voxels:
            continue
        reference = float(np.quantile(hu[in_range], rule.reference_quantile))
        deviation = smooth - reference
        texture = float(1.4826 * np.median(np.abs(deviation[in_range])))
        search = _erode(organ, min(rule.erode_mm, 2.0), spacing) & (hu >= rule.floor_hu)
        organ_ml = float(organ.sum() * voxel_mm3 / 1000.0)
        for polarity, floor in ((-1, rule.hypo_hu), (+1, rule.hyper_hu)):
            if floor is None:
                continue
            threshold = max(floor, rule.texture_factor[polarity > 0] * texture)
            seeds = search & (polarity * deviation >= threshold)
            for mask, where in _seed_regions(seeds, polarity * deviation, organ & (hu >= rule.floor_hu), min_voxels,
                                             plateau_voxels if rule.split_at_peaks else None):
                split = (polarity < 0 and rule.split_darker_at_necks
                         and not _touches_scan_edge(mask, _within(box, where), image.shape))
                parts = (_split_at_necks(mask, spacing, min_voxels) if split
                         else [(mask, tuple(slice(0, n) for n in mask.shape))])
                for part, part_box in parts:
                    candidates.append(Candidate(group, label, _within(box, _within(where, part_box)), part, polarity,
                                                reference, texture, organ_ml))
    return candidates


#: A seed region at least this large (mL) is larger than any lesion searched for (a 50 mm ball): a
#: plateau just off the organ's reference (an enhancement gradient, partial volume), split at its peaks.
PLATEAU_MIN_ML = 65.0
#: A region found after (weaker than) a region it touches joins it unless it is more than this many
#: times larger: the rim of a tumour with a necrotic core joins its core (the sample's liver tumour was
#: reported as a tumour and a cyst), while a faint, extensive region stays apart from the cyst in it.
MERGE_RATIO = 3.0


def _peak_regions(seed: np.ndarray, sub: tuple[slice, ...], contrast: np.ndarray, allowed: np.ndarray,
                  min_voxels: int) -> list[tuple[np.ndarray, tuple[slice, ...]]]:
    """A seed region larger than any lesion, split at its peaks, strongest first: a peak claims the
    voxels around it whose contrast reaches half of its own (within the seed grown by one voxel), the
    border of a blurred lesion whatever its contrast; what is left is searched for the next peak. A
    cyst inside a faint, extensive region off the organ's reference (an enhancement gradient, partial
    volume) is its own region rather than a small part of the faint one, which used to swallow it; a
    weaker region joins a stronger one it touches unless it is much larger (:data:`MERGE_RATIO`).
    Regions are disjoint."""
    out: list[tuple[np.ndarray, tuple[slice, ...]]] = []
    where, pending = _seed_with_margin(seed, sub, contrast.shape)
    local = contrast[where]
    open_ = ndimage.binary_dilation(pending, np.ones((3, 3, 3), bool)) & allowed[where]
    owner = np.zeros(local.shape, np.int32)  # region number per voxel, 0: none
    sizes = [0]
    while pending.any():
        flat = np.where(pending, local, -np.inf)
        peak_at = np.unravel_index(int(np.argmax(flat)), flat.shape)
        reach = open_ & (local >= 0.5 * local[peak_at])
        labels, _ = ndimage.label(reach, np.ones((3, 3, 3), bool))
        region = labels == labels[peak_at]
        region[peak_at] = True
        pending &= ~region
        open_ &= ~region
        size = int(region.sum())
        near = grow_box(ndimage.find_objects(region.astype(np.int8))[0], region.shape, (1, 1, 1))
        rim = ndimage.binary_dilation(region[near], np.ones((3, 3, 3), bool))  # only around the region: fast
        touching = np.unique(owner[near][rim & (owner[near] > 0)])
        joinable = [int(t) for t in touching if size <= MERGE_RATIO * sizes[t]]
        if joinable:
            target = max(joinable, key=lambda t: sizes[t])
            sizes[target] += size
        else:
            sizes.append(size)
            target = len(sizes) - 1
        owner[region] = target
    for number, size in enumerate(sizes[1:], start=1):
        if size >= min_voxels:
            region = owner == number
            part_box = ndimage.find_objects(region.astype(np.int8))[0]
            out.append((region[part_box], _within(where, part_box)))
    return out


def _seed_regions(seeds: np.ndarray, contrast: np.ndarray, allowed: np.ndarray, min_voxels: int,
                  split_voxels: Optional[int] = None) -> list[tuple[np.ndarray, tuple[slice, ...]]]:
    """Each seed region cut at half its own contrast (:func:`_half_contrast`); a seed of at least
    ``split_voxels`` (larger than any lesion searched for) is split at its peaks first."""
    out: list[tuple[np.ndarray, tuple[slice, ...]]] = []
    components, _ = ndimage.label(seeds, np.ones((3, 3, 3), bool))
    for index, sub in enumerate(ndimage.find_objects(components), start=1):
        seed = components[sub] == index
        size = int(seed.sum())
        if size < min_voxels:
            continue
        if split_voxels is not None and size >= split_voxels:
            out += _peak_regions(seed, sub, contrast, allowed, min_voxels)
        else:
            out += _half_contrast(seed, sub, contrast, allowed, min_voxels)
    return out


def _seed_with_margin(seed: np.ndarray, sub: tuple[slice, ...], shape) -> tuple[tuple[slice, ...], np.ndarray]:
    """The seed's box grown by two voxels (room to grow it by one) and the seed placed in that box."""
    where = grow_box(sub, shape, (2, 2, 2))
    return where, _placed(seed, sub, where)


def _half_contrast(seed: np.ndarray, sub, contrast: np.ndarray, allowed: np.ndarray, min_voxels: int
                   ) -> list[tuple[np.ndarray, tuple[slice, ...]]]:
    """The seed region cut at half its own contrast (grown by at most one voxel): the border of a
    blurred lesion, whatever its contrast. Seeds joined by a faint bridge fall apart into several
    regions here; each is a candidate of its own."""
    where, seed_local = _seed_with_margin(seed, sub, contrast.shape)
    local = contrast[where]
    peak = float(np.percentile(local[seed_local], 80))
    reach = ndimage.binary_dilation(seed_local, np.ones((3, 3, 3), bool))
    mask = reach & allowed[where] & (local >= 0.5 * peak)
    labels, count = ndimage.label(mask, np.ones((3, 3, 3), bool))
    parts = []
    for index, part_box in enumerate(ndimage.find_objects(labels), start=1):
        part = labels[part_box] == index
        if part.sum() >= min_voxels:
            parts.append((part, _within(where, part_box)))
    return parts


def _lung_field(labels: np.ndarray, lung_labels: list[int], spacing_kji) -> np.ndarray:
    """Where a lung lesion can lie: the lung with its holes filled per slice (nodules and vessels
    are holes in aerated lung) and its dents closed (:data:`JUXTAPLEURAL_MM`: a nodule on the pleura),
    less every other organ label (at the bases the liver and spleen domes are holes in an axial slice
    of the lung)."""
    lung = np.isin(labels, lung_labels)
    field = fill_holes_per_slice(lung) & (lung | (labels == 0))
    dents, count = ndimage.label(_closing(lung, JUXTAPLEURAL_MM, spacing_kji) & ~field & (labels == 0),
                                 np.ones((3, 3, 3), bool))
    if count:
        dent_ml = np.bincount(dents.ravel()) * float(np.prod(spacing_kji)) / 1000.0
        small = np.flatnonzero(dent_ml <= JUXTAPLEURAL_MAX_ML)
        field |= np.isin(dents, small[small > 0])
    return field


def _closing(mask: np.ndarray, radius_mm: float, spacing_kji) -> np.ndarray:
    """``mask`` closed with a ball of ``radius_mm``, by two distance transforms (a ball of 15 mm is
    thousands of voxels: a morphological closing with it would take minutes); padded so the ball
    never meets the box's edge."""
    pad = [int(np.ceil(radius_mm / s)) + 1 for s in spacing_kji]
    padded = np.pad(mask, [(p, p) for p in pad])
    grown = ndimage.distance_transform_edt(~padded, sampling=spacing_kji) <= radius_mm
    closed = ndimage.distance_transform_edt(grown, sampling=spacing_kji) > radius_mm
    return closed[tuple(slice(p, n - p) for p, n in zip(pad, closed.shape))]


def _lung_candidates(image, context: OrganContext, lung_labels, objects, margin, min_voxels) -> list[Candidate]:
    """Blobs denser than aerated lung inside the lung, cut from the vessels they touch by an
    opening with a ball of :data:`LUNG_OPENING_MM`."""
    spacing = context.spacing_kji
    boxes = [objects[label - 1] for label in lung_labels if objects[label - 1] is not None]
    if not boxes:
        return []
    box = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))
    box = grow_box(box, image.shape, margin)
    lung = np.isin(context.labels[box], lung_labels)
    filled = _lung_field(context.labels[box], lung_labels, spacing)
    hu = image[box].astype(np.float32)
    smooth = ndimage.gaussian_filter(hu, [SMOOTHING_MM / s for s in spacing], mode="nearest")
    aerated = lung & (hu < LUNG_BLOB_HU)
    reference = float(np.median(hu[aerated])) if aerated.any() else -850.0
    texture = float(1.4826 * np.median(np.abs(hu[aerated] - reference))) if aerated.any() else 50.0
    dense = filled & (smooth > LUNG_BLOB_HU)
    # never thinner than the in-plane neighbours: on a 3 mm grid a 2.5 mm ball is one voxel and opens
    # nothing, so a nodule stayed joined to every vessel it touched. Not stretched to thick slices:
    # on 7.5 mm slices a ball reaching the next slice kept only blobs three slices (22 mm) tall
    radius_mm = max(LUNG_OPENING_MM, 1.01 * max(spacing[1:]))
    ball = _ellipsoid(_voxels(radius_mm, spacing), spacing, radius_mm)
    opened = ndimage.binary_opening(dense, ball)
    components, count = ndimage.label(opened, np.ones((3, 3, 3), bool))
    contrast = smooth - reference
    lung_ml = float(filled.sum() * np.prod(spacing) / 1000.0)
    out = []
    unclaimed = filled.copy()  # split parts grow by a voxel: they must not overlap
    for index, sub in enumerate(ndimage.find_objects(components), start=1):
        whole = components[sub] == index
        if whole.sum() < min_voxels:
            continue
        for part, part_box in _split_at_necks(whole, spacing, min_voxels):
            part_sub = _within(sub, part_box)
            for mask, where in _half_contrast(part, part_sub, contrast, unclaimed, min_voxels):
                unclaimed[where] &= ~mask
                label_here = context.labels[box][where][mask]
                label = int(np.bincount(label_here[label_here > 0]).argmax()) if (label_here > 0).any() \
                    else lung_labels[0]
                out.append(Candidate("lung", label, _within(box, where), mask, +1, reference, texture, lung_ml))
    return out


def _split_radius_mm(spacing_kji) -> Optional[float]:
    """The stronger opening's radius on this grid, or None where it would remove a 10 mm nodule."""
    radius = max(NECK_SPLIT_MM, 1.5 * max(spacing_kji[1:]))
    return radius if radius <= NECK_SPLIT_MAX_MM else None


def _split_at_necks(blob: np.ndarray, spacing_kji, min_voxels: int) -> list[tuple[np.ndarray, tuple[slice, ...]]]:
    """A blob (lung, or a darker region of the liver) as its compact cores (what survives an opening with
    :data:`NECK_SPLIT_MM`) and the pieces left between them (vessels), each with its box inside ``blob``'s;
    cores first. The blob stays whole when no core is at most :data:`NECK_SPLIT_SHARE` of it; a leftover
    piece much smaller than a core it touches stays with that core (:data:`NECK_SPLIT_MERGE_RATIO`)."""
    whole = [(blob, tuple(slice(0, n) for n in blob.shape))]
    radius = _split_radius_mm(spacing_kji)
    if radius is None:
        return whole
    ball = _ellipsoid(_voxels(radius, spacing_kji), spacing_kji, radius)
    cores, count = ndimage.label(ndimage.binary_opening(blob, ball) & blob, np.ones((3, 3, 3), bool))
    sizes = np.bincount(cores.ravel(), minlength=count + 1)
    total = int(blob.sum())
    keep = [i for i in range(1, count + 1) if min_voxels <= sizes[i] <= NECK_SPLIT_SHARE * total]
    if not keep:
        return whole
    owner = np.where(np.isin(cores, keep), cores, 0)
    rest, pieces = ndimage.label(blob & (owner == 0), np.ones((3, 3, 3), bool))
    for piece in range(1, pieces + 1):
        region = rest == piece
        touching = np.unique(owner[ndimage.binary_dilation(region, np.ones((3, 3, 3), bool)) & (owner > 0)])
        bigger = [int(t) for t in touching if sizes[t] > NECK_SPLIT_MERGE_RATIO * region.sum()]
        owner[region] = max(bigger, key=lambda t: sizes[t]) if bigger else count + piece
    out = []
    for number in [*keep, *range(count + 1, count + pieces + 1)]:
        region = owner == number
        if region.sum() >= min_voxels:
            part_box = ndimage.find_objects(region.astype(np.int8))[0]
            out.append((region[part_box], part_box))
    return out
