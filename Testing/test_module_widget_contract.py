"""The contract between PASTA.py and PASTA.ui, checked without Slicer.

* Every ``self.ui.<name>`` the module uses exists in the .ui, with a class that has what the code
  calls on it (signals connected by name, methods and properties used).
* Every ``SlicerParameterName`` names a parameter-node field, and the widget's class is one that
  Slicer's ``connectGui`` can bind to that field's type (``Choice`` strings need a QComboBox,
  nodes a qMRMLNodeComboBox listing the node class, ...).
* The module's lazy imports of PASTALib/PASTASlicerLib names resolve (a typo there would only
  show once a user clicks in Slicer).
* The lesion-type choices offered in the GUI are exactly PASTA's lesion types.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import xml.etree.ElementTree as ET


from test_module_layout import ROOT, parameter_bindings, parameter_fields, parse_module

MODULE = "PASTA"
BUTTONS = {"QPushButton", "QToolButton", "QCheckBox", "QRadioButton", "ctkMenuButton", "ctkCheckablePushButton"}

#: What the code uses on a widget -> the .ui classes that provide it.
MEMBER_CLASSES: dict[str, set[str]] = {
    "setMRMLTableNode": {"qMRMLTableView"},
    "mrmlTableNode": {"qMRMLTableView"},
    "setMRMLScene": {"qMRMLNodeComboBox", "qMRMLTableView", "qMRMLWidget"},
    "currentNode": {"qMRMLNodeComboBox"},
    "setPlainText": {"QPlainTextEdit", "QTextEdit"},
    "appendPlainText": {"QPlainTextEdit"},
    "toPlainText": {"QPlainTextEdit", "QTextEdit"},
    "addItem": {"QComboBox", "ctkComboBox"},
    "findData": {"QComboBox", "ctkComboBox"},
    "findText": {"QComboBox", "ctkComboBox"},
    "currentData": {"QComboBox", "ctkComboBox"},
    "currentIndex": {"QComboBox", "ctkComboBox", "QTabWidget", "QStackedWidget"},
    "currentText": {"QComboBox", "ctkComboBox"},
    "blockSignals": None,  # any QObject
    "value": {"QProgressBar", "QSpinBox", "QDoubleSpinBox", "QSlider", "ctkSliderWidget"},
    "setFont": None,
}
#: Signals connected by name -> the .ui classes that emit them.
SIGNAL_CLASSES: dict[str, set[str]] = {
    "clicked(bool)": BUTTONS,
    "toggled(bool)": BUTTONS,
    "currentIndexChanged(int)": {"QComboBox", "ctkComboBox"},
    "activated(int)": {"QComboBox", "ctkComboBox"},
    "editingFinished()": {"QLineEdit", "QSpinBox", "QDoubleSpinBox"},
    "currentNodeChanged(vtkMRMLNode*)": {"qMRMLNodeComboBox"},
    "clicked(QModelIndex)": {"QTableView", "qMRMLTableView", "QTreeView", "QListView"},
}


def ui_classes() -> dict[str, str]:
    root = ET.parse(ROOT / MODULE / "Resources" / "UI" / f"{MODULE}.ui").getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def ui_uses(tree: ast.Module) -> dict[str, set[str]]:
    """Widget name -> members and signals the module uses on ``self.ui.<name>``."""
    uses: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"):
            continue
        uses.setdefault(node.attr, set())
    for node in ast.walk(tree):
        # self.ui.<name>.<member>  and  self.ui.<name>.connect("signal(...)", ...)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "ui":
            uses[node.value.attr].add(node.attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect" \
                and isinstance(node.func.value, ast.Attribute) and isinstance(node.func.value.value, ast.Attribute) \
                and node.func.value.value.attr == "ui" and node.args and isinstance(node.args[0], ast.Constant):
            uses[node.func.value.attr].add(node.args[0].value)
    return uses


def attribute_combo_names(tree: ast.Module) -> set[str]:
    """Widgets reached through ``_attributeComboBoxes()`` are QComboBoxes used with addItem/findText."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "_attributeComboBoxes":
            return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Attribute) and n.value.attr == "ui"}
    return set()


