"""``pasta synth`` (one case) and ``pasta synth-batch`` (a dataset) subcommands.

Listed by name in :data:`PASTALib.cli.main.COMMAND_MODULES`, so ``pasta`` still works when only
PASTALib is on the path.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

from PASTALib.cli.command import Command
from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.io.volume_io import read_volume
from PASTALib.lesions.organ_masks import read_organ_mask
from PASTALib.progress import ProgressReporter

from .catalog import describe, specs

log = logging.getLogger(__name__)


def _triple(text: Optional[str], what: str, allow_one: bool = False) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        values = []
    if values and not all(math.isfinite(v) for v in values):
        raise PastaInputError(f"{what} {text!r} holds a value that is not a finite number.",
                              f"Write it as {'20 or ' if allow_one else ''}X,Y,Z with real numbers, e.g. 10,-20.5,30.")
    if len(values) == 3 or (allow_one and len(values) == 1):
        return values
    raise PastaInputError(f"{what} {text!r} is not {'one or ' if allow_one else ''}three comma-separated numbers.",
                          f"Write it as {'20 or ' if allow_one else ''}X,Y,Z, e.g. 10,-20.5,30.")


#: Smallest 1 mm crop written: below this a crop no longer holds a lesion and its surroundings.
MIN_CROP_MM = 16


def crop_size(text: str) -> int:
    """``--crop-1mm N``: a whole number of voxels, at least :data:`MIN_CROP_MM` (argparse exits 2 otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of voxels") from None
    if value < MIN_CROP_MM:
        raise argparse.ArgumentTypeError(f"{value} is too small: a crop is at least {MIN_CROP_MM} voxels "
                                         "(1 mm each) on a side")
    return value


def parse_attr_pairs(pairs: Sequence[str]) -> dict[str, str]:
    result = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise PastaInputError(f"--attr {pair!r} is not KEY=VALUE.", "For example --attr density=hypodense.")
        result[key.strip()] = value.strip()
    return result


def load_host(image_arg: str, organs_arg: Optional[str], labels_arg: Optional[str] = None):
    from .host import make_host

    """(host, image path name): the image, its organ mask (bundled one for 'sample'), label names."""
    image_path, sample = sample_data.resolve(image_arg)
    image = read_volume(image_path)
    if organs_arg is None and sample is not None:
        bundled = sample_data.sample_mask_for(sample.name)
        organs_arg = bundled.name if bundled else None
    organs = read_organ_mask(sample_data.resolve(organs_arg)[0])[0] if organs_arg else None
    names = sample_data.load_label_names(labels_arg) if labels_arg else None
    return make_host(image, organs, names), Path(image_path).name


# ------------------------------------------------------------------------------------ synth
def _add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="host CT: a file, a DICOM folder or 'sample'")
    parser.add_argument("--organs", metavar="SEG", help="TotalSegmentator v2 organ mask of the host "
                        "(default for 'sample': its bundled mask; none: lung found by thresholding)")
    parser.add_argument("--labels", help='JSON file mapping organ label ids to TotalSegmentator names')
    parser.add_argument("--lesion", required=True, metavar="TYPE",
                        help="lesion type id or key; 'list' prints the types and their attributes")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--center-ras", metavar="X,Y,Z", help="seed point in RAS mm (Slicer's coordinates)")
    where.add_argument("--center-ijk", metavar="I,J,K", help="seed point as a voxel index")
    parser.add_argument("--size-mm", metavar="A[,B,C]", help="lesion diameter(s) in mm (default: sampled)")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                        help="shape, density, heterogeneity, margin or relation (repeatable)")
    parser.add_argument("--count", type=int, default=1, help="number of lesions (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--mass-effect", type=float, default=0.0, metavar="MM",
                        help="push the surrounding tissue outwards by up to MM mm (0-5; default 0)")
    parser.add_argument("--crop-1mm", nargs="?", type=crop_size, const=280, default=None, metavar="N",
                        help="write a N^3 crop at 1 mm around the lesion (PASTA-Gen-30K: 280)")
    parser.add_argument("-o", "--output", metavar="CASE_DIR", help="case folder to create")


