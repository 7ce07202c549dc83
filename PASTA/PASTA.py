"""PASTA: pan-tumour CT analysis for 3D Slicer (research use only).

This file only declares the module, its widget shell, a thin logic facade and the in-Slicer test.
Everything that computes lives in ``PASTALib`` (Slicer-free) and ``PASTASlicerLib`` (MRML <-> PASTALib
adapters, process runner, model cache, result import, report store); both are imported lazily inside
methods so that loading the module costs nothing.
"""

import logging
import os
import sys
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: Packages next to this file that ``onReload`` must import afresh.
LIBRARY_PACKAGES = ("PASTALib", "PASTASlicerLib")

SAMPLE_CT = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_ct.nii.gz")

#: "from model" or a PASTA lesion-type key (PASTALib.report.lesion_types; a test keeps them equal).
FROM_MODEL = "from model"
LESION_TYPE_CHOICES = [FROM_MODEL, "lung_tumor", "liver_tumor", "gallbladder_cancer", "pancreas_tumor",
                       "kidney_tumor", "bladder_cancer", "esophageal_cancer", "gastric_cancer",
                       "colorectal_cancer", "bone_metastasis", "liver_cyst", "gallstone", "pancreas_cyst",
                       "kidney_cyst", "kidney_stone"]
DEVICE_CHOICES = ["auto", "cuda", "cpu"]
#: Raw parameter (not a GUI-bound field: the model list changes at run time) holding the model id.
MODEL_ID_PARAMETER = "ModelId"
#: How often the running analysis is polled for progress (ms).
POLL_INTERVAL_MS = 200


def forgetLibraryModules(packages=LIBRARY_PACKAGES) -> None:
    """Drop the library packages from ``sys.modules`` so the next (lazy) import reads the files again."""
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]


def moduleDir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def defaultInputVolume():
    """The volume the user is looking at: the first slice view's background, else the first volume.

    Only plain scalar volumes qualify (not label maps), matching the node selector.
    """

    def isPlainScalarVolume(node):
        return node is not None and node.GetClassName() == "vtkMRMLScalarVolumeNode"

    layoutManager = slicer.app.layoutManager()
    if layoutManager is not None:
        for viewName in layoutManager.sliceViewNames():
            compositeNode = layoutManager.sliceWidget(viewName).sliceLogic().GetSliceCompositeNode()
            volumeId = compositeNode.GetBackgroundVolumeID() if compositeNode else None
            node = slicer.mrmlScene.GetNodeByID(volumeId) if volumeId else None
            if isPlainScalarVolume(node):
                return node
    for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
        if isPlainScalarVolume(node):
            return node
    return None


#
# PASTA
#


class PASTA(ScriptedLoadableModule):
    """Module declaration. See https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py"""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("PASTA")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["PASTA for 3D Slicer contributors"]
        self.parent.helpText = _(
            "PASTA finds and measures lesions in a CT with a PASTA model and drafts a structured report "
            "that you can review and edit."
            "<p>Choose the CT and a model, then Apply. The analysis runs in a separate process; "
            "Cancel stops it and leaves the scene unchanged. Each run adds a new segmentation (one "
            "segment per finding), a findings table, markups and the report.</p>"
            "<p><b>For research use only. PASTA is not a medical device and must not be used "
            "for diagnosis or treatment decisions.</b></p>"
            '<p>See the <a href="https://github.com/pasta-slicer/SlicerPASTA">project page</a> '
            "for documentation.</p>"
        )
        self.parent.acknowledgementText = _(
            "The PASTA foundation model is by Lei et al. (2025, arXiv:2502.06171), released under the MIT license; "
            "this extension is an independent integration of it. "
            "The bundled sample CT and organ mask come from TotalSegmentator "
            "(Wasserthal et al., Radiology: Artificial Intelligence 2023), Apache License 2.0."
        )


#
# PASTAParameterNode
#


