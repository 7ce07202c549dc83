"""PASTA Synth: synthetic lesions in CT for 3D Slicer (research use only).

This file only declares the module, its widget shell, a thin logic facade and the in-Slicer test.
The synthesis engine lives in ``PASTASynthLib`` (Slicer-free); the scene logic (session with
undo/redo, the click, the drop-downs' rules, the batch job) in ``PASTASynthSlicerLib``; the MRML
adapters and the process runner it shares with the PASTA module in ``PASTASlicerLib``, which ships
in the PASTA module folder. Both modules are installed into the same scripted-modules folder, so
``PASTASlicerLib`` is importable once PASTA (a dependency) is loaded. All of them are imported
lazily inside methods, so loading the module costs nothing.
"""

import logging
import os
import sys
from typing import Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: Packages that ``onReload`` must import afresh.
LIBRARY_PACKAGES = ("PASTALib", "PASTASlicerLib", "PASTASynthLib", "PASTASynthSlicerLib", "PASTASynthWidgets")

SAMPLE_CT = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_ct.nii.gz")
SAMPLE_ORGANS = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_organs.nii.gz")


def moduleDir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def pastaModuleFolder() -> str:
    """Where PASTALib and PASTASlicerLib live: next to this file once installed, ../PASTA in a source tree."""
    here = moduleDir()
    if os.path.isdir(os.path.join(here, "PASTASlicerLib")):
        return here
    return os.path.join(os.path.dirname(here), "PASTA")


def ensurePastaLibrariesImportable() -> None:
    """Put the PASTA module folder on ``sys.path`` if Slicer has not already (source-tree runs)."""
    folder = pastaModuleFolder()
    if os.path.isdir(folder) and folder not in sys.path:
        sys.path.append(folder)


def forgetLibraryModules(packages=LIBRARY_PACKAGES) -> None:
    """Drop the library packages from ``sys.modules`` so the next (lazy) import reads the files again."""
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]


def defaultHostVolume():
    """The volume the user is looking at: the first slice view's background, else the first volume.

    A session's own output ("<host> + synthetic lesions") is never proposed as a host.
    """

    def isPlainScalarVolume(node):
        return (node is not None and node.GetClassName() == "vtkMRMLScalarVolumeNode"
                and node.GetAttribute("PASTASynth.Session") is None)

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
# PASTASynth
#


class PASTASynth(ScriptedLoadableModule):
    """Module declaration. See https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py"""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("PASTA Synth")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["PASTA"]
        self.parent.contributors = ["PASTA for 3D Slicer contributors"]
        self.parent.helpText = _(
            "PASTA Synth places realistic synthetic lesions of PASTA's 15 types into a healthy CT, "
            "as in PASTA's synthetic training data."
            "<p>Choose the host CT and its organ segmentation, a lesion type, size and attributes "
            "('random' samples them), click <i>Place lesion</i> and click in a slice view. The lesion "
            "goes into a copy of the host ('&lt;host&gt; + synthetic lesions', the host itself is never "
            "modified) and into a segmentation with one named segment per lesion. Changing an "
            "attribute re-generates the selected lesion in place; Accept keeps it; Undo/Redo step "
            "through the lesions. Each lesion's report is stored in the scene and can be edited. "
            "Export case writes a PASTA-Gen-30K case folder; Batch builds a dataset in a separate "
            "process.</p>"
            "<p><b>For research use only. Not a medical device. Synthetic lesions are artificial "
            "and must never enter clinical records.</b></p>"
        )
        self.parent.acknowledgementText = _(
            "The PASTA foundation model is by Lei et al. (2025, arXiv:2502.06171), released under the MIT license; "
            "this extension is an independent integration of it. "
            "The bundled sample CT and organ mask come from TotalSegmentator "
            "(Wasserthal et al., Radiology: Artificial Intelligence 2023), Apache License 2.0."
        )


#
# PASTASynthParameterNode
#


@parameterNodeWrapper
class PASTASynthParameterNode:
    """
    hostVolume - the healthy CT that will receive lesions (never modified).
    organSegmentation - organs of the host with TotalSegmentator names, e.g. from TotalSegmentator.
    seed - random seed of the next lesion.
    readerName - recorded with every report edit.
    batchUseFolder - batch over a folder of hosts instead of the current host.
    batchHostsFolder, batchOutputFolder - the batch's folders.
    batchPerType, batchWorkers - cases per type and host; local worker processes.
    batchAllTypes - all 15 types, or only the chosen lesion type.
    """

    hostVolume: vtkMRMLScalarVolumeNode
    organSegmentation: vtkMRMLSegmentationNode
    seed: int = 0
    readerName: str = ""
    batchUseFolder: bool = False
    batchHostsFolder: str = ""
    batchOutputFolder: str = ""
    batchPerType: int = 1
    batchWorkers: int = 1
    batchAllTypes: bool = True


