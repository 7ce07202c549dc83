"""The report panel's behaviour (PASTAWidgets/report_panel.py) on a real slicer-core scene.

Slicer's Qt (PythonQt) cannot be installed here, so the panel drives stand-ins built from the
names and classes in PASTA.ui (a name the .ui lacks fails here too). The scene, the result nodes
and the report store are real MRML. What is checked is what a reader would notice: a typed
measurement is stored as a reader edit with the machine value kept and shows in the table; a box
that only lost focus stores nothing; no edit without a reader name.
"""

from __future__ import annotations

import sys
import types

import pytest

from conftest import REPO
from slicer_scene import load_ct
from ui_stand_ins import ui_from_the_ui_file


class UserSettings:
    """What the panel uses of Slicer's QSettings (slicer.app.userSettings()): value / setValue."""

    def __init__(self) -> None:
        self.values: dict = {}

    def value(self, key, default=None):
        return self.values.get(key, default)

    def setValue(self, key, value) -> None:
        self.values[key] = value


@pytest.fixture
def panel(analysis, scene, monkeypatch):
    """A set-up report panel showing a real imported result; (panel, ui, results, parameter node, log)."""
    import slicer

    from PASTASlicerLib.results_import import import_results

    log = {"warnings": [], "jumps": []}
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    monkeypatch.setitem(sys.modules, "slicer.i18n", i18n)
    monkeypatch.setattr(slicer, "i18n", i18n, raising=False)
    monkeypatch.setattr(slicer.util, "warningDisplay", lambda text, **kw: log["warnings"].append(text))
    monkeypatch.setattr(slicer.util, "showStatusMessage", lambda *args: None)
    settings = UserSettings()
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(testingEnabled=lambda: True, userSettings=lambda: settings),
                        raising=False)
    markups = types.SimpleNamespace(JumpSlicesToLocation=lambda *args: log["jumps"].append(args[:3]))
    monkeypatch.setattr(slicer.modules, "markups", types.SimpleNamespace(logic=lambda: markups), raising=False)
    monkeypatch.syspath_prepend(str(REPO / "PASTA"))
    for name in [n for n in sys.modules if n.startswith("PASTAWidgets")]:
        monkeypatch.delitem(sys.modules, name)
    from PASTAWidgets.report_panel import ReportPanel

    _, out = analysis
    results = import_results(scene, load_ct(scene), out)
    parameters = types.SimpleNamespace(resultSegmentation=results.segmentation, readerName="Dr Reader")
    ui = ui_from_the_ui_file()
    report_panel = ReportPanel(ui, lambda: parameters)
    report_panel.setup()
    ui.resultSelector.emit("currentNodeChanged(vtkMRMLNode*)", results.segmentation)
    return report_panel, ui, results, parameters, log


def test_choosing_a_result_lists_its_findings_and_centres_the_views(panel):
    from PASTASlicerLib import report_store

    _, ui, results, _, log = panel
    report = report_store.load_report(results.report)
    assert [data for _, data in ui.findingComboBox.items] == ["F1", "F2"]
    assert ui.findingsTableView.table is results.table
    assert log["jumps"][-1] == tuple(report.finding("F1").measurements.recist.slice_center_ras)
    assert ui.longAxisSpinBox.value == pytest.approx(report.finding("F1").measurements.recist.long_axis.length_mm)
    ui.findingComboBox.currentIndex = 1
    assert log["jumps"][-1] == tuple(report.finding("F2").measurements.recist.slice_center_ras)
    from PASTASlicerLib.results_import import FINDING_TAG

    assert {n.GetAttribute(FINDING_TAG) for n in results.markups if n.GetDisplayNode().GetVisibility()} == {"F2"}
    assert ui.volumeSpinBox.value == pytest.approx(report.finding("F2").measurements.volume_ml)


def test_a_typed_measurement_is_a_reader_edit_and_focus_alone_stores_nothing(panel):
    from PASTASlicerLib import report_store

    _, ui, results, parameters, log = panel
    machine = report_store.measurement_value(results.report, "F1", "long_axis_mm")
    ui.longAxisSpinBox.emit("editingFinished()")  # the reader only tabbed through the box
    ui.shapeComboBox.emit("activated(int)", ui.shapeComboBox.currentIndex)  # re-chose the same option
    assert report_store.load_report(results.report).edits == []

    ui.longAxisSpinBox.value = 42.5
    ui.longAxisSpinBox.emit("editingFinished()")
    report = report_store.load_report(results.report)
    assert report.finding("F1").measurements.recist.long_axis.length_mm == 42.5
    assert [(e.field, e.original, e.editor) for e in report.edits] == [
        ("measurements.recist.long_axis.length_mm", machine, "Dr Reader")]
    assert results.table.GetCellText(0, 4) == "42.5"
    assert "bold" in ui.longAxisSpinBox.styleSheet and f"{machine:.2f}" in ui.longAxisSpinBox.toolTip

    parameters.readerName = "  "
    ui.volumeSpinBox.value = 1.0
    ui.volumeSpinBox.emit("editingFinished()")
    assert log["warnings"] and "name" in log["warnings"][-1]
    assert len(report_store.load_report(results.report).edits) == 1  # nothing stored without a name
    assert ui.volumeSpinBox.value == pytest.approx(report_store.measurement_value(results.report, "F1", "volume_ml"))


