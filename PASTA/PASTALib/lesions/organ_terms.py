"""Which TotalSegmentator class an organ segment is, by its meaning first and its spelling second.

Slicer segments carry a terminology entry (SNOMED CT category, type, type modifier and anatomic region).
The TotalSegmentator extension writes the codes of its table (``sample_data/totalsegmentator_snomed_mapping.csv``,
its own file, MIT licence) and names the segments after them ("left kidney", not "kidney_left"); users rename
segments at will. So a segment is matched, in order, by its codes, by the class name ("kidney_left"), and by
the names built from the codes' meanings ("left kidney", "kidney left") or with the side moved to the front
("left lung upper lobe"). One mapping serves the PASTA and PASTASynth modules and ``--organs``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional

from .anatomy import totalsegmentator_v2_names

SNOMED_TABLE = Path(__file__).resolve().parents[1] / "sample_data" / "totalsegmentator_snomed_mapping.csv"


@dataclass(frozen=True)
class OrganTerm:
    """One TotalSegmentator class and the codes (SNOMED CT values) its segments carry."""

    name: str  #: TotalSegmentator class name, e.g. "kidney_left"
    type_code: str
    type_meaning: str
    modifier_code: str
    modifier_meaning: str
    region_code: str
    region_modifier_code: str
    region_meaning: str = ""
    region_modifier_meaning: str = ""

    @property
    def codes(self) -> tuple[str, str, str, str]:
        return self.type_code, self.modifier_code, self.region_code, self.region_modifier_code


@lru_cache(maxsize=1)
def organ_terms() -> dict[str, OrganTerm]:
    """Class name -> its term, for every class in the extension's table."""
    with open(SNOMED_TABLE, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {row["Name"]: OrganTerm(row["Name"], row["Type_CodeValue"], row["Type_CodeMeaning"],
                                   row["TypeModifier_CodeValue"], row["TypeModifier_CodeMeaning"],
                                   row["Region_CodeValue"], row["RegionModifier_CodeValue"],
                                   row["Region_CodeMeaning"], row["RegionModifier_CodeMeaning"])
            for row in rows if row.get("Name")}


def _words(text: str) -> str:
    return " ".join(re.sub(r"[_\-,]+", " ", text.strip().lower()).split())


def _aliases(term: OrganTerm) -> set[str]:
    words = _words(term.name).split()
    aliases = {" ".join(words)}
    if words[-1] in ("left", "right"):
        aliases.add(" ".join([words[-1], *words[:-1]]))  # "left lung upper lobe"
    kind, side = _words(term.type_meaning), _words(term.modifier_meaning)
    if kind:
        aliases.update({f"{side} {kind}".strip(), f"{kind} {side}".strip()})
    region, region_side = _words(term.region_meaning), _words(term.region_modifier_meaning)
    if kind and region:  # a finding in an organ, e.g. "left kidney cyst"
        aliases.update({f"{region_side} {region} {kind}".strip(), f"{region} {kind} {region_side}".strip()})
    return aliases


@lru_cache(maxsize=4)
def _lookups(names: tuple[str, ...]) -> tuple[dict, dict]:
    terms = organ_terms()
    by_codes = {terms[n].codes: n for n in names if n in terms}
    by_name: dict[str, str] = {}
    ambiguous: set[str] = set()
    for name in names:
        for alias in ({_words(name)} | (_aliases(terms[name]) if name in terms else set())):
            if by_name.get(alias, name) != name:
                ambiguous.add(alias)  # e.g. "femur" for femur_left and femur_right: never guessed
            by_name[alias] = name
    for alias in ambiguous:
        by_name.pop(alias, None)
    return by_codes, by_name


def terminology_codes(entry: Optional[str]) -> Optional[tuple[str, str, str, str]]:
    """(type, type modifier, region, region modifier) code values of a Slicer terminology entry string
    ``context~category~type~modifier~anatomic context~region~region modifier`` (each ``scheme^value^meaning``)."""
    if not entry:
        return None
    parts = entry.split("~")
    if len(parts) < 4:
        return None

    def value(index: int) -> str:
        fields = parts[index].split("^") if index < len(parts) else []
        return fields[1].strip() if len(fields) > 1 else ""

    codes = (value(2), value(3), value(5), value(6))
    return codes if codes[0] else None


def class_for(segment_name: str, terminology: Optional[str] = None,
              names: Optional[Mapping[int, str]] = None) -> Optional[str]:
    """The TotalSegmentator class a segment is (None if it is none of ``names``' classes; default: the
    classes of TotalSegmentator v2's ``total`` task)."""
    candidates = tuple(sorted((names or totalsegmentator_v2_names()).values()))
    by_codes, by_name = _lookups(candidates)
    codes = terminology_codes(terminology)
    if codes is not None and codes in by_codes:
        return by_codes[codes]
    return by_name.get(_words(segment_name))


def map_segments(segments: Mapping[int, tuple[str, Optional[str]]],
                 names: Optional[Mapping[int, str]] = None) -> tuple[dict[int, int], list[str]]:
    """Segment label -> class id (``names``: id -> class; default TotalSegmentator v2), and the names of
    the segments that are no known class."""
    names = dict(names or totalsegmentator_v2_names())
    ids = {name: label for label, name in names.items()}
    mapping, unknown = {}, []
    for label, (segment_name, terminology) in segments.items():
        found = class_for(segment_name, terminology, names)
        if found is None:
            unknown.append(segment_name)
        else:
            mapping[label] = ids[found]
    return mapping, unknown
