"""Checks that turn bad input into clear :class:`PastaInputError` messages before any work starts.

Each check names the problem in the user's terms and says what to do about it. ``assess_ct`` is
the one heuristic here: it judges whether intensities look like CT in Hounsfield units, explains
its verdict measurement by measurement, and can be overridden with ``--force``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from PASTALib.errors import PastaInputError

from .volume import Volume

MAX_SPACING_MM = 20.0
#: A field of view at least this wide in two axes covers a body cross-section, so it shows air.
LARGE_FIELD_OF_VIEW_MM = 150.0
#: Values at or below this are treated as padding outside the scanner's field of view.
PADDING_BELOW_HU = -1100.0
#: Voxels sampled for percentiles; enough for 0.1 % precision, cheap on a 512x512x800 scan.
_STATS_SAMPLE = 2_000_000


def check_grid(volume: Volume, name: str = "image") -> None:
    """Reject grids no algorithm can use: empty, non-positive or absurd spacing, broken axes."""
    if min(volume.size) < 1 or volume.array.size == 0:
        raise PastaInputError(
            f"The {name} is empty (size {volume.size} voxels).",
            "Check that the file holds image data and was exported completely.",
        )
    if min(volume.size) < 2:
        raise PastaInputError(
            f"The {name} is a single slice (size {volume.size} voxels); PASTA needs a 3D volume.",
            "For DICOM, pass the folder holding all slices of the series rather than one file.",
        )
    spacing = np.asarray(volume.spacing)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise PastaInputError(
            f"The {name} has invalid voxel spacing {volume.spacing} mm (must be > 0).",
            "Fix the spacing in the file header (e.g. in Slicer: Volumes module > Volume Information).",
        )
    if np.any(spacing > MAX_SPACING_MM):
        raise PastaInputError(
            f"The {name} has voxel spacing {_fmt(volume.spacing)} mm; more than "
            f"{MAX_SPACING_MM:g} mm is not a diagnostic CT.",
            "Check the header: spacing is often lost when a scan is exported as a plain stack of "
            "images or in a format without geometry.",
        )
    if not np.all(np.isfinite(volume.origin)):
        raise PastaInputError(f"The {name} has an invalid origin {volume.origin}.")
    direction = volume.direction
    if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-3:
        raise PastaInputError(
            f"The {name} has a degenerate direction matrix {np.round(direction, 4).tolist()}.",
            "Its axes are parallel or zero; fix the orientation in the file header.",
        )


def check_values(volume: Volume, name: str = "image") -> None:
    """Reject arrays with NaN/infinite voxels or a single constant value."""
    array = volume.array
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            what = "all voxels are" if bad == array.size else f"{bad} of {array.size} voxels are"
            raise PastaInputError(
                f"The {name} has NaN or infinite values: {what} not numbers.",
                "Re-export the scan, or replace the invalid voxels (e.g. with -1024 HU, air) first.",
            )
    if array.size and array.min() == array.max():
        raise PastaInputError(
            f"The {name} is constant: every voxel is {array.flat[0]!r}.",
            "It holds no image content; check the export or choose another series.",
        )


def check_image(volume: Volume, name: str = "image") -> None:
    """All structural checks an input image must pass (grid and values)."""
    check_grid(volume, name)
    check_values(volume, name)


def check_mask_matches(image: Volume, mask: Volume, mask_name: str = "mask") -> None:
    """A mask must sample exactly the image's grid; say how it differs if not."""
    check_grid(mask, mask_name)
    differences = image.geometry_differences(mask, tolerance_mm=image.grid_tolerance_mm)
    if differences:
        raise PastaInputError(
            f"The {mask_name}'s geometry differs from the image's: " + "; ".join(differences) + ".",
            f"Resample the {mask_name} onto the image grid with nearest-neighbour interpolation "
            f"(`pasta convert MASK --like IMAGE --interpolation nearest -o OUT`) or export both "
            f"from the same Slicer scene.",
        )
    check_label_map(mask, mask_name)


def check_label_map(mask: Volume, mask_name: str = "mask") -> None:
    """A label map holds whole numbers from 0 up: a fractional or negative value means an image
    (often the CT itself) was passed where a segmentation belongs, and rounding it would invent labels."""
    values = mask.array
    if np.issubdtype(values.dtype, np.floating):
        finite = values[np.isfinite(values)]
        if finite.size and not np.array_equal(finite, np.round(finite)):
            raise PastaInputError(
                f"The {mask_name} has non-integer values; a label map holds whole numbers.",
                "Did you pass an image instead of a segmentation?",
            )
    lowest = float(np.min(values)) if values.size else 0.0
    if lowest < 0:
        raise PastaInputError(
            f"The {mask_name} has negative values (down to {lowest:g}); a label map holds "
            "labels from 0 up. It looks like a CT image, not a segmentation.",
            "Pass the organ segmentation (e.g. TotalSegmentator's output), not the CT.",
        )


