"""Model subcommands: ``pasta segment`` and ``pasta models verify``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import sample_data
from .cli import Command
from .errors import PastaInputError
from .progress import ProgressReporter
from .validation import assess_ct, check_image, intensity_stats, require_ct
from .volume_io import read_volume, write_volume

log = logging.getLogger(__name__)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folds", type=int, nargs="+",
                        help="nnU-Net results folder: folds to ensemble (default: all present)")
    parser.add_argument("--checkpoint", choices=("final", "best"), default="final",
                        help="nnU-Net results folder: checkpoint_final.pth or checkpoint_best.pth")


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """Device, mirroring, tiling and checkpoint options shared by segment and analyze."""
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the network runs (default: the GPU when PyTorch sees one)")
    tta = parser.add_mutually_exclusive_group()
    tta.add_argument("--tta", dest="tta", action="store_true", default=None,
                     help="mirroring test-time augmentation (default: on for GPU, off for CPU)")
    tta.add_argument("--no-tta", dest="tta", action="store_false")
    parser.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap (default 0.5)")
    parser.add_argument("--batch-size", type=int, help="tiles per forward pass (default: 4; 2 on CPU for tiles over 64^3)")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                        help="GPU arithmetic (default fp16 autocast; the CPU always uses fp32)")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    _add_model_arguments(parser)


# ------------------------------------------------------------------------------------ segment
def _add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="a CT file, a DICOM series folder, or a bundled sample name")
    parser.add_argument("--model", required=True,
                        help="a .pth/.safetensors checkpoint, an nnU-Net v2 results folder, or a PASTA model folder")
    parser.add_argument("-o", "--output", required=True, help="label map to write (.nii.gz, .nrrd, ...)")
    parser.add_argument("--probabilities", metavar="PATH",
                        help="also write class probabilities (4D, one frame per class, uint8 = p x 255)")
    parser.add_argument("--force", action="store_true", help="run even if the image does not look like CT in HU")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_inference_arguments(parser)


def run_segment(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from .checkpoints import load_model  # torch is imported only when a model command runs
    from .predictor import Predictor

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
    model = load_model(args.model, args.folds, args.checkpoint)
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
        from .probabilities import write_probabilities

        write_probabilities(result.probabilities, volume, args.probabilities, overwrite=args.overwrite)
    counts = {name: int((result.labels.array == index).sum()) for index, name in enumerate(result.class_names)}
    log.info("wrote %s in %.1f s (%s)", args.output, result.seconds["total"],
             ", ".join(f"{name}: {count:,} voxels" for name, count in counts.items() if name != "background"))
    return 0


# ------------------------------------------------------------------------------------ models
def _add_models_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    from .cli import common_options

    verify = actions.add_parser("verify", help="load a model, check every tensor, print a JSON summary",
                                parents=[common_options()])
    verify.add_argument("path", help="checkpoint file, nnU-Net results folder or PASTA model folder")
    _add_model_arguments(verify)


def run_models(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from .checkpoints import load_model

    progress.report("verifying", None, args.path)
    model = load_model(args.path, args.folds, args.checkpoint)
    sys.stdout.write(json.dumps(model.summary(), indent=2) + "\n")
    return 0


COMMANDS = [
    Command("segment", "Segment a CT with a PASTA model (any checkpoint format) into a label map in the "
            "input's geometry.", _add_segment_arguments, run_segment),
    Command("models", "Inspect PASTA models: `pasta models verify PATH` checks every tensor and prints "
            "format, architecture, classes, parameters and SHA256 as JSON.", _add_models_arguments, run_models),
]
