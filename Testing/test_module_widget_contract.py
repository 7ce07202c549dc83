"""The contract between each module file, its panels in <Module>Widgets/ and its .ui, checked without
Slicer, for both modules (PASTA and PASTASynth; the generic checks are parametrised over them).

* Every ``self.ui.<name>`` the module file or a panel uses exists in the .ui, with a class that has
  what the code calls on it (signals connected by name, methods and properties used).
* Every ``SlicerParameterName`` names a parameter-node field, and the widget's class is one that
  Slicer's ``connectGui`` can bind to that field's type (``Choice`` strings need a QComboBox,
  nodes a qMRMLNodeComboBox listing the node class, ...).
* The lazy imports of library and panel names in the module file and the panels resolve (a typo
  there would only show once a user clicks in Slicer).
* PASTA: the lesion-type choices offered in the GUI are exactly PASTA's lesion types.
  PASTASynth: the attribute drop-downs are exactly the synthesis attributes.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest


from module_files import ROOT, parameter_bindings, parameter_fields, parse_module, ui_flags, ui_root

MODULES = ("PASTA", "PASTASynth")
#: The module whose specific checks (lesion-type choices, report panel) follow the generic ones.
MODULE = "PASTA"
#: Library packages each module file and its panels import lazily (their names must resolve).
LAZY_PACKAGES = {"PASTA": ("PASTALib", "PASTASlicerLib"),
                 "PASTASynth": ("PASTALib", "PASTASlicerLib", "PASTASynthLib", "PASTASynthSlicerLib")}
#: The least each module's checks must see, so that a parser slip cannot make them pass vacuously.
MIN_WIDGETS = {"PASTA": 35, "PASTASynth": 25}
MIN_IMPORTS = {"PASTA": 30, "PASTASynth": 20}


def widgets_dir(module: str) -> Path:
    """The Qt-side panels the module file wires together (they hold the module's ``ui`` as ``self.ui``)."""
    return ROOT / module / f"{module}Widgets"


WIDGETS_DIR = widgets_dir(MODULE)
COMBOS = {"QComboBox", "ctkComboBox"}
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
    "suffix": {"QSpinBox", "QDoubleSpinBox"},
    "decimals": {"QDoubleSpinBox"},
    "setFont": None,
    "model": COMBOS | {"QTableView", "qMRMLTableView", "QTreeView", "QListView"},
    "itemData": COMBOS,
    "addItems": COMBOS,
    "count": COMBOS | {"QTabWidget", "QStackedWidget"},
    "setEditText": COMBOS,  # also needs editable=true (EDITABLE_MEMBERS)
    "lineEdit": COMBOS,
    "checked": BUTTONS,
}
#: Members that only work on a combo box whose ``editable`` property is true.
EDITABLE_MEMBERS = {"setEditText", "lineEdit"}
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


def widget_files(module: str = MODULE) -> list[Path]:
    """The module file and every panel file: all code that touches ``self.ui``."""
    return [ROOT / module / f"{module}.py", *sorted(widgets_dir(module).glob("*.py"))]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def all_ui_uses(module: str = MODULE) -> dict[str, set[str]]:
    """Widget name -> members and signals used on it anywhere (module file and panels)."""
    uses: dict[str, set[str]] = {}
    for path in widget_files(module):
        tree = parse(path)
        for name, members in ui_uses(tree).items():
            uses.setdefault(name, set()).update(members)
        for name in attribute_combo_names(tree):
            uses.setdefault(name, set()).update({"addItem", "findText", "currentIndex", "currentText",
                                                 "activated(int)"})
        for name in helper_widget_names(tree, "_measurementSpinBoxes"):
            uses.setdefault(name, set()).update({"value", "suffix", "decimals", "editingFinished()"})
    return uses


def ui_classes(module: str = MODULE) -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in ui_root(module).iter("widget")}


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


