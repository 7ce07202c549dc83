"""Build a module's panel from its real ``.ui`` file with Qt (PySide6, offscreen) to measure and render it.

Slicer's CTK and MRML widget classes are not available outside Slicer, so each is loaded as the
plain Qt class it is built on and looks like (:data:`QT_STAND_INS`): a node selector is a combo
box, a collapsible section a titled group box, the MRML table view a table view. Everything
else (layouts, labels, buttons, size policies, word wrap, fixed sizes) is the ``.ui`` itself, so
the widths measured here are the ones the file asks for. Qt 6 here, Qt 5 in Slicer: font metrics
and style margins differ by a few pixels, which is why the width budget has a margin.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from module_files import ROOT

#: CTK/MRML class in the .ui -> (Qt class it is loaded as, property renames for that class).
QT_STAND_INS: dict[str, tuple[str, dict[str, str]]] = {
    "ctkCollapsibleButton": ("QGroupBox", {"text": "title"}),
    "ctkCollapsibleGroupBox": ("QGroupBox", {}),
    "qMRMLNodeComboBox": ("QComboBox", {}),
    "qMRMLSegmentSelectorWidget": ("QComboBox", {}),
    "qMRMLTableView": ("QTableView", {}),
    "qMRMLWidget": ("QWidget", {}),
    "ctkComboBox": ("QComboBox", {}),
    "ctkSliderWidget": ("QSlider", {}),
    "ctkPathLineEdit": ("QLineEdit", {}),
    "ctkMenuButton": ("QPushButton", {}),
}
#: Properties only CTK/MRML classes have (dropped so Qt does not warn about each one).
CTK_ONLY_PROPERTIES = {"collapsed", "collapsedHeight", "contentsFrameShape", "nodeTypes", "showChildNodeTypes",
                       "noneEnabled", "addEnabled", "removeEnabled", "renameEnabled", "editEnabled",
                       "showHidden", "selectNodeUponCreation", "noneDisplay", "SlicerParameterName",
                       "hideChildNodeTypes", "interactionNodeSingletonTag", "baseName"}


def ui_path(module: str) -> Path:
    return ROOT / module / "Resources" / "UI" / f"{module}.ui"


def qt_ui_text(module: str) -> bytes:
    """The module's .ui with CTK/MRML classes replaced by their Qt stand-ins."""
    tree = ET.parse(ui_path(module))
    for widget in tree.iter("widget"):
        stand_in = QT_STAND_INS.get(widget.get("class", ""))
        if stand_in is None:
            continue
        qt_class, renames = stand_in
        widget.set("class", qt_class)
        for prop in list(widget.findall("property")):
            if prop.get("name") in CTK_ONLY_PROPERTIES:
                widget.remove(prop)
            elif prop.get("name") in renames:
                prop.set("name", renames[prop.get("name")])
    root = tree.getroot()
    custom = root.find("customwidgets")
    if custom is not None:
        root.remove(custom)
    connections = root.find("connections")  # they name MRML slots (setMRMLScene) Qt does not have
    if connections is not None:
        root.remove(connections)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def application():
    """The one QApplication of this process, offscreen."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def load_panel(module: str):
    """The module's top widget built from its .ui (call :func:`application` first)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtUiTools import QUiLoader

    buffer = QBuffer()
    buffer.setData(QByteArray(qt_ui_text(module)))
    buffer.open(QIODevice.ReadOnly)
    widget = QUiLoader().load(buffer)
    if widget is None:
        raise RuntimeError(f"Qt could not build {ui_path(module)}")
    return widget


def child(panel, name: str):
    from PySide6.QtWidgets import QWidget

    found = panel.findChild(QWidget, name)
    if found is None:
        raise KeyError(f"{name} not in the panel")
    return found
