"""PASTA's five report attributes, each computed by a stated rule from a stated measurement.

Every attribute keeps the measurement, the threshold and the rule text that produced it
(:class:`.model.RuleEvidence`), so the report explains itself. The rules are transparent
heuristics, not the learned heads of the PASTA model: when a model with attribute heads runs
(a later issue), :func:`apply_model_predictions` sets its value and keeps the rule's beside it.

The ``classify_*`` functions are pure (measurement -> option string) so their thresholds can be
tested exactly; the ``measure_*`` functions compute the measurements from the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from PASTALib.lesions import anatomy
from PASTALib.lesions.lesion_types import LesionType

from .model import ATTRIBUTE_OPTIONS, Attribute, ModelPrediction, RuleEvidence

# --------------------------------------------------------------------------------- thresholds
#: Lesion mean within +-10 HU of its reference is isodense (reader-visible contrast starts there).
DENSITY_ISO_BAND_HU = 10.0
#: Aerated lung is no reference for a nodule: radiologists compare lung lesions to soft tissue.
FIXED_DENSITY_REFERENCE_HU = {"lung": 40.0}
#: HU standard deviation in the lesion core at or above which it is heterogeneous. CT noise in
#: soft tissue is about 10-20 HU at 1-3 mm slices, so a homogeneous lesion stays below it.
HETEROGENEITY_STD_HU = 25.0
#: Below this lesion-to-surroundings contrast no margin is visible at all.
SURFACE_MIN_CONTRAST_HU = 15.0
#: Share of the contrast crossed within +-1.5 voxels of the boundary for a well-defined margin.
SURFACE_SHARPNESS_MIN = 0.6
#: Largest 3D diameter below which a lesion is punctate / nodular.
PUNCTATE_MAX_DIAMETER_MM = 10.0
#: Thickness / length below which a hollow-organ lesion is a wall thickening.
WALL_THICKNESS_RATIO_MAX = 0.35
#: Sphericity (1 for a sphere, 0.93 for a 2:1 spheroid) at or above which a lesion is round-like.
SPHERICITY_ROUND_MIN = 0.80
#: Share of the lesion surface touching another organ's label for a close relationship.
INVASION_CONTACT_FRACTION = 0.05

SHELL_INNER_MM = 2.0  # skip the partial-volume rim
SHELL_OUTER_MM = 10.0
MIN_REFERENCE_VOXELS = 20


@dataclass
class Context:
    """Cropped arrays around one lesion (array order k, j, i) and what the rules need to know."""

    image: np.ndarray
    lesion: np.ndarray
    other_lesions: np.ndarray
    organs: Optional[np.ndarray]
    organ_groups: dict  #: organ label id -> group key
    host_group: Optional[str]
    lesion_type: LesionType
    spacing_kji: tuple[float, float, float]
    max_diameter_mm: float


def make_context(image: np.ndarray, lesion: np.ndarray, all_lesions: np.ndarray,
                 organs: Optional[np.ndarray], organ_groups: dict, host_group: Optional[str],
                 lesion_type: LesionType, spacing_xyz, max_diameter_mm: float) -> Context:
    """Crop full-grid arrays to the lesion's box plus the reference shell (and 3 voxels)."""
    spacing_kji = tuple(float(s) for s in spacing_xyz[::-1])
    margin = tuple(int(np.ceil(SHELL_OUTER_MM / s)) + 3 for s in spacing_kji)
    from .measurements import crop_box

    box = crop_box(lesion, margin)
    crop = lesion[box]
    return Context(
        image=np.asarray(image[box], dtype=np.float64), lesion=crop,
        other_lesions=all_lesions[box] & ~crop,
        organs=None if organs is None else organs[box], organ_groups=organ_groups,
        host_group=host_group, lesion_type=lesion_type, spacing_kji=spacing_kji,
        max_diameter_mm=max_diameter_mm,
    )


# --------------------------------------------------------------------------------- reference
def reference_region(ctx: Context, allow_air: bool = False) -> tuple[Optional[np.ndarray], str]:
    """Voxels 2-10 mm around the lesion: host-organ tissue if the organ mask allows, else non-air."""
    distance = ndimage.distance_transform_edt(~ctx.lesion, sampling=ctx.spacing_kji)
    shell = ~ctx.lesion & ~ctx.other_lesions & (distance > SHELL_INNER_MM) & (distance <= SHELL_OUTER_MM)
    if ctx.organs is not None and ctx.host_group is not None:
        host_ids = [i for i, g in ctx.organ_groups.items() if g == ctx.host_group]
        host = shell & np.isin(ctx.organs, host_ids)
        if host.sum() >= MIN_REFERENCE_VOXELS:
            return host, f"{anatomy.group_name(ctx.host_group)} tissue 2-10 mm around the lesion"
    tissue = shell if allow_air else shell & (ctx.image > -500)
    if tissue.sum() >= MIN_REFERENCE_VOXELS:
        what = "all voxels" if allow_air else "non-air tissue (> -500 HU)"
        return tissue, f"{what} 2-10 mm around the lesion"
    return None, "no surrounding tissue 2-10 mm around the lesion"


