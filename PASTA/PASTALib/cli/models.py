"""``pasta models verify``: load a model, check every tensor, print format, architecture and SHA256."""

from __future__ import annotations

import argparse
import json
import sys

from PASTALib.analysis.options import MODEL, add_arguments
from PASTALib.progress import ProgressReporter

from .command import Command, common_options


def _add_models_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="load a model, check every tensor, print a JSON summary",
                                parents=[common_options()])
    verify.add_argument("path", help="checkpoint file, nnU-Net results folder or PASTA model folder")
    add_arguments(verify, groups=(MODEL,), positional=False)


def run_models(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.detection.model_folder import detector_folder, load_detector
    from PASTALib.model.checkpoints import load_model

    progress.report("verifying", None, args.path)
    folder = detector_folder(args.path)
    if folder is not None:
        scorer, card = load_detector(folder)
        summary = {"format": "pasta-detector", "source": str(folder), "name": card.get("name"),
                   "version": card.get("version"), "features": list(scorer.features),
                   "operating_points": scorer.operating_points, "sha256": card.get("sha256"),
                   "searched_organs": card["detector"].get("searched_organs")}
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    model = load_model(args.path, args.folds, args.checkpoint, args.pasta_defaults)
    sys.stdout.write(json.dumps(model.summary(), indent=2) + "\n")
    return 0


COMMANDS = [
    Command("models", "Inspect PASTA models: `pasta models verify PATH` checks every tensor and prints "
            "format, architecture, classes, parameters and SHA256 as JSON.", _add_models_arguments, run_models),
]