def run_synth(args: argparse.Namespace, progress: ProgressReporter) -> int:
    if args.lesion.strip().lower() == "list":
        sys.stdout.write("\n".join(describe(spec) for spec in specs()) + "\n")
        return 0
    if not args.image or not args.output:
        raise PastaInputError("pasta synth needs an IMAGE and -o CASE_DIR.",
                              "For example: pasta synth sample --lesion liver_tumor -o case1")
    from .case_io import check_case_folder, write_case
    from .engine import LesionRequest, synthesize

    check_case_folder(Path(args.output))  # refuse before the work, not after it

    request = LesionRequest(args.lesion, _triple(args.size_mm, "--size-mm", allow_one=True),
                            parse_attr_pairs(args.attr), _triple(args.center_ras, "--center-ras"),
                            _triple(args.center_ijk, "--center-ijk"), args.count, args.seed,
                            args.mass_effect)
    progress.report("reading", 0.0, args.image)
    host, name = load_host(args.image, args.organs, args.labels)
    result = synthesize(host, request, progress)
    progress.report("writing", 0.9, str(args.output))
    summary = {"lesion_type": request.lesion_type, "size_mm": request.size_mm,
               "attributes": dict(request.attributes), "center_ras": request.center_ras,
               "center_ijk": request.center_ijk, "count": request.count, "seed": request.seed,
               "mass_effect_mm": request.mass_effect_mm}
    case = write_case(result, host, args.output, summary, name, crop=args.crop_1mm)
    lines = [f"{case}: {len(result.lesions)} {result.spec.key} lesion(s) in a "
             f"{'contrast-enhanced' if result.enhanced else 'native'} host ({result.phase_evidence})"]
    for lesion in result.lesions:
        record = lesion.record
        lines.append(f"  lesion {lesion.number}: {record['organ']}, seed RAS {record['seed_ras']}, "
                     f"{' x '.join(f'{v:g}' for v in lesion.size_mm)} mm, "
                     + ", ".join(f"{k}={v}" for k, v in lesion.attributes.items())
                     + f", {record['appearance']['target_hu']:g} HU")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# ------------------------------------------------------------------------------------ synth-batch
def _add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", required=True, metavar="DIR",
                        help="folder of host folders, each with an image and an organ mask")
    parser.add_argument("--per-type", type=int, required=True, metavar="N", help="cases per type and host")
    parser.add_argument("--types", nargs="+", metavar="TYPE", help="lesion types (default: all 15)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--crop-1mm", nargs="?", type=crop_size, const=280, default=None, metavar="N",
                        help="write N^3 crops at 1 mm (PASTA-Gen-30K: 280)")
    parser.add_argument("-o", "--output", required=True, metavar="DATASET_DIR")
    run_on = parser.add_mutually_exclusive_group()
    run_on.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    run_on.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask distributed scheduler address (needs the 'batch' extra)")


def run_batch(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from .batch import run_dataset

    summary = run_dataset(Path(args.hosts), Path(args.output), args.per_type, args.types, args.seed,
                          workers=args.workers, scheduler=args.scheduler, crop=args.crop_1mm,
                          progress=progress)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    for failure in summary["failed"]:
        log.warning("failed: %s: %s", failure["case"], failure["error"])
    if summary["made"] == 0 and summary["already_done"] < summary["planned"]:
        raise PastaInputError(f"No case was made: {len(summary['failed'])} of {summary['planned']} failed "
                              f"(first: {summary['failed'][0]['error']})." if summary["failed"] else
                              "No case was made.", "See the failures above and in dataset.json.")
    if summary["planned"] == 0:
        raise PastaInputError("No case could be planned: no host has an organ for the requested types "
                              f"({', '.join(sorted({s['type'] for s in summary['skipped']}))}).",
                              "Use hosts whose organ masks hold those organs, or other --types.")
    return 0


COMMANDS = [
    Command("synth", "Place synthetic lesions of one of the 15 PASTA types into a healthy CT and write "
            "a PASTA-Gen-30K case folder (img, label, total, type.json, report.json).",
            _add_synth_arguments, run_synth),
    Command("synth-batch", "Build a synthetic dataset over host folders: resumable, with a manifest.",
            _add_batch_arguments, run_batch),
]
