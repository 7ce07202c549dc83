"""A PASTA model folder's card (``model.json``): the one parser, torch-free.

The loader (:mod:`.checkpoints`), the attribute heads, training and the Slicer model panel all read the
card here. The Slicer process does not import torch, yet before Apply it must tell the user whether a
model folder is complete and unmodified, and what the model finds. The card lists a SHA256 for every
weights file (and for the attribute heads); ``pasta analyze`` checks the same digests when it loads
the model (``PASTALib.model.checkpoints.load_model``), so a folder that passes here also passes there.

Standard library only (and :mod:`PASTALib.errors`, :mod:`PASTALib.hashing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file

CARD = "model.json"
CARD_PAGE = "MODEL_CARD.md"
CARD_FORMAT = "pasta-model"
HEADS_FILE = "attribute_heads.safetensors"  #: the learned attribute heads beside the weights


@dataclass
class ClassInfo:
    """One output class of a model: its index, name and, for lesion classes, the lesion-type key."""

    id: int
    name: str
    lesion_type: Optional[str] = None


def card_classes(card: Mapping[str, Any]) -> list:
    """The card's classes as :class:`ClassInfo`, in index order."""
    return [ClassInfo(int(c["id"]), str(c["name"]), c.get("lesion_type")) for c in card.get("classes", [])]


@dataclass(frozen=True)
class CardSummary:
    """What the model panel shows about a PASTA model folder."""

    name: str
    version: str
    classes: int  #: foreground classes (background not counted)
    lesion_types: int  #: foreground classes mapped to a PASTA lesion type
    page: Optional[Path]  #: the human-readable MODEL_CARD.md, when the folder has one


DEFAULT_HINT = "Re-import or re-download the model."


def read_card(folder: Path, what: Optional[str] = None, hint: str = DEFAULT_HINT) -> dict:
    """The card of ``folder``; a PastaInputError naming ``what`` when it is missing or unreadable."""
    folder = Path(folder)
    what = what or f"The model in {folder}"
    if not folder.is_dir():
        raise PastaInputError(f"{what} is missing: the folder {folder} does not exist.", hint)
    file = folder / CARD
    if not file.is_file():
        raise PastaInputError(f"{what} is damaged: {folder} has no model card ({CARD}).", hint)
    try:
        card = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PastaInputError(f"{what} is damaged: its model card {file} cannot be read ({error}).", hint) from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise PastaInputError(f"{what} is damaged: {file} is not a PASTA model card.", hint)
    return card