# --------------------------------------------------------------------------------- CT heuristic
@dataclass
class VolumeIntensityStats:
    """Summary of intensities, on a fixed sample of voxels for the percentiles."""

    minimum: float
    maximum: float
    mean: float
    std: float
    percentiles: dict[str, float]
    air_fraction: float
    bone_fraction: float
    padding_fraction: float
    body_median: float | None
    above_darkest_median: float | None
    field_of_view_mm: tuple[float, float, float]

    def as_dict(self) -> dict:
        return {
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "percentiles": self.percentiles,
            "air_fraction": self.air_fraction,
            "bone_fraction": self.bone_fraction,
            "padding_fraction": self.padding_fraction,
            "body_median": self.body_median,
            "above_darkest_median": self.above_darkest_median,
        }


@dataclass
class CTAssessment:
    """Whether the intensities look like CT in HU, with the measured reasons."""

    looks_like_ct: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "plausible CT in HU" if self.looks_like_ct else "does NOT look like CT in HU"


PERCENTILES = (0.5, 1, 5, 25, 50, 75, 95, 99, 99.5)


def intensity_stats(volume: Volume) -> VolumeIntensityStats:
    """Min/max/mean/std over all voxels; percentiles and fractions over an even sample."""
    flat = volume.array.reshape(-1)
    step = max(1, flat.size // _STATS_SAMPLE)
    sample = flat[::step].astype(np.float64)
    values = np.percentile(sample, PERCENTILES)
    padding = sample <= PADDING_BELOW_HU
    in_fov = sample[~padding]
    body = in_fov[in_fov > -500]
    above_darkest = sample[sample > values[0] + 500]
    return VolumeIntensityStats(
        minimum=float(flat.min()),
        maximum=float(flat.max()),
        mean=float(flat.mean(dtype=np.float64)),
        std=float(flat.std(dtype=np.float64)),
        percentiles={f"p{p:g}": float(v) for p, v in zip(PERCENTILES, values)},
        air_fraction=float(np.mean(in_fov <= -500)) if in_fov.size else 0.0,
        bone_fraction=float(np.mean(in_fov >= 300)) if in_fov.size else 0.0,
        padding_fraction=float(np.mean(padding)),
        body_median=float(np.median(body)) if body.size else None,
        above_darkest_median=float(np.median(above_darkest)) if above_darkest.size else None,
        field_of_view_mm=volume.extent_mm,
    )


def assess_ct(stats: VolumeIntensityStats) -> CTAssessment:
    """Judge whether intensities are CT in Hounsfield units (air -1000, soft tissue 0-100).

    The rules are deliberately loose: they catch images that are not CT (MR, PET, normalised
    arrays) or CT stored without its rescale intercept, not unusual but valid CT.
    """
    p = stats.percentiles
    problems: list[str] = []
    notes: list[str] = []
    spread = p["p99.5"] - p["p0.5"]
    if stats.minimum >= 0:
        hint = ""
        tissue = stats.above_darkest_median
        if tissue is not None and 900 <= tissue <= 1300:
            hint = (
                f" Tissue sits near {tissue:.0f}, 1000 above the darkest voxels: this looks like "
                "CT stored without its rescale intercept; subtract 1024."
            )
        problems.append(
            "no negative values (min "
            f"{stats.minimum:g}); CT in HU has air at -1000 and fat near -100.{hint}"
        )
    if spread < 300:
        problems.append(
            f"intensities span only {spread:.3g} (0.5th-99.5th percentile "
            f"{p['p0.5']:.3g} to {p['p99.5']:.3g}); CT spans air (-1000) to bone (>300 HU), "
            "so the image looks normalised or is not CT"
        )
    if stats.body_median is not None and not -250 <= stats.body_median <= 250 and not problems:
        problems.append(
            f"the median of non-air voxels is {stats.body_median:.0f}, outside the soft-tissue "
            "range of -250 to 250 HU"
        )
    if stats.body_median is None and not problems:
        problems.append("every voxel is below -500 HU: there is no tissue in the image")
    if stats.air_fraction < 0.001 and not problems:
        # A scan covering a body cross-section always holds air (outside the body, lungs, bowel);
        # only a tight crop may lack it.
        large = sorted(stats.field_of_view_mm)[1] >= LARGE_FIELD_OF_VIEW_MM
        message = (f"fewer than 0.1 % of voxels are air (below -500 HU) although the field of view "
                   f"is {' x '.join(f'{v:.0f}' for v in stats.field_of_view_mm)} mm")
        if large:
            problems.append(message + "; a CT of that size shows air around the body")
        else:
            notes.append("no air in the field of view (a tight crop?)")
    if stats.padding_fraction >= 0.005:
        notes.append(
            f"{100 * stats.padding_fraction:.1f} % of voxels are padding below "
            f"{PADDING_BELOW_HU:g} (outside the scanner's field of view)"
        )
    return CTAssessment(looks_like_ct=not problems, problems=problems, notes=notes)


FORCE_HINT = "PASTA is trained on CT in HU. If you are sure this is such a CT, pass --force."


def require_ct(assessment: CTAssessment, name: str = "image", hint: str | None = None) -> None:
    """Raise unless the assessment says CT; the message lists every measured problem."""
    if not assessment.looks_like_ct:
        raise PastaInputError(
            f"The {name}'s intensities do not look like CT in Hounsfield units: "
            + "; ".join(assessment.problems)
            + ".",
            hint or FORCE_HINT,
        )


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
