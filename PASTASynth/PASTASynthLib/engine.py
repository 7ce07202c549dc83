"""The synthesis engine: request in, modified CT + lesion mask + record out, quality-gated.

:func:`synthesize` places ``count`` lesions of one type. Every random draw comes from one
``numpy`` generator seeded from (seed, lesion number, attempt), so the same request and seed give
identical voxels. Each lesion passes a quality gate (inside-organ fraction, achieved size,
contrast sign, finite values, nothing changed outside its influence region); a failing lesion is
redrawn with a new attempt number, and after :data:`MAX_ATTEMPTS` the request fails with a
:class:`PastaInputError` that names the failing check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume
from PASTALib.progress import ProgressReporter

from . import appearance, geometry
from .catalog import ATTRIBUTES, SynthSpec, equivalent_sphere_diameter_mm, parse_attributes, spec_for
from .host import Host

MAX_ATTEMPTS = 6
SIZE_TOLERANCE = 0.25


@dataclass(frozen=True)
class LesionRequest:
    """What the user asked for; anything left as None is sampled from the type's priors."""

    lesion_type: str
    size_mm: Optional[Sequence[float]] = None  #: one value (sphere-like) or three axes
    attributes: Mapping[str, str] = field(default_factory=dict)
    center_ras: Optional[Sequence[float]] = None
    center_ijk: Optional[Sequence[float]] = None
    count: int = 1
    seed: int = 0
    mass_effect_mm: float = 0.0  #: optional push of the surrounding tissue (0 = none)


@dataclass
class Lesion:
    """One placed lesion: its record for the report and its voxels (box + mask)."""

    number: int
    label: int
    attributes: dict[str, str]
    size_mm: list[float]
    record: dict
    box: geometry.Box
    mask: np.ndarray
    weight: np.ndarray


@dataclass
class SynthesisResult:
    image: Volume  #: the modified CT, same grid and dtype as the host
    lesion_mask: np.ndarray  #: bool, full grid
    influence: np.ndarray  #: bool, full grid: voxels synthesis was allowed to change
    spec: SynthSpec
    lesions: list[Lesion]
    host_notes: list[str]
    enhanced: bool
    phase_evidence: str


def _sample(spec: SynthSpec, key: str, rng: np.random.Generator) -> str:
    weights = spec.priors[key]
    values = list(weights)
    p = np.array([weights[v] for v in values], np.float64)
    return str(values[int(rng.choice(len(values), p=p / p.sum()))])


def _default_diameter(spec: SynthSpec, rng: np.random.Generator) -> float:
    """A diameter from the type's published size distribution (redrawn into its allowed range), or
    uniform in ``typical_mm`` for types without one."""
    prior = spec.size_prior
    if prior is None:
        return float(rng.uniform(*spec.typical_mm))
    lo, hi = spec.size_mm
    for _ in range(20):
        value = float(prior.median_mm * np.exp(prior.log_sd * rng.standard_normal()))
        if lo <= value <= hi:
            return value
    return float(np.clip(value, lo, hi))


def resolve_size(spec: SynthSpec, size_mm: Optional[Sequence[float]], rng: np.random.Generator,
                 organ_ml: float = np.inf) -> np.ndarray:
    """Three axes in mm: given (checked against the type's range) or sampled to fit the organ."""
    if size_mm is None:
        base = _default_diameter(spec, rng)
        share = 0.15 if spec.kind == "wall" else spec.min_inside
        fits = 0.85 * (6.0 * 0.5 * organ_ml * 1000.0 / (np.pi * share)) ** (1 / 3) / 1.2
        base = max(min(base, fits), spec.size_mm[0])
        return np.round(base * rng.uniform(0.8, 1.2, 3), 1)
    values = [float(v) for v in size_mm]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not all(np.isfinite(values)):
        raise PastaInputError(f"Size {size_mm} is not one or three numbers in mm.", "Use --size-mm 20 or 20,18,25.")
    lo, hi = spec.size_mm
    bad = [v for v in values if not lo <= v <= hi]
    if bad:
        raise PastaInputError(f"Size {', '.join(f'{v:g}' for v in values)} mm is outside the range of a "
                              f"{spec.key} ({lo:g}-{hi:g} mm per axis).", "Request a size in that range.")
    return np.array(values, np.float64)


def resolve_attributes(spec: SynthSpec, given: Mapping[str, str], rng: np.random.Generator) -> dict[str, str]:
    chosen = parse_attributes(spec, given)
    return {key: chosen[key] if key in chosen else _sample(spec, key, rng) for key in ATTRIBUTES}


