"""PASTA: pan-tumour CT analysis for 3D Slicer (research use only).

This file only declares the module, its widget shell, a thin logic facade and the in-Slicer test.
Everything that computes lives in ``PASTALib`` (Slicer-free) and ``PASTASlicerLib`` (MRML <-> PASTALib
adapters); both are imported lazily inside methods so that loading the module costs nothing.
"""

import logging
import os
import sys
from typing import Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
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

#: Packages next to this file that ``onReload`` must import afresh.
LIBRARY_PACKAGES = ("PASTALib", "PASTASlicerLib")

SAMPLE_CT = os.path.join("PASTALib", "sample_data", "abdomen_native_3mm_ct.nii.gz")


def forgetLibraryModules(packages=LIBRARY_PACKAGES) -> None:
    """Drop the library packages from ``sys.modules`` so the next (lazy) import reads the files again."""
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]


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
            "PASTA brings the PASTA pan-tumour CT foundation model to 3D Slicer."
            "<p>This release checks a CT volume before analysis: its grid, orientation, "
            "intensity statistics and whether the values look like CT in Hounsfield units.</p>"
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
    inputVolume - the CT volume to check.
    forceNonCT - report the volume even if its intensities do not look like CT in HU.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    forceNonCT: bool = False


#
# PASTAWidget
#


class PASTAWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget shell: binds the .ui to the parameter node and forwards button clicks to the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/PASTA.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.reportTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))

        self.logic = PASTALogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)

        self.ui.checkVolumeButton.connect("clicked(bool)", self.onCheckVolumeButton)

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
        self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self._parameterNode and self._parameterNode.inputVolume:
            self.ui.checkVolumeButton.toolTip = _("Report the volume's geometry and check that it looks like CT")
            self.ui.checkVolumeButton.enabled = True
        else:
            self.ui.checkVolumeButton.toolTip = _("Select a CT volume first")
            self.ui.checkVolumeButton.enabled = False

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


#
# PASTALogic
#


class PASTALogic(ScriptedLoadableModuleLogic):
    """Usable without the widget, e.g. from the Python console:

    ``PASTALogic().reportText(PASTALogic().describeVolume(slicer.util.getNode("CT")))``
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

    def _loadSample(self):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), SAMPLE_CT)
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
