"""The PASTASynth panels (PASTASynth/PASTASynthWidgets/) driven on a real slicer-core scene.

Slicer's Qt (PythonQt) cannot be installed here, so the panels drive stand-in widgets built from
the names and classes in PASTASynth.ui (a name the .ui lacks fails here too), with PythonQt's
habit of dropping signal arguments a slot does not take. The scene, the interaction and selection
nodes, the parameter node, the session, the report store and the synth-batch process are real.
What is checked is what a user would notice: which lesion types can be chosen, that choices
come back with the scene, that one click places one lesion and releases the button, that a
report edit needs a reader and keeps the machine text, and that a batch shows its progress,
finishes or cancels.
"""

from __future__ import annotations

import inspect
import sys
import time
import types
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO
from synth_scene import LIVER, SAMPLE_CT, load_node, organ_core_ras


class Widget:
    """What the panels use of any Qt widget: properties, connect() and firing a signal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.enabled, self.visible, self.checked, self.toolTip, self.text = True, True, False, "", ""
        self.blocked = False
        self.slots: dict = {}

    def connect(self, signal: str, slot) -> None:
        self.slots.setdefault(signal, []).append(slot)

    def emit(self, signal: str, *args) -> None:
        if self.blocked:
            return
        for slot in self.slots.get(signal, []):  # PythonQt passes only the arguments a slot takes
            takes = len([p for p in inspect.signature(slot).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD])
            slot(*args[:takes])

    def blockSignals(self, block: bool) -> None:
        self.blocked = block

    def setFont(self, font) -> None:
        pass


class Item:
    def __init__(self) -> None:
        self.on, self.tip = True, ""

    def setEnabled(self, on: bool) -> None:
        self.on = on

    def isEnabled(self) -> bool:
        return self.on

    def setToolTip(self, tip: str) -> None:
        self.tip = tip


class ComboBox(Widget):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.items: list = []  # [text, data, Item]
        self._index, self._typed = -1, None
        self._line = Widget(name + ".lineEdit")

    def clear(self) -> None:
        self.items, self._index, self._typed = [], -1, None

    def addItem(self, text, data=None) -> None:
        self.items.append([text, data, Item()])
        self._index = max(self._index, 0)

    def addItems(self, texts) -> None:
        for text in texts:
            self.addItem(text)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        self._index, self._typed = index, None

    @property
    def currentText(self) -> str:
        return self._typed if self._typed is not None else self.items[self._index][0] if self._index >= 0 else ""

    @property
    def currentData(self):
        return self.items[self._index][1] if self._index >= 0 else None

    def itemData(self, index: int):
        return self.items[index][1]

    def findText(self, text) -> int:
        return next((i for i, item in enumerate(self.items) if item[0] == text), -1)

    def findData(self, data) -> int:
        return next((i for i, item in enumerate(self.items) if item[1] == data), -1)

    def setEditText(self, text: str) -> None:
        self._typed = text

    def lineEdit(self) -> Widget:
        return self._line

    def model(self):
        return types.SimpleNamespace(item=lambda index: self.items[index][2])

    def texts(self) -> list:
        return [item[0] for item in self.items]


class TextEdit(Widget):
    def setPlainText(self, text: str) -> None:
        self.text = text

    def toPlainText(self) -> str:
        return self.text


class ProgressBar(Widget):
    value = 0


STAND_INS = {"QComboBox": ComboBox, "QPlainTextEdit": TextEdit, "QProgressBar": ProgressBar}


def ui_from_the_ui_file():
    root = ET.parse(REPO / "PASTASynth" / "Resources" / "UI" / "PASTASynth.ui").getroot()
    return types.SimpleNamespace(**{w.get("name"): STAND_INS.get(w.get("class"), Widget)(w.get("name"))
                                    for w in root.iter("widget")})


class Timer(Widget):
    """qt.QTimer: the test fires ``timeout()`` itself; single shots wait in ``PENDING``."""

    pending: list = []

    def __init__(self) -> None:
        super().__init__("timer")
        self.active = False

    def setInterval(self, ms: int) -> None:
        pass

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    @staticmethod
    def singleShot(ms: int, function) -> None:
        Timer.pending.append(function)


def run_pending() -> None:
    while Timer.pending:
        Timer.pending.pop(0)()


@pytest.fixture
def gui(mrml_scene, monkeypatch, tmp_path):
    """Stand-in Qt, a real scene with the sample host and its organ segmentation, and the panels' inputs."""
    import slicer
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTALib.io import sample_data
    from PASTALib.lesions.anatomy import totalsegmentator_v2_names as v2_names

    log = {"warnings": [], "folder": str(tmp_path / "chosen")}
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    qt = types.ModuleType("qt")
    qt.QTimer = Timer
    qt.Qt = types.SimpleNamespace(WaitCursor=0)
    qt.QFontDatabase = types.SimpleNamespace(systemFont=lambda kind: None, FixedFont=0)
    qt.QFileDialog = types.SimpleNamespace(getExistingDirectory=lambda *args: log["folder"])
    monkeypatch.setitem(sys.modules, "slicer.i18n", i18n)
    monkeypatch.setitem(sys.modules, "qt", qt)
    monkeypatch.setattr(slicer, "i18n", i18n, raising=False)
    interaction = mrml_scene.AddNewNodeByClass("vtkMRMLInteractionNode")
    selection = mrml_scene.AddNewNodeByClass("vtkMRMLSelectionNode")
    app_logic = types.SimpleNamespace(GetInteractionNode=lambda: interaction, GetSelectionNode=lambda: selection)
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(
        testingEnabled=lambda: True, processEvents=lambda: None, applicationLogic=lambda: app_logic,
        setOverrideCursor=lambda cursor: None, restoreOverrideCursor=lambda: None), raising=False)
    monkeypatch.setattr(slicer.util, "warningDisplay", lambda text, **kw: log["warnings"].append(text))
    monkeypatch.setattr(slicer.util, "mainWindow", lambda: None)
    monkeypatch.setattr(slicer.util, "tempDirectory", lambda *args, **kw: str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("PASTASynthWidgets")]:
        monkeypatch.delitem(sys.modules, name)
    Timer.pending = []

    ct = load_node(mrml_scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    labelmap = load_node(mrml_scene, sample_data.SAMPLES["sample-organs"].path, "vtkMRMLLabelMapVolumeNode", "o")
    organs = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Abdomen organs")
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, organs)
    names = v2_names()
    for i in range(organs.GetSegmentation().GetNumberOfSegments()):  # as TotalSegmentator names them
        segment = organs.GetSegmentation().GetNthSegment(i)
        segment.SetName(names[int(segment.GetName().split("_")[1])])
    mrml_scene.RemoveNode(labelmap)
    parameters = types.SimpleNamespace(
        parameterNode=mrml_scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "PASTASynth"),
        hostVolume=ct, organSegmentation=organs, seed=0, readerName="", batchUseFolder=False,
        batchHostsFolder="", batchOutputFolder="", batchPerType=1, batchWorkers=1, batchAllTypes=False)
    return types.SimpleNamespace(ui=ui_from_the_ui_file(), parameters=parameters, scene=mrml_scene,
                                 interaction=interaction, log=log, tmp=tmp_path)


