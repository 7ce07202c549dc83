"""``pasta analyze`` as a function: read and check the CT, segment it with a model, turn the lesion
classes into findings and write the report folder. The CLI and the Slicer module's subprocess run it
with one :class:`.options.AnalysisOptions`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.io.input_checks import assess_ct, check_image, intensity_stats, require_ct
from PASTALib.io.volume_io import read_volume, write_volume
from PASTALib.lesions.organ_masks import read_organs
from PASTALib.progress import ProgressReporter
from PASTALib.report.writer import FINDING_LABELS, RESULT_NAMES, SEGMENTATION, write_report_outputs
from PASTALib.result_folder import ResultFolder

from .options import AnalysisOptions

log = logging.getLogger(__name__)

#: Relative cost of each stage of ``pasta analyze`` (measured on the sample on a CPU, rounded), so the
#: whole run's progress moves forward steadily and gives an ETA.
DETECTOR_STAGES = {"reading": 5, "detection": 60, "findings": 15, "rendering": 15, "writing": 5}
NETWORK_STAGES = {"reading": 1, "preprocessing": 3, "segmenting": 80, "postprocessing": 3, "findings": 5,
                  "heads": 3, "rendering": 3, "writing": 2}


def lesion_class_map(classes, lesion_type: str | None) -> dict[int, int]:
    """Model class index -> PASTA lesion-type id, from the model card or ``--lesion-type``."""
    from PASTALib.lesions import lesion_types

    mapping = {c.id: lesion_types.lookup(c.lesion_type).id for c in classes if c.lesion_type}
    if mapping:
        return mapping
    lesion_classes = [c.id for c in classes if c.name.lower() in ("lesion", "tumor", "tumour")]
    names = ", ".join(c.name for c in classes)
    if not lesion_classes:
        raise PastaInputError(f"The model's classes ({names}) name no lesion type and no 'lesion' class.",
                              "Use a lesion model (its model card maps classes to lesion types).")
    if lesion_type is None:
        raise PastaInputError(f"The model's classes ({names}) do not say which lesion type it finds.",
                              f"Pass --lesion-type (for example liver_tumor); ids: {lesion_types.id_table()}.")
    chosen = lesion_types.lookup(lesion_type).id
    return {index: chosen for index in lesion_classes}


#: How far beyond its organs a network still looks: exophytic lesions and the context a tile needs.
ROI_MARGIN_MM = 20.0


def roi_region(organs, lesion_type_ids, image_shape) -> tuple[np.ndarray | None, list[str]]:
    """The organs the model's lesion types live in, grown by :data:`ROI_MARGIN_MM`, on the image grid;
    (None, reason) when the whole scan must run (no organ mask, or none of those organs in it)."""
    from scipy import ndimage

    from PASTALib.lesions import lesion_types
    from PASTALib.lesions.anatomy import host_label_ids
    from PASTALib.lesions.components import bounding_box, grow_box

    if organs is None or organs.array.shape != tuple(image_shape):
        return None, []
    groups = sorted({lesion_types.BY_ID[int(t)].organ for t in lesion_type_ids})
    labels = sorted({label for group in groups for label in host_label_ids(group)})
    mask = np.isin(organs.array, labels)
    if not mask.any():
        return None, [f"None of the model's organs ({', '.join(groups)}) is in the organ mask: the whole scan was "
                      "segmented."]
    margin = np.ceil(ROI_MARGIN_MM / np.asarray(organs.spacing[::-1])).astype(int)
    box = grow_box(bounding_box(mask), mask.shape, margin)
    near = ndimage.distance_transform_edt(~mask[box], sampling=organs.spacing[::-1]) <= ROI_MARGIN_MM
    region = np.zeros(mask.shape, bool)
    region[box] = near
    return region, [f"The network ran on the {', '.join(groups)} and {ROI_MARGIN_MM:g} mm around them (organ "
                    "mask); --whole-volume runs it everywhere."]


def finding_floor(requested: float | None, model_floor: float, default: float) -> float:
    """The smallest finding reported. The model's component floor also applies to each type's part of
    a component: a lesion painted in two types keeps its size for the floor, but a 1-voxel splash of a
    third type inside it is not a finding the model can stand behind. An explicit --min-volume wins."""
    return requested if requested is not None else max(default, model_floor)


def run_analysis(options: AnalysisOptions, progress: ProgressReporter, loaded: dict | None = None):
    """Run one analysis and write its folder; returns the :class:`~PASTALib.report.findings.Analysis`.

    The output folder is claimed before any work (a second run into it is refused) and receives the
    whole result at the end or nothing (cancelled, failed): see :class:`PASTALib.result_folder.ResultFolder`.
    ``loaded`` keeps the loaded model between calls (a batch loads it once).
    """
    loaded = {} if loaded is None else loaded
    started = time.perf_counter()
    with ResultFolder(Path(options.output), RESULT_NAMES, options.overwrite) as result:
        analysis = _analyse(options, result.staging, progress, loaded)
        result.commit()
    if "detector" in loaded:  # the detector path keeps its model there
        _record_detector_speed(time.perf_counter() - started, analysis.shape)
    log.info("wrote %s", result.path)
    return analysis


def _analyse(options: AnalysisOptions, out: Path, progress: ProgressReporter, loaded: dict):
    from PASTALib.detection.model_folder import detector_folder
    from PASTALib.heads.apply import apply_heads, check_heads, load_heads
    from PASTALib.heads.attribute_heads import head_for_model
    from PASTALib.inference.predictor import Predictor
    from PASTALib.model.checkpoints import load_model
    from PASTALib.report import DEFAULT_MIN_VOLUME_ML
    from PASTALib.report.findings import analyse_segmentation

    image_path, sample = sample_data.resolve(options.image)
    detector = detector_folder(options.model)  # None for a network model
    progress.plan(DETECTOR_STAGES if detector is not None else NETWORK_STAGES)
    if detector is not None and options.head:
        raise PastaInputError("--head needs a network model; the detector has no encoder features.",
                              "Leave out --head, or pass --model with a PASTA network.")
    progress.report("reading", 0.0, str(image_path))
    image = read_volume(image_path)
    check_image(image)
    if not options.force:
        require_ct(assess_ct(intensity_stats(image)))
    if options.dicom:
        from PASTALib.report.dicom_source import dicom_folder

        dicom_folder(image)  # fail before the work, not after it
    if detector is not None:
        return run_detector_analysis(options, detector, image, sample, out, progress, loaded)
    heads = load_heads(options.head) if options.head else []
    if "model" not in loaded:
        loaded["model"] = load_model(options.model, options.folds, options.checkpoint, options.pasta_defaults)
    model = loaded["model"]
    check_heads(heads, model)  # refuse another model's heads before the segmentation runs
    class_map = lesion_class_map(model.classes, options.lesion_type)
    organs_arg, organs, organ_notes = read_organs(options.organs, sample, image)
    if "predictor" not in loaded:
        loaded["predictor"] = Predictor(model, device=options.device, tta=options.tta, overlap=options.overlap,
                                        batch_size=options.batch_size, precision=options.precision,
                                        threads=options.threads, progress=progress)
    predictor = loaded["predictor"]
    region, region_notes = ((None, []) if options.whole_volume
                            else roi_region(organs, class_map.values(), image.array.shape))
    work = predictor.work(image)
    log.info("Work: %s", work.text() + (" at most (the region of interest runs fewer tiles)" if region is not None
                                         else ""))
    hint = predictor.precision_hint(work.forwards)
    if hint:
        log.info("%s", hint)
    progress.report("preprocessing", 0.0, work.text())
    result = predictor.predict(image, return_probabilities=True, region=region)
    result.notes.extend(region_notes)
    lesion_labels = np.zeros(image.array.shape, np.uint8)
    for index, type_id in class_map.items():
        lesion_labels[result.labels.array == index] = type_id
    lesion_probability = result.probabilities[sorted(class_map)].sum(axis=0)
    write_volume(result.labels, out / SEGMENTATION)
    attribute_head = None if options.no_attribute_heads else head_for_model(model, predictor.device.type)
    analysis = analyse_segmentation(
        image, image.with_array(lesion_labels), image.with_array(np.clip(lesion_probability, 0.0, 1.0)), organs,
        attribute_head=attribute_head,
        min_volume_ml=finding_floor(options.min_volume, model.postprocessing.min_component_ml, DEFAULT_MIN_VOLUME_ML),
        model_id=f"{model.provenance.get('name') or model.source.name} ({model.format})", progress=progress,
        inputs={"image": str(options.image), "lesion_labels": f"{SEGMENTATION} (model classes "
                + ", ".join(f"{c.id}={c.name}" for c in model.classes) + ")",
                "probabilities": "model softmax (lesion classes summed)", "organs": organs_arg})
    analysis.report.provenance.notes.extend(result.notes + organ_notes)
    apply_heads(heads, analysis, image, model, options.device, progress)
    return _write_findings(analysis, image, out, options, progress)


def _write_findings(analysis, image, out: Path, options: AnalysisOptions, progress: ProgressReporter):
    """The findings' label map, then the report (so a report.json is never newer than its findings'
    voxels); returns ``analysis``."""
    progress.report("findings", 1.0, f"writing {FINDING_LABELS}")
    write_volume(image.with_array(analysis.finding_labels()), out / FINDING_LABELS)
    write_report_outputs(analysis, image, out, options.dicom, progress)
    return analysis


def _record_detector_speed(seconds: float, shape_kji) -> None:
    """This computer's speed against the reference (whole run), for the next run's estimate."""
    from PASTALib.inference.work import TimingLog, detector_key, detector_reference_seconds

    TimingLog().record(detector_key(), seconds / detector_reference_seconds(float(np.prod(shape_kji)) / 1e6))


def run_detector_analysis(options: AnalysisOptions, folder: Path, image, sample, out: Path,
                          progress: ProgressReporter, loaded: dict | None = None):
    """``pasta analyze`` with a detector model folder: organ-aware candidates, calibrated confidence,
    the chosen operating point; then the same report as for a network."""
    from PASTALib.detection.detector import detect
    from PASTALib.detection.model_folder import load_detector
    from PASTALib.inference.work import detector_work
    from PASTALib.report import DEFAULT_MIN_VOLUME_ML
    from PASTALib.report.findings import analyse_segmentation

    loaded = {} if loaded is None else loaded
    if "detector" not in loaded:
        loaded["detector"] = load_detector(folder)
    scorer, card = loaded["detector"]
    organs_arg, organs, organ_notes = read_organs(options.organs, sample, image)
    work = detector_work(image.array.shape)
    log.info("Work: %s", work.text())
    detection = detect(image, organs, scorer, options.sensitivity, progress=progress)
    write_volume(detection.labels, out / SEGMENTATION)
    analysis = analyse_segmentation(
        image, detection.labels, detection.confidence, detection.organs, organ_names=detection.organ_names,
        min_volume_ml=finding_floor(options.min_volume, 0.0, DEFAULT_MIN_VOLUME_ML),
        model_id=f"{card.get('name') or folder.name} (detector, {options.sensitivity})", progress=progress,
        confidence_source="detector confidence (calibrated on held-out synthetic lesions)",
        inputs={"image": str(options.image), "lesion_labels": f"{SEGMENTATION} (lesion-type ids)",
                "probabilities": "detector confidence per finding", "organs": organs_arg,
                "organ_labels": "TotalSegmentator v2 (total task)"
                                + (" + lung by thresholding" if detection.lung_thresholded else "")})
    analysis.report.provenance.notes.extend(organ_notes + detection.notes)
    analysis.report.provenance.parameters["sensitivity"] = options.sensitivity
    analysis.report.provenance.parameters["confidence_threshold"] = scorer.threshold(options.sensitivity)
    return _write_findings(analysis, image, out, options, progress)
