"""The Findings and Report sections: the selected result's table and its editable report.

Every change goes through ``PASTASlicerLib.report_store`` (which uses ``PASTALib.report.review``),
so it is stored in the scene's report node as a reader edit with the machine value kept, and
survives saving the scene. Drop-downs offer exactly the PASTA attribute vocabulary.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import slicer
from slicer.i18n import tr as _

#: Measurement name in ``PASTALib.report.review.MEASUREMENT_FIELDS`` -> spin box name in the .ui.
MEASUREMENT_SPIN_BOXES = {"long_axis_mm": "longAxisSpinBox", "short_axis_mm": "shortAxisSpinBox",
                          "max_3d_diameter_mm": "maxDiameterSpinBox", "volume_ml": "volumeSpinBox"}


#: Where the reader's name is remembered across scenes and sessions (Slicer's user settings).
READER_SETTING = "PASTA/ReaderName"


class ReportPanel:
    """Shows the selected result's findings and stores the reader's edits and review."""

    def __init__(self, ui, parameterNode: Callable[[], object]) -> None:
        self.ui = ui
        self._parameterNode = parameterNode
        self._updating = False

    def setup(self) -> None:
        self.ui.resultSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onResultChanged)
        self.ui.findingComboBox.connect("currentIndexChanged(int)", self.onFindingChanged)
        self.ui.findingsTableView.connect("clicked(QModelIndex)", self.onTableRowClicked)
        for name, comboBox in self._attributeComboBoxes().items():
            comboBox.connect("activated(int)", lambda index, name=name: self.onAttributeEdited(name))
        for name, spinBox in self._measurementSpinBoxes().items():
            spinBox.connect("editingFinished()", lambda name=name: self.onMeasurementEdited(name))
        self.ui.tCategoryLineEdit.connect("editingFinished()", self.onTCategoryEdited)
        self.ui.findingTypeComboBox.connect("activated(int)", lambda index: self.onLesionTypeEdited())
        self.ui.findingLocationComboBox.connect("activated(int)", lambda index: self.onLocationEdited())
        self.ui.saveImpressionButton.connect("clicked(bool)", self.onSaveImpression)
        self.ui.signReportButton.connect("clicked(bool)", lambda checked=False: self.onSignReport())
        self.ui.acceptFindingButton.connect("clicked(bool)", lambda checked=False: self.onReview("accepted"))
        self.ui.rejectFindingButton.connect("clicked(bool)", lambda checked=False: self.onReview("rejected"))
        self.ui.resetReviewButton.connect("clicked(bool)", lambda checked=False: self.onReview("pending"))
        self._fillAttributeOptions()

    # ------------------------------------------------------------------ widgets
    def _attributeComboBoxes(self) -> dict:
        return {"Shape": self.ui.shapeComboBox, "Density": self.ui.densityComboBox,
                "Heterogeneity": self.ui.heterogeneityComboBox, "Surface": self.ui.surfaceComboBox,
                "Invasion": self.ui.invasionComboBox}

    def _measurementSpinBoxes(self) -> dict:
        return {"long_axis_mm": self.ui.longAxisSpinBox, "short_axis_mm": self.ui.shortAxisSpinBox,
                "max_3d_diameter_mm": self.ui.maxDiameterSpinBox, "volume_ml": self.ui.volumeSpinBox}

    def _fillAttributeOptions(self) -> None:
        from PASTALib.report.model import ATTRIBUTE_OPTIONS

        for name, comboBox in self._attributeComboBoxes().items():
            comboBox.clear()
            for option in ATTRIBUTE_OPTIONS[name]:
                comboBox.addItem(option)

    # ------------------------------------------------------------------ what is shown
    def segmentation(self):
        node = self._parameterNode()
        return node.resultSegmentation if node is not None else None

    def reportNode(self):
        from PASTASlicerLib.results_import import results_of

        nodes = results_of(self.segmentation())
        return nodes["report"] if nodes else None

    def findingId(self) -> Optional[str]:
        return self.ui.findingComboBox.currentData or None

    def onResultChanged(self, node=None) -> None:
        from PASTASlicerLib.results_import import INPUT_ROLE, results_of

        nodes = results_of(node) if node is not None else None
        self.ui.findingsTableView.setMRMLTableNode(nodes["table"] if nodes else None)
        inputNode = node.GetNodeReference(INPUT_ROLE) if nodes else None
        self.ui.exportDicomButton.enabled = bool(inputNode and inputNode.GetAttribute("DICOM.instanceUIDs"))
        self.ui.reportCollapsibleButton.enabled = nodes is not None
        self._updating = True
        try:
            self.ui.findingComboBox.clear()
            if nodes:
                from PASTASlicerLib import report_store

                report = report_store.load_report(nodes["report"])
                self._listFindings(report)
                self.ui.impressionTextEdit.setPlainText(report.impression)
        finally:
            self._updating = False
        self.onFindingChanged()

    def _listFindings(self, report) -> None:
        for finding in report.findings:
            self.ui.findingComboBox.addItem(f"{finding.id}: {finding.lesion_type.name}", finding.id)

    def onReportChanged(self) -> None:
        """After the segment watcher re-measured or added findings: list them again, keep the chosen one."""
        nodes = self.reportNode()
        if nodes is None:
            return
        from PASTASlicerLib import report_store

        chosen, comboBox = self.findingId(), self.ui.findingComboBox
        comboBox.blockSignals(True)
        try:
            comboBox.clear()
            self._listFindings(report_store.load_report(nodes))
            comboBox.currentIndex = max(comboBox.findData(chosen), 0) if chosen else 0
        finally:
            comboBox.blockSignals(False)
        self.showFinding()

    def onFindingChanged(self, index=None) -> None:
        """Show the chosen finding (its values, and only its ROI and long axis) and centre the views on it."""
        if self.showFinding():
            from PASTASlicerLib.results_import import show_markups_of

            show_markups_of(self.segmentation(), self.findingId())
            self.jumpToFinding(self.findingId())

    def showFinding(self) -> bool:
        """Show the stored values of the chosen finding; False when there is none."""
        node, findingId = self.reportNode(), self.findingId()
        if node is None or findingId is None:
            self.ui.reviewStatusLabel.text = ""
            return False
        from PASTASlicerLib import report_store

        report = report_store.load_report(node)
        finding = report.finding(findingId)
        self._updating = True
        try:
            for name, comboBox in self._attributeComboBoxes().items():
                value = finding.attributes[name].value
                comboBox.currentIndex = comboBox.findText(value) if value else -1
                comboBox.toolTip = _("Machine value: {v}").format(
                    v=report_store.machine_value(node, findingId, f"attributes.{name}.value"))
            for name, spinBox in self._measurementSpinBoxes().items():
                self._showMeasurement(node, findingId, name, spinBox)
            self.ui.tCategoryLineEdit.text = finding.staging.value or ""
            self._showLesionType(node, finding)
            self._showLocation(node, finding)
            self.ui.reviewStatusLabel.text = _("Review: {s}").format(s=finding.review.status) + (
                _(". Report signed by {reader} ({time}); any edit removes the signature.").format(
                    reader=report.signature.reader, time=report.signature.time) if report.signature else
                _(". Report not signed."))
        finally:
            self._updating = False
        return True

    def _showMeasurement(self, node, findingId: str, name: str, spinBox) -> None:
        from PASTALib.report.review import MEASUREMENT_FIELDS
        from PASTASlicerLib import report_store

        value = report_store.measurement_value(node, findingId, name)
        machine = report_store.machine_value(node, findingId, MEASUREMENT_FIELDS[name])
        spinBox.value = value
        typed = not math.isclose(value, float(machine), rel_tol=1e-9, abs_tol=1e-9)
        spinBox.setStyleSheet("font-weight: bold" if typed else "")
        spinBox.toolTip = (_("Machine value: {v:.2f}{unit}; this value was entered by a reader.") if typed
                           else _("Machine value: {v:.2f}{unit}. Type your own; the machine value is kept.")
                           ).format(v=float(machine), unit=spinBox.suffix)

    def onTableRowClicked(self, modelIndex) -> None:
        # Column 0 holds the finding id ("F1") whatever the view's header mode.
        findingId = modelIndex.sibling(modelIndex.row(), 0).data()
        index = self.ui.findingComboBox.findData(findingId)
        if index >= 0:
            self.ui.findingComboBox.currentIndex = index  # also centres the slice views on it

    def jumpToFinding(self, findingId: str) -> None:
        from PASTASlicerLib import report_store
        from PASTASlicerLib.results_import import finding_center_ras

        center = finding_center_ras(report_store.load_report(self.reportNode()), findingId)
        slicer.modules.markups.logic().JumpSlicesToLocation(*center, True)

    # ------------------------------------------------------------------ edits
    def restoreReader(self) -> None:
        """Fill an empty Reader field with the name last used, so a new scene does not ask again."""
        node = self._parameterNode()
        if node is None or (node.readerName or "").strip():
            return
        remembered = str(slicer.app.userSettings().value(READER_SETTING, "") or "").strip()
        if remembered:
            node.readerName = remembered

    def _editor(self) -> Optional[str]:
        node = self._parameterNode()
        name = (node.readerName or "").strip() if node is not None else ""
        if not name:
            slicer.util.warningDisplay(_("Enter your name under Reader first: every edit records who made it."))
            return None
        slicer.app.userSettings().setValue(READER_SETTING, name)
        return name

    def _store(self, change: Callable[[object, str], None]) -> None:
        """Run one report change as the reader, then refresh the table; show the stored values on failure."""
        editor, node = self._editor(), self.reportNode()
        if editor is None or node is None:
            self.showFinding()  # show the stored value again
            return
        with slicer.util.tryWithErrorDisplay(_("The edit was not saved.")):
            from PASTASlicerLib.results_import import refresh_table

            try:
                change(node, editor)
            finally:
                refresh_table(self.segmentation())
                self.showFinding()

    def _showLesionType(self, node, finding) -> None:
        """The types this finding's organ can host, the current one chosen; the machine's in the tooltip."""
        from PASTALib.report.review import lesion_type_choices
        from PASTASlicerLib import report_store

        comboBox = self.ui.findingTypeComboBox
        comboBox.clear()
        for lesionType in lesion_type_choices(finding):
            comboBox.addItem(lesionType.name, lesionType.key)
        comboBox.currentIndex = comboBox.findData(finding.lesion_type.key)
        machine = report_store.machine_value(node, finding.id, "lesion_type")
        machineName = machine["name"] if isinstance(machine, dict) else machine.name
        comboBox.toolTip = _("Machine type: {t}").format(t=machineName)

    def onLesionTypeEdited(self) -> None:
        """Store the reader's type; the segment's name, colour and terminology follow."""
        from PASTASlicerLib import report_store

        self._storeChoice(self.ui.findingTypeComboBox, "lesion_type.key", report_store.edit_lesion_type)

    def _storeChoice(self, comboBox, path: str, edit: Callable) -> None:
        """Store the choice in ``comboBox`` (its item data) as the reader's value of the finding's ``path``
        through ``edit(node, findingId, value, editor)``; the segment follows. Nothing when unchanged."""
        if self._updating:
            return
        from PASTASlicerLib import report_store
        from PASTASlicerLib.results_import import relabel_segment

        node, findingId, value = self.reportNode(), self.findingId(), comboBox.currentData
        if node is None or findingId is None or value is None:
            return
        if report_store.field_value(node, findingId, path) == value:  # re-chosen, not changed
            return

        def change(node, editor):
            edit(node, findingId, value, editor)
            relabel_segment(self.segmentation(), report_store.load_report(node).finding(findingId))

        self._store(change)

    def _showLocation(self, node, finding) -> None:
        """The sites of the organ that hosts the finding's type, the current one chosen (a finding found
        without an organ mask has none chosen); the machine's location in the tooltip."""
        from PASTALib.report.review import location_choices
        from PASTASlicerLib import report_store

        comboBox = self.ui.findingLocationComboBox
        comboBox.clear()
        for site in location_choices(finding):
            comboBox.addItem(site.site, site.label_id)
        current = finding.location.organ_label_id
        comboBox.currentIndex = comboBox.findData(current) if current is not None else -1
        machine = report_store.machine_value(node, finding.id, "location")
        machineSite = machine.get("site") or machine.get("organ_name") if isinstance(machine, dict) else None
        comboBox.toolTip = _("Machine location: {s}").format(s=machineSite or _("none"))

    def onLocationEdited(self) -> None:
        """Store the reader's site; the segment's terminology (anatomic region) follows."""
        from PASTASlicerLib import report_store

        self._storeChoice(self.ui.findingLocationComboBox, "location.organ_label_id",
                          lambda node, findingId, labelId, editor: report_store.edit_location(
                              node, findingId, int(labelId), editor))

    def _applyEdit(self, target: str, path: str, value) -> None:
        """Store one field, unless it already holds ``value`` (a widget only lost focus)."""
        from PASTASlicerLib import report_store

        node = self.reportNode()
        if node is None or report_store.field_value(node, target, path) == value:
            return
        self._store(lambda node, editor: report_store.edit_field(node, target, path, value, editor))

    def onAttributeEdited(self, name: str) -> None:
        if not self._updating and self.findingId():
            self._applyEdit(self.findingId(), f"attributes.{name}.value",
                            self._attributeComboBoxes()[name].currentText)

    def onMeasurementEdited(self, name: str) -> None:
        """Store a typed measurement, unless the box still shows the stored value (focus left it)."""
        findingId, node = self.findingId(), self.reportNode()
        if self._updating or not findingId or node is None:
            return
        from PASTASlicerLib import report_store

        spinBox = self._measurementSpinBoxes()[name]
        value = float(spinBox.value)
        stored = report_store.measurement_value(node, findingId, name)
        if round(stored, spinBox.decimals) == round(value, spinBox.decimals):
            return
        self._store(lambda node, editor: report_store.edit_measurement(node, findingId, name, value, editor))

    def onTCategoryEdited(self) -> None:
        if not self._updating and self.findingId():
            self._applyEdit(self.findingId(), "staging.value", self.ui.tCategoryLineEdit.text.strip() or None)

    def onSaveImpression(self) -> None:
        self._applyEdit("report", "impression", self.ui.impressionTextEdit.toPlainText())

    def onSignReport(self) -> None:
        """Sign as the reader; the impression as typed is saved first, so the signature covers it."""
        node = self.reportNode()
        if node is None:
            return
        from PASTALib.report.review import pending_findings
        from PASTASlicerLib import report_store

        pending = pending_findings(report_store.load_report(node))
        if pending:
            slicer.util.warningDisplay(_("Accept or reject every finding before signing; still pending: {ids}.")
                                       .format(ids=", ".join(pending)))
            return
        self.onSaveImpression()  # stores the typed impression only when it differs
        self._store(lambda node, editor: report_store.sign_report(node, editor))  # the status line shows it

    def onReview(self, status: str) -> None:
        findingId = self.findingId()
        if findingId is None:
            return
        from PASTASlicerLib import report_store

        self._store(lambda node, editor: report_store.set_review(node, findingId, status, editor))