def test_review_and_attribute_edits_reach_the_table(panel):
    from PASTALib.report.model import ATTRIBUTE_OPTIONS
    from PASTASlicerLib import report_store

    _, ui, results, _, _ = panel
    machine = report_store.load_report(results.report).finding("F1").attributes["Shape"].value
    other = next(option for option in ATTRIBUTE_OPTIONS["Shape"] if option != machine)
    ui.shapeComboBox.currentIndex = ui.shapeComboBox.findText(other)
    ui.shapeComboBox.emit("activated(int)", ui.shapeComboBox.currentIndex)
    ui.rejectFindingButton.emit("clicked(bool)")
    report = report_store.load_report(results.report)
    assert report.finding("F1").attributes["Shape"].value == other
    assert report_store.machine_value(results.report, "F1", "attributes.Shape.value") == machine
    assert report.finding("F1").review.status == "rejected" and results.table.GetCellText(0, 9) == "rejected"
    assert ui.reviewStatusLabel.text == "Review: rejected. Report not signed."


def test_sign_report_saves_the_typed_impression_and_signs_once_every_finding_is_decided(panel):
    """Sign report: refused (said) while a finding is pending; then the typed impression is saved and the
    report signed by the reader; an edit after that removes the signature."""
    from PASTASlicerLib import report_store

    _, ui, results, _, log = panel
    ui.signReportButton.emit("clicked(bool)")
    assert report_store.load_report(results.report).signature is None
    assert log["warnings"] and "still pending: F1, F2" in log["warnings"][-1]
    for index in (0, 1):
        ui.findingComboBox.currentIndex = index
        ui.acceptFindingButton.emit("clicked(bool)")
    ui.impressionTextEdit.setPlainText("Two lesions, both confirmed.")
    ui.signReportButton.emit("clicked(bool)")
    report = report_store.load_report(results.report)
    assert report.impression == "Two lesions, both confirmed."
    assert report.signature.reader == "Dr Reader"
    assert "Report signed by Dr Reader" in ui.reviewStatusLabel.text
    ui.rejectFindingButton.emit("clicked(bool)")
    assert report_store.load_report(results.report).signature is None
    assert ui.reviewStatusLabel.text.endswith("Report not signed.")


