"""``Resources/report.schema.json`` generated from the report dataclasses (:mod:`.model`).

The dataclasses are the one definition of the report. Each field's JSON type comes from its annotation;
constraints (ranges, enums, patterns) come from its ``constrained(...)`` metadata; the attribute
vocabulary comes from :data:`.model.ATTRIBUTE_OPTIONS`. The committed file is the output of
``python -m PASTALib.report.schema --write``, and a test fails when the two differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any, Dict, List

from . import model

#: Dataclasses written once under ``$defs`` and referenced; every other dataclass is inlined.
DEFS: Dict[type, str] = {
    model.Code: "code", model.Line: "line", model.HeadPrediction: "head_prediction",
    model.ModelPrediction: "model_prediction", model.RuleEvidence: "rule_evidence", model.Finding: "finding",
    model.Source: "source", model.Dropped: "dropped", model.ReaderEdit: "edit", model.Report: "report",
    model.FindingsDocument: "findings_document",
}
PRIMITIVES = {str: "string", int: "integer", float: "number", bool: "boolean"}
#: Metadata keys that are instructions to this generator, not JSON-schema keywords.
_INSTRUCTIONS = ("values", "items", "per_attribute", "optional")


def _ref(name: str) -> Dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _optional_inner(tp: Any) -> Any:
    """X for Optional[X], else None."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def type_schema(tp: Any, values: Any = None, items: Any = None) -> Dict[str, Any]:
    """The schema of an annotation (``values``/``items``: extra constraints on dict values/list items)."""
    if tp is Any:
        return {}
    inner = _optional_inner(tp)
    if inner is not None:
        if inner in PRIMITIVES:
            return {"type": [PRIMITIVES[inner], "null"]}
        return {"oneOf": [{"type": "null"}, type_schema(inner, values, items)]}
    origin = typing.get_origin(tp)
    if origin in (list, List):
        (item,) = typing.get_args(tp)
        return {"type": "array", "items": {**type_schema(item), **(items or {})}}
    if origin in (dict, Dict):
        _, value = typing.get_args(tp)
        value_schema = {**type_schema(value), **(values or {})}
        return {"type": "object", "additionalProperties": value_schema} if value_schema else {"type": "object"}
    if dataclasses.is_dataclass(tp):
        return _ref(DEFS[tp]) if tp in DEFS else object_schema(tp)
    return {"type": PRIMITIVES[tp]}


def field_schema(f: dataclasses.Field, tp: Any) -> Dict[str, Any]:
    meta = dict(f.metadata.get("schema", {}))
    if meta.get("per_attribute"):
        names = list(model.ATTRIBUTE_OPTIONS)
        return {"type": "object", "properties": {n: _ref(f"attribute_{n.lower()}") for n in names},
                "required": names, "additionalProperties": False}
    keywords = {k: v for k, v in meta.items() if k not in _INSTRUCTIONS}
    if "enum" in keywords or "const" in keywords:
        return keywords  # the values say it all, null included where allowed
    base = type_schema(tp, meta.get("values"), meta.get("items"))
    description = keywords.pop("description", None)
    return {**({"description": description} if description else {}), **base, **keywords}


def object_schema(cls: type) -> Dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    return {"type": "object",
            "properties": {f.name: field_schema(f, hints[f.name]) for f in fields},
            "required": [f.name for f in fields if not f.metadata.get("schema", {}).get("optional")],
            "additionalProperties": False}


def attribute_schema(options: List[str]) -> Dict[str, Any]:
    """An Attribute whose value (and its rule's value) is one of this attribute's options, or null."""
    schema = object_schema(model.Attribute)
    allowed = {"enum": [*options, None]}
    schema["properties"]["value"] = allowed
    schema["properties"]["rule"] = {"allOf": [_ref("rule_evidence"), {"properties": {"value": allowed}}]}
    return schema


def generate() -> Dict[str, Any]:
    """The whole JSON Schema (draft 2020-12) of report.json and findings.json."""
    defs: Dict[str, Any] = {}
    for cls, name in DEFS.items():
        if cls is model.Finding:  # the attributes, in vocabulary order, before the finding that uses them
            for attribute, options in model.ATTRIBUTE_OPTIONS.items():
                defs[f"attribute_{attribute.lower()}"] = attribute_schema(options)
        defs[name] = object_schema(cls)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:pasta-slicer:schema:report:{model.SCHEMA_VERSION}",
        "title": "PASTA structured report",
        "version": model.SCHEMA_VERSION,
        "description": f"report.json (schema '{model.SCHEMA_NAME}') and findings.json (schema "
                       f"'{model.FINDINGS_SCHEMA_NAME}') written by `pasta report`. Attribute values use PASTA's "
                       "vocabulary exactly; every rule-derived attribute keeps its measurement, threshold and rule; "
                       "reader edits keep the machine value. Generated from PASTALib.report.model by "
                       "`python -m PASTALib.report.schema --write`: do not edit by hand.",
        "oneOf": [_ref("report"), _ref("findings_document")],
        "$defs": defs,
    }


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate report.schema.json from the report dataclasses.")
    parser.add_argument("--write", action="store_true", help=f"write {model.SCHEMA_PATH} (default: print)")
    args = parser.parse_args(argv)
    if args.write:
        model.SCHEMA_PATH.write_text(render(), encoding="utf-8")
    else:
        print(render(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
