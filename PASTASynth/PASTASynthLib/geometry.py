"""Lesion geometry: where the seed goes and which voxels the lesion covers.

A lesion is an ellipsoid of the requested axes, randomly rotated and deformed by smooth random
fields (stronger for "irregular", several lobes for "lobulated"). Its voxels are the highest
values of that field inside an *allowed* region (the organ, slightly dilated for solid tumours;
the wall band for hollow-organ cancers), with the threshold chosen so the lesion has exactly the
requested volume. All arrays here cover only the lesion's bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from PASTALib.errors import PastaInputError

from . import lung_shape
from .catalog import SynthSpec
from .host import Host

#: deformation amplitude (in units of the normalised ellipsoid radius) and correlation length
#: (fraction of the mean semi-axis) per shape
DEFORMATION = {"round-like": (0.07, 0.8), "cystic": (0.03, 0.8), "punctate-nodular": (0.05, 0.8),
               "irregular": (0.30, 0.45), "lobulated": (0.08, 0.6), "wall-thickening": (0.15, 0.6)}


@dataclass
class Box:
    """A bounding box in [k, j, i] index space, clipped to the image."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(int(a), int(b)) for a, b in zip(self.lo, self.hi))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(b - a) for a, b in zip(self.lo, self.hi))  # type: ignore[return-value]


@dataclass
class LesionGeometry:
    """The lesion's voxels in its box, the blend weight, and what was drawn to make them."""

    box: Box
    mask: np.ndarray  #: bool, box shape
    field: np.ndarray  #: float32 shape field (higher = deeper inside the lesion)
    threshold: float
    seed_kji: np.ndarray
    label: int  #: organ label holding the seed
    inside_fraction: float
    params: dict


def depth_map(host: Host, label: int) -> tuple[tuple[slice, ...], np.ndarray]:
    """Distance in mm from each voxel of an organ to its surface (cached per label)."""
    key = ("depth", label)
    if key not in host.cache:
        organ = host.organs == label
        box = ndimage.find_objects(organ.astype(np.uint8))[0]
        box = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, organ.shape))
        host.cache[key] = (box, ndimage.distance_transform_edt(organ[box], sampling=host.spacing_kji))
    return host.cache[key]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def smooth_noise(shape, sigma_vox, rng: np.random.Generator) -> np.ndarray:
    """Unit-SD smooth random field (Gaussian-filtered white noise), float32."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox, mode="reflect")
    sd = float(noise.std())
    return noise / sd if sd > 0 else noise


def choose_seed(host: Host, spec: SynthSpec, labels: list[int], radii_mm: np.ndarray, relation: str,
                rng: np.random.Generator, seed_kji: Optional[np.ndarray]) -> tuple[np.ndarray, int, bool]:
    """A seed voxel inside one of ``labels``: given (checked) or sampled by depth for the relation; and
    whether it was placed against a lung vessel (:func:`.lung_shape.juxtavascular_candidates`)."""
    if seed_kji is not None:
        index = tuple(int(round(v)) for v in seed_kji)
        if not all(0 <= v < n for v, n in zip(index, host.organs.shape)):
            raise PastaInputError(f"The seed point (voxel i,j,k = {index[::-1]}) is outside the image.",
                                  "Give a point inside the image, or leave the seed out to sample one.")
        label = int(host.organs[index])
        if label not in labels:
            where = host.names.get(label, "background") if label else "background"
            raise PastaInputError(
                f"The seed point (voxel i,j,k = {index[::-1]}) lies in {where}, not in the host organ "
                f"of {spec.key} ({', '.join(host.names.get(x, str(x)) for x in labels)}).",
                "Move the seed into the organ, or leave it out to sample one.")
        return np.asarray(index, np.float64), label, False
    label = int(rng.choice(labels, p=_volume_weights(host, labels)))
    box, depth = depth_map(host, label)
    r_min, r_max = float(radii_mm.min()), float(radii_mm.max())
    voxel = float(host.spacing_kji.max())
    if spec.kind == "wall":
        candidates = (depth > 0) & (depth <= 1.01 * voxel)
    elif spec.kind == "stone" or relation == "none":
        candidates = depth >= r_max + 0.5 * voxel
        if spec.key == "kidney_stone":
            candidates = _collecting_region(host, label, box, candidates)
        if not candidates.any():
            candidates = depth >= 0.95 * depth.max()
    elif spec.exophytic:  # close contact, exophytic: centred near the surface, bulging out of it
        candidates = (depth > 0) & (depth <= 0.3 * r_min + voxel)
    else:  # close contact: the lesion reaches the organ surface but stays mostly inside
        candidates = (depth >= 0.45 * r_min) & (depth <= 0.8 * r_min + voxel)
        if not candidates.any():
            candidates = depth >= 0.95 * depth.max()
    if spec.spares_renal_sinus:
        candidates = _outside_sinus(host, label, box, candidates, depth)
    juxtavascular = False
    if lung_shape.is_lung(spec.key) and relation == "none":
        near = lung_shape.juxtavascular_candidates(host, label, box, candidates, radii_mm, rng)
        if near is not None:
            candidates, juxtavascular = near, True
    points = np.argwhere(candidates)
    pick = points[rng.integers(len(points))]
    return pick + np.array([s.start for s in box], np.float64), label, juxtavascular


#: The renal sinus lies deeper than this inside the kidney label (the cortex is about 5-7 mm thick).
SINUS_MIN_DEPTH_MM = 4.0


def renal_sinus(host: Host, label: int, box) -> np.ndarray:
    """The renal sinus inside a kidney label, on ``box``: TotalSegmentator's kidney includes it, and its
    urine and fat are at least 25 HU below the parenchyma (smoothed over ~3 mm so single noisy voxels
    do not count). Cached per label; empty for a kidney without such a region."""
    key = ("renal_sinus", label, tuple((s.start, s.stop) for s in box))
    if key not in host.cache:
        kidney = host.organs[box] == label
        values = ndimage.uniform_filter(host.image.array[box].astype(np.float32), size=3)
        # deeper than the cortex: the outer layer is dark too, from partial volume with perirenal fat
        depth = ndimage.distance_transform_edt(np.pad(kidney, 1), sampling=host.spacing_kji)[1:-1, 1:-1, 1:-1]
        host.cache[key] = kidney & (depth > SINUS_MIN_DEPTH_MM) & (values < host.stats(label).parenchyma_hu - 25.0)
    return host.cache[key]


def _outside_sinus(host: Host, label: int, box, candidates: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Seeds for a lesion that spares the renal sinus, outside it. The deepest points of a kidney label are
    its sinus, so a cyst or tumour "inside the kidney" used to be centred there and, with the sinus spared,
    grew into a crescent of parenchyma around it (in an enhancing kidney, invisible against the medulla).
    Renal cysts and carcinomas arise in the parenchyma: where no deep enough seed lies outside the sinus, the
    deepest parenchyma is used; a kidney without parenchyma outside the sinus keeps ``candidates``."""
    sinus = renal_sinus(host, label, box)
    outside = candidates & ~sinus
    if not outside.any():
        parenchyma_depth = np.where(sinus, 0.0, depth)
        if parenchyma_depth.max() > 0:
            outside = parenchyma_depth >= 0.95 * parenchyma_depth.max()
    return outside if outside.any() else candidates


