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

from module_files import ui_flags, ui_path

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
    if not os.environ.get("QT_QPA_PLATFORM"):  # no screen here, nor in CI
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
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


#: The longest texts code writes at run time, roughly: a model id with its kind, a finding with a long type,
#: a status message. Combo boxes and labels get these before a panel is measured.
LONG_ITEM = "F12: Hepatocellular carcinoma, segment VIII of the liver (pasta-default-v2, bundled)"
LONG_MESSAGE = ("Segments recognised as organs: liver, spleen, left kidney, right kidney, pancreas, stomach; "
                "ignored: L1 vertebra, superior lobe of left lung, tumour (drawn). ") * 2


def collapsed_sections(module: str) -> set[str]:
    """Names of the sections the .ui starts collapsed."""
    return ui_flags(module, "collapsed")


def collapse(panel, module: str) -> None:
    """Hide what the .ui's collapsed sections hold, as ctkCollapsibleButton does."""
    from PySide6.QtWidgets import QWidget

    for name in collapsed_sections(module):
        for inner in child(panel, name).findChildren(QWidget, options=_direct_children()):
            inner.hide()
    for layout_owner in [panel, *panel.findChildren(QWidget)]:
        if layout_owner.layout() is not None:
            layout_owner.layout().invalidate()
    application().processEvents()


def _direct_children():
    from PySide6.QtCore import Qt

    return Qt.FindChildOption.FindDirectChildrenOnly


def fill_with_long_text(panel) -> None:
    """Give every combo box a long item and every word-wrapped label a long message."""
    from PySide6.QtWidgets import QComboBox, QLabel

    for combo in panel.findChildren(QComboBox):
        combo.addItem(LONG_ITEM)
        combo.setCurrentIndex(combo.count() - 1)
    for label in panel.findChildren(QLabel):
        if label.wordWrap():
            label.setText(LONG_MESSAGE)


def in_module_panel(panel, width: int, height: int):
    """The panel in a resizable scroll area of ``width`` x ``height``, as Slicer's module panel holds it."""
    from PySide6.QtWidgets import QScrollArea

    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(panel)
    area.resize(width, height)
    area.show()
    application().processEvents()
    return area
