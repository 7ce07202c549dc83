"""``pasta train``: train or fine-tune a PASTA-family segmentation model (+ attribute heads).

Data: labelled folders (``--data``: nnU-Net raw ``imagesTr/labelsTr``, ``images/labels``, or
PASTA-Gen-30K case folders) and/or online synthesis into healthy hosts (``--hosts``: lesions of
``--lesion-types`` drawn fresh for every patch). Validation uses ``--val-hosts`` (held-out scans,
fixed lesions) or a share of the labelled cases. The output is a model folder that
``pasta segment`` and ``pasta analyze`` load.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PASTALib.cli.command import Command
from PASTALib.errors import PastaInputError
from PASTALib.model.card import DECISION_RULES, read_card
from PASTALib.progress import ProgressReporter

from .config import PRESETS

log = logging.getLogger(__name__)


def _init_path(init: str | None) -> Path | None:
    """--init as a path; a bundled model's name ('default') stands for its folder."""
    if not init:
        return None
    from PASTALib.model.bundled_models import resolve

    return Path(resolve(init)).expanduser()


def _triple(kind):
    def parse(text: str):
        parts = [kind(v) for v in text.replace("x", ",").split(",") if v]
        if len(parts) == 1:
            parts *= 3
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"expected one or three numbers, got {text!r}")
        return tuple(parts)
    return parse


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--hosts", nargs="+", metavar="HOST",
                      help="online synthesis into these healthy scans: 'sample', host folders (a CT and an "
                      "optional TotalSegmentator mask each), or folders of host folders")
    data.add_argument("--lesion-types", help="comma-separated lesion types to synthesise (default: all 15)")
    data.add_argument("--data", nargs="+", metavar="FOLDER", help="labelled cases: imagesTr/labelsTr, "
                      "images/labels, or PASTA-Gen-30K case folders")
    data.add_argument("--val-hosts", nargs="+", metavar="HOST", help="held-out hosts for validation")
    data.add_argument("--val-cases-per-type", type=int, default=2, help="validation lesions per type (default 2)")
    model = parser.add_argument_group("model and schedule")
    model.add_argument("-o", "--output", required=True, help="model folder to write")
    model.add_argument("--name", help="model name in the model card (default: the folder name)")
    model.add_argument("--init", help="initialise from a PASTA checkpoint (e.g. PASTA_final.pth) or a PASTA "
                       "model folder (e.g. 'default' to continue the bundled model); the architecture then "
                       "comes from it")
    model.add_argument("--preset", "--recipe", dest="preset", choices=tuple(PRESETS), default="default",
                       help="few-shot: short schedule and low learning rate for 1-16 labelled cases; "
                       "pasta-ft / pasta-fewshot: the PASTA authors' fine-tuning recipes (PASTATrainer_ft: SGD, "
                       "lr 1e-4, 500 x 250 iterations; PASTATrainer_fewshot: SGD, lr 1e-3, 10 x 200); "
                       "smoke: a few tiny steps to check a set-up")
    model.add_argument("--few-shot", dest="preset", action="store_const", const="few-shot",
                       help="same as --preset few-shot")
    model.add_argument("--steps", type=int)
    model.add_argument("--batch-size", type=int)
    model.add_argument("--learning-rate", type=float)
    model.add_argument("--spacing", type=_triple(float), help="model spacing in mm (x,y,z or one value)")
    model.add_argument("--patch", type=_triple(int), help="patch size in voxels (z,y,x or one value)")
    model.add_argument("--widths", help="comma-separated stage widths, encoder then bottleneck (e.g. 16,32,64,128)")
    model.add_argument("--no-attribute-heads", action="store_true", help="train the segmentation only")
    model.add_argument("--max-minutes", type=float, help="stop (saving everything) after this much training time")
    model.add_argument("--validate-every", type=int)
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--foreground-fraction", type=float, metavar="F",
                       help="share of patches centred on a lesion (default 0.8; nnU-Net uses 0.33). Lower "
                       "it to fine-tune a model that finds lesions everywhere")
    model.add_argument("--foreground-weight", type=float, metavar="W",
                       help="cross-entropy weight of the lesion classes, background 1 (default 3)")
    model.add_argument("--decision", choices=tuple(DECISION_RULES),
                       help="how the model turns probabilities into labels (default argmax): "
                       + "; ".join(f"{rule}: {text}" for rule, text in DECISION_RULES.items()))
    run = parser.add_argument_group("running")
    run.add_argument("--work-dir", help="checkpoints; an existing checkpoint there is resumed "
                     "(default: OUTPUT.work next to the output)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _config(args: argparse.Namespace):
    from .config import TrainConfig, with_preset

    overrides = {"steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                 "spacing_xyz": args.spacing, "patch_kji": args.patch, "max_minutes": args.max_minutes,
                 "validate_every": args.validate_every, "seed": args.seed, "decision": args.decision,
                 "foreground_fraction": args.foreground_fraction, "foreground_weight": args.foreground_weight,
                 "stage_widths": tuple(int(v) for v in args.widths.split(",")) if args.widths else None,
                 "attribute_heads": False if args.no_attribute_heads else None}
    config = with_preset(TrainConfig(), args.preset, overrides)
    config.check()
    return config


def _validation_cases(args, config, source, labelled_holdout):
    from .cases import find_hosts, validation_cases

    if args.val_hosts and args.hosts:
        keys = [c.lesion_type for c in source.classes[1:]]
        cases, types = validation_cases(find_hosts(args.val_hosts), config.spacing_xyz, keys, config.seed,
                                        args.val_cases_per_type)
        return cases, f"held-out hosts {', '.join(args.val_hosts)}: {len(types)} types"
    return labelled_holdout, "held-out labelled cases" if labelled_holdout else "none"


def _require_training_extra() -> None:
    """MONAI comes with the ``[train]`` extra only; say so before any work, not mid-run."""
    import importlib.util

    if importlib.util.find_spec("monai") is None:
        raise PastaInputError("pasta train needs MONAI, which is not installed.",
                              'Install the training extra: pip install "pasta-slicer[train]".')


def run_train(args: argparse.Namespace, progress: ProgressReporter) -> int:
    _require_training_extra()
    import torch

    from PASTALib.inference.predictor import choose_device

    from .cases import LabelledSource, SyntheticSource, find_hosts
    from .trainer import Trainer, TrainingJob

    if not args.hosts and not args.data:
        raise PastaInputError("No training data.", "Pass --hosts (online synthesis) and/or --data (labelled cases).")
    if args.hosts and args.data:
        raise PastaInputError("Mixing --hosts and --data in one run is not supported yet.",
                              "Train on synthesis first, then fine-tune with --init on the labelled data.")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = _config(args)
    output = Path(args.output).expanduser()
    if output.exists() and not args.overwrite:
        raise PastaInputError(f"{output} already exists.", "Choose another -o or pass --overwrite.")
    work_dir = Path(args.work_dir).expanduser() if args.work_dir else output.parent / f"{output.name}.work"
    progress.report("data", 0.0, "preparing training data")
    holdout = []
    if args.hosts:
        types = [t.strip() for t in args.lesion_types.split(",")] if args.lesion_types else None
        source = SyntheticSource(find_hosts(args.hosts), config.spacing_xyz, types)
        data_note = f"online synthesis into {', '.join(args.hosts)}"
    else:
        source = LabelledSource([Path(d) for d in args.data], config.spacing_xyz)
        if len(source.cases) >= 5:
            count = max(1, len(source.cases) // 5)
            holdout, source.cases = source.cases[-count:], source.cases[:-count]
        data_note = f"{len(source.cases)} labelled cases from {', '.join(args.data)}"
    validation, val_note = _validation_cases(args, config, source, holdout)
    job = TrainingJob(config, source, validation, output, work_dir, args.name or output.name,
                      choose_device(args.device), _init_path(args.init),
                      args.overwrite, {"data": data_note, "validation": val_note})
    trainer = Trainer(job, progress)
    folder = trainer.run()
    card = read_card(folder)
    mean = card["validation"]["segmentation"].get("mean")
    print(f"wrote {folder} after {card['provenance']['steps_done']} steps "
          f"({card['provenance']['training_time_s']:.0f} s); validation mean {mean}")
    return 0


COMMANDS = [Command("train", "Train or fine-tune a PASTA-family model (online lesion synthesis or labelled data).",
                    _add_arguments, run_train)]