def helper_widget_names(tree: ast.Module, function: str) -> set[str]:
    """``self.ui`` names returned by a helper such as ``_attributeComboBoxes()``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Attribute) and n.value.attr == "ui"}
    return set()


def attribute_combo_names(tree: ast.Module) -> set[str]:
    """Widgets reached through ``(_)attributeComboBoxes()`` are QComboBoxes used with addItem/findText."""
    return helper_widget_names(tree, "_attributeComboBoxes") | helper_widget_names(tree, "attributeComboBoxes")


def widget_problems(uses: dict[str, set[str]], classes: dict[str, str], editable: set[str],
                    checkable: set[str], ui_name: str) -> list[str]:
    """What would break in Slicer: missing widgets, members or signals their class lacks, and
    ``lineEdit``/``setEditText`` on a combo box that is not editable, ``toggled`` on a button that
    is not checkable."""
    problems = []
    for name, members in sorted(uses.items()):
        if name not in classes:
            problems.append(f"self.ui.{name} is not in {ui_name}")
            continue
        if members & EDITABLE_MEMBERS and name not in editable:
            problems.append(f"self.ui.{name} uses {sorted(members & EDITABLE_MEMBERS)} but is not editable in the .ui")
        if "toggled(bool)" in members and classes[name] == "QPushButton" and name not in checkable:
            problems.append(f"self.ui.{name} is connected to toggled(bool) but is not checkable in the .ui")
        for member in sorted(members):
            allowed = SIGNAL_CLASSES.get(member) if "(" in member else MEMBER_CLASSES.get(member)
            if "(" in member and member not in SIGNAL_CLASSES:
                problems.append(f"self.ui.{name}: signal {member!r} is not in this test's table; add it")
            elif allowed and classes[name] not in allowed:
                problems.append(f"self.ui.{name} is a {classes[name]}, which has no {member} ({sorted(allowed)})")
    return problems


@pytest.mark.parametrize("module", MODULES)
def test_every_widget_name_of_the_ui_is_unique(module):
    """``self.ui.<name>`` reaches one widget only: with two of a name, Slicer binds one and the code drives
    the wrong one (the report panel's type box once shared its name with the model's lesion-type box)."""
    names = [w.get("name") for w in ui_root(module).iter("widget")]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"{module}.ui names these widgets twice: {duplicates}"
    assert len(names) >= MIN_WIDGETS[module]


@pytest.mark.parametrize("module", MODULES)
def test_every_widget_the_module_uses_exists_with_a_fitting_class(module):
    uses = all_ui_uses(module)
    problems = widget_problems(uses, ui_classes(module), ui_flags(module, "editable"),
                               ui_flags(module, "checkable"), f"{module}.ui")
    assert not problems, "\n".join(problems)
    assert len(uses) >= MIN_WIDGETS[module]  # the test sees the whole widget, panels included


def test_the_member_rules_catch_mismatches():
    """The rules above fail for code that would break in Slicer (they are not vacuous)."""
    tree = ast.parse("class W:\n    def f(self):\n        self.ui.a.setEditText('x')\n"
                     "        self.ui.b.connect('toggled(bool)', self.f)\n        self.ui.c.itemData(0)\n"
                     "        self.ui.d.text = ''\n")
    uses = ui_uses(tree)
    classes = {"a": "QComboBox", "b": "QPushButton", "c": "QLabel"}
    problems = "\n".join(widget_problems(uses, classes, editable=set(), checkable=set(), ui_name="X.ui"))
    assert "self.ui.a uses ['setEditText'] but is not editable" in problems
    assert "self.ui.b is connected to toggled(bool) but is not checkable" in problems
    assert "self.ui.c is a QLabel, which has no itemData" in problems
    assert "self.ui.d is not in X.ui" in problems
    assert not widget_problems(uses, {**classes, "c": "QComboBox", "d": "QLabel"}, {"a"}, {"b"}, "X.ui")
    assert ui_flags("PASTASynth", "editable") >= {"sizeComboBox"}
    assert "placeButton" in ui_flags("PASTASynth", "checkable")


@pytest.mark.parametrize("module", MODULES)
def test_every_interactive_widget_of_the_ui_is_used(module):
    """A button, box or field that no code (and no parameter binding) touches would do nothing."""
    root = ui_root(module)
    interactive = {"QPushButton", "QComboBox", "QDoubleSpinBox", "QSpinBox", "QLineEdit", "QPlainTextEdit",
                   "QCheckBox", "qMRMLTableView", "QProgressBar"}
    bound = {w.get("name") for w in parameter_bindings(root).values()}
    used = set(all_ui_uses(module))
    dead = sorted(w.get("name") for w in root.iter("widget")
                  if w.get("class") in interactive and w.get("name") not in bound | used)
    assert not dead, f"widgets in {module}.ui that nothing uses: {dead}"


def test_the_panels_are_seen_by_the_contract():
    """Moving code into a panel must not hide it from the checks above."""
    panel_files = [p for p in widget_files() if p.parent == WIDGETS_DIR and p.name != "__init__.py"]
    assert len(panel_files) >= 5
    for path in panel_files:
        uses = ui_uses(parse(path))
        if path.name not in ("download_dialog.py", "segment_watcher.py"):  # these use no widget of the .ui
            assert uses, f"{path.name} uses no self.ui.<name>: does it keep the ui as self.ui?"
    module_uses = set(ui_uses(parse_module(MODULE)))
    assert {"reportTextEdit", "applyButton", "checkVolumeButton"} <= module_uses
    assert {"findingComboBox", "modelComboBox", "downloadModelButton", "longAxisSpinBox"} <= set(all_ui_uses())
    assert len(parse_module(MODULE).body) and (ROOT / MODULE / f"{MODULE}.py").read_text().count("\n") < 600


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


@pytest.mark.parametrize("module", MODULES)
def test_every_parameter_binding_has_a_connector(module):
    root = ui_root(module)
    fields = parameter_fields(parse_module(module))
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


def lazy_imports(tree: ast.Module, packages=LAZY_PACKAGES[MODULE]):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
            yield node


def top_level_names(path: Path) -> set[str]:
    names = set()
    for node in parse(path).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def panel_imports(path: Path, module: str = MODULE):
    """(line, panel file, imported name) for ``from <Module>Widgets.x import y`` and ``from .x import y``."""
    panels = widgets_dir(module)
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if node.level == 1 and path.parent == panels:
            target = panels / f"{node.module}.py"
        elif node.level == 0 and node.module.startswith(f"{panels.name}."):
            target = panels / f"{node.module.split('.', 1)[1]}.py"
        else:
            continue
        for alias in node.names:
            yield node.lineno, target, alias.name


@pytest.mark.parametrize("module_name", MODULES)
def test_the_module_lazy_imports_resolve(module_name):
    found = 0
    for path in widget_files(module_name):
        for node in lazy_imports(parse(path), LAZY_PACKAGES[module_name]):
            module = importlib.import_module(node.module)
            for alias in node.names:
                found += 1
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    f"{path.name} line {node.lineno}: {node.module} has no {alias.name}")
        # The panels import qt, so they cannot be imported here: check their names in the source.
        for line, target, name in panel_imports(path, module_name):
            found += 1
            assert target.is_file(), f"{path.name} line {line}: no {target.name} in {target.parent.name}"
            assert name in top_level_names(target), f"{path.name} line {line}: {target.name} has no {name}"
    assert found > MIN_IMPORTS[module_name]


def test_lesion_type_choices_are_read_from_the_lesion_table():
    """The module's lesion-type choices are 'from model' plus the table's keys, read from the table
    (no hand copy): the assignment is exactly ``[FROM_MODEL, *lesion_types.keys()]``."""
    tree = parse_module(MODULE)
    choices = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LESION_TYPE_CHOICES"
                                                for t in node.targets):
            choices = ast.unparse(node.value)
    assert choices == "[FROM_MODEL, *lesion_types.keys()]"


def test_attribute_options_match_the_report_vocabulary():
    """The attribute drop-downs are filled from ATTRIBUTE_OPTIONS, one per attribute."""
    from PASTALib.report.model import ATTRIBUTE_OPTIONS

    tree = parse(WIDGETS_DIR / "report_panel.py")
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_attributeComboBoxes")
    keys = [k.value for n in ast.walk(fn) if isinstance(n, ast.Dict) for k in n.keys]
    assert keys == list(ATTRIBUTE_OPTIONS)
    classes = ui_classes()
    assert all(classes[name] == "QComboBox" for name in attribute_combo_names(tree))


def test_measurement_boxes_are_the_editable_measurements():
    """One spin box per measurement a reader may type in, no more, no fewer."""
    from PASTALib.report.review import MEASUREMENT_FIELDS

    tree = parse(WIDGETS_DIR / "report_panel.py")
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_measurementSpinBoxes")
    keys = [k.value for n in ast.walk(fn) if isinstance(n, ast.Dict) for k in n.keys]
    assert sorted(keys) == sorted(MEASUREMENT_FIELDS)
    classes = ui_classes()
    assert {classes[name] for name in helper_widget_names(tree, "_measurementSpinBoxes")} == {"QDoubleSpinBox"}


def test_synth_drop_downs_are_the_synthesis_attributes():
    """PASTASynth: one drop-down per synthesis attribute (catalog.ATTRIBUTES), the type and size ones
    QComboBoxes, the size one editable (a typed diameter), every lesion type offered."""
    from PASTALib.lesions.lesion_types import LESION_TYPES
    from PASTASynthLib.catalog import ATTRIBUTES
    from PASTASynthSlicerLib.choices import lesion_types

    tree = parse(widgets_dir("PASTASynth") / "lesion_options.py")
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "attributeComboBoxes")
    keys = [k.value for n in ast.walk(fn) if isinstance(n, ast.Dict) for k in n.keys]
    assert keys == list(ATTRIBUTES)
    classes = ui_classes("PASTASynth")
    names = attribute_combo_names(tree) | {"lesionTypeComboBox", "sizeComboBox"}
    assert {classes[name] for name in names} == {"QComboBox"}
    assert ui_flags("PASTASynth", "editable") & names == {"sizeComboBox"}
    assert [key for key, _ in lesion_types()] == [t.key for t in LESION_TYPES]