def test_editing_a_segment_re_measures_it_once_the_edits_settle(panel, monkeypatch):
    """The segment watcher hears real vtkSegmentation events and re-measures the edited finding once."""
    import numpy as np
    import vtk

    import slicer
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTASlicerLib import report_store
    from PASTASlicerLib.results_import import INPUT_ROLE
    from PASTASlicerLib.volume_nodes import node_to_volume, volume_to_node

    report_panel, ui, results, parameters, _ = panel
    timers = []
    qt = types.ModuleType("qt")
    qt.QTimer = types.SimpleNamespace(singleShot=lambda ms, slot: timers.append(slot))
    monkeypatch.setitem(sys.modules, "qt", qt)
    for name in [n for n in sys.modules if n.startswith("PASTAWidgets.segment_watcher")]:
        monkeypatch.delitem(sys.modules, name)
    from PASTAWidgets.segment_watcher import SegmentWatcher

    shown = []
    watcher = SegmentWatcher(lambda: parameters, onRemeasured=lambda: shown.append(report_panel.showFinding()))
    watcher.watch(results.segmentation)
    ui.findingComboBox.currentIndex = 1  # the reader looks at F2 while editing its segment
    ct = results.segmentation.GetNodeReference(INPUT_ROLE)
    segment_id = results.segment_ids["F2"]
    before = report_store.measurement_value(results.report, "F2", "volume_ml")
    mask = slicer.util.arrayFromSegmentBinaryLabelmap(results.segmentation, segment_id, ct)
    ks = np.nonzero(mask.any(axis=(1, 2)))[0]
    mask[ks[len(ks) // 2]:] = 0  # erase the upper half, as a Segment Editor stroke would
    labelmap = volume_to_node(node_to_volume(ct).with_array(mask.astype(np.uint8)), results.segmentation.GetScene(),
                              "edit", "vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, results.segmentation, ids)
    assert len(timers) == 1  # many events, one pending measurement
    timers.pop()()
    after = report_store.measurement_value(results.report, "F2", "volume_ml")
    assert after < before and shown == [True]
    assert ui.volumeSpinBox.value == pytest.approx(after)  # the panel shows the new measurement
    assert report_store.load_report(results.report).edits[-1].editor == "Dr Reader"
    watcher.stop()


def test_a_segment_the_reader_draws_becomes_a_finding_measured_like_the_others(panel, monkeypatch):
    """Was: a drawn lesion never became a finding. A segment named after a PASTA lesion type, drawn into the
    shown result, is measured with the report's code once the strokes settle, listed, accepted by its reader
    and tagged; a segment that names no type is left alone, with a status message saying how."""
    import numpy as np
    import vtk

    import slicer
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTALib.report.measurements import measure
    from PASTASlicerLib import report_store
    from PASTASlicerLib.remeasure import finding_of_segment
    from PASTASlicerLib.results_import import INPUT_ROLE
    from PASTASlicerLib.volume_nodes import node_to_volume, volume_to_node

    report_panel, ui, results, parameters, _ = panel
    timers, statuses = [], []
    qt = types.ModuleType("qt")
    qt.QTimer = types.SimpleNamespace(singleShot=lambda ms, slot: timers.append(slot))
    monkeypatch.setitem(sys.modules, "qt", qt)
    monkeypatch.setattr(slicer.util, "showStatusMessage", lambda text, *args: statuses.append(text))
    for name in [n for n in sys.modules if n.startswith("PASTAWidgets.segment_watcher")]:
        monkeypatch.delitem(sys.modules, name)
    from PASTAWidgets.segment_watcher import SegmentWatcher

    watcher = SegmentWatcher(lambda: parameters, onRemeasured=report_panel.onReportChanged)
    watcher.watch(results.segmentation)
    ct = results.segmentation.GetNodeReference(INPUT_ROLE)
    image = node_to_volume(ct)
    k, j, i = np.indices(image.array.shape)
    centre = np.array(image.array.shape) // 2
    drawn = ((k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= 5 ** 2).astype(np.uint8)

    def draw(name):
        seg = results.segmentation.GetSegmentation()
        segment_id = seg.AddEmptySegment("", name)
        labelmap = volume_to_node(image.with_array(drawn), results.segmentation.GetScene(), "stroke",
                                  "vtkMRMLLabelMapVolumeNode")
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, results.segmentation, ids)
        while timers:
            timers.pop()()
        return segment_id

    untyped = draw("Segment_7")
    assert finding_of_segment(results.segmentation, untyped) is None
    assert [f.id for f in report_store.load_report(results.report).findings] == ["F1", "F2"]
    assert any("Segment_7" in text and "lesion type" in text for text in statuses)

    segment_id = draw("Liver tumor 3")
    report = report_store.load_report(results.report)
    assert [f.id for f in report.findings] == ["F1", "F2", "F3"]
    added = report.finding("F3")
    assert finding_of_segment(results.segmentation, segment_id) == "F3"
    assert added.lesion_type.key == "liver_tumor" and added.review.status == "accepted"
    assert added.review.reviewer == "Dr Reader" and added.confidence is None and "Drawn by the reader." in added.notes
    expected = measure(slicer.util.arrayFromSegmentBinaryLabelmap(results.segmentation, segment_id, ct) > 0, image)
    assert added.measurements.volume_ml == pytest.approx(expected.volume_ml)
    assert added.measurements.volume_ml == pytest.approx(drawn.sum() * np.prod(image.spacing) / 1000, rel=1e-6)
    assert report.edits[-1].target == "F3" and report.edits[-1].original is None
    assert results.table.GetNumberOfRows() == 3 and results.table.GetCellText(2, 0) == "F3"
    assert [data for _, data in ui.findingComboBox.items] == ["F1", "F2", "F3"]  # the panel lists it
    assert results.segmentation.GetSegmentation().GetSegment(segment_id).GetName().startswith("Liver tumor")
    watcher.stop()


def test_the_reader_name_is_remembered_for_the_next_scene(panel):
    """Was: asked again in every scene (it lived only in the scene's parameter node)."""
    import slicer

    from PASTAWidgets.report_panel import READER_SETTING, ReportPanel

    report_panel, ui, results, parameters, log = panel
    ui.findingComboBox.currentIndex = 0
    ui.acceptFindingButton.emit("clicked(bool)")  # an edit as "Dr Reader"
    assert slicer.app.userSettings().value(READER_SETTING) == "Dr Reader"
    fresh = types.SimpleNamespace(resultSegmentation=None, readerName="")  # a new scene's parameter node
    ReportPanel(ui, lambda: fresh).restoreReader()
    assert fresh.readerName == "Dr Reader"
    typed = types.SimpleNamespace(resultSegmentation=None, readerName="Dr Other")  # never overwrites a typed name
    ReportPanel(ui, lambda: typed).restoreReader()
    assert typed.readerName == "Dr Other"


def test_the_reader_corrects_a_findings_type_among_those_its_organ_can_host(panel):
    """Was: a type could only be rejected, not corrected. The choice is limited to the organ's types,
    stored as a reader edit (machine type kept), and the segment, table and T category follow."""
    from PASTASlicerLib import report_store
    _, ui, results, parameters, log = panel
    ui.findingComboBox.currentIndex = 0
    assert [name for name, _ in ui.findingTypeComboBox.items] == ["Kidney tumor", "Kidney cyst", "Kidney stone"]
    assert ui.findingTypeComboBox.currentData == "kidney_tumor" and "Kidney tumor" in ui.findingTypeComboBox.toolTip
    ui.findingTypeComboBox.currentIndex = ui.findingTypeComboBox.findData("kidney_cyst")
    ui.findingTypeComboBox.emit("activated(int)", ui.findingTypeComboBox.currentIndex)
    report = report_store.load_report(results.report)
    assert report.finding("F1").lesion_type.key == "kidney_cyst"
    (edit,) = [e for e in report.edits if e.field == "lesion_type"]
    assert edit.editor == "Dr Reader" and edit.original["key"] == "kidney_tumor"
    assert results.table.GetCellText(0, 2) == "Kidney cyst"
    seg = results.segmentation.GetSegmentation()
    names = [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]
    assert "Kidney cyst 1" in names and len(names) == 2  # the same segment, renamed
    parameters.readerName = ""  # no name, no edit
    ui.findingTypeComboBox.currentIndex = ui.findingTypeComboBox.findData("kidney_stone")
    ui.findingTypeComboBox.emit("activated(int)", ui.findingTypeComboBox.currentIndex)
    assert report_store.load_report(results.report).finding("F1").lesion_type.key == "kidney_cyst"
    assert log["warnings"] and ui.findingTypeComboBox.currentData == "kidney_cyst"  # shows the stored type again


def test_the_reader_corrects_a_findings_location_among_its_organs_sites(panel):
    """Was: a location could only be rejected. The choice is limited to the sites of the organ that hosts the
    finding's type, stored as a reader edit (machine location kept); the table and the segment follow."""
    from PASTASlicerLib import report_store
    _, ui, results, parameters, log = panel
    ui.findingComboBox.currentIndex = 0
    assert [name for name, _ in ui.findingLocationComboBox.items] == ["kidney right", "kidney left"]
    machine = report_store.field_value(results.report, "F1", "location.site")
    assert ui.findingLocationComboBox.currentText == machine and machine in ui.findingLocationComboBox.toolTip
    other = next(name for name, _ in ui.findingLocationComboBox.items if name != machine)
    ui.findingLocationComboBox.currentIndex = ui.findingLocationComboBox.findText(other)
    ui.findingLocationComboBox.emit("activated(int)", ui.findingLocationComboBox.currentIndex)
    report = report_store.load_report(results.report)
    assert report.finding("F1").location.site == other and report.finding("F1").location.source == "reader"
    (edit,) = [e for e in report.edits if e.field == "location"]
    assert edit.editor == "Dr Reader" and edit.original["site"] == machine
    assert results.table.GetCellText(0, 3) == other
    from PASTALib.lesions.codes import LATERALITY
    from PASTASlicerLib.results_import import finding_segments

    segment = results.segmentation.GetSegmentation().GetSegment(finding_segments(results.segmentation)["F1"])
    side = report.finding("F1").location.side
    import vtk

    terminology = vtk.mutable("")
    assert segment.GetTag(segment.GetTerminologyEntryTagName(), terminology)
    terminology = str(terminology)  # the anatomic modifier follows the side
    assert terminology.endswith(f"^{LATERALITY[side].value}^{LATERALITY[side].meaning}")
    ui.findingLocationComboBox.emit("activated(int)", ui.findingLocationComboBox.currentIndex)  # same: no edit
    assert len([e for e in report_store.load_report(results.report).edits if e.field == "location"]) == 1