def _density_for_host(spec: SynthSpec, host: Host, label: int, density: str, requested: bool,
                      rng: np.random.Generator) -> str:
    """``density`` if this organ leaves room for it above the type's floor; otherwise another one drawn
    from the priors among those that fit, or a clear error when the user asked for it."""
    reference = appearance.reference_hu(spec, host.stats(label), host)
    fits = [d for d in spec.priors["density"] if appearance.density_fits(spec, d, reference, host.enhanced)]
    if density in fits:
        return density
    if requested or not fits:
        raise PastaInputError(
            f"A {density} {spec.type.name.lower()} does not fit this host: its {host.names.get(label, label)} "
            f"measures {reference:.0f} HU and a solid {spec.type.name.lower()} stays above {spec.min_hu:g} HU "
            "(below that it reads as fluid).", f"Use density = {' | '.join(fits) or 'another type'}.")
    weights = np.array([spec.priors["density"][d] for d in fits], np.float64)
    return str(fits[int(rng.choice(len(fits), p=weights / weights.sum()))])


def _room_ml(host: Host, labels: list[int], seed_index: Optional[np.ndarray]) -> float:
    """The organ volume (mL) a default size must fit: the seeded organ's when the seed is given, else the
    largest host organ's (geometry.build then places the lesion only in an organ it fits). Was the
    smallest: one vertebra cut by the scan's edge capped every default bone metastasis at about 10 mm."""
    voxels = {label: host.stats(label).voxels for label in labels}
    room = max(voxels.values())
    if seed_index is not None:
        index = tuple(int(round(v)) for v in seed_index)
        if all(0 <= v < n for v, n in zip(index, host.organs.shape)):
            room = voxels.get(int(host.organs[index]), room)
    return room * float(np.prod(host.spacing_kji)) / 1000.0


def _seed_index(host: Host, request: LesionRequest) -> Optional[np.ndarray]:
    if request.center_ijk is not None:
        return np.asarray(request.center_ijk, np.float64)[::-1]
    if request.center_ras is not None:
        return host.image.ras_to_index_points(np.asarray(request.center_ras, np.float64))[::-1]
    return None


def quality_problems(spec: SynthSpec, geo: geometry.LesionGeometry, look: appearance.Appearance,
                     size_mm: np.ndarray, spacing: np.ndarray, density: str, dtype_range) -> list[str]:
    """Names of the failed checks (empty = lesion accepted)."""
    problems = []
    voxels = int(geo.mask.sum())
    if voxels == 0:
        return ["empty lesion"]
    if geo.inside_fraction < spec.min_inside:
        problems.append(f"only {geo.inside_fraction:.0%} inside the organ (needs {spec.min_inside:.0%})")
    if spec.kind != "wall":
        achieved = equivalent_sphere_diameter_mm(voxels * float(np.prod(spacing)))
        wanted = float(np.prod(size_mm)) ** (1 / 3)
        slack = max(SIZE_TOLERANCE * wanted, 0.5 * float(spacing.max()))
        if abs(achieved - wanted) > slack:
            problems.append(f"equivalent diameter {achieved:.1f} mm vs {wanted:.1f} mm requested")
    values = look.values
    if not np.all(np.isfinite(values)):
        problems.append("non-finite HU")
    elif values.min() < dtype_range[0] or values.max() > dtype_range[1]:
        problems.append("HU outside the image type's range")
    # density is judged on what was drawn: the scanner's blur (partial volume) mixes a small lesion with
    # its surroundings, as it does with a real one, and must not be mistaken for the wrong density
    mean = float(np.mean(look.drawn[geo.mask]))
    difference = mean - look.reference_hu
    if spec.kind == "cyst":
        if not -10.0 <= mean <= 25.0:
            problems.append(f"cyst mean {mean:.0f} HU is not near water")
    elif spec.kind == "stone":
        if difference < 100.0:
            problems.append(f"stone mean {mean:.0f} HU is not hyperdense")
    elif density == "hypodense" and difference > -5.0:
        problems.append(f"lesion mean {mean:.0f} HU is not below the reference {look.reference_hu:.0f} HU")
    elif density == "hyperdense" and difference < 5.0:
        problems.append(f"lesion mean {mean:.0f} HU is not above the reference {look.reference_hu:.0f} HU")
    elif density == "isodense" and abs(difference) > 15.0:
        problems.append(f"lesion mean {mean:.0f} HU is not close to the reference {look.reference_hu:.0f} HU")
    return problems


