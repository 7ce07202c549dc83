"""A human-readable model card (``MODEL_CARD.md``) rendered from a trained model's ``model.json``.

The JSON card is the source of truth (the software reads it); this page is what a user reads
before trusting the model: data, procedure, validation per lesion type, and known limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from PASTALib.atomic import atomic_write
from PASTALib.model.card import Postprocessing, read_card

CARD_PAGE = "MODEL_CARD.md"
OPTIMIZERS = {"sgd": "SGD, Nesterov", "adamw": "AdamW"}


def _table(summary: Mapping[str, Any]) -> list[str]:
    rows = summary.get("per_class") or {}
    if not rows:
        return ["(no validation cases)"]
    lines = ["| lesion type | cases | Dice (type) | Dice (any lesion) | detected | false components per case |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['cases']} | {row['dice']:.3f} | {row['lesion_dice']:.3f} | "
                     f"{row['detected']:.0%} | {_false(row)} |")
    mean = summary.get("mean") or {}
    if mean.get("dice") is not None:
        lines.append(f"| **mean over types** | {sum(r['cases'] for r in rows.values())} | **{mean['dice']:.3f}** | "
                     f"{mean['lesion_dice']:.3f} | {mean['detected']:.0%} | {_false(mean)} |")
    return lines


def _false(row: Mapping[str, Any]) -> str:
    """Cards written before the count existed lack it."""
    return "n/a" if row.get("false_components") is None else f"{row['false_components']:.1f}"


def _choice(choice: Mapping[str, Any] | None) -> list[str]:
    """The postprocessing variants measured on the same lesions, and which one the card uses."""
    if not choice:
        return []
    what = choice.get("what", "")
    lines = ["", "### How the postprocessing was chosen", "", what[:1].upper() + what[1:] + ".", "",
             "| decision | types | component floor | held-out Dice | detected | false components per case | "
             "training-host Dice | detected | false components per case |", "|---|---|---|---|---|---|---|---|---|"]
    for index, variant in enumerate(choice.get("variants", [])):
        held, train = variant["held_out"], variant["training_host"]
        mark = " **(chosen)**" if index == choice.get("chosen") else ""
        types = "per component" if variant.get("type_per_component") else "per voxel"
        lines.append(f"| {variant['decision']}{mark} | {types} | {variant['min_component_ml']:g} mL | {held['dice']:.3f} | "
                     f"{held['detected']:.0%} | {_false(held)} | {train['dice']:.3f} | {train['detected']:.0%} | "
                     f"{_false(train)} |")
    return lines


def render(card: Mapping[str, Any]) -> str:
    prov = card.get("provenance", {})
    config = prov.get("config", {})
    validation = card.get("validation", {})
    rules = Postprocessing.from_card(card.get("postprocessing"))
    lines = [f"# Model card: {card.get('name')}", "",
             f"*{card.get('intended_use', 'Research use only; not a medical device.')}* "
             f"Licence: {card.get('license', 'unknown')}.", "",
             "## What it does", "",
             "Segments lesions in CT and labels each voxel with a lesion type:", ""]
    lines += [f"- class {c['id']}: {c['name']}" for c in card.get("classes", []) if c["id"]]
    heads = card.get("attribute_heads")
    if heads:
        lines += ["", "It also has learned report-attribute heads (" + ", ".join(heads.get("options", {}))
                  + ") on lesion-pooled encoder features; `pasta analyze` uses them for the report's "
                  "attributes and keeps the measurement rules' values as evidence."]
    lines += ["", "## Data and procedure", "",
              f"- Data: {prov.get('data', 'not recorded')}.",
              f"- Validation: {prov.get('validation', 'not recorded')}.",
              f"- Network: PASTA-family 3D U-Net, stage widths {config.get('stage_widths')}, "
              f"{prov.get('parameters', 0):,} parameters; {prov.get('init', '')}.",
              f"- Grid: {config.get('spacing_xyz')} mm, patch {config.get('patch_kji')} voxels; nnU-Net CT "
              "normalisation from the training foreground; mirroring on all axes in training.",
              f"- Schedule: {prov.get('steps_done')} steps of batch {config.get('batch_size')} "
              f"({OPTIMIZERS.get(config.get('optimizer', 'sgd'), config.get('optimizer'))}, "
              f"lr {config.get('learning_rate')} with poly decay), Dice + cross-entropy with deep supervision; "
              f"{prov.get('training_time_s', 0) / 60:.0f} min on {prov.get('device')}, {prov.get('date')}.",
              f"- Labels: {rules.describe()} (`{rules.decision}`).",
              ]
    if prov.get("stopped_early"):
        lines.append(f"- Stopped by: {prov['stopped_early']}.")
    lines += ["", "## Validation on held-out synthetic lesions", "",
              "Dice (type): voxels predicted as the lesion's type vs the lesion; Dice (any lesion): any lesion "
              "class vs any lesion (type confusions forgiven); detected: the predicted type overlaps the lesion; "
              "false components: predicted lesion regions touching no true lesion, each a false finding in a "
              "report. Whole-scan sliding-window prediction, no test-time mirroring.", ""]
    lines += _table(validation.get("segmentation", {}))
    lines += _choice(validation.get("postprocessing_choice"))
    extra = validation.get("training_host_new_lesions")
    if extra:
        lines += ["", "### New lesions in a training host", "", extra.get("what", ""), ""]
        lines += _table(extra)
    attributes = validation.get("attributes") or {}
    if attributes:
        lines += ["", "### Attribute heads (held-out lesions)", "", "| attribute | accuracy | lesions |", "|---|---|---|"]
        lines += [f"| {name} | {row['accuracy']:.0%} | {row['lesions']} |" for name, row in attributes.items()]
    limits = card.get("limits") or []
    if limits:
        lines += ["", "## Known limits", ""] + [f"- {item}" for item in limits]
    return "\n".join(lines) + "\n"


def write(folder: Path) -> Path:
    card = read_card(Path(folder))
    return atomic_write(Path(folder) / CARD_PAGE, render(card), overwrite=True)