def _collecting_region(host: Host, label: int, box, candidates: np.ndarray) -> np.ndarray:
    """Kidney stones lie in the collecting system: the renal sinus. Without one (a small or
    contrast-filled kidney) the deep candidates are kept as they are."""
    sinus = candidates & renal_sinus(host, label, box)
    return sinus if sinus.any() else candidates


def _volume_weights(host: Host, labels: list[int]) -> np.ndarray:
    sizes = np.array([host.stats(x).voxels for x in labels], np.float64)
    return sizes / sizes.sum()


def _box_around(seed: np.ndarray, half_mm: np.ndarray, spacing: np.ndarray, shape) -> Box:
    half = np.ceil(half_mm / spacing).astype(int) + 1
    lo = np.maximum(seed.astype(int) - half, 0)
    hi = np.minimum(seed.astype(int) + half + 1, np.asarray(shape))
    return Box(lo, hi)


def shape_field(box: Box, seed: np.ndarray, radii_mm: np.ndarray, spacing: np.ndarray, shape: str,
                rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """1 - (ellipsoidal radius) plus smooth deformations, on the box grid (float32)."""
    rotation = random_rotation(rng)
    axes = [((np.arange(a, b) - c) * s).astype(np.float32)
            for a, b, c, s in zip(box.lo, box.hi, seed, spacing)]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)

    def ellipsoid(centre_mm, radii):
        total = 0.0
        for row in range(3):
            coord = sum(rotation[row, col] * (grids[col] - centre_mm[col]) for col in range(3))
            total = total + (coord / radii[row]) ** 2
        return 1.0 - np.sqrt(total)

    field = ellipsoid(np.zeros(3), radii_mm)
    params: dict = {"rotation": np.round(rotation, 4).tolist()}
    if shape == "lobulated":
        lobes = int(rng.integers(3, 6))
        directions = rng.standard_normal((lobes, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        field = ellipsoid(np.zeros(3), radii_mm * 0.8)
        for direction in directions:
            centre = rotation.T @ (direction * radii_mm * 0.5)
            field = np.maximum(field, ellipsoid(centre, radii_mm * rng.uniform(0.45, 0.6)))
        params["lobes"] = lobes
    amplitude, correlation = DEFORMATION.get(shape, DEFORMATION["round-like"])
    sigma_vox = np.maximum(correlation * float(radii_mm.mean()) / spacing, 0.7)
    field = field + amplitude * smooth_noise(field.shape, sigma_vox, rng)
    if shape == "irregular":  # finer, spiculation-like detail
        field = field + 0.10 * smooth_noise(field.shape, np.maximum(0.4 * sigma_vox, 0.6), rng)
    params.update(deformation_amplitude=amplitude, deformation_sigma_mm=float(correlation * radii_mm.mean()))
    return field.astype(np.float32), params


def build(host: Host, spec: SynthSpec, labels: list[int], size_mm: np.ndarray, attributes: dict,
          rng: np.random.Generator, seed_kji: Optional[np.ndarray] = None,
          forbidden: Optional[np.ndarray] = None) -> LesionGeometry:
    """Seed, shape field and lesion voxels of one lesion (requested volume, in its allowed region)."""
    spacing = host.spacing_kji
    radii = np.asarray(size_mm, np.float64) / 2.0
    lesion_ml = 4.0 / 3.0 * np.pi * float(np.prod(radii)) / 1000.0
    share = 0.15 if spec.kind == "wall" else spec.min_inside

    def organ_ml(label: int) -> float:
        return host.stats(label).voxels * float(np.prod(spacing)) / 1000.0

    fitting = [x for x in labels if lesion_ml * share <= 0.6 * organ_ml(x)]
    if seed_kji is None and fitting:
        labels = fitting
    seed, label, juxtavascular = choose_seed(host, spec, labels, radii, attributes["relation"], rng, seed_kji)
    if label not in fitting:
        raise PastaInputError(
            f"A {' x '.join(f'{s:g}' for s in size_mm)} mm {spec.key} ({lesion_ml:.1f} mL) cannot fit "
            f"in the {host.names.get(label, label)} of this scan ({organ_ml(label):.1f} mL).",
            "Request a smaller size.")
    lung = lung_shape.is_lung(spec.key)
    spiculated = lung and attributes["shape"] == "irregular"
    reach = lung_shape.SPICULATED_REACH if spiculated else 1.6
    box = _box_around(seed, radii.max() * reach + 4.0 * spacing, spacing, host.organs.shape)
    field, params = shape_field(box, seed, radii, spacing, attributes["shape"], rng)
    organ = host.organs[box.slices] == label
    voxel_ml = float(np.prod(spacing)) / 1000.0
    target = max(1, int(round(lesion_ml / voxel_ml)))
    if spec.kind == "wall":
        thinnest = 1.5 * float(spacing.max())  # a band the grid can show
        if spec.wall_thickness is not None:  # published thickness, at most the lesion's smallest diameter
            wall_mm = spec.wall_thickness.draw(rng, thinnest, max(thinnest, 2.0 * float(radii.min())))
        else:
            wall_mm = max((0.45 if attributes["shape"] == "wall-thickening" else 0.9) * float(radii.min()), thinnest)
        depth = ndimage.distance_transform_edt(organ, sampling=spacing)
        allowed = organ & (depth <= wall_mm)
        # the wall band within the ellipsoid's reach: target the band voxels the ellipsoid covers
        target = max(1, int(np.count_nonzero(allowed & (field > 0))))
        params["wall_thickness_mm"] = round(wall_mm, 2)
    elif spec.kind in ("stone", "bone") or spec.min_inside >= 0.95 or lung:
        allowed = organ  # a lung lesion flattens against the pleura, never grows into the chest wall
        if juxtavascular:  # it abuts the vessel and leaves it whole
            allowed = allowed & ~lung_shape.vessels(host, label, box.slices)
            params["juxtavascular"] = True
    elif spec.exophytic and attributes["relation"] == "close-contact":
        # bulging out into the surrounding fat (background label), never into another organ
        reach = ndimage.distance_transform_edt(~organ, sampling=spacing) <= float(radii.max())
        allowed = organ | (reach & (host.organs[box.slices] == 0))
        params["exophytic"] = True
    else:
        grow = max(0.25 * float(radii.min()), 0.0)
        reach = ndimage.distance_transform_edt(~organ, sampling=spacing) <= grow if grow > 0 else organ
        allowed = organ | reach
    if spec.spares_renal_sinus:
        allowed &= ~renal_sinus(host, label, box.slices)
    if forbidden is not None:
        allowed &= ~forbidden[box.slices]
    values = field[allowed]
    if values.size == 0:
        raise PastaInputError(f"No room for a {spec.key} at the chosen seed.", "Try another seed.")
    target = min(target, values.size)
    threshold = float(np.partition(values, values.size - target)[values.size - target])
    mask = allowed & (field >= threshold)
    mask = _component_at(mask, field)
    if spiculated:
        params["spicules"] = lung_shape.add_spicules(mask, field, threshold, organ, seed - box.lo, radii, spacing,
                                                     rng)
    inside = float(np.count_nonzero(mask & organ)) / max(1, int(mask.sum()))
    params.update(seed_kji=seed.tolist(), box_lo_kji=box.lo.tolist(), box_hi_kji=box.hi.tolist())
    return LesionGeometry(box, mask, field, threshold, seed, label, inside, params)


def _component_at(mask: np.ndarray, field: np.ndarray) -> np.ndarray:
    """The connected component holding the field's maximum (drops stray islands)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if count <= 1:
        return mask
    peak = int(labels.flat[np.argmax(np.where(mask, field, -np.inf))])
    return labels == peak