def synthesize(host: Host, request: LesionRequest, progress: Optional[ProgressReporter] = None) -> SynthesisResult:
    """Place ``request.count`` lesions into the host; raises PastaInputError for bad requests."""
    progress = progress or ProgressReporter()
    spec = spec_for(request.lesion_type)
    if not 1 <= request.count <= 20:
        raise PastaInputError(f"--count {request.count} is out of range.", "Use 1 to 20 lesions.")
    if not 0.0 <= request.mass_effect_mm <= 5.0:
        raise PastaInputError(f"--mass-effect {request.mass_effect_mm:g} mm is out of range.",
                              "Use 0 (none) to 5 mm.")
    labels = host.require_labels(spec)
    given = parse_attributes(spec, request.attributes)  # fail fast on bad values
    array = host.image.array
    info = np.iinfo(array.dtype) if np.issubdtype(array.dtype, np.integer) else np.finfo(np.float32)
    dtype_range = (float(info.min), float(info.max))
    out = array.copy()
    lesion_mask = np.zeros(array.shape, bool)
    influence = np.zeros(array.shape, bool)
    spacing = host.spacing_kji
    seed_index = _seed_index(host, request)
    room_ml = _room_ml(host, labels, seed_index)
    lesions: list[Lesion] = []
    for number in range(1, request.count + 1):
        failures: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            progress.report("synthesis", (number - 1 + attempt / MAX_ATTEMPTS) / request.count,
                            f"lesion {number}, attempt {attempt + 1}")
            rng = np.random.default_rng([request.seed, number, attempt])
            attributes = resolve_attributes(spec, request.attributes, rng)
            size = resolve_size(spec, request.size_mm, rng, room_ml)
            fixed_seed = seed_index if (number == 1 and seed_index is not None) else None
            geo = geometry.build(host, spec, labels, size, attributes, rng, fixed_seed,
                                 forbidden=lesion_mask if number > 1 else None)
            attributes["density"] = _density_for_host(spec, host, geo.label, attributes["density"],
                                                      "density" in given, rng)
            # later lesions blend over the already-modified image
            view = host.image.with_array(out) if number > 1 else host.image
            look = appearance.render(_HostView(host, view), spec, geo, attributes, rng,
                                     request.mass_effect_mm, float(size.mean()) / 2.0)
            problems = quality_problems(spec, geo, look, size, spacing, attributes["density"], dtype_range)
            if not problems:
                break
            failures.append("; ".join(problems))
        else:
            raise PastaInputError(
                f"Could not place {spec.key} lesion {number} after {MAX_ATTEMPTS} attempts: {failures[-1]}.",
                "Try another seed point, a smaller size or other attributes.")
        sl = geo.box.slices
        changed = (look.weight > 0) | look.moved
        box_out = out[sl]
        new = np.clip(np.rint(look.values) if np.issubdtype(array.dtype, np.integer) else look.values,
                      *dtype_range).astype(array.dtype)
        box_out[changed] = new[changed]
        lesion_mask[sl] |= geo.mask
        influence[sl] |= changed
        record = {"number": number, "attempts": attempt + 1, "rng_seed": [request.seed, number, attempt],
                  "organ_label": geo.label, "organ": host.names.get(geo.label, str(geo.label)),
                  "size_mm_requested": [float(v) for v in size], "attributes_requested": attributes,
                  "seed_ijk": [float(v) for v in geo.seed_kji[::-1]],
                  "seed_ras": [round(float(v), 2) for v in host.image.index_to_ras_points(geo.seed_kji[::-1])],
                  "inside_fraction": round(geo.inside_fraction, 4), "voxels": int(geo.mask.sum()),
                  "geometry": {k: v for k, v in geo.params.items() if k != "rotation"},
                  "appearance": look.params}
        lesions.append(Lesion(number, geo.label, attributes, [float(v) for v in size], record, geo.box,
                              geo.mask, look.weight))
    progress.report("synthesis", 1.0, f"{len(lesions)} lesion(s) placed")
    return SynthesisResult(host.image.with_array(out), lesion_mask, influence, spec, lesions,
                           list(host.notes), host.enhanced, host.phase_evidence)


class _HostView:
    """A host whose image is replaced (for lesion 2+), sharing the organ stats of the original."""

    def __init__(self, host: Host, image: Volume) -> None:
        self._host, self.image = host, image

    def __getattr__(self, name):
        return getattr(self._host, name)
