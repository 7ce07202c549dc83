"""What the module's drop-downs offer and how a choice becomes a synthesis request.

Kept out of the widget so the rules (which types a segmentation allows, which sizes and
attribute values a type allows, what "random" means) are tested without Qt.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

from PASTALib.errors import PastaInputError
from PASTASynthLib.catalog import ATTRIBUTES, organ_names_match, spec_for, specs

#: The drop-down entry that leaves a value to the type's priors.
RANDOM = "random"
#: Size presets (mm) offered when they fall inside a type's allowed range.
SIZE_PRESETS = (3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)
#: Organ names of a host with no organ segmentation (synthesis thresholds the lung).
NO_SEGMENTATION_ORGANS = ("lung_upper_lobe_left",)


def lesion_types() -> list[tuple[str, str]]:
    """(key, display name) of the 15 types, in PASTA's order."""
    return [(spec.key, spec.type.name) for spec in specs()]


def organ_names(segmentation_node) -> list[str]:
    """TotalSegmentator class names of a segmentation's segments (none selected: thresholded lung)."""
    from .session import organ_class_names

    if segmentation_node is None:
        return list(NO_SEGMENTATION_ORGANS)
    return list(organ_class_names(segmentation_node).values())


def available_types(names: Iterable[str]) -> dict[str, bool]:
    """Type key -> whether one of its host organs is among ``names``."""
    names = [n for n in names if n]
    return {spec.key: any(organ_names_match(spec, name) for name in names) for spec in specs()}


def size_options(lesion_type: str) -> list[str]:
    """"random" and the presets within the type's allowed diameters (the field is editable too)."""
    low, high = spec_for(lesion_type).size_mm
    return [RANDOM] + [f"{v:g}" for v in SIZE_PRESETS if low <= v <= high]


def attribute_options(lesion_type: str, attribute: str) -> list[str]:
    """"random" and the values the type allows for ``attribute`` (one of ``ATTRIBUTES``)."""
    return [RANDOM] + list(spec_for(lesion_type).priors[attribute])


def parse_size(text: str, lesion_type: str) -> Optional[float]:
    """None for "random", else the diameter in mm, checked against the type's range."""
    value = (text or "").strip().lower().removesuffix("mm").strip()
    if value in ("", RANDOM):
        return None
    low, high = spec_for(lesion_type).size_mm
    try:
        size = float(value)
    except ValueError:
        raise PastaInputError(f"Size {text!r} is not a number of millimetres.",
                              f"Choose 'random' or type a diameter between {low:g} and {high:g} mm.") from None
    if not low <= size <= high:
        raise PastaInputError(f"A {spec_for(lesion_type).type.name.lower()} of {size:g} mm is outside "
                              f"{low:g}-{high:g} mm.", f"Choose a diameter between {low:g} and {high:g} mm.")
    return size


def requested_attributes(lesion_type: str, chosen: Mapping[str, str]) -> dict[str, str]:
    """The chosen attributes without the "random" ones; values the type does not allow are refused."""
    spec = spec_for(lesion_type)
    result = {}
    for attribute, value in chosen.items():
        if attribute not in ATTRIBUTES:
            raise PastaInputError(f"Unknown attribute {attribute!r}.", f"Use one of: {', '.join(ATTRIBUTES)}.")
        if value and value != RANDOM:
            if value not in spec.priors[attribute]:
                raise PastaInputError(f"{attribute}={value} is not plausible for a {spec.type.name.lower()}.",
                                      f"Use {' | '.join(attribute_options(lesion_type, attribute))}.")
            result[attribute] = value
    return result
