"""The selected lesion's report: shown as text, its impression editable (the reader is recorded).

The report lives in the lesion's text node (:mod:`PASTASlicerLib.report_store`, the PASTA
module's store), so edits are saved with the scene, survive undo/redo, and keep the machine text.
"""

from __future__ import annotations

from typing import Callable

import slicer
from slicer.i18n import tr as _


class ReportView:
    """Shows one lesion's report and saves impression edits through the core's review functions."""

    def __init__(self, ui, parameterNode: Callable[[], object]) -> None:
        self.ui = ui
        self._parameterNode = parameterNode
        self._step = None

    def setup(self) -> None:
        import qt

        self.ui.reportTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))
        self.ui.saveImpressionButton.connect("clicked(bool)", self.onSaveImpression)

    def show(self, step) -> None:
        """Show ``step``'s report (None: clear the panel)."""
        from PASTALib.report.render_markdown import render_markdown
        from PASTASlicerLib import report_store

        self._step = step
        node = step.report_node if step is not None else None
        report = report_store.load_report(node) if report_store.is_report_node(node) else None
        self.ui.reportTextEdit.setPlainText(render_markdown(report) if report else "")
        self.ui.impressionTextEdit.setPlainText(report.impression if report else "")
        self.ui.saveImpressionButton.enabled = report is not None

    def onSaveImpression(self) -> None:
        p = self._parameterNode()
        editor = (p.readerName or "").strip() if p is not None else ""
        if self._step is None or self._step.report_node is None:
            return
        if not editor:
            slicer.util.warningDisplay(_("Enter your name under Reader first: every edit records who made it."))
            return
        with slicer.util.tryWithErrorDisplay(_("The edit was not saved.")):
            from PASTASlicerLib import report_store

            report_store.edit_field(self._step.report_node, "report", "impression",
                                    self.ui.impressionTextEdit.toPlainText(), editor)
            self.show(self._step)
