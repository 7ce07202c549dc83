"""``pasta convert``: between NIfTI, NRRD, MetaImage and DICOM (read), optionally resampled in world space."""

from __future__ import annotations

import argparse
import logging

from PASTALib.io import sample_data
from PASTALib.io.input_checks import check_image
from PASTALib.io.resample import Interpolation, resample_to_reference, resample_to_spacing
from PASTALib.io.volume_io import WRITE_SUFFIXES, read_volume, write_volume
from PASTALib.progress import ProgressReporter

from .command import IMAGE_HELP, Command

log = logging.getLogger(__name__)


def _add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help=IMAGE_HELP)
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


COMMANDS = [
    Command("convert", "Convert between NIfTI, NRRD, MetaImage and DICOM series (read only), "
            "optionally resampling; never overwrites without --overwrite.", _add_convert_arguments,
            run_convert),
]
