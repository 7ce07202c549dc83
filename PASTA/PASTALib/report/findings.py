"""From a lesion label map to a structured report: the hook ``pasta analyze`` calls.

:func:`report_from_segmentation` checks the inputs, finds the lesion components
(:mod:`.components`), measures them (:mod:`.measurements`), derives the five attributes
(:mod:`.attributes`) and the T category (:mod:`.staging`), and writes the impression. A model run
passes its probabilities, its model id, and optionally learned attribute and staging heads, whose
predictions are stored next to the rules' values.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Optional, Protocol, Union

import numpy as np

from PASTALib import __version__
from PASTALib.errors import PastaInputError
from PASTALib.io.input_checks import check_mask_matches
from PASTALib.io.resample import Interpolation, resample_to_reference
from PASTALib.io.volume import Volume
from PASTALib.lesions import anatomy, lesion_types
from PASTALib.lesions.components import Region, find_regions
from PASTALib.lesions.type_rules import TypeDecision, core_density, decide_type
from PASTALib.progress import ProgressReporter

from . import DEFAULT_MIN_VOLUME_ML, attributes, staging
from .impression import build_impression
from .measurements import measure, voxel_volume_mm3
from .model import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Code,
    Component,
    Confidence,
    Dropped,
    Finding,
    Geometry,
    LesionTypeRef,
    Location,
    ModelPrediction,
    Provenance,
    Report,
    Review,
    Source,
)

log = logging.getLogger(__name__)

SOFTWARE = "PASTA for 3D Slicer (pasta report)"

Probabilities = Union[Volume, np.ndarray, None]


class AttributeHead(Protocol):
    """A learned attribute head: predictions per attribute name for one finding."""

    def predict(self, finding: Finding, image: Volume, mask: np.ndarray) -> Mapping[str, ModelPrediction]: ...


# ----------------------------------------------------------------------------------- inputs
def check_labels(image: Volume, labels: Volume, lesion_type: Optional[lesion_types.LesionType]) -> np.ndarray:
    """The label map as integers on the image grid, or a PastaInputError naming what is wrong."""
    check_mask_matches(image, labels, "lesion label map")
    values = np.unique(labels.array)
    allowed = {0, 1} if lesion_type is not None else {0, *lesion_types.BY_ID}
    unknown = [v for v in values.tolist() if v not in allowed]
    if unknown:
        shown = ", ".join(f"{v:g}" for v in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        if lesion_type is not None:
            raise PastaInputError(
                f"The lesion label map holds values {shown}, but with --lesion-type "
                f"{lesion_type.key} it must be binary (0 background, 1 lesion).",
                "Leave out --lesion-type for a map of PASTA lesion-type ids.")
        raise PastaInputError(
            f"The lesion label map holds values {shown} that are not PASTA lesion-type ids.",
            f"Use 0 for background and {lesion_types.id_table()}; or pass a binary 0/1 map with "
            "--lesion-type.")
    # Lesion-type ids (and 0/1) fit in a byte: no wider copy of a full-grid map than needed.
    if lesion_type is not None:
        return np.where(labels.array > 0, lesion_type.id, 0).astype(np.uint8)
    return labels.array.astype(np.uint8, copy=False)


def check_probabilities(image: Volume, probabilities: Probabilities) -> Optional[np.ndarray]:
    """A (k, j, i) lesion-probability map or a (C, k, j, i) class-probability array, in 0..1."""
    if probabilities is None:
        return None
    if isinstance(probabilities, Volume):
        differences = image.geometry_differences(probabilities, image.grid_tolerance_mm)
        if differences:
            raise PastaInputError("The probability map's geometry differs from the image's: "
                                  + "; ".join(differences) + ".",
                                  "Save the probabilities on the image grid.")
        array = probabilities.array
    else:
        array = np.asarray(probabilities)
        if array.shape[-3:] != image.array.shape or array.ndim not in (3, 4):
            raise PastaInputError(f"Probabilities of shape {array.shape} do not fit the image "
                                  f"grid {image.array.shape} (k, j, i).")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)) or array.min() < -1e-6 or array.max() > 1 + 1e-6:
        raise PastaInputError(
            f"Probabilities must lie between 0 and 1; found {np.nanmin(array):g} to {np.nanmax(array):g}.",
            "Pass the softmax probability of the lesion (0-1), not logits or a percentage.")
    return array


def organs_on_grid(image: Volume, organs: Optional[Volume]) -> tuple[Optional[np.ndarray], list[str]]:
    """The organ mask on the image grid; a different grid is resampled (nearest neighbour)."""
    if organs is None:
        return None, []
    notes = []
    if image.geometry_differences(organs, image.grid_tolerance_mm):
        organs = resample_to_reference(organs, image, Interpolation.NEAREST)
        notes.append("The organ mask was on another grid and was resampled onto the image grid "
                     "(nearest neighbour, in world space).")
    check_mask_matches(image, organs, "organ mask")  # whole numbers >= 0, so an integer type holds them
    array = organs.array
    return (array if np.issubdtype(array.dtype, np.integer) else array.astype(np.int32)), notes


# ----------------------------------------------------------------------------------- findings
def _location(region: Region, lesion_type, sites: dict) -> Location:
    if region.group is None:
        source = "lesion type (no organ mask)" if not region.group_fractions else \
            "lesion type (no organ within 10 mm in the organ mask)"
        group = anatomy.ORGAN_GROUPS.get(lesion_type.organ)
        return Location(organ=lesion_type.organ, organ_name=anatomy.group_name(lesion_type.organ),
                        site=None, organ_label_id=None, side=None, lobe=None, source=source,
                        organ_fractions=dict(region.group_fractions),
                        code=Code.of(group.code) if group else None, matches_lesion_type=True)
    site = sites.get(region.site_label) if region.site_label is not None else None
    code = site.code if site and site.code else (
        anatomy.ORGAN_GROUPS[region.group].code if region.group in anatomy.ORGAN_GROUPS else None)
    return Location(organ=region.group, organ_name=anatomy.group_name(region.group),
                    site=site.site if site else None, organ_label_id=region.site_label,
                    side=site.side if site else None, lobe=site.lobe if site else None,
                    source="organ mask", organ_fractions=dict(region.group_fractions),
                    code=Code.of(code) if code else None,
                    matches_lesion_type=region.group == lesion_type.organ)


def _confidence(probabilities: Optional[np.ndarray], mask: np.ndarray, type_id: int,
                source_name: Optional[str] = None) -> Optional[Confidence]:
    if probabilities is None:
        return None
    if probabilities.ndim == 4:
        if type_id >= probabilities.shape[0]:
            raise PastaInputError(f"Class probabilities have {probabilities.shape[0]} channels; lesion "
                                  f"type {type_id} needs channel {type_id}.")
        values, source = probabilities[type_id][mask], f"class probability of lesion type {type_id}"
    else:
        values, source = probabilities[mask], "lesion probability map"
    return Confidence(mean=float(values.mean()), max=float(values.max()), source=source_name or source)


def _source(image: Volume, name: Optional[str]) -> Source:
    meta = image.metadata

    def tag(key):
        return (meta.get(key) or "").strip() or None

    return Source(
        image=name or meta.get("source", "(in memory)"),
        study_instance_uid=tag("StudyInstanceUID"), series_instance_uid=tag("SeriesInstanceUID"),
        modality=tag("Modality"), series_description=tag("SeriesDescription"),
        manufacturer=tag("Manufacturer"),
        geometry=Geometry(size=list(image.size), spacing_mm=list(image.spacing),
                          origin_lps=list(image.origin), direction=image.direction.tolist()))


@dataclass
class Analysis:
    """A report with the exact voxels of each finding (for key images and DICOM SEG)."""

    report: Report
    regions: dict  #: finding id -> :class:`.components.Region`
    shape: tuple

    def mask(self, finding) -> np.ndarray:
        return self.regions[finding.id].full_mask(self.shape)

    def finding_labels(self) -> np.ndarray:
        """Label value n on finding Fn's voxels (uint16): the exact voxels, written as ``findings.nii.gz``
        so a viewer need not rebuild the parts of a component that was split between organs."""
        labels = np.zeros(self.shape, np.uint16)
        for number, finding in enumerate(self.report.findings, start=1):
            region = self.regions[finding.id]
            labels[region.box][region.mask] = number
        return labels


def report_from_segmentation(image: Volume, lesion_labels: Volume, probabilities: Probabilities = None,
                             organs: Optional[Volume] = None, **options) -> Report:
    """The structured report of a lesion label map: the hook ``pasta analyze`` calls.

    Takes the same arguments as :func:`analyse_segmentation` and returns its report alone.
    """
    return analyse_segmentation(image, lesion_labels, probabilities, organs, **options).report


def analyse_segmentation(
    image: Volume,
    lesion_labels: Volume,
    probabilities: Probabilities = None,
    organs: Optional[Volume] = None,
    *,
    lesion_type: Union[str, int, None] = None,
    organ_names: Optional[Mapping[int, str]] = None,
    min_volume_ml: float = DEFAULT_MIN_VOLUME_ML,
    model_id: str = "none",
    attribute_head: Optional[AttributeHead] = None,
    staging_head: Optional[staging.StagingHead] = None,
    inputs: Optional[Mapping[str, Optional[str]]] = None,
    progress: Optional[ProgressReporter] = None,
    confidence_source: Optional[str] = None,
) -> Analysis:
    """Build the structured report of a lesion label map on ``image``'s grid.

    ``lesion_labels`` holds PASTA lesion-type ids (:mod:`.lesion_types`), or 0/1 with
    ``lesion_type``. ``probabilities`` is a lesion-probability volume or a (C, k, j, i) array of
    class probabilities (channel = lesion-type id). ``organs`` is a TotalSegmentator v2 organ mask
    unless ``organ_names`` says otherwise. An empty label map gives a valid report with no findings.

    With an organ mask, every finding's type is one its organ can host (:mod:`PASTALib.lesions.type_rules`;
    the rule that decided is in the finding's notes) and a region in no host organ is not a finding
    (counted in the report's notes). Findings are numbered by confidence x size, largest first.
    """
    progress = progress or ProgressReporter()
    chosen_type = lesion_types.lookup(lesion_type) if lesion_type is not None else None
    labels = check_labels(image, lesion_labels, chosen_type)
    probs = check_probabilities(image, probabilities)
    organ_array, notes = organs_on_grid(image, organs)
    sites = (anatomy.sites_from_names(dict(organ_names)) if organ_names is not None
             else anatomy.totalsegmentator_v2_sites())
    organ_groups = {label: site.group for label, site in sites.items()}
    voxel_ml = voxel_volume_mm3(image) / 1000.0
    min_voxels = max(1, int(np.ceil(min_volume_ml / voxel_ml - 1e-9)))
    progress.report("findings", 0.0, "connected components")
    regions, dropped = find_regions(labels, image.spacing, min_voxels, organ_array, organ_groups)
    decided, outside = _decide_types(regions, image, organ_array is not None)
    regions = [region for region, _ in decided]
    if outside:
        notes.append(f"{outside} lesion region(s) outside every organ that hosts a PASTA lesion type "
                     "were not reported.")
    all_lesions = labels > 0
    findings = []
    for number, (region, decision) in enumerate(decided, start=1):
        progress.report("findings", 0.1 + 0.8 * (number - 1) / len(regions), f"F{number}")
        findings.append(_finding(number, region, image, all_lesions, probs, organ_array,
                                 organ_groups, sites, attribute_head, decision, confidence_source))
    findings, regions = _ranked(findings, regions)
    staging.stage_findings(findings, staging_head)
    dropped_summary = Dropped(count=dropped.count, total_volume_ml=float(dropped.voxels * voxel_ml),
                              min_volume_ml=float(min_volume_ml))
    inputs = dict(inputs or {})
    provenance = Provenance(
        software=SOFTWARE, software_version=__version__, model_id=model_id,
        inputs={"image": inputs.get("image"), "lesion_labels": inputs.get("lesion_labels"),
                "probabilities": inputs.get("probabilities"), "organs": inputs.get("organs"),
                "organ_labels": inputs.get("organ_labels") or (
                    "TotalSegmentator v2 (total task)" if organs is not None else None)},
        parameters={"min_volume_ml": float(min_volume_ml), "connectivity": 26, "regions_outside_host_organs": outside,
                    "lesion_type": chosen_type.key if chosen_type else None,
                    "split_min_fraction": 0.10, "nearest_organ_mm": 10.0},
        notes=notes)
    progress.report("findings", 1.0, f"{len(findings)} findings")
    report = Report(schema=SCHEMA_NAME, schema_version=SCHEMA_VERSION, report_id=str(uuid.uuid4()),
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    source=_source(image, inputs.get("image")), provenance=provenance,
                    findings=findings, dropped=dropped_summary,
                    impression=build_impression(findings, dropped_summary), edits=[])
    return Analysis(report, {f.id: r for f, r in zip(findings, regions)}, image.array.shape)


def _decide_types(regions: list[Region], image: Volume, organs_known: bool
                  ) -> tuple[list[tuple[Region, Optional[TypeDecision]]], int]:
    """(the regions that are findings, each with its type decision; how many lie in no host organ).
    Without an organ mask the organ is unknown: every region stays and the label's type stands (None)."""
    if not organs_known:
        return [(region, None) for region in regions], 0
    decided = []
    for region in regions:
        density = core_density(image.array[region.box], region.mask)
        decision = decide_type(region.group, density, lesion_types.BY_ID[region.label_value])
        if decision is not None:
            decided.append((region, decision))
    return decided, len(regions) - len(decided)


def _ranked(findings: list[Finding], regions: list[Region]) -> tuple[list[Finding], list[Region]]:
    """Findings ordered by confidence x size (the first rows are the ones that matter), renumbered."""
    def weight(finding: Finding) -> float:
        confidence = finding.confidence.max if finding.confidence is not None else 1.0
        return confidence * finding.measurements.max_3d_diameter.length_mm

    order = sorted(range(len(findings)), key=lambda i: -weight(findings[i]))
    ranked = [findings[i] for i in order]
    for number, finding in enumerate(ranked, start=1):
        finding.id = f"F{number}"
    return ranked, [regions[i] for i in order]


def _finding(number, region, image, all_lesions, probs, organ_array, organ_groups, sites, head,
             decision=None, confidence_source=None) -> Finding:
    lesion_type = decision.lesion_type if decision is not None else lesion_types.BY_ID[region.label_value]
    mask = region.full_mask(image.array.shape)
    measurements = measure(mask, image)
    location = _location(region, lesion_type, sites)
    ctx = attributes.make_context(image.array, mask, all_lesions, organ_array, organ_groups,
                                  location.organ if location.source == "organ mask" else None,
                                  lesion_type, image.spacing,
                                  measurements.max_3d_diameter.length_mm)
    attrs = attributes.compute_attributes(ctx)
    notes = []
    if decision is not None:
        notes.append(f"Type decided by {decision.rule}.")
    if not location.matches_lesion_type:
        notes.append(f"The label says {lesion_type.name} (a {anatomy.group_name(lesion_type.organ)} "
                     f"lesion) but it lies in the {location.organ_name}; check the lesion type.")
    if region.parts > 1:
        notes.append(f"Part {region.part} of {region.parts} of one connected region that spans "
                     "organs; split by organ.")
    finding = Finding(
        id=f"F{number}",
        lesion_type=LesionTypeRef.of(lesion_type),
        location=location,
        component=Component(region.label_value, region.component, region.part, region.parts,
                            region.voxel_count),
        confidence=_confidence(probs, mask, region.label_value, confidence_source),
        measurements=measurements, attributes=attrs,
        staging=staging.stage_finding(lesion_type, measurements.max_3d_diameter.length_mm),
        review=Review(), notes=notes)
    if head is not None:
        attributes.apply_model_predictions(finding.attributes, dict(head.predict(finding, image, mask)))
    return finding
