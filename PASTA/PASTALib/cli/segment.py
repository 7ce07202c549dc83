"""``pasta segment``: a CT to a label map (and optional class probabilities) with any PASTA model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PASTALib.analysis.options import INFERENCE, MODEL, add_arguments
from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.io.input_checks import assess_ct, check_image, intensity_stats, require_ct
from PASTALib.io.volume_io import read_volume, write_volume
from PASTALib.progress import ProgressReporter

from .command import Command

log = logging.getLogger(__name__)


def _add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="a CT file, a DICOM series folder, or a bundled sample name")
    parser.add_argument("--model", required=True,
                        help="a .pth/.safetensors checkpoint, an nnU-Net v2 results folder, or a PASTA model folder")
    parser.add_argument("-o", "--output", required=True, help="label map to write (.nii.gz, .nrrd, ...)")
    parser.add_argument("--probabilities", metavar="PATH",
                        help="also write class probabilities (4D, one frame per class, uint8 = p x 255)")
    parser.add_argument("--force", action="store_true", help="run even if the image does not look like CT in HU")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_arguments(parser, groups=(INFERENCE, MODEL), positional=False)


def run_segment(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.inference.predictor import Predictor
    from PASTALib.model.checkpoints import load_model

    for output in filter(None, (args.output, args.probabilities)):
        if Path(output).exists() and not args.overwrite:
            raise PastaInputError(f"{output} already exists; PASTA never overwrites a file unless asked.",
                                  "Choose another output name or pass --overwrite.")
    image_path, _ = sample_data.resolve(args.image)
    progress.report("reading", 0.0, str(image_path))
    volume = read_volume(image_path)
    check_image(volume)
    assessment = assess_ct(intensity_stats(volume))
    if not args.force:
        require_ct(assessment)
    progress.report("loading model", 0.02, str(args.model))
    model = load_model(args.model, args.folds, args.checkpoint, args.pasta_defaults)
    predictor = Predictor(model, device=args.device, tta=args.tta, overlap=args.overlap,
                          batch_size=args.batch_size, precision=args.precision, threads=args.threads,
                          progress=progress)
    log.info("model %s (%s, %d fold(s), %s parameters) on %s, test-time mirroring %s",
             model.source.name, model.format, len(model.states), f"{model.summary()['parameters']:,}",
             predictor.device, "on" if predictor.tta else "off")
    result = predictor.predict(volume, return_probabilities=bool(args.probabilities))
    progress.report("writing", 0.98, args.output)
    write_volume(result.labels, args.output, overwrite=args.overwrite)
    if args.probabilities:
        from PASTALib.inference.probabilities import write_probabilities

        write_probabilities(result.probabilities, volume, args.probabilities, overwrite=args.overwrite)
    counts = {name: int((result.labels.array == index).sum()) for index, name in enumerate(result.class_names)}
    log.info("wrote %s in %.1f s (%s)", args.output, result.seconds["total"],
             ", ".join(f"{name}: {count:,} voxels" for name, count in counts.items() if name != "background"))
    return 0


COMMANDS = [
    Command("segment", "Segment a CT with a PASTA model (any checkpoint format) into a label map in the "
            "input's geometry.", _add_segment_arguments, run_segment),
]
