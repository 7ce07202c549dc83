"""PASTA Synth: synthetic lesions in CT for 3D Slicer (research use only).

This file only declares the module, its widget shell, a thin logic facade and the in-Slicer test.
The synthesis engine will live in ``PASTASynthLib``; the MRML adapters it shares with the PASTA module
live in ``PASTASlicerLib``, which ships in the PASTA module folder. Both modules are installed into the
same scripted-modules folder, so ``PASTASlicerLib`` is importable once PASTA (a dependency) is loaded.
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
LIBRARY_PACKAGES = ("PASTALib", "PASTASlicerLib", "PASTASynthLib")

SAMPLE_CT = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_ct.nii.gz")
SAMPLE_ORGANS = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_organs.nii.gz")


def pastaModuleFolder() -> str:
    """Where PASTALib and PASTASlicerLib live: next to this file once installed, ../PASTA in a source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
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
    """The volume the user is looking at: the first slice view's background, else the first volume."""

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
            "PASTA Synth will place synthetic lesions into healthy CT, as in PASTA's synthetic "
            "training augmentation. Lesion synthesis arrives with the synthesis engine."
            "<p>This release checks a host CT and, optionally, an organ segmentation: it reports the "
            "volume's grid, orientation, intensities, whether it looks like CT in Hounsfield units, "
            "and the organs in the segmentation.</p>"
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
    hostVolume - the healthy CT that will receive lesions.
    organSegmentation - organs of the host (optional), e.g. from TotalSegmentator.
    """

    hostVolume: vtkMRMLScalarVolumeNode
    organSegmentation: vtkMRMLSegmentationNode


#
# PASTASynthWidget
#


class PASTASynthWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget shell: binds the .ui to the parameter node and forwards button clicks to the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/PASTASynth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.reportTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))

        self.logic = PASTASynthLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)

        self.ui.checkHostButton.connect("clicked(bool)", self.onCheckHostButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
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
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets in the .ui carry the dynamic property SlicerParameterName = field name.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self._parameterNode and self._parameterNode.hostVolume:
            self.ui.checkHostButton.toolTip = _("Report the host's geometry, intensities and organs")
            self.ui.checkHostButton.enabled = True
        else:
            self.ui.checkHostButton.toolTip = _("Select a host CT volume first")
            self.ui.checkHostButton.enabled = False

    def onCheckHostButton(self) -> None:
        self.ui.reportTextEdit.setPlainText("")
        with slicer.util.tryWithErrorDisplay(_("Checking the host failed."), waitCursor=True):
            ensurePastaLibrariesImportable()
            from PASTALib.errors import PastaInputError

            try:
                report = self.logic.checkHost(self._parameterNode.hostVolume,
                                              self._parameterNode.organSegmentation)
            except PastaInputError as error:
                # A problem the user can fix: say what and how, without a traceback or a popup.
                self.ui.reportTextEdit.setPlainText(str(error))
                return
            self.ui.reportTextEdit.setPlainText(self.logic.reportText(report))


#
# PASTASynthLogic
#


class PASTASynthLogic(ScriptedLoadableModuleLogic):
    """Usable without the widget, e.g. from the Python console."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return PASTASynthParameterNode(super().getParameterNode())

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

    def test_CheckHostWithOrgans(self):
        self.delayDisplay("Checking the bundled sample CT with its organ segmentation")
        folder = pastaModuleFolder()
        hostVolume = slicer.util.loadVolume(os.path.join(folder, SAMPLE_CT))
        organs = slicer.util.loadSegmentation(os.path.join(folder, SAMPLE_ORGANS))
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