def _core(lesion: np.ndarray) -> np.ndarray:
    """The lesion without its outer voxel layer (partial volume), if enough of it remains."""
    core = ndimage.binary_erosion(lesion)
    return core if core.sum() >= max(10, 0.2 * lesion.sum()) else lesion


# --------------------------------------------------------------------------------- Density
def classify_density(difference_hu: float) -> str:
    if difference_hu < -DENSITY_ISO_BAND_HU:
        return "Hypodense"
    if difference_hu > DENSITY_ISO_BAND_HU:
        return "Hyperdense"
    return "Isodense"


def density(ctx: Context) -> Attribute:
    # the core, as for heterogeneity: the outer voxel layer is partial volume with the surroundings, which
    # would call a small solid nodule in aerated lung "hypodense"
    lesion_mean = float(ctx.image[_core(ctx.lesion)].mean())
    fixed = FIXED_DENSITY_REFERENCE_HU.get(ctx.host_group or ctx.lesion_type.organ)
    if fixed is not None:
        reference, where = fixed, f"soft tissue ({fixed:g} HU), not aerated lung"
    else:
        region, where = reference_region(ctx)
        reference = None if region is None else float(ctx.image[region].mean())
    band = DENSITY_ISO_BAND_HU
    rule = (f"lesion mean HU (outer voxel layer excluded) minus the reference ({where}): below -{band:g} HU "
            f"Hypodense, above +{band:g} HU Hyperdense, else Isodense")
    if reference is None:
        return _attribute(None, "lesion minus reference mean HU", None, "HU", band, rule + "; "
                          "not determined: " + where, {"lesion_mean_hu": lesion_mean})
    difference = lesion_mean - reference
    return _attribute(classify_density(difference), "lesion minus reference mean HU", difference,
                      "HU", band, rule, {"lesion_mean_hu": lesion_mean, "reference_mean_hu": reference})


# --------------------------------------------------------------------------------- Heterogeneity
def classify_heterogeneity(std_hu: float) -> str:
    return "Heterogeneous" if std_hu >= HETEROGENEITY_STD_HU else "Homogeneous"


def heterogeneity(ctx: Context) -> Attribute:
    values = ctx.image[_core(ctx.lesion)]
    std = float(values.std())
    iqr = float(np.subtract(*np.percentile(values, [75, 25])))
    return _attribute(classify_heterogeneity(std), "HU standard deviation in the lesion core", std,
                      "HU", HETEROGENEITY_STD_HU,
                      f"standard deviation of HU inside the lesion (outer voxel layer excluded) at or "
                      f"above {HETEROGENEITY_STD_HU:g} HU: Heterogeneous, else Homogeneous",
                      {"interquartile_range_hu": iqr})


# --------------------------------------------------------------------------------- Surface
def classify_surface(contrast_hu: float, sharpness: float) -> str:
    if abs(contrast_hu) < SURFACE_MIN_CONTRAST_HU or sharpness < SURFACE_SHARPNESS_MIN:
        return "Ill-defined margin"
    return "Well-defined margin"


