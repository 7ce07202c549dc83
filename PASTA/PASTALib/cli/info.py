"""``pasta info``: geometry, orientation, HU statistics, CT plausibility and the labels of a mask."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PASTALib.io import sample_data
from PASTALib.io.info import build_report, render_text
from PASTALib.io.input_checks import assess_ct, check_image, check_mask_matches, intensity_stats, require_ct
from PASTALib.io.volume_io import read_volume
from PASTALib.lesions import lesion_types
from PASTALib.progress import ProgressReporter

from .command import IMAGE_HELP, Command

#: ``--labels`` value that names a lesion label map's values by the lesion-type table.
LESION_TYPE_LABELS = "lesion-types"


def _add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help=IMAGE_HELP)
    parser.add_argument("--mask", help="a label map on the same grid to summarise (organs, lesions); "
                        "for 'sample' its bundled organ mask is used by default")
    parser.add_argument("--labels", help='JSON file mapping label ids to names, e.g. {"5": "liver"}, or '
                        f"'{LESION_TYPE_LABELS}' for a lesion label map (names from the lesion-type table)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--force", action="store_true",
                        help="report even if the intensities do not look like CT in HU")


def label_names_from(labels: str, folder: Path = Path(".")) -> dict[int, str]:
    """Label names from a JSON table, or from the lesion-type table for ``lesion-types``."""
    if labels == LESION_TYPE_LABELS:
        return {t.id: t.name for t in lesion_types.LESION_TYPES}
    return sample_data.load_label_names(folder / labels)


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
            label_names = label_names_from(mask_sample.labels_file, sample_data.SAMPLE_DIR)
    if args.labels:
        label_names = label_names_from(args.labels)
    report = build_report(volume, stats, assessment, mask, label_names)
    progress.report("reporting", 1.0, "")
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report) + "\n")
    sys.stdout.flush()
    return 0


COMMANDS = [
    Command("info", "Describe a CT volume: geometry, orientation, HU statistics, CT plausibility, "
            "and the labels of an optional mask.", _add_info_arguments, run_info),
]
