"""``pasta analyze``: segment with a PASTA model, then write the structured report, in one go."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from . import sample_data
from .cli import Command
from .cli_models import add_inference_arguments
from .cli_report import check_outputs_free, read_organs, summary_lines, write_report_outputs
from .errors import PastaInputError
from .progress import ProgressReporter
from .validation import assess_ct, check_image, intensity_stats, require_ct
from .volume_io import read_volume, write_volume

log = logging.getLogger(__name__)

SEGMENTATION = "segmentation.nii.gz"
#: Label value n on finding Fn's voxels, on the input grid (exact, also for components split by organ).
FINDING_LABELS = "findings.nii.gz"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the CT: a file, a DICOM series folder, or a bundled sample name")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    parser.add_argument("--model", default="default", help="a PASTA model folder, an nnU-Net v2 results folder "
                        "of a fine-tuned PASTA model, a checkpoint file, or 'default' (the bundled compact model; "
                        "the default)")
    parser.add_argument("--no-attribute-heads", action="store_true", help="describe attributes by the measurement "
                        "rules only, even when the model has learned attribute heads")
    parser.add_argument("--lesion-type", help="the lesion type of a model whose classes do not say it (e.g. a "
                        "fine-tuned PASTA model with classes background, organ, lesion): id or key")
    parser.add_argument("--organs", metavar="ORGANS", help="TotalSegmentator v2 organ mask for locations and "
                        "invasion; for 'sample' its bundled mask is the default")
    parser.add_argument("--min-volume", type=float, default=None, metavar="ML", help="drop (and count) smaller "
                        "findings (default: the model card's component floor, at least 0.02 mL)")
    parser.add_argument("--dicom", action="store_true", help="also write DICOM SEG and SR (DICOM input only)")
    parser.add_argument("--force", action="store_true", help="run even if the image does not look like CT in HU")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in OUTDIR")
    parser.add_argument("--head", action="append", default=[], metavar="HEAD",
                        help="a head from `pasta fit-head` (repeatable): adds its prediction, with provenance, "
                        "to each finding; it must have been trained on this model's features")
    add_inference_arguments(parser)


def lesion_class_map(classes, lesion_type: str | None) -> dict[int, int]:
    """Model class index -> PASTA lesion-type id, from the model card or ``--lesion-type``."""
    from .report import lesion_types

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


def finding_floor(requested: float | None, model_floor: float, default: float) -> float:
    """The smallest finding reported. The model's component floor also applies to each type's part of
    a component: a lesion painted in two types keeps its size for the floor, but a 1-voxel splash of a
    third type inside it is not a finding the model can stand behind. An explicit --min-volume wins."""
    return requested if requested is not None else max(default, model_floor)


def run_analyze(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from .attribute_head import head_for_model
    from .checkpoints import load_model
    from .head_apply import apply_heads, check_heads, load_heads
    from .predictor import Predictor
    from .report import DEFAULT_MIN_VOLUME_ML
    from .report.findings import analyse_segmentation

    out = Path(args.output).expanduser()
    check_outputs_free(out, args.dicom, args.overwrite, extra=(SEGMENTATION, FINDING_LABELS))
    image_path, sample = sample_data.resolve(args.image)
    progress.report("reading", 0.0, str(image_path))
    image = read_volume(image_path)
    check_image(image)
    if not args.force:
        require_ct(assess_ct(intensity_stats(image)))
    if args.dicom:
        from .report.dicom_source import dicom_folder

        dicom_folder(image)  # fail before the work, not after it
    heads = load_heads(args.head) if args.head else []
    model = load_model(args.model, args.folds, args.checkpoint)
    check_heads(heads, model)  # refuse another model's heads before the segmentation runs
    class_map = lesion_class_map(model.classes, args.lesion_type)
    organs_arg, organs = read_organs(args.organs, sample)
    predictor = Predictor(model, device=args.device, tta=args.tta, overlap=args.overlap,
                          batch_size=args.batch_size, precision=args.precision, threads=args.threads,
                          progress=progress)
    result = predictor.predict(image, return_probabilities=True)
    lesion_labels = np.zeros(image.array.shape, np.uint8)
    for index, type_id in class_map.items():
        lesion_labels[result.labels.array == index] = type_id
    lesion_probability = result.probabilities[sorted(class_map)].sum(axis=0)
    out.mkdir(parents=True, exist_ok=True)
    write_volume(result.labels, out / SEGMENTATION, overwrite=args.overwrite)
    attribute_head = None if args.no_attribute_heads else head_for_model(model, predictor.device.type)
    analysis = analyse_segmentation(
        image, image.with_array(lesion_labels), image.with_array(np.clip(lesion_probability, 0.0, 1.0)), organs,
        attribute_head=attribute_head,
        min_volume_ml=finding_floor(args.min_volume, model.postprocessing.min_component_ml, DEFAULT_MIN_VOLUME_ML),
        model_id=f"{model.provenance.get('name') or model.source.name} ({model.format})", progress=progress,
        inputs={"image": str(args.image), "lesion_labels": f"{SEGMENTATION} (model classes "
                + ", ".join(f"{c.id}={c.name}" for c in model.classes) + ")",
                "probabilities": "model softmax (lesion classes summed)", "organs": organs_arg})
    analysis.report.provenance.notes.extend(result.notes)
    apply_heads(heads, analysis, image, model, args.device, progress)
    # Before report.json, so a report.json is never newer than its findings' voxels.
    write_volume(image.with_array(analysis.finding_labels()), out / FINDING_LABELS, overwrite=args.overwrite)
    write_report_outputs(analysis, image, out, args.dicom, args.overwrite, progress)
    print("\n".join(summary_lines(analysis.report, out)))
    return 0


COMMANDS = [
    Command("analyze", "Segment lesions with a PASTA model and write the structured report (segment + report).",
            _add_arguments, run_analyze),
]