def _along(array: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    index = [slice(None)] * 3
    index[axis] = slice(start, stop)
    return array[tuple(index)]


def edge_jumps(image: np.ndarray, lesion: np.ndarray, other: np.ndarray) -> np.ndarray:
    """HU one voxel inside minus two voxels outside, at every boundary face along the grid axes.

    The two samples are 3 voxel steps apart, straddling the boundary face, so a sharp edge shows
    its whole contrast in the jump while a blurred one shows only part of it.
    """
    jumps = []
    for axis in range(3):
        for flip in (False, True):
            img, les, oth = ((np.flip(a, axis) if flip else a) for a in (image, lesion, other))
            n = les.shape[axis]
            if n < 4:
                continue
            inside = _along(les, axis, 0, n - 3) & _along(les, axis, 1, n - 2)
            outside = (~_along(les, axis, 2, n - 1) & ~_along(les, axis, 3, n)
                       & ~_along(oth, axis, 2, n - 1) & ~_along(oth, axis, 3, n))
            faces = inside & outside
            jumps.append(_along(img, axis, 0, n - 3)[faces] - _along(img, axis, 3, n)[faces])
    return np.concatenate(jumps) if jumps else np.zeros(0)


def surface(ctx: Context) -> Attribute:
    lesion_mean = float(ctx.image[_core(ctx.lesion)].mean())
    region, where = reference_region(ctx, allow_air=(ctx.host_group or ctx.lesion_type.organ) == "lung")
    rule = (f"edge sharpness = median HU jump across the boundary (1 voxel inside to 2 voxels "
            f"outside) / lesion-to-surroundings contrast ({where}); Well-defined margin if the "
            f"contrast is at least {SURFACE_MIN_CONTRAST_HU:g} HU and the sharpness at least "
            f"{SURFACE_SHARPNESS_MIN:g}, else Ill-defined margin")
    jumps = edge_jumps(ctx.image, ctx.lesion, ctx.other_lesions)
    if region is None or jumps.size == 0:
        return _attribute(None, "edge sharpness", None, "", SURFACE_SHARPNESS_MIN,
                          rule + "; not determined: lesion too thin or no surrounding tissue", {})
    contrast = lesion_mean - float(ctx.image[region].mean())
    sharpness = float(np.median(jumps) * np.sign(contrast) / abs(contrast)) if contrast else 0.0
    value = classify_surface(contrast, sharpness)
    if abs(contrast) < SURFACE_MIN_CONTRAST_HU:
        return _attribute(value, "lesion-to-surroundings contrast", abs(contrast), "HU",
                          SURFACE_MIN_CONTRAST_HU, rule, {"edge_sharpness": sharpness})
    return _attribute(value, "edge sharpness", sharpness, "", SURFACE_SHARPNESS_MIN, rule,
                      {"contrast_hu": contrast})


# --------------------------------------------------------------------------------- Shape
def classify_shape(max_diameter_mm: float, sphericity: float, thickness_ratio: Optional[float]) -> str:
    if max_diameter_mm < PUNCTATE_MAX_DIAMETER_MM:
        return "Punctate, nodular"
    if thickness_ratio is not None and thickness_ratio < WALL_THICKNESS_RATIO_MAX:
        return "Wall thickening"
    return "Round-like" if sphericity >= SPHERICITY_ROUND_MIN else "Irregular"


def surface_area_mm2(lesion: np.ndarray, spacing_kji) -> float:
    """Area of the smoothed lesion surface, by the coarea formula: integral of |grad u| dV.

    ``u`` is the mask blurred by a one-voxel Gaussian, which removes the voxel staircase (whose
    face count overstates a sphere's area by about half) at a cost of ~(sigma / radius)^2.
    """
    pad = 4
    u = ndimage.gaussian_filter(np.pad(lesion.astype(np.float64), pad), sigma=1.0)
    gradient = np.gradient(u, *spacing_kji)
    magnitude = np.sqrt(sum(g * g for g in gradient))
    return float(magnitude.sum() * np.prod(spacing_kji))


def sphericity(lesion: np.ndarray, spacing_kji) -> float:
    volume = float(lesion.sum() * np.prod(spacing_kji))
    area = surface_area_mm2(lesion, spacing_kji)
    # Smoothing shrinks the area of lesions a few voxels across, so cap at the sphere's 1.
    return float(min(1.0, np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area)) if area > 0 else 0.0


def thickness_mm(lesion: np.ndarray, spacing_kji) -> float:
    """Twice the largest inscribed radius (centre-to-background distance less half a voxel)."""
    distance = ndimage.distance_transform_edt(np.pad(lesion, 1), sampling=spacing_kji)
    return float(max(0.0, 2 * distance.max() - min(spacing_kji)))


def shape(ctx: Context) -> Attribute:
    psi = sphericity(ctx.lesion, ctx.spacing_kji)
    hollow = ctx.lesion_type.staging == "wall" or (
        ctx.host_group in anatomy.ORGAN_GROUPS and anatomy.ORGAN_GROUPS[ctx.host_group].hollow)
    ratio = (thickness_mm(ctx.lesion, ctx.spacing_kji) / ctx.max_diameter_mm
             if hollow and ctx.max_diameter_mm > 0 else None)
    value = classify_shape(ctx.max_diameter_mm, psi, ratio)
    rule = (f"largest 3D diameter below {PUNCTATE_MAX_DIAMETER_MM:g} mm: Punctate, nodular; "
            f"else, in a hollow organ, thickness / length below {WALL_THICKNESS_RATIO_MAX:g}: Wall "
            f"thickening; else sphericity at least {SPHERICITY_ROUND_MIN:g}: Round-like, below: Irregular")
    if value == "Punctate, nodular":
        deciding = ("largest 3D diameter", ctx.max_diameter_mm, "mm", PUNCTATE_MAX_DIAMETER_MM)
    elif value == "Wall thickening":
        deciding = ("thickness / length", ratio, "", WALL_THICKNESS_RATIO_MAX)
    else:
        deciding = ("sphericity", psi, "", SPHERICITY_ROUND_MIN)
    return _attribute(value, deciding[0], deciding[1], deciding[2], deciding[3], rule,
                      {"max_3d_diameter_mm": ctx.max_diameter_mm, "sphericity": psi,
                       "thickness_to_length": ratio})


# --------------------------------------------------------------------------------- Invasion
def classify_invasion(contact_fraction: float) -> str:
    options = ATTRIBUTE_OPTIONS["Invasion"]
    return options[1] if contact_fraction >= INVASION_CONTACT_FRACTION else options[0]


def contact_fraction(ctx: Context) -> tuple[float, dict[str, float]]:
    """Share of the lesion's surface area (exposed faces, in mm2) touching other organs' labels."""
    total, touching = 0.0, {}
    lesion = np.pad(ctx.lesion, 1)
    organs = np.pad(ctx.organs, 1)
    inner = (slice(1, -1),) * 3
    for axis in range(3):
        area = float(np.prod([s for a, s in enumerate(ctx.spacing_kji) if a != axis]))
        for shift in (1, -1):
            neighbour = list(inner)
            neighbour[axis] = slice(1 + shift, lesion.shape[axis] - 1 + shift)
            faces = ctx.lesion & ~lesion[tuple(neighbour)]
            total += area * faces.sum()
            labels, counts = np.unique(organs[tuple(neighbour)][faces], return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist()):
                group = ctx.organ_groups.get(label, f"label_{label}")
                if label and group != ctx.host_group:
                    touching[group] = touching.get(group, 0.0) + area * count
    fraction = sum(touching.values()) / total if total else 0.0
    return fraction, {g: a / total for g, a in touching.items()}


def invasion(ctx: Context) -> Attribute:
    rule = (f"share of the lesion surface touching another organ's label (organ mask) at least "
            f"{INVASION_CONTACT_FRACTION:g}: Close relationship with adjacent structures, else No "
            "close relationship")
    if ctx.organs is None:
        return _attribute(None, "surface share touching other organs", None, "",
                          INVASION_CONTACT_FRACTION, rule + "; not assessed: needs an organ mask "
                          "(--organs)", {})
    fraction, by_group = contact_fraction(ctx)
    supporting = {f"contact_{group}": share for group, share in sorted(by_group.items())}
    return _attribute(classify_invasion(fraction), "surface share touching other organs", fraction,
                      "", INVASION_CONTACT_FRACTION, rule, supporting)


# --------------------------------------------------------------------------------- all five
RULES = {"Shape": shape, "Density": density, "Heterogeneity": heterogeneity, "Surface": surface,
         "Invasion": invasion}


def compute_attributes(ctx: Context) -> dict[str, Attribute]:
    return {name: rule(ctx) for name, rule in RULES.items()}


def apply_model_predictions(attributes: dict[str, Attribute],
                            predictions: dict[str, ModelPrediction]) -> None:
    """A learned head's values become the attributes' values; the rules' evidence is kept."""
    for name, prediction in predictions.items():
        if name not in ATTRIBUTE_OPTIONS:
            raise ValueError(f"unknown attribute {name!r}; expected one of {list(ATTRIBUTE_OPTIONS)}")
        if prediction.value is not None and prediction.value not in ATTRIBUTE_OPTIONS[name]:
            raise ValueError(f"{prediction.value!r} is not a {name} option: {ATTRIBUTE_OPTIONS[name]}")
        attribute = attributes[name]
        attribute.model = prediction
        attribute.value = prediction.value
        attribute.source = "model"


def _attribute(value, measurement, measured, unit, threshold, rule, supporting) -> Attribute:
    clean = {k: (None if v is None else float(v)) for k, v in supporting.items()}
    evidence = RuleEvidence(value=value, measurement=measurement,
                            measured=None if measured is None else float(measured), unit=unit,
                            threshold=None if threshold is None else float(threshold), rule=rule,
                            supporting=clean)
    return Attribute(value=value, source="rule", rule=evidence)
