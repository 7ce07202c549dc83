"""PASTA: pan-tumour CT analysis for 3D Slicer (research use only).

This file only declares the module, its widget shell, a thin logic facade and the in-Slicer test.
The widget's sections are panels in ``PASTAWidgets`` (Qt); everything that computes lives in
``PASTALib`` (Slicer-free) and ``PASTASlicerLib`` (MRML <-> PASTALib adapters, process runner, model
cache, result import, report store). All three are imported lazily inside methods so that loading
the module costs nothing.
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

from PASTALib.detection import sensitivity as detector_sensitivity
from PASTALib.lesions import lesion_types

#: Packages next to this file that ``onReload`` must import afresh.
LIBRARY_PACKAGES = ("PASTALib", "PASTASlicerLib", "PASTAWidgets")

SAMPLE_CT = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_ct.nii.gz")

#: "from model" or a key of the lesion-type table (read from the table: it imports the standard library only).
FROM_MODEL = "from model"
LESION_TYPE_CHOICES = [FROM_MODEL, *lesion_types.keys()]
DEVICE_CHOICES = ["auto", "cuda", "cpu"]
SENSITIVITY_CHOICES = list(detector_sensitivity.SENSITIVITIES)


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
            "segment per finding), a findings table, markups and the report; with 'Replace the previous "
            "result' it replaces the last PASTA result of the same volume instead.</p>"
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
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData() -> None:
    """The bundled sample CTs (with their organ masks) in the Sample Data module."""
    import SampleData

    from PASTASlicerLib.sample_registration import sample_data_sources

    for source in sample_data_sources():
        SampleData.SampleDataLogic.registerCustomSampleDataSource(**source)


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
    sensitivity - the detector's operating point: strict, balanced (about one false finding per healthy
        scan it was chosen on) or high.
    device - auto, cuda (GPU) or cpu.
    tta - always use test-time mirroring (by default only on a GPU).
    replacePrevious - after a successful run, remove the latest earlier PASTA result of the same volume.
    resultSegmentation - the PASTA result shown in the findings and report panels.
    readerName - recorded with every report edit.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    organSegmentation: vtkMRMLSegmentationNode
    forceNonCT: bool = False
    lesionType: Annotated[str, Choice(LESION_TYPE_CHOICES)] = FROM_MODEL
    sensitivity: Annotated[str, Choice(SENSITIVITY_CHOICES)] = detector_sensitivity.DEFAULT_SENSITIVITY
    device: Annotated[str, Choice(DEVICE_CHOICES)] = "auto"
    tta: bool = False
    replacePrevious: bool = False
    resultSegmentation: vtkMRMLSegmentationNode
    readerName: str = ""


#
# PASTAWidget
#


class PASTAWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Thin wiring: binds the .ui to the parameter node and hands each section to its panel
    (``PASTAWidgets``: model, run, report, export, segment watcher)."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.modelPanel = None
        self.runPanel = None
        self.reportPanel = None
        self.reportExport = None
        self.segmentWatcher = None
        self.organPanel = None

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        from PASTAWidgets.model_panel import ModelPanel
        from PASTAWidgets.organ_panel import OrganPanel
        from PASTAWidgets.report_export import ReportExport
        from PASTAWidgets.report_panel import ReportPanel
        from PASTAWidgets.run_panel import RunPanel
        from PASTAWidgets.segment_watcher import SegmentWatcher

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/PASTA.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.reportTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))
        self.logic = PASTALogic()

        parameterNode = lambda: self._parameterNode  # noqa: E731 (panels always see the current one)
        self.modelPanel = ModelPanel(self.ui, parameterNode, onChanged=self._checkCanApply)
        self.runPanel = RunPanel(self.ui, self.logic, parameterNode, self.modelPanel,
                                 onStateChanged=self._checkCanApply)
        self.reportPanel = ReportPanel(self.ui, parameterNode)
        self.reportExport = ReportExport(self.ui, self.reportPanel, self.logic)
        self.segmentWatcher = SegmentWatcher(parameterNode, onRemeasured=self.reportPanel.onReportChanged)
        self.organPanel = OrganPanel(self.ui, parameterNode)
        for panel in (self.runPanel, self.reportPanel, self.reportExport, self.modelPanel, self.organPanel):
            panel.setup()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        self.ui.checkVolumeButton.connect("clicked(bool)", self.onCheckVolumeButton)
        self.ui.resultSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onResultChanged)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self.runPanel is not None:
            self.runPanel.cleanup()
        if self.segmentWatcher is not None:
            self.segmentWatcher.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        if self.runPanel.running:
            self.runPanel.cancel()
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
            self.modelPanel.restoreSelection()
            self.reportPanel.restoreReader()
            self.organPanel.showStatus()
        self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        running = self.runPanel is not None and self.runPanel.running
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        hasModel = self.modelPanel is not None and self.modelPanel.selectedModel() is not None
        self.ui.checkVolumeButton.enabled = hasInput and not running
        self.ui.applyButton.enabled = running or (hasInput and hasModel)
        if running:
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.toolTip = _("Stop the analysis; the scene is left unchanged")
        else:
            self.ui.applyButton.text = _("Apply")
            self.ui.applyButton.toolTip = (_("Find and measure lesions and draft the report") if hasInput and hasModel
                                           else _("Select a CT volume and a model first"))

    def onResultChanged(self, node=None) -> None:
        """Watch the shown result's segments (the report panel shows it through its own connection)."""
        from PASTASlicerLib.results_import import results_of

        self.segmentWatcher.watch(node if node is not None and results_of(node) else None)

    # ------------------------------------------------------------------ volume check
    def onCheckVolumeButton(self) -> None:
        """The verdict under the button, the full report in the Volume check section (opened)."""
        from PASTASlicerLib.logic import check_verdict

        self.ui.reportTextEdit.setPlainText("")
        self.ui.volumeCheckLabel.text = ""
        with slicer.util.tryWithErrorDisplay(_("Checking the volume failed."), waitCursor=True):
            from PASTALib.errors import PastaInputError

            try:
                report = self.logic.describeVolume(
                    self._parameterNode.inputVolume, forceNonCT=self._parameterNode.forceNonCT)
            except PastaInputError as error:
                # A problem the user can fix: say what and how, without a traceback or a popup.
                self.ui.reportTextEdit.setPlainText(str(error))
                self.ui.volumeCheckLabel.text = check_verdict(None, str(error))
                self.ui.volumeCheckCollapsibleButton.collapsed = False
                return
            self.ui.reportTextEdit.setPlainText(self.logic.reportText(report))
            self.ui.volumeCheckLabel.text = check_verdict(report)
            self.ui.volumeCheckCollapsibleButton.collapsed = False


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

    def analysisOptions(self, parameterNode, modelPath, lowMemory: Optional[dict] = None,
                        pastaDefaults: bool = False):
        """The run's AnalysisOptions from the panel's parameters: the one object that becomes the
        ``pasta analyze`` command line (``lowMemory``: the device advice's option values;
        ``pastaDefaults``: the model is a bare weights file its importer chose to run with PASTA's
        pretraining preprocessing)."""
        import dataclasses

        from PASTALib.analysis.options import AnalysisOptions

        p = parameterNode
        options = AnalysisOptions(model=str(modelPath), device=p.device, tta=True if p.tta else None,
                                  lesion_type=None if p.lesionType == FROM_MODEL else p.lesionType,
                                  force=p.forceNonCT, sensitivity=p.sensitivity, pasta_defaults=pastaDefaults)
        return dataclasses.replace(options, **(lowMemory or {}))

    def deviceAdvice(self, device: str, model=None, inputVolume=None):
        """(A time estimate for the status line, what to ask before running on ``device`` or None).
        The estimate counts ``model``'s work on ``inputVolume`` at this computer's measured speed."""
        from PASTASlicerLib.devices import device_advice, gpu_memory_gb, time_estimate

        gpu = gpu_memory_gb()
        shape = spacing = None
        if inputVolume is not None and inputVolume.GetImageData() is not None:
            shape = tuple(inputVolume.GetImageData().GetDimensions())[::-1]
            spacing = tuple(inputVolume.GetSpacing())
        estimate = time_estimate(device, gpu, model.path if model else None, model.format if model else "",
                                 shape, spacing)
        return estimate, device_advice(device, gpu)

    def prepareAnalysis(self, inputVolume, options, organNode=None):
        """Write the inputs into a fresh folder in Slicer's temp folder and build the command."""
        import tempfile

        from PASTASlicerLib.analysis import prepare_analysis

        workDir = tempfile.mkdtemp(prefix="PASTA-", dir=slicer.util.tempDirectory())
        return prepare_analysis(inputVolume, options, workDir, moduleDir(), organ_node=organNode)

    def startAnalysis(self, job):
        """Start the prepared run in its own process; the caller polls the returned runner."""
        from PASTASlicerLib.process_runner import ProcessRunner

        runner = ProcessRunner(job.command, env=job.env, log_path=job.log_path)
        runner.start()
        return runner

    def previousResultWork(self, job):
        """(The latest earlier PASTA result of the run's volume or None, how many reader edits and
        review decisions it holds), so the panel can ask before replacing it."""
        from PASTASlicerLib.replace_results import previous_result, reader_work

        inputNode = slicer.mrmlScene.GetNodeByID(job.input_node_id)
        previous = previous_result(slicer.mrmlScene, inputNode) if inputNode is not None else None
        return previous, (reader_work(previous) if previous is not None else 0)

    def cleanupAnalysis(self, job) -> None:
        """Remove the run's temporary files."""
        from PASTASlicerLib.analysis import cleanup

        cleanup(job)

    def exportDicom(self, segmentationNode, outFolder: str) -> dict:
        """DICOM SEG + SR of a PASTA result whose input volume was loaded from the DICOM database."""
        import shutil
        import tempfile

        from PASTALib.errors import PastaInputError
        from PASTASlicerLib import report_exports
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
            written = report_exports.export_dicom(results_of(segmentationNode)["report"], segmentationNode,
                                                series, outFolder)
        finally:
            shutil.rmtree(series, ignore_errors=True)
        if written:
            from DICOMLib import DICOMUtils

            DICOMUtils.importDicom(outFolder)
        return written

    def importResults(self, job, replacePrevious: bool = False):
        """Add a finished run's results as new nodes; ``replacePrevious`` then removes the latest
        earlier PASTA result of the same volume (only its own nodes, and only after success)."""
        from PASTASlicerLib.analysis import finish_analysis

        return finish_analysis(slicer.mrmlScene, job, replace_previous=replacePrevious)

    def analyze(self, inputVolume, modelPath, timeoutSec: float = 3600, replacePrevious: bool = False,
                organNode=None, **options):
        """Blocking run for scripts and tests: prepare, run in a subprocess, import, clean up.
        ``options`` are AnalysisOptions fields, e.g. ``device="cpu"``."""
        from PASTALib.analysis.options import AnalysisOptions

        job = self.prepareAnalysis(inputVolume, AnalysisOptions(model=str(modelPath), **options), organNode)
        runner = self.startAnalysis(job)
        try:
            runner.wait(timeout=timeoutSec)
        except TimeoutError:
            runner.cancel()
            raise
        if runner.state != "succeeded":
            raise RuntimeError(runner.failure_message() + "\n" + "\n".join(runner.log[-20:]))
        try:
            return self.importResults(job, replacePrevious=replacePrevious)
        finally:
            self.cleanupAnalysis(job)


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
        report_store.edit_measurement(results.report, "F1", "long_axis_mm", 42.5, "Self test")
        # A second run replacing the first: the first run's nodes go, the name stays.
        firstName = results.segmentation.GetName()
        results = PASTALogic().analyze(volumeNode, model, device="cpu", replacePrevious=True)
        self.assertEqual(len(slicer.util.getNodesByClass("vtkMRMLSegmentationNode")), 1)
        self.assertEqual(results.segmentation.GetName(), firstName)
        report_store.edit_field(results.report, "F1", "staging.value", "T1b", "Self test")
        report_store.edit_measurement(results.report, "F1", "long_axis_mm", 42.5, "Self test")
        sceneFile = os.path.join(tempfile.mkdtemp(), "scene.mrb")
        self.assertTrue(slicer.util.saveScene(sceneFile))
        slicer.mrmlScene.Clear()
        slicer.util.loadScene(sceneFile)
        reportNode = slicer.util.getNodesByClass("vtkMRMLTextNode")[0]
        self.assertEqual(report_store.load_report(reportNode).finding("F1").staging.value, "T1b")
        self.assertEqual(report_store.machine_value(reportNode, "F1", "staging.value"), "T2b")
        self.assertEqual(report_store.measurement_value(reportNode, "F1", "long_axis_mm"), 42.5)
        self.delayDisplay("Test passed")