def test_every_widget_the_module_uses_exists_with_a_fitting_class():
    tree = parse_module(MODULE)
    classes = ui_classes()
    uses = ui_uses(tree)
    for name in attribute_combo_names(tree):
        uses[name] |= {"addItem", "findText", "currentIndex", "currentText", "activated(int)"}
    problems = []
    for name, members in sorted(uses.items()):
        if name not in classes:
            problems.append(f"self.ui.{name} is not in PASTA.ui")
            continue
        for member in sorted(members):
            allowed = SIGNAL_CLASSES.get(member) if "(" in member else MEMBER_CLASSES.get(member)
            if "(" in member and member not in SIGNAL_CLASSES:
                problems.append(f"self.ui.{name}: signal {member!r} is not in this test's table; add it")
            elif allowed and classes[name] not in allowed:
                problems.append(f"self.ui.{name} is a {classes[name]}, which has no {member} ({sorted(allowed)})")
    assert not problems, "\n".join(problems)
    assert len(uses) >= 30  # the test sees the whole widget


def connectable(widget_class: str, annotation: str, node_types: list[str]) -> bool:
    """Whether Slicer's connectGui has a connector for this widget class and field annotation."""
    if annotation == "bool":
        return widget_class in ("QCheckBox", "QPushButton")
    if re.fullmatch(r"Annotated\[str, Choice\(.+\)\]", annotation):
        return widget_class == "QComboBox"
    if annotation == "str":
        return widget_class in ("QLineEdit", "QTextEdit")
    if annotation in ("float",) or annotation.startswith("Annotated[float"):
        return widget_class in ("QDoubleSpinBox", "ctkSliderWidget")
    if annotation in ("int",) or annotation.startswith("Annotated[int"):
        return widget_class in ("QSpinBox", "QSlider")
    if annotation.startswith("vtkMRML"):
        return widget_class == "qMRMLNodeComboBox" and annotation in node_types
    return False


def test_every_parameter_binding_has_a_connector():
    root = ET.parse(ROOT / MODULE / "Resources" / "UI" / f"{MODULE}.ui").getroot()
    fields = parameter_fields(parse_module(MODULE))
    bindings = parameter_bindings(root)
    assert set(bindings) == set(fields)
    for name, widget in bindings.items():
        node_types = [s.text for p in widget.findall("property") if p.get("name") == "nodeTypes" for s in p.iter("string")]
        assert connectable(widget.get("class"), fields[name], node_types), (
            f"{widget.get('name')} ({widget.get('class')}) cannot be bound to {name}: {fields[name]}")


def test_connector_rules_reject_mismatches():
    assert not connectable("QLineEdit", "bool", [])
    assert not connectable("QLineEdit", "Annotated[str, Choice(DEVICE_CHOICES)]", [])
    assert not connectable("qMRMLNodeComboBox", "vtkMRMLSegmentationNode", ["vtkMRMLScalarVolumeNode"])
    assert connectable("QComboBox", "Annotated[str, Choice(DEVICE_CHOICES)]", [])


def lazy_imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("PASTALib", "PASTASlicerLib"):
            yield node


def test_the_module_lazy_imports_resolve():
    found = 0
    for node in lazy_imports(parse_module(MODULE)):
        module = importlib.import_module(node.module)
        for alias in node.names:
            found += 1
            assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                f"line {node.lineno}: {node.module} has no {alias.name}")
    assert found > 10


def test_lesion_type_choices_are_pastas_lesion_types():
    from PASTALib.report.lesion_types import LESION_TYPES

    tree = parse_module(MODULE)
    choices = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LESION_TYPE_CHOICES"
                                                for t in node.targets):
            choices = [elt.value if isinstance(elt, ast.Constant) else elt.id for elt in node.value.elts]
    assert choices is not None
    assert choices[0] == "FROM_MODEL" and choices[1:] == [t.key for t in LESION_TYPES]


def test_attribute_options_match_the_report_vocabulary():
    """The attribute drop-downs are filled from ATTRIBUTE_OPTIONS, one per attribute."""
    from PASTALib.report.model import ATTRIBUTE_OPTIONS

    tree = parse_module(MODULE)
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_attributeComboBoxes")
    keys = [k.value for n in ast.walk(fn) if isinstance(n, ast.Dict) for k in n.keys]
    assert keys == list(ATTRIBUTE_OPTIONS)
    classes = ui_classes()
    assert all(classes[name] == "QComboBox" for name in attribute_combo_names(tree))
