"""Stand-in widgets built from the real PASTA.ui (no PythonQt here): each named widget of the .ui
becomes an object with the properties and signals the panels use."""

from __future__ import annotations

import types
import xml.etree.ElementTree as ET

from conftest import REPO


class Widget:
    """What the panel uses of any Qt widget: properties, connect() and a way to fire a signal."""

    def __init__(self) -> None:
        self.enabled, self.visible, self.toolTip, self.text, self.styleSheet = True, True, "", "", ""
        self.slots: dict = {}

    def connect(self, signal: str, slot) -> None:
        self.slots[signal] = slot

    def emit(self, signal: str, *args) -> None:
        self.slots[signal](*args)

    def setStyleSheet(self, sheet: str) -> None:
        self.styleSheet = sheet

    def blockSignals(self, block: bool) -> None:
        self.blocked = block


class ComboBox(Widget):
    def __init__(self) -> None:
        super().__init__()
        self.items: list = []
        self._index = -1

    def addItem(self, text, data=None) -> None:
        self.items.append((text, data))
        if self._index < 0:
            self.currentIndex = 0

    def clear(self) -> None:
        self.items, self._index = [], -1

    def findText(self, text) -> int:
        return next((i for i, (t, _) in enumerate(self.items) if t == text), -1)

    def findData(self, data) -> int:
        return next((i for i, (_, d) in enumerate(self.items) if d == data), -1)

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        changed, self._index = index != self._index, index
        if changed and "currentIndexChanged(int)" in self.slots:
            self.slots["currentIndexChanged(int)"](index)

    @property
    def currentData(self):
        return self.items[self._index][1] if self._index >= 0 else None

    @property
    def currentText(self) -> str:
        return self.items[self._index][0] if self._index >= 0 else ""


class SpinBox(Widget):
    def __init__(self) -> None:
        super().__init__()
        self.value, self.suffix, self.decimals = 0.0, "", 2


class TextEdit(Widget):
    def setPlainText(self, text: str) -> None:
        self.text = text

    def toPlainText(self) -> str:
        return self.text


class TableView(Widget):
    def setMRMLTableNode(self, node) -> None:
        self.table = node


STAND_INS = {"QComboBox": ComboBox, "QDoubleSpinBox": SpinBox, "QPlainTextEdit": TextEdit,
             "qMRMLTableView": TableView}


def ui_from_the_ui_file():
    root = ET.parse(REPO / "PASTA" / "Resources" / "UI" / "PASTA.ui").getroot()
    widgets = {w.get("name"): STAND_INS.get(w.get("class"), Widget)() for w in root.iter("widget")}
    for name in ("shapeComboBox", "longAxisSpinBox", "volumeSpinBox"):  # the .ui's decimals and suffixes
        widget = root.find(f".//widget[@name='{name}']")
        for prop in widget.findall("property"):
            if prop.get("name") == "decimals":
                widgets[name].decimals = int(prop.findtext("number"))
            if prop.get("name") == "suffix":
                widgets[name].suffix = prop.findtext("string")
    return types.SimpleNamespace(**widgets)
