"""DICOM export with highdicom: a SEG of the exported findings and a TID 1500 measurement report.

The SEG holds one segment per finding that is accepted or still pending (a reader's rejection
removes it; see :func:`.review.exported_findings`), coded with SNOMED CT: category
"Morphologically Abnormal Structure", type Neoplasm / Neoplasm, Secondary / Cyst / Calculus, and
the organ as anatomic region. The Comprehensive 3D SR (TID 1500) has one volumetric measurement
group per segment: volume, RECIST long and short axis, largest 3D diameter, the organ (with side)
as finding site, PASTA's attributes and the size-based T category as qualitative evaluations
(in the private coding scheme 99PASTA, as PASTA's vocabulary has no standard codes). Both
reference the source series; the SR also references the SEG.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from pathlib import Path
from typing import Callable

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes as dcm_codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from PASTALib import __version__
from PASTALib.atomic import atomic_write
from PASTALib.io.volume import Volume
from PASTALib.lesions import codes

from .dicom_source import source_series
from .model import ATTRIBUTE_OPTIONS, Finding, Report
from .review import exported_findings

log = logging.getLogger(__name__)

MANUFACTURER = "PASTA for 3D Slicer"
MODEL_NAME = "pasta report"
SEG_SERIES_NUMBER = 990
SR_SERIES_NUMBER = 991
PRIVATE_SCHEME = "99PASTA"
MILLIMETRE = Code("mm", "UCUM", "millimeter")
MILLILITRE = Code("ml", "UCUM", "milliliter")
T_CATEGORY = Code("T-SIZE", PRIVATE_SCHEME, "AJCC 8th T category from size")
CT_PROCEDURE = Code("25045-6", "LN", "CT unspecified body region")


def concept(c) -> Code:
    return Code(c.value, c.scheme, c.meaning)


def attribute_name_code(name: str) -> Code:
    return Code(name.upper(), PRIVATE_SCHEME, name)


def attribute_value_code(name: str, value: str) -> Code:
    return Code(f"{name.upper()}-{ATTRIBUTE_OPTIONS[name].index(value) + 1}", PRIVATE_SCHEME, value)


def _algorithm(report: Report) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name="PASTA", version=__version__, family=dcm_codes.cid7162.ArtificialIntelligence,
        parameters={"model_id": report.provenance.model_id})


@contextlib.contextmanager
def _numpy_float_alias():
    """highdicom 0.22, the last release for pydicom 2 (which Slicer 5.8 and 5.10 ship), reads ``np.float_``
    for every segmentation, and NumPy 2 (Slicer 5.10) removed that name. For the SEG's construction only,
    put the alias back (it always meant float64); nothing changes with a newer highdicom or NumPy 1."""
    missing = "float_" not in np.__dict__
    if missing:
        np.float_ = np.float64
    try:
        yield
    finally:
        if missing:
            del np.float_


def build_seg(report: Report, findings: list[Finding], mask_of: Callable[[Finding], np.ndarray],
              sources: list[pydicom.Dataset]) -> hd.seg.Segmentation:
    """One segment per finding, frames in the order of ``sources`` (slice k)."""
    with _numpy_float_alias():
        return _build_seg(report, findings, mask_of, sources)


def _build_seg(report: Report, findings: list[Finding], mask_of: Callable[[Finding], np.ndarray],
               sources: list[pydicom.Dataset]) -> hd.seg.Segmentation:
    dtype = np.uint8 if len(findings) < 256 else np.uint16
    labelmap = np.zeros((len(sources), *mask_of(findings[0]).shape[1:]), dtype=dtype)
    descriptions = []
    for number, finding in enumerate(findings, start=1):
        labelmap[mask_of(finding)] = number
        location = finding.location
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=f"{finding.id} {finding.lesion_type.name}"[:64],
            segmented_property_category=concept(codes.MORPHOLOGICALLY_ABNORMAL_STRUCTURE),
            segmented_property_type=concept(finding.lesion_type.code),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=_algorithm(report),
            tracking_uid=generate_uid(), tracking_id=finding.id,
            anatomic_regions=[concept(location.code)] if location.code else None,
        ))
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=labelmap,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name=MODEL_NAME,
        software_versions=__version__, device_serial_number="none",
        series_description="PASTA lesions (draft)", content_label="PASTA_LESIONS",
        content_description="PASTA lesion findings, machine draft for review")


def _group(finding: Finding, number: int, seg: hd.seg.Segmentation) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    m = finding.measurements
    description = seg.SegmentSequence[number - 1]
    measurements = [
        hd.sr.Measurement(name=dcm_codes.SCT.Volume, value=m.volume_ml, unit=MILLILITRE),
        hd.sr.Measurement(name=dcm_codes.SCT.LongAxis, value=m.recist.long_axis.length_mm, unit=MILLIMETRE),
        hd.sr.Measurement(name=dcm_codes.SCT.ShortAxis, value=m.recist.short_axis.length_mm, unit=MILLIMETRE),
        hd.sr.Measurement(name=dcm_codes.SCT.Diameter, value=m.max_3d_diameter.length_mm, unit=MILLIMETRE,
                          derivation=dcm_codes.SCT.Maximum),
    ]
    evaluations = [hd.sr.QualitativeEvaluation(attribute_name_code(name), attribute_value_code(name, a.value))
                   for name, a in finding.attributes.items() if a.value is not None]
    if finding.staging.value:
        evaluations.append(hd.sr.QualitativeEvaluation(
            T_CATEGORY, Code(finding.staging.value, PRIVATE_SCHEME, finding.staging.value)))
    location = finding.location
    sites = None
    if location.code:
        laterality = codes.LATERALITY.get(location.side or "")
        sites = [hd.sr.FindingSite(anatomic_location=concept(location.code),
                                   laterality=concept(laterality) if laterality else None)]
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=description.TrackingUID, identifier=finding.id),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=number,
            source_series=hd.sr.SourceSeriesForSegmentation(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)),
        finding_type=concept(finding.lesion_type.code), finding_sites=sites,
        measurements=measurements, qualitative_evaluations=evaluations or None)


def person_name(reader: str) -> str:
    """The reader's name as a DICOM person name: "Family^Given" as typed, "Family, Given" converted, and
    anything else kept whole as the family-name component (no guess at which word is the family name)."""
    reader = reader.strip()
    if "^" in reader:
        return reader
    if reader.count(",") == 1:
        family, given = (part.strip() for part in reader.split(","))
        return f"{family}^{given}"
    return f"{reader}^"


def _observation_context(report: Report) -> hd.sr.ObservationContext:
    """PASTA as device observer always; the signing reader as person observer once the report is signed."""
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(), name="PASTA", manufacturer_name=MANUFACTURER, model_name=MODEL_NAME)
    person = None
    if report.signature is not None:
        person = hd.sr.ObserverContext(
            observer_type=dcm_codes.cid270.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=person_name(report.signature.reader), organization_name=report.signature.organization))
    return hd.sr.ObservationContext(
        observer_person_context=person,
        observer_device_context=hd.sr.ObserverContext(observer_type=dcm_codes.cid270.Device,
                                                      observer_identifying_attributes=device))


def build_sr(report: Report, findings: list[Finding], seg: hd.seg.Segmentation,
             sources: list[pydicom.Dataset]) -> hd.sr.Comprehensive3DSR:
    """TID 1500 measurements plus the report's impression (as edited) as a TEXT item. A signed report is
    complete, final and verified by its reader; an unsigned one is a partial, unverified draft."""
    groups = [_group(f, n, seg) for n, f in enumerate(findings, start=1)]
    content = hd.sr.MeasurementReport(observation_context=_observation_context(report),
                                      procedure_reported=CT_PROCEDURE, imaging_measurements=groups)
    if report.impression.strip():
        content[0].ContentSequence.append(hd.sr.TextContentItem(
            name=dcm_codes.DCM.Impression, value=report.impression.strip(),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    signature = report.signature
    signed = signature is not None
    return hd.sr.Comprehensive3DSR(
        evidence=[*sources, seg], content=content, series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=signed, is_final=signed, is_verified=signed,
        verifying_observer_name=person_name(signature.reader) if signed else None,
        verifying_organization=(signature.organization or "") if signed else None,
        series_description="PASTA measurements (signed)" if signed else "PASTA measurements (draft)")


def _save(dataset: pydicom.Dataset, path: Path, overwrite: bool) -> Path:
    return atomic_write(path, lambda temporary: save_dicom_file(dataset, temporary), overwrite, verify=_reads_back)


def save_dicom_file(dataset: pydicom.Dataset, path: str) -> None:
    """Save with the DICOM file preamble and meta header, on pydicom 3 (``enforce_file_format``) and on
    pydicom 2.4, which Slicer 5.10 ships (``write_like_original=False``; pydicom 3 removed it)."""
    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(path, enforce_file_format=True)
    else:
        dataset.save_as(path, write_like_original=False)


def _reads_back(path: str) -> None:
    """A written DICOM file must parse to its end (a full disk truncates it)."""
    try:
        pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for a damaged file
        raise OSError(errno.EIO, f"the written DICOM file does not read back: {exc}") from None


def export_dicom(report: Report, image: Volume, mask_of: Callable[[Finding], np.ndarray],
                 folder: Path, overwrite: bool = False) -> dict[str, Path]:
    """Write ``seg.dcm`` and ``sr.dcm`` into ``folder``; nothing when no finding is exported.

    TID 1500 needs at least one measurement group, so a report without exported findings (none
    found, or all rejected) has no DICOM form: that is logged and an empty dict returned.
    """
    sources = source_series(image)
    findings = exported_findings(report)
    if not findings:
        log.warning("No accepted or pending finding: no DICOM SEG or SR written.")
        return {}
    seg = build_seg(report, findings, mask_of, sources)
    sr = build_sr(report, findings, seg, sources)
    return {"seg": _save(seg, Path(folder) / "seg.dcm", overwrite),
            "sr": _save(sr, Path(folder) / "sr.dcm", overwrite)}
