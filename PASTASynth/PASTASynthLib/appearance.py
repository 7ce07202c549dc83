"""Lesion appearance: target HU, texture, scanner-faithful edges and the host's own noise.

The lesion replaces the host tissue: ``out = (1 - w) * host + w * lesion``. ``w`` is the lesion's
partial-volume occupancy of each voxel (from its continuous shape field, not the voxel mask) seen
through the host scanner's blur, measured on the host (:mod:`.psf`), plus the margin's own extra blur:
a well-defined lesion is exactly as sharp as the scanner shows the host's edges, never sharper.
``lesion`` is the target HU (relative to the host parenchyma or absolute, per type and phase), a
smooth texture for heterogeneity (optionally a fluid core or calcifications); noise at the organ's
measured level with the host's noise correlation is added so the noise level is the host's across the
lesion and its rim. Ground glass
raises the lung towards its level but keeps every vessel brighter than that. Only the bounding box is
touched, so cost scales with the lesion, not the scan.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .catalog import MARGIN_EXTRA_SIGMA_MM, SynthSpec
from .geometry import LesionGeometry, smooth_noise
from .host import Host, OrganStats
from .mass_effect import push
from .psf import HostBlur, estimate_blur

WEIGHT_FLOOR = 1e-3  #: blend weights below this are zero: the influence region ends there


@dataclass
class Appearance:
    """The blended box and what was drawn for it (recorded in the report)."""

    values: np.ndarray  #: new HU of the box (float32)
    weight: np.ndarray  #: blend weight in the box (0 outside the influence region)
    moved: np.ndarray  #: bool: host voxels displaced by the mass effect
    target_hu: float
    reference_hu: float
    params: dict
    drawn: np.ndarray  #: the lesion's own HU before blending (float32, box shape): what the gate judges


def reference_hu(spec: SynthSpec, stats: OrganStats, host: Host) -> float:
    """The HU a lesion's density is judged against: the parenchyma median, or soft tissue.

    Hollow organs hold air, bile or urine, so their cancers are judged against soft tissue
    (40 HU native, 80 HU enhanced); lung lesions against 40 HU, as the report does.
    """
    if spec.kind == "wall" or spec.key == "lung_tumor":
        return 80.0 if host.enhanced and spec.kind == "wall" else 40.0
    return stats.parenchyma_hu


#: The quality gate's density margins (engine.quality_problems), with a few HU to spare for texture.
DENSITY_MARGIN_HU = {"hypodense": -8.0, "hyperdense": 8.0, "isodense": 12.0}


def target_range(spec: SynthSpec, density: str, reference: float, enhanced: bool) -> tuple[float, float]:
    """The HU interval a lesion of this density is drawn from in this host: a relative range moved
    onto the reference and cut at the type's floor (a solid tumour never reads as fluid)."""
    entry = spec.appearance[density]
    lo, hi = entry.range(enhanced)
    if entry.mode == "replacement":
        ends = [kept * reference + (1.0 - kept) * tissue for kept in entry.kept for tissue in (lo, hi)]
        return min(ends), max(ends)
    if entry.mode != "relative":
        return lo, hi
    return max(lo + reference, spec.min_hu), max(hi + reference, spec.min_hu)


def density_fits(spec: SynthSpec, density: str, reference: float, enhanced: bool) -> bool:
    """Whether this host leaves room for the density above the type's floor: a native kidney with
    parenchyma at 24 HU cannot hold a hypodense solid tumour that stays above the fluid range."""
    if spec.appearance[density].mode == "absolute":
        return True
    lo, hi = target_range(spec, density, reference, enhanced)
    margin = DENSITY_MARGIN_HU.get(density)
    if density == "hypodense":
        return lo <= reference + margin
    if density == "hyperdense":
        return hi >= reference + margin
    return lo <= reference + DENSITY_MARGIN_HU["isodense"]


def target_hu(spec: SynthSpec, density: str, reference: float, enhanced: bool,
              rng: np.random.Generator) -> float:
    lo, hi = target_range(spec, density, reference, enhanced)
    if density == "hypodense" and spec.appearance[density].mode != "absolute":
        hi = min(hi, max(lo, reference + DENSITY_MARGIN_HU["hypodense"]))  # stay visibly below
    return float(rng.uniform(lo, hi))


#: Gaussian sigmas (voxels) whose noise correlation is tabulated (0: white noise; below 0.4 a Gaussian barely
#: correlates neighbours, so the table starts there)
GRAIN_SIGMAS = np.round(np.concatenate([[0.0], np.arange(0.4, 1.61, 0.1)]), 2)