def test_types_follow_the_segmentation_and_choices_come_back_with_the_parameter_node(gui):
    from PASTASynthWidgets.lesion_options import LesionOptions

    ui, p = gui.ui, gui.parameters
    options = LesionOptions(ui, lambda: p)
    options.setup()
    from PASTALib.lesions.lesion_types import LESION_TYPES

    assert ui.lesionTypeComboBox.count == len(LESION_TYPES)  # every type of the table has a synthesis spec
    options.organsChanged(None)  # no segmentation: only the thresholded lung
    assert options.lesionType() == "lung_tumor" and options.typeAvailable()
    assert [ui.lesionTypeComboBox.itemData(i) for i in range(15) if ui.lesionTypeComboBox.items[i][2].on] == [
        "lung_tumor"]
    options.organsChanged(p.organSegmentation)
    enabled = {ui.lesionTypeComboBox.itemData(i) for i in range(15) if ui.lesionTypeComboBox.items[i][2].on}
    assert {"liver_tumor", "kidney_stone", "bone_metastasis"} <= enabled and "esophageal_cancer" not in enabled

    ui.lesionTypeComboBox.currentIndex = ui.lesionTypeComboBox.findData("kidney_stone")
    options.fillOptions()
    assert ui.sizeComboBox.texts() == ["random", "3", "5", "8", "10", "15", "20", "25"]
    assert ui.densityComboBox.texts() == ["random", "hyperdense"]
    ui.sizeComboBox.setEditText("7.5")
    ui.shapeComboBox.currentIndex = ui.shapeComboBox.findText("punctate-nodular")
    options.store()

    again = LesionOptions(ui_from_the_ui_file(), lambda: p)  # the module opened again on this scene
    again.setup()
    again.organsChanged(p.organSegmentation)
    assert again.lesionType() == "kidney_stone" and again.sizeText() == "7.5"
    assert again.chosenAttributes()["shape"] == "punctate-nodular"
    # a typed size the next type does not allow falls back to random
    p.parameterNode.SetParameter("LesionSize", "300")
    again.fillOptions()
    assert again.sizeText() == "random"


