"""``pasta fit-head``: fit a small regularised head on PASTA features and print its cross-validation."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PASTALib.errors import PastaInputError
from PASTALib.progress import ProgressReporter

from .command import Command

log = logging.getLogger(__name__)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features", required=True, action="append", metavar="CSV",
                        help="features CSV from `pasta features` (repeat to combine cohorts of the same model)")
    parser.add_argument("--labels", required=True, metavar="CSV",
                        help="id,label (stage, binary) or id,time,event (survival); ids as in the features CSV")
    parser.add_argument("--task", required=True, choices=("stage", "binary", "survival"),
                        help="stage: multiclass logistic regression; binary: two classes; survival: Cox model")
    parser.add_argument("-o", "--output", required=True, metavar="HEAD", help="head file to write (JSON)")
    parser.add_argument("--penalty", type=float, default=0.1, metavar="LAMBDA",
                        help="L2 strength on standardised features (mean loss + lambda/2 |w|^2; default 0.1)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5; fewer when the "
                        "rarest class or the events are fewer)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold shuffle (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing head file")


def run_fit_head(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.heads import head_file
    from PASTALib.heads.feature_table import read_many
    from PASTALib.heads.fitting import fit_head, metrics_table, read_labels

    _require_fitting_libraries(args.task)
    out = Path(args.output).expanduser()
    if out.exists() and not args.overwrite:
        raise PastaInputError(f"{out} already exists; PASTA never overwrites a file unless asked.",
                              "Choose another output name or pass --overwrite.")
    if args.folds < 2:
        raise PastaInputError(f"--folds must be at least 2, got {args.folds}.")
    progress.report("reading", 0.0, ", ".join(args.features))
    paths = [Path(p).expanduser() for p in args.features]
    table = read_many(paths)
    labels = read_labels(Path(args.labels), args.task)
    progress.report("fitting", 0.2, f"{args.task} head, {args.folds}-fold cross-validation")
    document = fit_head(table, labels, args.task, args.penalty, args.folds, args.seed, paths)
    head = head_file.save(document, out, overwrite=args.overwrite)
    sys.stdout.write(metrics_table(document))
    name, value = head.cv_metric
    log.info("wrote %s head %s (SHA256 %s…): %d training rows, cross-validated %s %s", args.task, out,
             head.sha256[:12], document["training"]["size"], name, "n/a" if value is None else f"{value:.3f}")
    return 0


def _require_fitting_libraries(task: str) -> None:
    """Fitting needs scikit-learn (and lifelines for survival); say how to get them, not a traceback."""
    import importlib.util

    needed = ["sklearn"] + (["lifelines"] if task == "survival" else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        names = {"sklearn": "scikit-learn", "lifelines": "lifelines"}
        raise PastaInputError(f"`pasta fit-head` needs {', '.join(names[m] for m in missing)}, which is not installed.",
                              "Install the heads extra: pip install 'pasta-slicer[heads]' (applying a head in "
                              "`pasta analyze` needs numpy only).")


COMMANDS = [
    Command("fit-head", "Fit a small regularised head on PASTA features (logistic regression for stage/binary, "
            "Cox model for survival) and print cross-validated metrics.", _add_arguments, run_fit_head),
]