def _residual_lag1(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of the high-pass residual along k, j, i, over ``inside``: how correlated
    neighbouring voxels' noise is (0 for white noise; the reconstruction kernel and resampling raise it)."""
    residual = values - ndimage.uniform_filter(values, 3)
    out = []
    for axis in range(3):
        a = np.moveaxis(residual, axis, 0)
        m = np.moveaxis(inside, axis, 0)
        both = m[1:] & m[:-1]
        x, y = a[1:][both], a[:-1][both]
        out.append(float(np.corrcoef(x, y)[0, 1]) if x.size > 50 else 0.0)
    return np.asarray(out)


@functools.lru_cache(maxsize=1)
def _grain_lag1_table() -> np.ndarray:
    """Lag-1 residual autocorrelation of white noise filtered with each of :data:`GRAIN_SIGMAS` (the mean over
    the three axes of one isotropic field: increasing with sigma)."""
    rng = np.random.default_rng(0)
    white = rng.standard_normal((56, 56, 56)).astype(np.float64)
    inside = np.zeros(white.shape, bool)
    inside[4:-4, 4:-4, 4:-4] = True
    return np.array([float(np.mean(_residual_lag1(ndimage.gaussian_filter(white, s) if s else white, inside)))
                     for s in GRAIN_SIGMAS])


#: Slices (around the middle of the scan) the noise correlation is measured on: enough soft tissue, bounded cost
GRAIN_SLICES = 48
#: Fat and soft tissue, HU (wider than host.SOFT_TISSUE_HU, the parenchyma window): homogeneous tissue whose residual
#: two voxels from anything outside the window is mostly noise. Fat/muscle borders lie inside it; a -30 HU floor
#: measured 0.1-0.3 voxels less correlation in most hosts (RESULTS.md 2026-12-05), left: no ground truth here
GRAIN_WINDOW_HU = (-100.0, 200.0)


def grain_sigma_vox(host: Host) -> np.ndarray:
    """Per axis, the Gaussian sigma (voxels) that gives white noise the host's noise correlation, measured
    in the body's fat and soft tissue (:data:`GRAIN_WINDOW_HU`) two voxels from air, bone or contrast, on the middle
    :data:`GRAIN_SLICES` slices. Not in one organ label: the largest can be the colon (contents) or the
    lung (vessels), whose residual is structure, and a scan may come with no organ mask at all."""
    if "grain_sigma" not in host.cache:
        values = host.image.array
        first = max(0, values.shape[0] // 2 - GRAIN_SLICES // 2)
        values = values[first:first + GRAIN_SLICES].astype(np.float64)
        low, high = GRAIN_WINDOW_HU
        inside = ndimage.binary_erosion((values > low) & (values < high), iterations=2)
        sigma = np.zeros(3)
        if inside.sum() > 500:
            measured = _residual_lag1(values, inside)
            sigma = np.round(np.interp(measured, _grain_lag1_table(), GRAIN_SIGMAS), 2)
        host.cache["grain_sigma"] = sigma
    return host.cache["grain_sigma"]


def host_grain(host: Host, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-SD noise with the host's noise correlation (:func:`grain_sigma_vox`). Not the host's own
    high-pass residual: where the organ has structure (a kidney's cortex and medulla after contrast) that
    residual is anatomy, not noise, and it moved cysts' cores 20-40 HU off their drawn density."""
    white = rng.standard_normal(shape).astype(np.float32)
    sigma = grain_sigma_vox(host)
    noise = ndimage.gaussian_filter(white, sigma, mode="reflect") if sigma.any() else white
    sd = float(noise.std())
    return noise / sd if sd > 0 else noise


def host_blur(host: Host) -> HostBlur:
    """The host's measured blur, cached on the host (the engine's host view shares the cache)."""
    if "blur" not in host.cache:
        host.cache["blur"] = estimate_blur(host.image)
    return host.cache["blur"]


def occupancy(geometry: LesionGeometry) -> np.ndarray:
    """Fraction of each box voxel inside the lesion: the shape field's level set taken across one voxel
    (a linear ramp along the field's gradient), limited to the realised lesion and its first neighbours."""
    field = geometry.field.astype(np.float32)
    steepness = np.sqrt(sum(g * g for g in np.gradient(field)))  # field units per voxel
    fraction = np.clip(0.5 + (field - geometry.threshold) / np.maximum(steepness, 1e-6), 0.0, 1.0)
    near = ndimage.binary_dilation(geometry.mask, structure=np.ones((3, 3, 3), bool))
    return np.where(geometry.mask, np.maximum(fraction, 0.5), fraction * near).astype(np.float32)


def edge_sigma_kji_mm(blur: HostBlur, spacing_kji: np.ndarray, margin: str) -> np.ndarray:
    """Gaussian sigma applied to the occupancy: the scanner's blur without the voxel's own box
    (occupancy already holds it), plus the margin's extra blur."""
    scanner = np.asarray(blur.sigma_kji_mm, np.float64)
    optical = np.sqrt(np.maximum(scanner ** 2 - spacing_kji ** 2 / 12.0, 0.0))
    return np.sqrt(optical ** 2 + MARGIN_EXTRA_SIGMA_MM[margin] ** 2)


def render(host: Host, spec: SynthSpec, geometry: LesionGeometry, attributes: dict,
           rng: np.random.Generator, mass_effect_mm: float = 0.0, radius_mm: float = 0.0) -> Appearance:
    """Blend one lesion into a copy of its box of the host image."""
    spacing = host.spacing_kji
    stats = host.stats(geometry.label)
    reference = reference_hu(spec, stats, host)
    target = target_hu(spec, attributes["density"], reference, host.enhanced, rng)
    mask = geometry.mask
    box_values = host.image.array[geometry.box.slices].astype(np.float32)
    box_values, moved = push(box_values, geometry, spacing, radius_mm, mass_effect_mm)
    lesion = np.full(mask.shape, target, np.float32)
    params: dict = {"target_hu": round(target, 1), "reference_hu": round(reference, 1),
                    "host_parenchyma_hu": round(stats.parenchyma_hu, 1), "noise_sd_hu": round(stats.noise_hu, 1)}
    heterogeneity = attributes["heterogeneity"]
    scale_vox = np.maximum(2.5 / spacing, 0.6)
    if heterogeneity != "homogeneous" or spec.kind in ("stone", "bone"):
        contrast = abs(target - reference)
        amplitude = {"stone": 0.12 * target, "bone": 0.15 * abs(target - 200.0)}.get(
            spec.kind, max(10.0, 0.3 * contrast))
        if heterogeneity == "homogeneous":
            amplitude *= 0.3
        lesion += amplitude * smooth_noise(mask.shape, scale_vox, rng)
        params["texture_sd_hu"] = round(float(amplitude), 1)
    if heterogeneity == "necrotic-core":
        inside = geometry.field[mask]
        level = geometry.threshold + 0.5 * (float(inside.max()) - geometry.threshold)
        core = ndimage.gaussian_filter((geometry.field >= level).astype(np.float32) * mask, 0.8)
        core_hu = float(rng.uniform(10.0, 30.0))
        lesion = lesion * (1 - core) + core_hu * core
        params["necrotic_core_hu"] = round(core_hu, 1)
    elif heterogeneity == "calcified":
        points = np.argwhere(mask)
        count = int(min(len(points), rng.integers(2, 7)))
        spots = np.zeros(mask.shape, np.float32)
        for index in points[rng.choice(len(points), count, replace=False)]:
            spots[tuple(index)] = 1.0
        spots = ndimage.gaussian_filter(spots, 0.6) / ndimage.gaussian_filter(
            np.pad([[[1.0]]], 2), 0.6).max()
        calcium = float(rng.uniform(250.0, 600.0))
        lesion = lesion * (1 - np.clip(spots, 0, 1)) + calcium * np.clip(spots, 0, 1)
        params.update(calcifications=count, calcification_hu=round(calcium, 1))
    grain = stats.noise_hu * host_grain(host, mask.shape, rng)
    params["noise_correlation_sigma_vox"] = [float(v) for v in grain_sigma_vox(host)]
    # zero mean over the lesion's core and over its rim, so the noise moves neither what a reader measures in
    # the core nor the whole lesion's mean: the few independent grains of a small lesion would otherwise move
    # them by several HU at random
    core = ndimage.binary_erosion(mask)
    for part in (core, mask & ~core):
        if part.any():
            grain[part] -= float(np.mean(grain[part]))
    ground_glass = spec.key == "lung_tumor" and attributes["density"] == "hypodense"
    if ground_glass:  # ground glass veils the lung; vessels and airway walls brighter than it stay
        kept_host = box_values >= lesion + grain
        lesion = np.where(kept_host, box_values, lesion)
        grain = np.where(kept_host, 0.0, grain).astype(np.float32)  # a kept voxel has its own noise
    blur = host_blur(host)
    sigma_mm = edge_sigma_kji_mm(blur, spacing, attributes["margin"])
    weight = ndimage.gaussian_filter(occupancy(geometry), sigma_mm / spacing, truncate=3.0)
    weight[weight < WEIGHT_FLOOR] = 0.0
    # the host keeps its noise where it keeps (1 - w) of its voxel; new noise of SD sqrt(2w - w^2) times
    # the host's makes up the rest, so the noise level is the host's across the lesion's rim too
    values = ((1.0 - weight) * box_values + weight * lesion
              + np.sqrt(np.clip(2 * weight - weight ** 2, 0.0, 1.0)) * grain)
    lesion = lesion + grain  # what was drawn, noise included, is what the quality gate judges
    params.update(edge_sigma_mm=round(float(sigma_mm.max()), 2),
                  edge_sigma_kji_mm=[round(float(v), 2) for v in sigma_mm],
                  host_blur_kji_mm=[round(float(v), 2) for v in blur.sigma_kji_mm],
                  ground_glass_keeps_vessels=ground_glass, mass_effect_mm=float(mass_effect_mm))
    return Appearance(values, weight, moved, target, reference, params, lesion)
