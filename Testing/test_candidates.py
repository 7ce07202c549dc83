"""The detector's candidate search (PASTALib.detection.candidates) on phantoms whose answer is known.

A liver-like organ of 95 HU holds a faint, extensive region 30 HU darker (an enhancement gradient, as
in the contrast DICOM abdomen) and, inside it, a 16 mm cyst at 5 HU. The search used to return the
faint region with the cyst in it as one candidate (the cyst was 1 % of it, so no scorer could call it a
lesion); split at its peaks, the cyst is a candidate of its own and the faint region another.
"""

from __future__ import annotations

import numpy as np
import pytest

from PASTALib.detection.candidates import SEARCH_RULES, find_candidates
from PASTALib.detection.organ_context import build_context
from PASTALib.io.volume import Volume

LIVER = 5  # TotalSegmentator v2


def _phantom(spacing_mm: float = 2.0, seed: int = 0):
    shape = (40, 90, 90)
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    centre = np.array(shape) / 2
    radius = lambda c, r: ((k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2) <= (r / spacing_mm) ** 2  # noqa: E731
    image = np.full(shape, -100.0, np.float32)  # fat around the organ
    organ = np.zeros(shape, np.int16)
    organ[4:36, 8:82, 8:82] = LIVER
    image[organ == LIVER] = 95.0
    faint = np.zeros(shape, bool)
    faint[8:32, 14:60, 14:60] = True  # 48 x 92 x 92 mm, about 30 % of the organ
    image[faint] = 65.0
    cyst = radius((centre[0], 30, 30), 8.0)
    image[cyst] = 5.0
    image += np.random.default_rng(seed).normal(0.0, 8.0, shape).astype(np.float32)
    volume = Volume(image, (spacing_mm,) * 3, (0.0, 0.0, 0.0), np.eye(3))
    context = build_context(volume, volume.with_array(organ))
    return image, context, cyst, faint


def test_a_cyst_inside_a_faint_region_is_a_candidate_of_its_own():
    image, context, cyst, faint = _phantom()
    candidates = find_candidates(image, context, groups=["liver"])
    dice = []
    for candidate in candidates:
        mask = candidate.full_mask(image.shape)
        dice.append(2 * (mask & cyst).sum() / (mask.sum() + cyst.sum()))
    best = candidates[int(np.argmax(dice))]
    assert max(dice) >= 0.7
    assert best.polarity == -1
    # the faint region is found too, as another candidate that does not hold the cyst
    rest = [c.full_mask(image.shape) for c in candidates if c is not best]
    assert any((m & faint).sum() > 0.5 * faint.sum() for m in rest)
    assert all((m & cyst).sum() < 0.1 * cyst.sum() for m in rest)


def test_candidates_are_disjoint_and_inside_their_organ():
    image, context, _, _ = _phantom(seed=1)
    masks = [c.full_mask(image.shape) for c in find_candidates(image, context, groups=["liver"])]
    assert masks
    assert int(np.sum(masks, axis=0).max()) == 1
    organ = context.labels == LIVER
    assert all(not (m & ~organ).any() for m in masks)


@pytest.mark.parametrize("group", ["bone", "kidney"])
def test_patchy_organs_are_not_split_at_their_peaks(group):
    """Fatty marrow and the medulla of an enhancing kidney split into many round "lesions" that
    leave-one-patient-out showed as false findings on the patient whose scan had them (RESULTS.md)."""
    assert SEARCH_RULES[group].split_at_peaks is False
    assert SEARCH_RULES["liver"].split_at_peaks is True