#
# PASTASynthWidget
#


class PASTASynthWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget shell: binds the .ui to the parameter node and forwards user actions to the logic.

    The drop-downs, the report view and the batch panel live in ``PASTASynthWidgets``; what they compute lives in
    ``PASTASynthSlicerLib`` (tested on slicer-core).
    """

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._options = self._batch = self._report = self._place = None
        self._currentKey = None  # the lesion that changes apply to; None: the next lesion

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        ensurePastaLibrariesImportable()
        from PASTASynthWidgets.batch_panel import BatchPanel
        from PASTASynthWidgets.lesion_options import LesionOptions
        from PASTASynthWidgets.place_button import PlaceButton
        from PASTASynthWidgets.report_view import ReportView

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/PASTASynth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = PASTASynthLogic()
        parameterNode = lambda: self._parameterNode
        self._options = LesionOptions(self.ui, parameterNode)
        self._batch = BatchPanel(self.ui, self.logic, parameterNode, self._options.lesionType, self._updateButtons)
        self._report = ReportView(self.ui, parameterNode)
        self._place = PlaceButton(self.ui, self._placeAt)
        for part in (self._options, self._batch, self._report, self._place):
            part.setup()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)

        self.ui.checkHostButton.connect("clicked(bool)", self.onCheckHostButton)
        for selector in (self.ui.hostVolumeSelector, self.ui.organSegmentationSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputsChanged)
        self.ui.lesionTypeComboBox.connect("activated(int)", self.onLesionTypeChosen)
        self.ui.sizeComboBox.connect("activated(int)", self.onLesionParameterChanged)
        self.ui.sizeComboBox.lineEdit().connect("editingFinished()", self.onLesionParameterChanged)
        for comboBox in self._options.attributeComboBoxes().values():
            comboBox.connect("activated(int)", self.onLesionParameterChanged)
        self.ui.lesionComboBox.connect("activated(int)", self.onLesionSelected)
        self.ui.regenerateButton.connect("clicked(bool)", self.onRegenerate)
        self.ui.acceptButton.connect("clicked(bool)", self.onAccept)
        self.ui.undoButton.connect("clicked(bool)", lambda checked=False: self.onUndoRedo(redo=False))
        self.ui.redoButton.connect("clicked(bool)", lambda checked=False: self.onUndoRedo(redo=True))
        self.ui.exportCaseButton.connect("clicked(bool)", self.onExportCase)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        if self._batch is not None:
            self._batch.cleanup()
        if self._place is not None:
            self._place.cleanup()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self._place.release()
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self._place.release()
        self._batch.cleanup(wait=False)
        self.logic.forgetSessions()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAdded(self, caller, event, node) -> None:
        if self.parent.isEntered and node is not None and node.IsA("vtkMRMLScalarVolumeNode"):
            qt.QTimer.singleShot(0, self._selectDefaultHostVolume)

    def onReload(self) -> None:
        forgetLibraryModules()
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        self._selectDefaultHostVolume()

    def _selectDefaultHostVolume(self) -> None:
        if self._parameterNode is not None and not self._parameterNode.hostVolume:
            node = defaultHostVolume()
            if node is not None:
                self._parameterNode.hostVolume = node

    def setParameterNode(self, inputParameterNode: Optional[PASTASynthParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets in the .ui carry the dynamic property SlicerParameterName = field name.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._options.organsChanged(self._parameterNode.organSegmentation)
        self._refreshLesions()

    def _session(self):
        p = self._parameterNode
        return self.logic.existingSession(p.hostVolume, p.organSegmentation) if p and p.hostVolume else None

    def _updateButtons(self, caller=None, event=None) -> None:
        session = self._session()
        hasHost = bool(self._parameterNode and self._parameterNode.hostVolume)
        canPlace = hasHost and self._options.typeAvailable()
        selected = self._currentStep() is not None
        self.ui.checkHostButton.enabled = hasHost
        self.ui.placeButton.enabled = canPlace
        self.ui.placeButton.toolTip = (_("Click, then click in a slice view: the lesion is centred on that point")
                                       if canPlace else
                                       _("Select a host CT and a lesion type whose organ is in the segmentation"))
        self.ui.regenerateButton.enabled = self.ui.acceptButton.enabled = selected
        self.ui.undoButton.enabled = bool(session and session.can_undo())
        self.ui.redoButton.enabled = bool(session and session.can_redo())
        self.ui.exportCaseButton.enabled = bool(session and session.lesions)
        self._batch.updateButtons(hasHost)

    # ------------------------------------------------------------------ lesion parameters
    def onInputsChanged(self, node=None) -> None:
        # After the parameter node has taken the new selection (connectGui's slot may run later).
        qt.QTimer.singleShot(0, self._inputsChanged)

    def _inputsChanged(self) -> None:
        """Another host or segmentation: its allowed types, and its own session's lesions."""
        if self._parameterNode is not None:
            self._options.organsChanged(self._parameterNode.organSegmentation)
            self._refreshLesions()

    def onLesionTypeChosen(self, index=None) -> None:
        self._options.fillOptions()
        self._options.store()
        self._selectLesion(None)  # a lesion cannot change its type in place: this is for the next one

    def onLesionParameterChanged(self, index=None) -> None:
        """A new size or attribute: stored for the next lesion, and the selected lesion re-generated."""
        if self._options.updating or self._parameterNode is None:
            return
        self._options.store()
        step = self._currentStep()
        if step is not None:
            size, chosen = self._options.sizeText(), self._options.chosenAttributes()
            self._run(lambda: self.logic.regenerate(self._session(), step.key, size, chosen, keepSeed=True))

    def _run(self, action):
        """Run a session action and return its lesion, or None: a user-fixable problem goes to the
        status line, anything else to an error popup; either way the scene stays as it was."""
        from PASTALib.errors import PastaInputError

        with slicer.util.tryWithErrorDisplay(_("PASTA Synth failed."), waitCursor=True):
            try:
                step = action()
            except PastaInputError as error:
                self.ui.statusLabel.text = str(error)
                return None
            self.ui.statusLabel.text = self.logic.describe(step)
            self._refreshLesions(step.key)
            return step
        return None

    # ------------------------------------------------------------------ placing
    def _placeAt(self, ras) -> None:
        p = self._parameterNode
        if p is None:
            return
        first = self._session() is None
        self._options.store()
        size, chosen = self._options.sizeText(), self._options.chosenAttributes()
        step = self._run(lambda: self.logic.place(p.hostVolume, p.organSegmentation, self._options.lesionType(),
                                                  ras, size, chosen, p.seed))
        if step is not None:
            p.seed = p.seed + 1  # the next lesion differs
            if first:  # show the synthetic volume and its segments
                slicer.util.setSliceViewerLayers(background=self._session().output_node, fit=False)

    # ------------------------------------------------------------------ lesions
    def _refreshLesions(self, selectKey: Optional[str] = None) -> None:
        """The lesion list from the session; select ``selectKey`` (None: the next lesion)."""
        session = self._session()
        self.ui.lesionComboBox.clear()
        self.ui.lesionComboBox.addItem(_("(next lesion)"), "")
        for step in session.lesions if session else []:
            mark = _(" (accepted)") if step.accepted else ""
            self.ui.lesionComboBox.addItem(f"{step.key}: {step.name}{mark}", step.key)
        self._selectLesion(selectKey)

    def _selectLesion(self, key: Optional[str]) -> None:
        index = self.ui.lesionComboBox.findData(key) if key else 0
        self._currentKey = key if key and index > 0 else None
        self.ui.lesionComboBox.currentIndex = max(0, index)
        step = self._currentStep()
        if step is not None:
            self._options.showRequest(step.request)
        self._report.show(step)
        self._updateButtons()

    def _currentStep(self):
        session = self._session()
        if session is None or self._currentKey is None:
            return None
        return next((s for s in session.lesions if s.key == self._currentKey), None)

    def onLesionSelected(self, index=None) -> None:
        self._selectLesion(self.ui.lesionComboBox.currentData or None)
        step = self._currentStep()
        if step is not None:
            slicer.modules.markups.logic().JumpSlicesToLocation(*step.request.center_ras, True)

    def onRegenerate(self) -> None:
        session, key = self._session(), self._currentKey
        self._run(lambda: self.logic.regenerate(session, key))

    def onAccept(self) -> None:
        session, key = self._session(), self._currentKey
        self._run(lambda: session.accept(key))
        self._selectLesion(None)
        self.ui.statusLabel.text = _("Accepted {key}. Changes now apply to the next lesion.").format(key=key)

    def onUndoRedo(self, redo: bool) -> None:
        session = self._session()
        if session is None:
            return
        step = session.redo() if redo else session.undo()
        self._refreshLesions(step.key if redo and step is not None else None)
        if step is not None:
            self.ui.statusLabel.text = (_("Redid {name}.") if redo else _("Undid {name}.")).format(name=step.name)

    def onExportCase(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder for the case"))
        if not folder:
            return
        session = self._session()
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            from PASTALib.errors import PastaInputError

            try:
                case = self.logic.exportCase(session, folder)
            except PastaInputError as error:
                self.ui.statusLabel.text = str(error)
                return
            self.ui.statusLabel.text = _("Wrote case {path}").format(path=case)

    # ------------------------------------------------------------------ host check
    def onCheckHostButton(self) -> None:
        self.ui.reportTextEdit.setPlainText("")
        with slicer.util.tryWithErrorDisplay(_("Checking the host failed."), waitCursor=True):
            from PASTALib.errors import PastaInputError

            try:
                report = self.logic.checkHost(self._parameterNode.hostVolume, self._parameterNode.organSegmentation)
            except PastaInputError as error:
                self.ui.reportTextEdit.setPlainText(str(error))
                return
            self.ui.reportTextEdit.setPlainText(self.logic.reportText(report))


#
# PASTASynthLogic
#


class PASTASynthLogic(ScriptedLoadableModuleLogic):
    """Usable without the widget, e.g. from the Python console:

    ``logic = PASTASynthLogic(); step = logic.place(ct, organs, "liver_tumor", [x, y, z], "20", {}, 0)``
    then ``logic.regenerate(logic.session(ct, organs), step.key)``, ``session.undo()``, ``logic.exportCase(...)``.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._sessions = None

    def getParameterNode(self):
        return PASTASynthParameterNode(super().getParameterNode())

    def _registry(self):
        if self._sessions is None:
            ensurePastaLibrariesImportable()
            from PASTASynthSlicerLib.actions import Sessions

            self._sessions = Sessions()
        return self._sessions

    def forgetSessions(self) -> None:
        if self._sessions is not None:
            self._sessions.clear()

    def existingSession(self, hostVolume, organSegmentation=None):
        """The session of this host and segmentation if it exists (its output still in the scene)."""
        return self._registry().existing(hostVolume, organSegmentation)

    def session(self, hostVolume, organSegmentation=None):
        """The session of this host and segmentation, created (with its output nodes) if needed."""
        return self._registry().get(hostVolume, organSegmentation)

    def place(self, hostVolume, organSegmentation, lesionType: str, ras, sizeText: str = "random",
              attributes: Optional[dict] = None, seed: int = 0):
        """Place one lesion at ``ras``; drop-down values ("random", "20") are checked first."""
        return self._registry().place(hostVolume, organSegmentation, lesionType, ras, sizeText, attributes, seed)

    def regenerate(self, session, key: Optional[str] = None, sizeText: Optional[str] = None,
                   attributes: Optional[dict] = None, keepSeed: bool = False):
        """Draw lesion ``key`` again in place: with new drop-down values, or (no values) with the next seed."""
        from PASTASynthSlicerLib.actions import regenerate

        return regenerate(session, key, sizeText, attributes, keep_seed=keepSeed)

    def describe(self, step) -> str:
        from PASTASynthSlicerLib.actions import describe

        return describe(step)

    def exportCase(self, session, folder: str):
        """Write the case into ``folder`` if it is empty, else into a new sub-folder named after the host."""
        from PASTASynthSlicerLib.actions import export_case

        return export_case(session, folder)

    def prepareBatch(self, outFolder: str, perType: int, hostsFolder: Optional[str] = None, hostVolume=None,
                     organSegmentation=None, types=(), seed: int = 0, workers: int = 1):
        """The synth-batch job: over ``hostsFolder``, or over the current host written to a temp folder."""
        import tempfile

        ensurePastaLibrariesImportable()
        from PASTASynthSlicerLib.batch_job import prepare_batch

        workDir = tempfile.mkdtemp(prefix="PASTASynth-batch-", dir=slicer.util.tempDirectory())
        return prepare_batch(outFolder, perType, module_dirs=[pastaModuleFolder(), moduleDir()],
                             hosts_dir=hostsFolder or None, host_node=hostVolume, organ_node=organSegmentation,
                             work_dir=workDir, types=types, seed=seed, workers=workers)

    def checkHost(self, hostVolume, organSegmentation=None) -> dict:
        """The ``pasta info`` report (a dict) of a host volume, with its organs if a segmentation is given.

        The report is returned even when the host does not look like CT; its ``ct_check`` says so.
        """
        ensurePastaLibrariesImportable()
        from PASTALib.errors import PastaInputError
        from PASTASlicerLib.logic import describe_volume_node

        if hostVolume is None:
            raise PastaInputError("No host volume is selected.", "Choose a CT volume as host.")
        report = describe_volume_node(hostVolume, organSegmentation, force=True)
        logging.info("PASTA Synth checked host %s: %s", hostVolume.GetName(), report["ct_check"]["verdict"])
        return report

    def reportText(self, report: dict) -> str:
        """The human-readable form of a report, as printed by ``pasta info``."""
        ensurePastaLibrariesImportable()
        from PASTASlicerLib.logic import report_text

        return report_text(report)


#
# PASTASynthTest
#


class PASTASynthTest(ScriptedLoadableModuleTest):
    """In-Slicer tests; run them from the Reload & Test button or with ``slicer_add_python_unittest``."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_CheckHostWithOrgans()
        self.setUp()
        self.test_PlaceRegenerateUndoRedoExport()

    def _loadSample(self):
        folder = pastaModuleFolder()
        hostVolume = slicer.util.loadVolume(os.path.join(folder, SAMPLE_CT))
        organs = slicer.util.loadSegmentation(os.path.join(folder, SAMPLE_ORGANS))
        return hostVolume, organs

    def test_CheckHostWithOrgans(self):
        self.delayDisplay("Checking the bundled sample CT with its organ segmentation")
        hostVolume, organs = self._loadSample()
        logic = PASTASynthLogic()
        report = logic.checkHost(hostVolume, organs)
        self.assertEqual(list(report["geometry"]["size"]), [122, 101, 112])
        self.assertTrue(report["ct_check"]["looks_like_ct"])
        self.assertIn("mask", report)
        self.assertGreater(report["mask"]["label_count"], 0)
        text = logic.reportText(report)
        self.assertIn("122 x 101 x 112", text)
        self.assertIn("plausible CT", text)
        self.delayDisplay("Test passed")

    def test_PlaceRegenerateUndoRedoExport(self):
        """The GUI's path through the logic: place two lesions, re-generate the first, undo, redo, export."""
        import json
        import tempfile

        import numpy as np
        from scipy import ndimage

        self.delayDisplay("Placing, re-generating, undoing and exporting synthetic lesions in the sample")
        folder = pastaModuleFolder()
        hostVolume = slicer.util.loadVolume(os.path.join(folder, SAMPLE_CT))
        organs = slicer.util.loadLabelVolume(os.path.join(folder, SAMPLE_ORGANS))  # TotalSegmentator v2 ids
        hostBefore = slicer.util.arrayFromVolume(hostVolume).copy()
        # click where the pytest suite does: the liver voxel deepest inside the liver (label 5)
        depth = ndimage.distance_transform_edt(slicer.util.arrayFromVolume(organs) == 5,
                                               sampling=organs.GetSpacing()[::-1])
        liverKji = np.unravel_index(int(np.argmax(depth)), depth.shape)
        ijkToRas = vtk.vtkMatrix4x4()
        hostVolume.GetIJKToRASMatrix(ijkToRas)
        ras = [float(v) for v in ijkToRas.MultiplyPoint([*[float(v) for v in liverKji[::-1]], 1.0])[:3]]

        logic = PASTASynthLogic()
        first = logic.place(hostVolume, organs, "liver_tumor", ras, "20", {"density": "hypodense"}, seed=1)
        session = logic.session(hostVolume, organs)
        output = session.output_node
        self.assertEqual(output.GetName(), f"{hostVolume.GetName()} + synthetic lesions")
        self.assertTrue((slicer.util.arrayFromVolume(output) != hostBefore).any())
        logic.place(hostVolume, organs, "liver_tumor", [ras[0] + 25.0, ras[1], ras[2]], "15", {}, seed=2)

        regenerated = logic.regenerate(session, first.key, "20", {"density": "hyperdense"}, keepSeed=True)
        self.assertEqual(regenerated.name, "Liver tumor 1")
        self.assertEqual(regenerated.lesion.attributes["density"], "hyperdense")
        twoLesions = slicer.util.arrayFromVolume(output).copy()
        session.undo()
        session.undo()
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(output), hostBefore)
        session.redo()
        session.redo()
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(output), twoLesions)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(hostVolume), hostBefore)  # never modified
        self.assertEqual(session.segmentation_node.GetSegmentation().GetNumberOfSegments(), 3)

        case = logic.exportCase(session, tempfile.mkdtemp())
        self.assertEqual(sorted(os.listdir(case)),
                         sorted(["img.nii.gz", "label.nii.gz", "total.nii.gz", "type.json", "report.json"]))
        with open(os.path.join(case, "report.json"), encoding="utf-8") as file:
            findings = json.load(file)["findings"]
        self.assertEqual({f["lesion_type"]["key"] for f in findings}, {"liver_tumor"})
        self.delayDisplay("Test passed")
