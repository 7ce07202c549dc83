"""Volume subcommands: ``pasta info``, ``pasta convert`` and ``pasta sample``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import sample_data
from .cli import Command
from .errors import PastaInputError
from .info import build_report, render_text
from .progress import ProgressReporter
from .resample import Interpolation, resample_to_reference, resample_to_spacing
from .validation import assess_ct, check_image, check_mask_matches, intensity_stats, require_ct
from .volume_io import WRITE_SUFFIXES, read_volume, write_volume

log = logging.getLogger(__name__)

SAMPLE_HELP = "a file, a DICOM series folder, or a bundled sample name ('sample')"


# ------------------------------------------------------------------------------------ info
def _add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help=SAMPLE_HELP)
    parser.add_argument("--mask", help="a label map on the same grid to summarise (organs, lesions); "
                        "for 'sample' its bundled organ mask is used by default")
    parser.add_argument("--labels", help='JSON file mapping label ids to names, e.g. {"5": "liver"}')
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--force", action="store_true",
                        help="report even if the intensities do not look like CT in HU")


def run_info(args: argparse.Namespace, progress: ProgressReporter) -> int:
    image_path, sample = sample_data.resolve(args.image)
    progress.report("reading", 0.0, str(image_path))
    volume = read_volume(image_path)
    progress.report("checking", 0.4, "grid and values")
    check_image(volume)
    stats = intensity_stats(volume)
    assessment = assess_ct(stats)
    if not args.force:
        require_ct(assessment)
    mask = label_names = None
    mask_arg = args.mask
    if mask_arg is None and sample is not None:
        bundled = sample_data.sample_mask_for(sample.name)
        mask_arg = bundled.name if bundled else None
    if mask_arg is not None:
        progress.report("mask", 0.7, str(mask_arg))
        mask_path, mask_sample = sample_data.resolve(mask_arg)
        mask = read_volume(mask_path)
        check_mask_matches(volume, mask)
        if mask_sample is not None and mask_sample.labels_file:
            label_names = sample_data.load_label_names(sample_data.SAMPLE_DIR / mask_sample.labels_file)
    if args.labels:
        label_names = sample_data.load_label_names(args.labels)
    report = build_report(volume, stats, assessment, mask, label_names)
    progress.report("reporting", 1.0, "")
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report) + "\n")
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------ convert
def _add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help=SAMPLE_HELP)
    parser.add_argument("-o", "--output", required=True,
                        help=f"output file ({', '.join(WRITE_SUFFIXES)})")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--spacing", type=float, nargs=3, metavar=("X", "Y", "Z"),
                        help="resample to this voxel spacing in mm")
    target.add_argument("--like", metavar="REFERENCE",
                        help="resample onto this image's grid (size, spacing, origin, direction)")
    parser.add_argument("--interpolation", choices=[i.value for i in Interpolation], default="linear",
                        help="interpolator for resampling; use 'nearest' for label maps (default: linear)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")


def run_convert(args: argparse.Namespace, progress: ProgressReporter) -> int:
    input_path, _ = sample_data.resolve(args.input)
    progress.report("reading", 0.0, str(input_path))
    volume = read_volume(input_path)
    check_image(volume)
    interpolation = Interpolation(args.interpolation)
    if args.spacing:
        progress.report("resampling", 0.3, f"to {args.spacing} mm")
        volume = resample_to_spacing(volume, tuple(args.spacing), interpolation)
    elif args.like:
        reference_path, _ = sample_data.resolve(args.like)
        reference = read_volume(reference_path)
        progress.report("resampling", 0.3, f"onto the grid of {reference_path}")
        volume = resample_to_reference(volume, reference, interpolation)
    progress.report("writing", 0.8, args.output)
    written = write_volume(volume, args.output, overwrite=args.overwrite)
    log.info("wrote %s (%s voxels, spacing %s mm)", written, "x".join(map(str, volume.size)),
             ", ".join(f"{s:.4g}" for s in volume.spacing))
    return 0


# ------------------------------------------------------------------------------------ sample
def _add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON on stdout")


def run_sample(args: argparse.Namespace, progress: ProgressReporter) -> int:
    rows = []
    for sample in sample_data.SAMPLES.values():
        progress.report("verifying", None, sample.name)
        rows.append({"name": sample.name, "path": str(sample.path), "sha256": sample.sha256,
                     "verified": sample.verify(), "description": sample.description})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        for row in rows:
            status = "ok" if row["verified"] else "MISSING OR DAMAGED"
            sys.stdout.write(f"{row['name']:<15} {status:<6} {row['path']}\n{'':<22}{row['description']}\n")
    if not all(row["verified"] for row in rows):
        raise PastaInputError("Some bundled sample files are missing or damaged.",
                              "Reinstall PASTA or restore them from the repository.")
    return 0


COMMANDS = [
    Command("info", "Describe a CT volume: geometry, orientation, HU statistics, CT plausibility, "
            "and the labels of an optional mask.", _add_info_arguments, run_info),
    Command("convert", "Convert between NIfTI, NRRD, MetaImage and DICOM series (read only), "
            "optionally resampling; never overwrites without --overwrite.", _add_convert_arguments,
            run_convert),
    Command("sample", "List the bundled sample data by name, path and checksum.",
            _add_sample_arguments, run_sample),
]
