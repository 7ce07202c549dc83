"""A detector model folder: a PASTA model card (``model.json``) whose ``detector`` block names a JSON
file of scorer numbers, hashed like any weights file. Plain numbers only: nothing is unpickled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from PASTALib.errors import PastaInputError
from PASTALib.model.card import CARD, read_card, verify

from .scorer import Scorer

DETECTOR_KEY = "detector"
HINT = "Reinstall PASTA or re-download the model folder."


def detector_folder(model: str | Path) -> Optional[Path]:
    """The folder of a detector model, or None for anything else (a network, a checkpoint file)."""
    from PASTALib.model.bundled_models import resolve

    path = resolve(model)
    if not (path.is_dir() and (path / CARD).is_file()):
        return None
    try:
        card = json.loads((path / CARD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # the network loader reports a damaged card
    return path if isinstance(card, dict) and isinstance(card.get(DETECTOR_KEY), dict) else None


def load_detector(folder: Path) -> tuple[Scorer, dict[str, Any]]:
    """The scorer of a detector folder, after checking every listed file against its SHA256."""
    what = f"The detector model in {folder}"
    card = read_card(folder, what, HINT)
    verify(folder, what, HINT)
    name = str(card[DETECTOR_KEY].get("file", ""))
    if name not in card.get("weights", []) or Path(name).name != name:
        raise PastaInputError(f"{what} is damaged: its detector file {name!r} is not one of its hashed files.", HINT)
    try:
        block = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PastaInputError(f"{what} is damaged: {name} cannot be read ({error}).", HINT) from None
    return Scorer.from_dict(block, str(Path(folder) / name)), card
