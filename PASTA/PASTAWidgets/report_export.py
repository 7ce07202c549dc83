"""The report's export buttons: JSON and HTML as edited, DICOM SEG + SR for a CT loaded from DICOM.

Files are written only where the user chose in a save dialog (which asks before replacing a file);
the writing itself is ``PASTASlicerLib.report_exports`` and the module logic's ``exportDicom``.
"""

from __future__ import annotations

from typing import Callable

import qt
import slicer
from slicer.i18n import tr as _


class ReportExport:
    """Connects the Export JSON / HTML / DICOM buttons of the Report section."""

    def __init__(self, ui, reportPanel, logic) -> None:
        self.ui = ui
        self._panel = reportPanel
        self._logic = logic

    def setup(self) -> None:
        self.ui.exportJsonButton.connect("clicked(bool)", lambda checked=False: self.onExport("json"))
        self.ui.exportHtmlButton.connect("clicked(bool)", lambda checked=False: self.onExport("html"))
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicom)

    def onExport(self, kind: str) -> None:
        node = self._panel.reportNode()
        if node is None:
            return
        suffix = {"json": "JSON (*.json)", "html": "HTML (*.html)"}[kind]
        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Export the report"),
                                              f"{node.GetName()}.{kind}", suffix)
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(_("Export failed.")):
            from PASTASlicerLib import report_exports

            write: Callable = (report_exports.export_json if kind == "json" else
                               lambda n, p: report_exports.export_html(n, p, self._panel.segmentation()))
            write(node, path)
            slicer.util.showStatusMessage(_("Wrote {path}").format(path=path), 5000)

    def onExportDicom(self) -> None:
        segmentation = self._panel.segmentation()
        if self._panel.reportNode() is None:
            return
        outFolder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder for the DICOM SEG and SR"))
        if not outFolder:
            return
        with slicer.util.tryWithErrorDisplay(_("DICOM export failed."), waitCursor=True):
            written = self._logic.exportDicom(segmentation, outFolder)
            slicer.util.infoDisplay(_("Wrote {files} and added them to the DICOM database.").format(
                files=", ".join(str(p) for p in written.values())) if written else
                _("No accepted or pending finding: nothing to export."))
