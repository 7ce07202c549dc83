"""``pasta report``: a lesion label map to findings.json, report.json, report.md, report.html
(+ seg.dcm and sr.dcm with ``--dicom``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from . import sample_data
from .cli import Command
from .errors import PastaInputError
from .progress import ProgressReporter
from .validation import check_image
from .volume_io import read_volume

log = logging.getLogger(__name__)

OUTPUTS = ("findings.json", "report.json", "report.md", "report.html")
KEY_IMAGE_DIR = "key_images"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from .report import DEFAULT_MIN_VOLUME_ML
    from .report.lesion_types import id_table

    parser.add_argument("image", help="the CT: a file, a DICOM series folder, or a bundled sample name")
    parser.add_argument("seg", help=f"lesion label map on the image grid: 0 background, lesion-type ids "
                        f"({id_table()}); or 0/1 with --lesion-type")
    parser.add_argument("--probabilities", metavar="P", help="lesion probability map (0-1) on the image "
                        "grid; gives each finding a confidence")
    parser.add_argument("--organs", metavar="ORGANS", help="TotalSegmentator v2 organ mask (resampled "
                        "onto the image grid if needed); for 'sample' its bundled mask is the default")
    parser.add_argument("--organ-labels", metavar="JSON", help='organ label names if not TotalSegmentator '
                        'v2, e.g. {"5": "liver"}')
    parser.add_argument("--lesion-type", help="the type of every lesion in a binary 0/1 SEG (id or key)")
    parser.add_argument("--min-volume", type=float, default=DEFAULT_MIN_VOLUME_ML, metavar="ML",
                        help=f"drop (and count) components smaller than this (default {DEFAULT_MIN_VOLUME_ML:g} mL)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    parser.add_argument("--dicom", action="store_true", help="also write DICOM SEG (seg.dcm) and "
                        "Comprehensive 3D SR (sr.dcm); needs IMAGE to be a DICOM series folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in OUTDIR")


def _read_probabilities(path: str, image):
    """A 3D lesion-probability map, or the 4D class probabilities ``pasta segment --probabilities`` writes.

    4D files hold one frame per model class. With 16 frames (background + the 15 lesion types, in
    lesion-type id order) each finding gets its own type's probability; otherwise the lesion
    probability is 1 minus the background frame.
    """
    import SimpleITK as sitk

    from .probabilities import read_probabilities

    if Path(path).is_file():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            reader = None  # unreadable: read_volume gives the user-facing message
        if reader is not None and reader.GetNumberOfComponents() > 1:
            raise PastaInputError(f"{path} is a vector image; --probabilities takes a 3D lesion-probability "
                                  "map or the 4D file written by `pasta segment --probabilities`.")
        if reader is not None and reader.GetDimension() == 4:
            array, grid = read_probabilities(path)
            differences = image.geometry_differences(grid, 1e-3 * min(image.spacing) + 1e-4)
            if differences:
                raise PastaInputError("The probability map's geometry differs from the image's: "
                                      + "; ".join(differences) + ".", "Save the probabilities on the image grid.")
            if array.shape[0] == 16:
                return array
            log.info("%s has %d class frames: using 1 - background as the lesion probability.", path, array.shape[0])
            return grid.with_array(1.0 - array[0])
    return read_volume(path)


def run_report(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from .report.findings import analyse_segmentation

    out = Path(args.output).expanduser()
    check_outputs_free(out, args.dicom, args.overwrite)
    image_path, sample = sample_data.resolve(args.image)
    progress.report("reading", 0.0, str(image_path))
    image = read_volume(image_path)
    check_image(image)
    if args.dicom:
        from .report.dicom_source import dicom_folder

        dicom_folder(image)  # fail before the work, not after it
    labels = read_volume(sample_data.resolve(args.seg)[0])
    probabilities = _read_probabilities(args.probabilities, image) if args.probabilities else None
    organs_arg, organs = read_organs(args.organs, sample)
    organ_names = sample_data.load_label_names(args.organ_labels) if args.organ_labels else None
    if args.min_volume < 0:
        raise PastaInputError(f"--min-volume must be 0 or more, got {args.min_volume:g}.")
    analysis = analyse_segmentation(
        image, labels, probabilities, organs, lesion_type=args.lesion_type, organ_names=organ_names,
        min_volume_ml=args.min_volume, progress=progress,
        inputs={"image": str(args.image), "lesion_labels": str(args.seg),
                "probabilities": args.probabilities, "organs": organs_arg,
                "organ_labels": args.organ_labels})
    write_report_outputs(analysis, image, out, args.dicom, args.overwrite, progress)
    return 0


def read_organs(organs_arg, sample) -> tuple:
    """The organ mask asked for, or the bundled one of a sample image; (name, Volume or None)."""
    if organs_arg is None and sample is not None:
        bundled = sample_data.sample_mask_for(sample.name)
        organs_arg = bundled.name if bundled else None
    return organs_arg, (read_volume(sample_data.resolve(organs_arg)[0]) if organs_arg else None)


def check_outputs_free(out: Path, dicom: bool, overwrite: bool, extra: tuple[str, ...] = ()) -> None:
    """Refuse before any work if an output would overwrite a file the user did not offer up."""
    planned = [out / name for name in (*OUTPUTS, *extra)] + ([out / "seg.dcm", out / "sr.dcm"] if dicom else [])
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        raise PastaInputError(f"{out} already holds {', '.join(existing)}; PASTA never overwrites a "
                              "file unless asked.", "Choose another output folder or pass --overwrite.")


def summary_lines(report, out: Path) -> list[str]:
    """What a user reads on the terminal: one line per finding, the impression, where the files are."""
    lines = [f"{len(report.findings)} finding(s)"]
    for f in report.findings:
        recist = f.measurements.recist
        stage = f" {f.staging.value}" if f.staging.value else ""
        lines.append(f"  {f.id:<4}{f.lesion_type.name:<22}{(f.location.organ_name or '-'):<18}"
                     f"{recist.long_axis.length_mm:5.1f} x {recist.short_axis.length_mm:4.1f} mm "
                     f"{f.measurements.volume_ml:7.1f} ml{stage}  confidence {f.confidence.mean:.2f}")
    lines.append(f"Impression: {report.impression}")
    lines.append(f"Report: {out / 'report.html'} (also report.md, report.json, findings.json)")
    return lines


def write_report_outputs(analysis, image, out: Path, dicom: bool, overwrite: bool,
                         progress: ProgressReporter) -> None:
    """findings.json, report.json, report.md + key images, report.html (+ DICOM SEG and SR)."""
    from .atomic import atomic_write as _write_text
    from .report import key_images
    from .report.render_html import render_html
    from .report.render_markdown import render_markdown

    report = analysis.report
    progress.report("rendering", 0.9, "key images")
    images = key_images.key_images(report, image, analysis.mask)
    out.mkdir(parents=True, exist_ok=True)
    (out / KEY_IMAGE_DIR).mkdir(exist_ok=True)
    links = {}
    for finding_id, png in images.items():
        _write_text(out / KEY_IMAGE_DIR / f"{finding_id}.png", png, overwrite=True)
        links[finding_id] = f"{KEY_IMAGE_DIR}/{finding_id}.png"
    _write_text(out / "findings.json", json.dumps(report.findings_document(), indent=2) + "\n", overwrite)
    _write_text(out / "report.json", report.to_json(), overwrite)
    _write_text(out / "report.md", render_markdown(report, links), overwrite)
    _write_text(out / "report.html", render_html(report, images), overwrite)
    if dicom:
        from .report.dicom_export import export_dicom

        progress.report("dicom", 0.95, "SEG and SR")
        export_dicom(report, image, analysis.mask, out, overwrite=overwrite)
    log.info("%d finding(s); wrote %s", len(report.findings), out)


COMMANDS = [
    Command("report", "Turn a lesion label map into findings, measurements, attributes, a size-based "
            "T category and a structured report (JSON, Markdown, HTML; DICOM SEG + SR with --dicom).",
            _add_arguments, run_report),
]