@parameterNodeWrapper
class PASTAParameterNode:
    """
    inputVolume - the CT volume to analyse.
    organSegmentation - optional TotalSegmentator organ segmentation (locations and invasion).
    forceNonCT - analyse the volume even if its intensities do not look like CT in HU.
    lesionType - the lesion type of a model whose classes do not name it ("from model" otherwise).
    device - auto, cuda (GPU) or cpu.
    tta - always use test-time mirroring (by default only on a GPU).
    resultSegmentation - the PASTA result shown in the findings and report panels.
    readerName - recorded with every report edit.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    organSegmentation: vtkMRMLSegmentationNode
    forceNonCT: bool = False
    lesionType: Annotated[str, Choice(LESION_TYPE_CHOICES)] = FROM_MODEL
    device: Annotated[str, Choice(DEVICE_CHOICES)] = "auto"
    tta: bool = False
    resultSegmentation: vtkMRMLSegmentationNode
    readerName: str = ""


#
# PASTAWidget
#


class PASTAWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget shell: binds the .ui to the parameter node and forwards user actions to the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._runner = None
        self._job = None
        self._timer = None
        self._updatingReportPanel = False
        self._observedSegmentation = None
        self._verifiedModels = set()  # model ids whose SHA256 was checked in this session
        self._segmentsToRemeasure = set()

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/PASTA.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.reportTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))
        self.ui.logTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))
        self.ui.logTextEdit.visible = False

        self.logic = PASTALogic()
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._pollRun)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)

        self.ui.checkVolumeButton.connect("clicked(bool)", self.onCheckVolumeButton)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.showLogButton.connect("clicked(bool)", self.onShowLog)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.importModelFileButton.connect("clicked(bool)", self.onImportModelFile)
        self.ui.importModelFolderButton.connect("clicked(bool)", self.onImportModelFolder)
        self.ui.openModelsFolderButton.connect("clicked(bool)", self.onOpenModelsFolder)
        self.ui.deleteModelButton.connect("clicked(bool)", self.onDeleteModel)
        self.ui.resultSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onResultChanged)
        self.ui.findingComboBox.connect("currentIndexChanged(int)", self.onFindingChanged)
        self.ui.findingsTableView.connect("clicked(QModelIndex)", self.onTableRowClicked)
        for name, comboBox in self._attributeComboBoxes().items():
            comboBox.connect("activated(int)", lambda index, name=name: self.onAttributeEdited(name))
        self.ui.tCategoryLineEdit.connect("editingFinished()", self.onTCategoryEdited)
        self.ui.saveImpressionButton.connect("clicked(bool)", self.onSaveImpression)
        self.ui.acceptFindingButton.connect("clicked(bool)", lambda checked=False: self.onReview("accepted"))
        self.ui.rejectFindingButton.connect("clicked(bool)", lambda checked=False: self.onReview("rejected"))
        self.ui.resetReviewButton.connect("clicked(bool)", lambda checked=False: self.onReview("pending"))
        self.ui.exportJsonButton.connect("clicked(bool)", lambda checked=False: self.onExport("json"))
        self.ui.exportHtmlButton.connect("clicked(bool)", lambda checked=False: self.onExport("html"))
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicom)

        self._fillAttributeOptions()
        self.refreshModels()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self._runner is not None and self._runner.state == "running":
            self._runner.cancel()
        if self._timer is not None:
            self._timer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        if self._runner is not None and self._runner.state == "running":
            self._cancelRun()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAdded(self, caller, event, node) -> None:
        # A volume loaded while the input is unset becomes the input once it is shown.
        if self.parent.isEntered and node is not None and node.IsA("vtkMRMLScalarVolumeNode"):
            qt.QTimer.singleShot(0, self._selectDefaultInputVolume)

    def onReload(self) -> None:
        forgetLibraryModules()
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        self._selectDefaultInputVolume()

    def _selectDefaultInputVolume(self) -> None:
        if self._parameterNode is not None and not self._parameterNode.inputVolume:
            node = defaultInputVolume()
            if node is not None:
                self._parameterNode.inputVolume = node

    def setParameterNode(self, inputParameterNode: Optional[PASTAParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets in the .ui carry the dynamic property SlicerParameterName = field name.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._selectModel(self._parameterNode.parameterNode.GetParameter(MODEL_ID_PARAMETER))
        self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        running = self._runner is not None and self._runner.state == "running"
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        hasModel = self._selectedModel() is not None
        self.ui.checkVolumeButton.enabled = hasInput and not running
        self.ui.applyButton.enabled = running or (hasInput and hasModel)
        if running:
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.toolTip = _("Stop the analysis; the scene is left unchanged")
        else:
            self.ui.applyButton.text = _("Apply")
            self.ui.applyButton.toolTip = (_("Find and measure lesions and draft the report") if hasInput and hasModel
                                           else _("Select a CT volume and a model first"))

    # ------------------------------------------------------------------ volume check
    def onCheckVolumeButton(self) -> None:
        self.ui.reportTextEdit.setPlainText("")
        with slicer.util.tryWithErrorDisplay(_("Checking the volume failed."), waitCursor=True):
            from PASTALib.errors import PastaInputError

            try:
                report = self.logic.describeVolume(
                    self._parameterNode.inputVolume, forceNonCT=self._parameterNode.forceNonCT)
            except PastaInputError as error:
                # A problem the user can fix: say what and how, without a traceback or a popup.
                self.ui.reportTextEdit.setPlainText(str(error))
                return
            self.ui.reportTextEdit.setPlainText(self.logic.reportText(report))

    # ------------------------------------------------------------------ models
    def refreshModels(self, selectId: Optional[str] = None) -> None:
        """Fill the model list from the cache (installed models) and the registry (to get)."""
        from PASTASlicerLib.model_registry import ModelCache

        self.ui.modelComboBox.blockSignals(True)
        self.ui.modelComboBox.clear()
        for model in ModelCache().installed():
            self.ui.modelComboBox.addItem(f"{model.id} ({model.format})", model.id)
        self.ui.modelComboBox.blockSignals(False)
        if selectId:
            self._selectModel(selectId)
        self.onModelChanged()

    def _selectModel(self, modelId: Optional[str]) -> None:
        index = self.ui.modelComboBox.findData(modelId) if modelId else -1
        if index >= 0:
            self.ui.modelComboBox.currentIndex = index

    def _selectedModel(self):
        from PASTASlicerLib.model_registry import ModelCache

        modelId = self.ui.modelComboBox.currentData
        if not modelId:
            return None
        try:
            return ModelCache().get(modelId)
        except Exception:
            return None

    def onModelChanged(self, index=None) -> None:
        model = self._selectedModel()
        if model is None:
            self.ui.modelInfoLabel.text = self.logic.modelsHelpHtml()
        else:
            self.ui.modelInfoLabel.text = f"{model.format} · SHA256 {model.sha256[:16]}…"
            self.ui.modelInfoLabel.toolTip = f"{model.path}\nSHA256 {model.sha256}\nfrom {model.source}"
            if self._parameterNode:
                self._parameterNode.parameterNode.SetParameter(MODEL_ID_PARAMETER, model.id)
        self.ui.deleteModelButton.enabled = model is not None
        self._checkCanApply()

    def _importModel(self, path: str) -> None:
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(_("Importing the model failed."), waitCursor=True):
            from PASTASlicerLib.model_registry import ModelCache

            model = ModelCache().import_model(path)
            self.refreshModels(selectId=model.id)
            slicer.util.showStatusMessage(_("Imported model {id} (SHA256 {sha})").format(
                id=model.id, sha=model.sha256[:16]), 5000)

    def onImportModelFile(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(), _("Import a PASTA model"), "",
            _("Models (*.zip *.pth *.pt *.safetensors);;All files (*)"))
        self._importModel(path)

    def onImportModelFolder(self) -> None:
        self._importModel(qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Import a model folder")))

    def onOpenModelsFolder(self) -> None:
        from PASTASlicerLib.model_registry import ModelCache

        root = ModelCache().root
        root.mkdir(parents=True, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(root)))

    def onDeleteModel(self) -> None:
        model = self._selectedModel()
        if model is None or not slicer.util.confirmYesNoDisplay(
                _("Delete model {id} from {path}?").format(id=model.id, path=model.path)):
            return
        with slicer.util.tryWithErrorDisplay(_("Deleting the model failed.")):
            from PASTASlicerLib.model_registry import ModelCache

            ModelCache().delete(model.id)
            self.refreshModels()

    # ------------------------------------------------------------------ run
    def onApplyButton(self) -> None:
        if self._runner is not None and self._runner.state == "running":
            self._cancelRun()
            return
        with slicer.util.tryWithErrorDisplay(_("The analysis could not start."), waitCursor=True):
            if not self.logic.ensureDependencies():
                return
            extraArgs = self._deviceChoice()
            if extraArgs is None:
                return
            from PASTASlicerLib.process_runner import ProcessRunner

            p = self._parameterNode
            model = self._selectedModel()
            if model.id not in self._verifiedModels:
                from PASTASlicerLib.model_registry import ModelCache

                self.ui.statusLabel.text = _("Checking the model's SHA256…")
                slicer.app.processEvents()
                ModelCache().verify(model.id)  # raises with a plain message when a file changed
                self._verifiedModels.add(model.id)
            self._job = self.logic.prepareAnalysis(
                p.inputVolume, model.path, organNode=p.organSegmentation, device=p.device,
                tta=True if p.tta else None, lesionType=None if p.lesionType == FROM_MODEL else p.lesionType,
                forceNonCT=p.forceNonCT, extraArgs=extraArgs)
            self.ui.logTextEdit.setPlainText(" ".join(self._job.command) + "\n" + "\n".join(self._job.notes))
            self._runner = ProcessRunner(self._job.command, env=self._job.env, log_path=self._job.log_path)
            self._runner.start()
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = _("Starting…")
            self._timer.start()
            self._checkCanApply()

    def _deviceChoice(self) -> Optional[tuple]:
        """Extra ``pasta analyze`` options after at most one question about the device; None: abort."""
        from PASTASlicerLib.devices import device_advice, gpu_memory_gb, time_estimate

        gpu = gpu_memory_gb()
        self.ui.statusLabel.text = time_estimate(self._parameterNode.device, gpu)
        advice = device_advice(self._parameterNode.device, gpu)
        if advice is None:
            return ()
        if advice.suggest_cpu:
            if not slicer.util.confirmYesNoDisplay(advice.message + "\n\n" + _("Run on the CPU instead?")):
                return None
            self._parameterNode.device = "cpu"
            return ()
        useLowMemory = slicer.util.confirmYesNoDisplay(advice.message + "\n\n" + _("Use the low-memory settings?"))
        return tuple(advice.low_memory_args) if useLowMemory else ()

    def _pollRun(self) -> None:
        runner = self._runner
        if runner is None:
            self._timer.stop()
            return
        update = runner.poll()
        if update.log:
            self.ui.logTextEdit.appendPlainText("\n".join(update.log))
        if update.progress:
            last = update.progress[-1]
            if last.fraction is not None:
                self.ui.progressBar.value = int(round(100 * last.fraction))
            self.ui.statusLabel.text = f"{last.stage.capitalize()}: {last.message}"
        if update.finished:
            self._timer.stop()
            self._finishRun()

    def _finishRun(self) -> None:
        from PASTASlicerLib.analysis import cleanup

        runner, job = self._runner, self._job
        try:
            if runner.state == "succeeded":
                with slicer.util.tryWithErrorDisplay(_("Importing the results failed."), waitCursor=True):
                    results = self.logic.importResults(job)
                    self._parameterNode.resultSegmentation = results.segmentation
                    self.ui.statusLabel.text = _("Done: {n} finding(s).").format(
                        n=results.segmentation.GetSegmentation().GetNumberOfSegments())
                    self.ui.progressBar.value = 100
            else:
                self.ui.statusLabel.text = runner.failure_message()
                if runner.state == "failed":
                    self.ui.logTextEdit.visible = True
        finally:
            if runner.state == "failed":
                # Keep the log next to the temp files the user may want to inspect.
                self.ui.logTextEdit.appendPlainText(_("Log: {path}").format(path=job.log_path))
            else:
                cleanup(job)
            self._runner = None
            self._job = None
            self._checkCanApply()

    def _cancelRun(self) -> None:
        self.ui.statusLabel.text = _("Cancelling…")
        slicer.app.processEvents()
        # SIGTERM to the whole process tree now; the poll timer escalates to SIGKILL if needed,
        # so the GUI never waits here.
        self._runner.cancel(wait=False)

    def onShowLog(self) -> None:
        self.ui.logTextEdit.visible = not self.ui.logTextEdit.visible

    # ------------------------------------------------------------------ results and report
    def _reportNode(self):
        from PASTASlicerLib.results_import import results_of

        nodes = results_of(self._parameterNode.resultSegmentation) if self._parameterNode else None
        return nodes["report"] if nodes else None

    def onResultChanged(self, node=None) -> None:
        from PASTASlicerLib.results_import import results_of

        nodes = results_of(node) if node is not None else None
        self._observeSegments(node if nodes else None)
        self.ui.findingsTableView.setMRMLTableNode(nodes["table"] if nodes else None)
        inputNode = node.GetNodeReference("PASTAInputVolume") if nodes else None
        self.ui.exportDicomButton.enabled = bool(inputNode and inputNode.GetAttribute("DICOM.instanceUIDs"))
        self.ui.reportCollapsibleButton.enabled = nodes is not None
        self._updatingReportPanel = True
        try:
            self.ui.findingComboBox.clear()
            if nodes:
                from PASTASlicerLib import report_store

                report = report_store.load_report(nodes["report"])
                for finding in report.findings:
                    self.ui.findingComboBox.addItem(f"{finding.id}: {finding.lesion_type.name}", finding.id)
                self.ui.impressionTextEdit.setPlainText(report.impression)
        finally:
            self._updatingReportPanel = False
        self.onFindingChanged()

    def _observeSegments(self, segmentationNode) -> None:
        """Re-measure a finding when its segment is edited (e.g. with the Segment Editor)."""
        if self._observedSegmentation is not None:
            self.removeObserver(self._observedSegmentation, slicer.vtkSegmentation.SegmentModified,
                                self.onSegmentModified)
        self._observedSegmentation = segmentationNode.GetSegmentation() if segmentationNode else None
        if self._observedSegmentation is not None:
            self.addObserver(self._observedSegmentation, slicer.vtkSegmentation.SegmentModified,
                             self.onSegmentModified)

    @vtk.calldata_type(vtk.VTK_STRING)
    def onSegmentModified(self, caller, event, segmentId) -> None:
        # Segment Editor strokes fire many events: measure once, after the edits settle.
        if segmentId and not self._segmentsToRemeasure:
            qt.QTimer.singleShot(1000, self._remeasurePending)
        if segmentId:
            self._segmentsToRemeasure.add(segmentId)

    def _remeasurePending(self) -> None:
        import getpass

        from PASTASlicerLib.remeasure import remeasure_segment

        pending, self._segmentsToRemeasure = self._segmentsToRemeasure, set()
        node = self._parameterNode.resultSegmentation if self._parameterNode else None
        if node is None:
            return
        editor = (self._parameterNode.readerName or "").strip() or getpass.getuser()
        with slicer.util.tryWithErrorDisplay(_("Re-measuring the edited finding failed.")):
            changed = [segmentId for segmentId in pending if remeasure_segment(node, segmentId, editor)]
            if changed:
                slicer.util.showStatusMessage(_("PASTA re-measured {n} edited finding(s).").format(n=len(changed)), 5000)
                self.onFindingChanged()

    def _attributeComboBoxes(self) -> dict:
        return {"Shape": self.ui.shapeComboBox, "Density": self.ui.densityComboBox,
                "Heterogeneity": self.ui.heterogeneityComboBox, "Surface": self.ui.surfaceComboBox,
                "Invasion": self.ui.invasionComboBox}

    def _fillAttributeOptions(self) -> None:
        from PASTALib.report.model import ATTRIBUTE_OPTIONS

        for name, comboBox in self._attributeComboBoxes().items():
            comboBox.clear()
            for option in ATTRIBUTE_OPTIONS[name]:
                comboBox.addItem(option)

    def _findingId(self) -> Optional[str]:
        return self.ui.findingComboBox.currentData or None

    def onFindingChanged(self, index=None) -> None:
        node, findingId = self._reportNode(), self._findingId()
        if node is None or findingId is None:
            self.ui.reviewStatusLabel.text = ""
            return
        from PASTASlicerLib import report_store

        finding = report_store.load_report(node).finding(findingId)
        self._updatingReportPanel = True
        try:
            for name, comboBox in self._attributeComboBoxes().items():
                value = finding.attributes[name].value
                comboBox.currentIndex = comboBox.findText(value) if value else -1
                comboBox.toolTip = _("Machine value: {v}").format(
                    v=report_store.machine_value(node, findingId, f"attributes.{name}.value"))
            self.ui.tCategoryLineEdit.text = finding.staging.value or ""
            self.ui.reviewStatusLabel.text = _("Review: {s}").format(s=finding.review.status)
        finally:
            self._updatingReportPanel = False
        self._jumpToFinding(findingId)

    def onTableRowClicked(self, modelIndex) -> None:
        # Column 0 holds the finding id ("F1") whatever the view's header mode.
        findingId = modelIndex.sibling(modelIndex.row(), 0).data()
        index = self.ui.findingComboBox.findData(findingId)
        if index >= 0:
            self.ui.findingComboBox.currentIndex = index  # also centres the slice views on it

    def _jumpToFinding(self, findingId: str) -> None:
        from PASTASlicerLib import report_store
        from PASTASlicerLib.results_import import finding_center_ras

        center = finding_center_ras(report_store.load_report(self._reportNode()), findingId)
        slicer.modules.markups.logic().JumpSlicesToLocation(*center, True)

    def _editor(self) -> Optional[str]:
        name = (self._parameterNode.readerName or "").strip()
        if not name:
            slicer.util.warningDisplay(_("Enter your name under Reader first: every edit records who made it."))
            return None
        return name

    def _applyEdit(self, target: str, path: str, value) -> None:
        editor = self._editor()
        node = self._reportNode()
        if editor is None or node is None:
            self.onFindingChanged()  # show the stored value again
            return
        with slicer.util.tryWithErrorDisplay(_("The edit was not saved.")):
            from PASTASlicerLib import report_store
            from PASTASlicerLib.results_import import refresh_table

            report_store.edit_field(node, target, path, value, editor)
            refresh_table(self._parameterNode.resultSegmentation)

    def onAttributeEdited(self, name: str) -> None:
        if not self._updatingReportPanel and self._findingId():
            self._applyEdit(self._findingId(), f"attributes.{name}.value",
                            self._attributeComboBoxes()[name].currentText)

    def onTCategoryEdited(self) -> None:
        if not self._updatingReportPanel and self._findingId():
            self._applyEdit(self._findingId(), "staging.value", self.ui.tCategoryLineEdit.text.strip() or None)

    def onSaveImpression(self) -> None:
        self._applyEdit("report", "impression", self.ui.impressionTextEdit.toPlainText())

    def onReview(self, status: str) -> None:
        editor, node, findingId = self._editor(), self._reportNode(), self._findingId()
        if editor is None or node is None or findingId is None:
            return
        from PASTASlicerLib import report_store
        from PASTASlicerLib.results_import import refresh_table

        report_store.set_review(node, findingId, status, editor)
        refresh_table(self._parameterNode.resultSegmentation)
        self.onFindingChanged()

    def onExport(self, kind: str) -> None:
        node = self._reportNode()
        if node is None:
            return
        suffix = {"json": "JSON (*.json)", "html": "HTML (*.html)"}[kind]
        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Export the report"),
                                              f"{node.GetName()}.{kind}", suffix)
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(_("Export failed.")):
            from PASTASlicerLib import report_store

            if kind == "json":
                report_store.export_json(node, path)
            else:
                report_store.export_html(node, path, self._parameterNode.resultSegmentation)


    def onExportDicom(self) -> None:
        segmentation, node = self._parameterNode.resultSegmentation, self._reportNode()
        if node is None:
            return
        outFolder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder for the DICOM SEG and SR"))
        if not outFolder:
            return
        with slicer.util.tryWithErrorDisplay(_("DICOM export failed."), waitCursor=True):
            written = self.logic.exportDicom(segmentation, outFolder)
            slicer.util.infoDisplay(_("Wrote {files} and added them to the DICOM database.").format(
                files=", ".join(str(p) for p in written.values())) if written else
                _("No accepted or pending finding: nothing to export."))


#
# PASTALogic
#


class PASTALogic(ScriptedLoadableModuleLogic):
    """Usable without the widget, e.g. from the Python console:

    ``PASTALogic().reportText(PASTALogic().describeVolume(slicer.util.getNode("CT")))``
    ``PASTALogic().analyze(slicer.util.getNode("CT"), "/path/to/model")`` (blocking)
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return PASTAParameterNode(super().getParameterNode())

    def describeVolume(self, volumeNode, forceNonCT: bool = False, organNode=None) -> dict:
        """The ``pasta info`` report (a dict) of a scalar volume node, optionally with an organ mask.

        Like ``pasta info``, it raises PastaInputError when the intensities do not look like CT in HU,
        unless ``forceNonCT`` is set.
        """
        from PASTALib.errors import PastaInputError
        from PASTASlicerLib.logic import describe_volume_node

        if volumeNode is None:
            raise PastaInputError("No volume is selected.", "Choose a CT volume as input.")
        report = describe_volume_node(
            volumeNode, organNode, force=forceNonCT,
            force_hint="PASTA is trained on CT in HU. If you are sure this is such a CT, tick "
            "'Accept images that do not look like CT' and check again.")
        ctCheck = report["ct_check"]
        logging.info("PASTA checked volume %s: %s", volumeNode.GetName(), ctCheck["verdict"])
        return report

    def reportText(self, report: dict) -> str:
        """The human-readable form of a report, as printed by ``pasta info``."""
        from PASTASlicerLib.logic import report_text

        return report_text(report)

    def ensureDependencies(self) -> bool:
        """Install torch (PyTorch extension) and the other packages after one confirmation."""
        from PASTASlicerLib.install import ensure_dependencies

        return ensure_dependencies(os.path.join(moduleDir(), "Resources", "requirements.txt"))

    def modelsHelpHtml(self) -> str:
        """What to do without an installed model: the registry's models and where to get them."""
        import html

        from PASTASlicerLib.model_registry import load_registry

        items = []
        for entry in load_registry():
            link = entry.page or entry.url
            title = html.escape(entry.title)
            items.append(f'<li><a href="{html.escape(link)}">{title}</a>: {html.escape(entry.description)}</li>'
                         if link else f"<li>{title}</li>")
        return (_("No model installed yet. Get one of these, then import it (file, folder or zip):")
                + "<ul>" + "".join(items) + "</ul>")

    def prepareAnalysis(self, inputVolume, modelPath, organNode=None, device: str = "auto", tta=None,
                        lesionType=None, forceNonCT: bool = False, extraArgs=()):
        """Write the inputs into a fresh folder in Slicer's temp folder and build the command."""
        import tempfile

        from PASTASlicerLib.analysis import prepare_analysis

        workDir = tempfile.mkdtemp(prefix="PASTA-", dir=slicer.util.tempDirectory())
        return prepare_analysis(inputVolume, modelPath, workDir, moduleDir(), organ_node=organNode,
                                device=device, tta=tta, lesion_type=lesionType, force=forceNonCT,
                                extra_args=extraArgs)

    def exportDicom(self, segmentationNode, outFolder: str) -> dict:
        """DICOM SEG + SR of a PASTA result whose input volume was loaded from the DICOM database."""
        import shutil
        import tempfile

        from PASTALib.errors import PastaInputError
        from PASTASlicerLib import report_store
        from PASTASlicerLib.results_import import INPUT_ROLE, results_of

        inputNode = segmentationNode.GetNodeReference(INPUT_ROLE)
        uids = (inputNode.GetAttribute("DICOM.instanceUIDs") or "").split() if inputNode else []
        if not uids:
            raise PastaInputError("The input volume was not loaded from DICOM.",
                                  "Load the CT through the DICOM module to export DICOM SEG and SR.")
        series = tempfile.mkdtemp(prefix="PASTA-dicom-", dir=slicer.util.tempDirectory())
        try:
            for index, uid in enumerate(uids):
                path = slicer.dicomDatabase.fileForInstance(uid)
                if not path:
                    raise PastaInputError(f"DICOM instance {uid} is not in the DICOM database.")
                shutil.copy(path, os.path.join(series, f"{index:05d}.dcm"))
            written = report_store.export_dicom(results_of(segmentationNode)["report"], segmentationNode,
                                                series, outFolder)
        finally:
            shutil.rmtree(series, ignore_errors=True)
        if written:
            from DICOMLib import DICOMUtils

            DICOMUtils.importDicom(outFolder)
        return written

    def importResults(self, job):
        from PASTASlicerLib.analysis import finish_analysis

        return finish_analysis(slicer.mrmlScene, job)

    def analyze(self, inputVolume, modelPath, timeoutSec: float = 3600, **kwargs):
        """Blocking run for scripts and tests: prepare, run in a subprocess, import, clean up."""
        from PASTASlicerLib.analysis import cleanup
        from PASTASlicerLib.process_runner import ProcessRunner

        job = self.prepareAnalysis(inputVolume, modelPath, **kwargs)
        runner = ProcessRunner(job.command, env=job.env, log_path=job.log_path)
        runner.start()
        try:
            runner.wait(timeout=timeoutSec)
        except TimeoutError:
            runner.cancel()
            raise
        if runner.state != "succeeded":
            raise RuntimeError(runner.failure_message() + "\n" + "\n".join(runner.log[-20:]))
        try:
            return self.importResults(job)
        finally:
            cleanup(job)