def member(folder: Path, name: Any, what: str, hint: str) -> Path:
    """The file ``name`` (as a card names it) inside ``folder``, or a PastaInputError: a card may only
    name files in its own folder, so no absolute path, no ``..``, and no link that leads out."""
    text = str(name) if isinstance(name, str) else ""
    parts = text.replace("\\", "/").split("/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in parts:
        raise PastaInputError(f"{what} is refused: its model card names the file {name!r}, which is not a "
                              "plain name inside the model folder.", hint)
    root = Path(folder).resolve()
    path = Path(folder) / text
    if root not in path.resolve().parents:
        raise PastaInputError(f"{what} is refused: {text} leads out of the model folder (a link to "
                              f"{path.resolve()}).", hint)
    return path


def card_files(card: dict, what: str, hint: str, folder: Optional[Path] = None) -> dict[str, str]:
    """Every file the card vouches for -> its SHA256: the weights and the attribute heads, each of which
    must have one (a card without digests cannot vouch for anything), each a file inside ``folder``."""
    digests = card.get("sha256") if isinstance(card.get("sha256"), dict) else {}
    weights = card.get("weights") or []
    if not weights:
        raise PastaInputError(f"{what} is damaged: its model card lists no weights files.", hint)
    unhashed = [str(name) for name in weights if not digests.get(name)]
    heads = card.get("attribute_heads")
    if isinstance(heads, dict) and not heads.get("sha256"):
        unhashed.append(str(heads.get("file", HEADS_FILE)))
    if unhashed:
        raise PastaInputError(f"{what} cannot be verified: its model card gives no SHA256 for "
                              f"{', '.join(unhashed)}.", hint)
    files = {str(name): str(digest).lower() for name, digest in digests.items()}
    if isinstance(heads, dict):
        files[str(heads.get("file", HEADS_FILE))] = str(heads["sha256"]).lower()
    if folder is not None:
        for name in files:
            member(folder, name, what, hint)
    return files


def check_present(folder: Path, what: str, hint: str) -> dict[str, str]:
    """The card's files (name -> SHA256) once each is known to exist; no hashing, so cheap enough
    for every refresh of the model list. :func:`verify` does the hashing."""
    files = card_files(read_card(folder, what, hint), what, hint, Path(folder))
    missing = sorted(name for name in files if not (Path(folder) / name).is_file())
    if missing:
        raise PastaInputError(f"{what} is incomplete: {', '.join(missing)} is missing from {folder}.", hint)
    return files


def verify(folder: Path, what: str, hint: str) -> dict[str, str]:
    """Re-hash every file the card lists; a PastaInputError naming the first one that changed."""
    files = check_present(folder, what, hint)
    for name, expected in sorted(files.items()):
        if sha256_file(Path(folder) / name) != expected:
            raise PastaInputError(f"{what} is damaged: {name} does not match the SHA256 in its model card.", hint)
    return files


def summary(folder: Path) -> Optional[CardSummary]:
    """Name, version and class counts of a PASTA model folder; None when it has no readable card."""
    try:
        card = read_card(folder, "", "")
    except PastaInputError:
        return None
    foreground = [c for c in card.get("classes", []) if isinstance(c, dict) and c.get("id")]
    page = Path(folder) / CARD_PAGE
    return CardSummary(str(card.get("name") or Path(folder).name), str(card.get("version") or ""),
                       len(foreground), sum(1 for c in foreground if c.get("lesion_type")),
                       page if page.is_file() else None)


# ------------------------------------------------------------------------- postprocessing block
#: rule name -> what it does, in the words of the model card and ``pasta train --help``
DECISION_RULES = {
    "argmax": "argmax over classes (nnU-Net's rule)",
    "lesion_first": "lesion where P(background) < 0.5, then its most probable type",
}


def check_rule(rule: str, where: str = "the model card") -> str:
    if rule not in DECISION_RULES:
        raise PastaInputError(f"Unknown decision rule {rule!r} in {where}.",
                              f"Use one of: {', '.join(DECISION_RULES)}.")
    return rule


@dataclass(frozen=True)
class Postprocessing:
    """The model card's ``postprocessing`` block."""

    decision: str = "argmax"
    min_component_ml: float = 0.0
    type_per_component: bool = False

    @classmethod
    def from_card(cls, block: Mapping[str, Any] | None, where: str = "the model card") -> "Postprocessing":
        block = dict(block or {})
        try:
            min_ml = float(block.get("min_component_ml", 0.0))
        except (TypeError, ValueError):
            min_ml = float("nan")
        if not 0.0 <= min_ml < 1000.0:  # also refuses NaN
            raise PastaInputError(f"postprocessing.min_component_ml in {where} must be a volume in mL "
                                  f"(0 to 1000), got {block.get('min_component_ml')!r}.")
        vote = block.get("type_per_component", False)
        if not isinstance(vote, bool):
            raise PastaInputError(f"postprocessing.type_per_component in {where} must be true or false, got {vote!r}.")
        return cls(check_rule(str(block.get("decision", "argmax")), where), min_ml, vote)

    def as_dict(self) -> dict[str, Any]:
        """The card block; a step that changes nothing is left out, as in cards written before it existed."""
        block: dict[str, Any] = {"decision": self.decision}
        if self.type_per_component:
            block["type_per_component"] = True
        if self.min_component_ml:
            block["min_component_ml"] = self.min_component_ml
        return block

    def describe(self) -> str:
        text = DECISION_RULES[self.decision]
        if self.type_per_component:
            text += "; each lesion component takes its most probable type"
        if self.min_component_ml:
            text += f"; lesion components under {self.min_component_ml:g} mL are dropped"
        return text