def test_one_click_places_one_lesion_and_releases_the_button(gui):
    from slicer import vtkMRMLInteractionNode

    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTASynthWidgets.place_button import PlaceButton

    ui, points = gui.ui, []
    button = PlaceButton(ui, points.append)
    button.setup()
    ui.placeButton.checked = True
    ui.placeButton.emit("toggled(bool)", True)
    assert gui.interaction.GetCurrentInteractionMode() == vtkMRMLInteractionNode.Place
    assert "Click in a slice view" in ui.statusLabel.text
    seed_node = gui.scene.GetFirstNodeByName("PASTASynth seed")
    point = organ_core_ras(read_volume(sample_data.SAMPLES["sample-organs"].path), LIVER)
    seed_node.AddControlPoint(*point)
    assert points == [] and not ui.placeButton.checked  # placed only once Slicer is done with the click
    run_pending()
    assert points == [pytest.approx(point)] and seed_node.GetNumberOfControlPoints() == 0
    assert gui.interaction.GetCurrentInteractionMode() == vtkMRMLInteractionNode.ViewTransform

    ui.placeButton.checked = True
    ui.placeButton.emit("toggled(bool)", True)
    gui.interaction.SetCurrentInteractionMode(vtkMRMLInteractionNode.ViewTransform)  # Esc
    assert not ui.placeButton.checked
    run_pending()  # once the Esc is handled, no point places a lesion
    seed_node.AddControlPoint(*point)
    run_pending()
    assert len(points) == 1
    button.cleanup()
    assert gui.scene.GetFirstNodeByName("PASTASynth seed") is None


def test_the_report_view_shows_the_lesion_and_edits_need_a_reader(gui):
    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTASlicerLib import report_store
    from PASTASynthSlicerLib.actions import Sessions
    from PASTASynthWidgets.report_view import ReportView

    ui, p = gui.ui, gui.parameters
    view = ReportView(ui, lambda: p)
    view.setup()
    view.show(None)
    assert ui.reportTextEdit.toPlainText() == "" and not ui.saveImpressionButton.enabled
    point = organ_core_ras(read_volume(sample_data.SAMPLES["sample-organs"].path), LIVER)
    step = Sessions().place(p.hostVolume, p.organSegmentation, "liver_tumor", point, "20", {}, 3)
    view.show(step)
    assert "Liver tumor" in ui.reportTextEdit.toPlainText() and ui.saveImpressionButton.enabled
    machine = ui.impressionTextEdit.toPlainText()
    assert machine

    ui.impressionTextEdit.setPlainText("Synthetic; for training only.")
    ui.saveImpressionButton.emit("clicked(bool)", False)
    assert gui.log["warnings"] and report_store.load_report(step.report_node).impression == machine
    p.readerName = "Dr Reader"
    ui.saveImpressionButton.emit("clicked(bool)", False)
    report = report_store.load_report(step.report_node)
    assert report.impression == "Synthetic; for training only." and report.edits[0].editor == "Dr Reader"
    assert report_store.machine_value(step.report_node, "report", "impression") == machine
    assert "Synthetic; for training only." in ui.reportTextEdit.toPlainText()


def run_batch(panel, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while panel.running and time.monotonic() < deadline:
        panel._timer.emit("timeout()")
        time.sleep(0.1)
    panel._timer.emit("timeout()")


def test_the_batch_panel_shows_progress_finishes_and_cancels(gui):
    from PASTASynthWidgets.batch_panel import BatchPanel

    class Logic:  # the module's logic facade: the real job preparation, this repository's folders
        @staticmethod
        def prepareBatch(outFolder, perType, hostsFolder=None, hostVolume=None, organSegmentation=None,
                         types=(), seed=0, workers=1):
            from PASTASynthSlicerLib.batch_job import prepare_batch

            return prepare_batch(outFolder, perType, module_dirs=[REPO / "PASTA", REPO / "PASTASynth"],
                                 hosts_dir=hostsFolder, host_node=hostVolume, organ_node=organSegmentation,
                                 work_dir=gui.tmp / "work", types=types, seed=seed, workers=workers,
                                 python=sys.executable)

    ui, p, changes = gui.ui, gui.parameters, []
    panel = BatchPanel(ui, Logic, lambda: p, lambda: "kidney_cyst", lambda: changes.append(1))
    panel.setup()
    panel.updateButtons(hasHost=True)
    assert not ui.batchRunButton.enabled  # no dataset folder yet
    ui.batchOutputBrowseButton.emit("clicked(bool)", False)
    assert p.batchOutputFolder == gui.log["folder"]
    panel.updateButtons(hasHost=True)
    assert ui.batchRunButton.enabled and not ui.batchHostsLineEdit.enabled

    ui.batchRunButton.emit("clicked(bool)", False)
    assert panel.running
    panel.updateButtons(hasHost=True)
    assert ui.batchRunButton.text == "Cancel"
    run_batch(panel)
    assert not panel.running and ui.batchProgressBar.value == 100
    assert ui.batchStatusLabel.text.startswith("Done:") and not (gui.tmp / "work").exists()
    assert list((gui.tmp / "chosen").glob("*/*/Abdomen_CT_0000/report.json"))

    p.batchOutputFolder, p.batchAllTypes = str(gui.tmp / "all"), True
    ui.batchRunButton.emit("clicked(bool)", False)
    time.sleep(0.5)
    ui.batchRunButton.emit("clicked(bool)", False)  # Cancel
    run_batch(panel, 60)
    assert ui.batchStatusLabel.text.startswith("Cancelled.") and not panel.running

    p.batchUseFolder, p.batchHostsFolder = True, str(gui.tmp / "nowhere")
    ui.batchRunButton.emit("clicked(bool)", False)
    assert "does not exist" in ui.batchStatusLabel.text and not panel.running
