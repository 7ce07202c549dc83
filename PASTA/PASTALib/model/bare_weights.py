"""A weights file alone carries no preprocessing (spacing, intensity normalisation): find the nnU-Net
results folder it belongs to, or refuse it with the reason. Torch-free, so the Slicer model import can
ask before anything is installed (issue: a lone ``fold_0/checkpoint_final.pth`` used to load with
PASTA's defaults and a warning only the log showed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from PASTALib.errors import PastaInputError

#: ``checkpoint_<name>.pth`` inside ``fold_<n>``: how nnU-Net v2 stores a fold's weights.
_FOLD_CHECKPOINT = re.compile(r"^checkpoint_(\w+)\.pth$")


def fold_of_results_folder(path: Path) -> Optional[tuple[Path, int, str]]:
    """(results folder, fold, checkpoint name) when ``path`` is a fold checkpoint whose results folder
    (two levels up) holds ``plans.json``; else None."""
    match = _FOLD_CHECKPOINT.match(path.name)
    parent = path.parent.name
    if not match or not parent.startswith("fold_") or not parent[5:].isdigit():
        return None
    folder = path.parent.parent
    if not (folder / "plans.json").is_file():
        return None
    return folder, int(parent[5:]), match.group(1)


#: How a command-line user opts in to PASTA's pretraining preprocessing for a bare weights file.
CLI_OPT_IN = "pass --pasta-defaults"


def is_bare_weights(path: Path) -> bool:
    """A weights file with neither a model card nor the results folder of a fold around it."""
    return Path(path).is_file() and fold_of_results_folder(Path(path)) is None


def bare_weights_error(path: Path, opt_in: str = CLI_OPT_IN) -> PastaInputError:
    """Why a weights file without its preprocessing is refused, and the two ways on (``opt_in``: how
    this front end lets the user choose PASTA's defaults)."""
    defaults = (f"or {opt_in} to run it with PASTA's pretraining preprocessing (1 mm spacing, SLF intensity "
                "map), if that is how it was trained")
    if _FOLD_CHECKPOINT.match(path.name) or path.parent.name.startswith("fold_"):
        return PastaInputError(
            f"{path.name} is an nnU-Net fold checkpoint, but {path.parent.parent} has no plans.json: the "
            "spacing and intensity normalisation it was trained with are unknown, and guessing them gives "
            "wrong answers silently.",
            f"Point the model at the whole results folder (plans.json, dataset.json, fold_*), {defaults}.")
    return PastaInputError(
        f"{path.name} holds weights only: the spacing and intensity normalisation they were trained with "
        "do not come with them, and guessing them gives wrong answers silently.",
        f"Use a PASTA model folder or an nnU-Net results folder, {defaults} (e.g. for PASTA_final.pth).")