#
# PASTATest
#


class PASTATest(ScriptedLoadableModuleTest):
    """In-Slicer tests; run them from the Reload & Test button or with ``slicer_add_python_unittest``."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_CheckSampleVolume()
        self.setUp()
        self.test_RejectsNonCT()
        self.setUp()
        self.test_AnalyzeImportAndEdit()

    def _loadSample(self):
        path = os.path.join(moduleDir(), SAMPLE_CT)
        self.assertTrue(os.path.isfile(path), f"bundled sample missing: {path}")
        return slicer.util.loadVolume(path)

    def test_CheckSampleVolume(self):
        self.delayDisplay("Checking the bundled sample CT")
        volumeNode = self._loadSample()
        logic = PASTALogic()
        report = logic.describeVolume(volumeNode)
        self.assertEqual(list(report["geometry"]["size"]), [122, 101, 112])
        self.assertTrue(report["ct_check"]["looks_like_ct"])
        text = logic.reportText(report)
        self.assertIn("122 x 101 x 112", text)
        self.assertIn("plausible CT", text)
        self.delayDisplay("Test passed")

    def test_RejectsNonCT(self):
        self.delayDisplay("Checking that a non-CT image is refused unless forced")
        from PASTALib.errors import PastaInputError

        volumeNode = self._loadSample()
        # Shift the whole image above zero, as a missing rescale intercept would.
        array = slicer.util.arrayFromVolume(volumeNode)
        array -= array.min()
        slicer.util.arrayFromVolumeModified(volumeNode)
        logic = PASTALogic()
        with self.assertRaises(PastaInputError):
            logic.describeVolume(volumeNode)
        report = logic.describeVolume(volumeNode, forceNonCT=True)
        self.assertFalse(report["ct_check"]["looks_like_ct"])
        self.assertIn("does NOT look like CT", logic.reportText(report))
        self.delayDisplay("Test passed")

    def test_AnalyzeImportAndEdit(self):
        """The pytest flow inside Slicer: a small model analyses the sample; results and edits land in the scene.

        Needs torch (PyTorch extension) and the test model of a source checkout; skipped otherwise.
        """
        import importlib.util
        import json
        import shutil
        import tempfile

        testModel = os.path.join(moduleDir(), os.pardir, "Testing", "Data", "tiny_pasta_organs")
        if importlib.util.find_spec("torch") is None or not os.path.isdir(testModel):
            self.delayDisplay("Skipped: needs torch and a source checkout's test model")
            return
        self.delayDisplay("Analysing the sample with the tiny test model")
        model = shutil.copytree(testModel, os.path.join(tempfile.mkdtemp(), "model"))
        card = json.load(open(os.path.join(model, "model.json")))
        card["classes"][2]["lesion_type"] = "kidney_tumor"
        json.dump(card, open(os.path.join(model, "model.json"), "w"))
        volumeNode = self._loadSample()
        results = PASTALogic().analyze(volumeNode, model, device="cpu")
        segmentation = results.segmentation.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), 2)
        self.assertEqual(segmentation.GetNthSegment(0).GetName(), "Kidney tumor 1")
        self.assertEqual(results.table.GetNumberOfRows(), 2)

        from PASTASlicerLib import report_store

        report_store.edit_field(results.report, "F1", "staging.value", "T1b", "Self test")
        sceneFile = os.path.join(tempfile.mkdtemp(), "scene.mrb")
        self.assertTrue(slicer.util.saveScene(sceneFile))
        slicer.mrmlScene.Clear()
        slicer.util.loadScene(sceneFile)
        reportNode = slicer.util.getNodesByClass("vtkMRMLTextNode")[0]
        self.assertEqual(report_store.load_report(reportNode).finding("F1").staging.value, "T1b")
        self.assertEqual(report_store.machine_value(reportNode, "F1", "staging.value"), "T2b")
        self.delayDisplay("Test passed")
