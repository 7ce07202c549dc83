"""Reading the Slicer module files and their .ui statically (ast, XML): shared by the layout and the
widget-contract tests."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ui_path(module: str) -> Path:
    return ROOT / module / "Resources" / "UI" / f"{module}.ui"


def ui_root(module: str) -> ET.Element:
    return ET.parse(ui_path(module)).getroot()


def ui_flags(module: str, flag: str) -> set[str]:
    """Names of the widgets whose boolean property ``flag`` (``editable``, ``checkable``, ``collapsed``) is true."""
    return {w.get("name") for w in ui_root(module).iter("widget")
            if any(p.get("name") == flag and p.findtext("bool") == "true" for p in w.findall("property"))}


def parse_module(module: str) -> ast.Module:
    path = ROOT / module / f"{module}.py"
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def is_parameter_node_wrapper(decorator: ast.expr) -> bool:
    if isinstance(decorator, ast.Call):
        decorator = decorator.func
    if isinstance(decorator, ast.Name):
        return decorator.id == "parameterNodeWrapper"
    return isinstance(decorator, ast.Attribute) and decorator.attr == "parameterNodeWrapper"


def parameter_fields(tree: ast.Module) -> dict[str, str]:
    """Field name -> annotation source of the module's ``@parameterNodeWrapper`` class."""
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)
               and any(is_parameter_node_wrapper(d) for d in node.decorator_list)]
    assert len(classes) == 1, f"expected one @parameterNodeWrapper class, found {len(classes)}"
    return {stmt.target.id: ast.unparse(stmt.annotation) for stmt in classes[0].body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)}


def parameter_bindings(ui_root: ET.Element) -> dict[str, ET.Element]:
    """Parameter name -> widget element carrying the ``SlicerParameterName`` dynamic property."""
    bindings: dict[str, ET.Element] = {}
    for widget in ui_root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                name = (prop.findtext("string") or "").strip()
                assert name not in bindings, f"parameter {name!r} is bound to two widgets"
                bindings[name] = widget
    return bindings
