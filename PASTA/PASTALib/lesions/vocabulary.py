"""PASTA's five lesion attributes and their options: the one vocabulary.

The report (:data:`PASTALib.report.model.ATTRIBUTE_OPTIONS`), the learned attribute heads, synthesis
(``pasta synth --attr``, :data:`PASTASynthLib.catalog.ATTRIBUTES`), training labels and the Slicer
panels' drop-downs all read this table. The report options are PASTA's (PASTA_REFERENCE.md 7), in the
model's index order. Synthesis draws finer variants (a lobulated tumour, a necrotic core); each maps to
the report option a reader would choose for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Tuple


@dataclass(frozen=True)
class AttributeVocabulary:
    name: str  #: report name, e.g. "Shape"
    key: str  #: synthesis / command-line key, e.g. "shape"
    options: Tuple[str, ...]  #: PASTA's report options, in the model's index order
    synthesis: Mapping[str, str]  #: synthesis value -> report option, in the order the panels offer them


ATTRIBUTES: Tuple[AttributeVocabulary, ...] = (
    AttributeVocabulary("Shape", "shape", ("Round-like", "Irregular", "Wall thickening", "Punctate, nodular"),
                        {"round-like": "Round-like", "irregular": "Irregular", "lobulated": "Irregular",
                         "wall-thickening": "Wall thickening", "punctate-nodular": "Punctate, nodular",
                         "cystic": "Round-like"}),
    AttributeVocabulary("Density", "density", ("Hypodense", "Isodense", "Hyperdense"),
                        {"hypodense": "Hypodense", "isodense": "Isodense", "hyperdense": "Hyperdense"}),
    AttributeVocabulary("Heterogeneity", "heterogeneity", ("Homogeneous", "Heterogeneous"),
                        {"homogeneous": "Homogeneous", "heterogeneous": "Heterogeneous",
                         "necrotic-core": "Heterogeneous", "calcified": "Heterogeneous"}),
    AttributeVocabulary("Surface", "margin", ("Well-defined margin", "Ill-defined margin"),
                        {"well-defined": "Well-defined margin", "ill-defined": "Ill-defined margin"}),
    AttributeVocabulary("Invasion", "relation", ("No close relationship with adjacent structures",
                                                 "Close relationship with adjacent structures"),
                        {"none": "No close relationship with adjacent structures",
                         "close-contact": "Close relationship with adjacent structures"}),
)

#: Report name -> options (what the report, the heads and the report panel use).
REPORT_OPTIONS: Dict[str, List[str]] = {a.name: list(a.options) for a in ATTRIBUTES}
#: Synthesis key -> values (what ``pasta synth --attr`` and the PASTASynth panel offer).
SYNTHESIS_VALUES: Dict[str, Tuple[str, ...]] = {a.key: tuple(a.synthesis) for a in ATTRIBUTES}


def report_attributes(synthesis: Mapping[str, str]) -> Dict[str, str]:
    """The report attributes of a synthesised lesion, from what synthesis was asked to draw."""
    return {a.name: a.synthesis[synthesis[a.key]] for a in ATTRIBUTES if a.key in synthesis}
