"""``pasta report``: a lesion label map to findings.json, report.json, report.md, report.html
(+ seg.dcm and sr.dcm with ``--dicom``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.io.input_checks import check_image
from PASTALib.io.volume_io import read_volume
from PASTALib.progress import ProgressReporter

from .command import Command

log = logging.getLogger(__name__)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from PASTALib.lesions.lesion_types import id_table
    from PASTALib.report import DEFAULT_MIN_VOLUME_ML

    parser.add_argument("image", help="the CT: a file, a DICOM series folder, or a bundled sample name")
    parser.add_argument("seg", help=f"lesion label map on the image grid: 0 background, lesion-type ids "
                        f"({id_table()}); or 0/1 with --lesion-type")
    parser.add_argument("--probabilities", metavar="P", help="lesion probability map (0-1) on the image "
                        "grid; gives each finding a confidence")
    parser.add_argument("--organs", metavar="ORGANS", help="TotalSegmentator v2 organ label map or a Slicer "
                        ".seg.nrrd (segments recognised by terminology codes or names; resampled onto the image "
                        "grid if needed); for 'sample' its bundled mask is the default")
    parser.add_argument("--organ-labels", metavar="JSON", help='organ label names if not TotalSegmentator '
                        'v2, e.g. {"5": "liver"}')
    parser.add_argument("--lesion-type", help="the type of every lesion in a binary 0/1 SEG (id or key)")
    parser.add_argument("--min-volume", type=float, default=DEFAULT_MIN_VOLUME_ML, metavar="ML",
                        help=f"drop (and count) components smaller than this (default {DEFAULT_MIN_VOLUME_ML:g} mL)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    parser.add_argument("--dicom", action="store_true", help="also write DICOM SEG (seg.dcm) and "
                        "Comprehensive 3D SR (sr.dcm); needs IMAGE to be a DICOM series folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the previous result in OUTDIR (all of it)")


#: Relative cost of each stage of ``pasta report`` (see ``analysis.pipeline.DETECTOR_STAGES``).
REPORT_STAGES = {"reading": 10, "findings": 45, "rendering": 35, "writing": 10}


def run_report(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.report.writer import RESULT_NAMES
    from PASTALib.result_folder import ResultFolder

    with ResultFolder(Path(args.output), RESULT_NAMES, args.overwrite) as result:
        _report(args, result.staging, progress)
        result.commit()
    return 0


def _report(args: argparse.Namespace, out: Path, progress: ProgressReporter) -> None:
    from PASTALib.inference.probabilities import read_probability_input
    from PASTALib.lesions.organ_masks import read_organs
    from PASTALib.report.findings import analyse_segmentation
    from PASTALib.report.writer import write_report_outputs

    progress.plan(REPORT_STAGES)
    image_path, sample = sample_data.resolve(args.image)
    progress.report("reading", 0.0, str(image_path))
    image = read_volume(image_path)
    check_image(image)
    if args.dicom:
        from PASTALib.report.dicom_source import dicom_folder

        dicom_folder(image)  # fail before the work, not after it
    labels = read_volume(sample_data.resolve(args.seg)[0])
    probabilities = read_probability_input(args.probabilities, image) if args.probabilities else None
    organs_arg, organs, organ_notes = read_organs(args.organs, sample, image)
    organ_names = sample_data.load_label_names(args.organ_labels) if args.organ_labels else None
    if args.min_volume < 0:
        raise PastaInputError(f"--min-volume must be 0 or more, got {args.min_volume:g}.")
    analysis = analyse_segmentation(
        image, labels, probabilities, organs, lesion_type=args.lesion_type, organ_names=organ_names,
        min_volume_ml=args.min_volume, progress=progress,
        inputs={"image": str(args.image), "lesion_labels": str(args.seg),
                "probabilities": args.probabilities, "organs": organs_arg,
                "organ_labels": args.organ_labels})
    analysis.report.provenance.notes.extend(organ_notes)
    write_report_outputs(analysis, image, out, args.dicom, progress)


COMMANDS = [
    Command("report", "Turn a lesion label map into findings, measurements, attributes, a size-based "
            "T category and a structured report (JSON, Markdown, HTML; DICOM SEG + SR with --dicom).",
            _add_arguments, run_report),
]
