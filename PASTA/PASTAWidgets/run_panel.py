"""Apply and Cancel: run ``pasta analyze`` in a separate process without freezing the GUI.

A timer polls the process for its JSON progress lines (progress bar and status text) and its log.
Cancel ends the whole process tree and leaves the scene unchanged; a failure is shown in plain
words with the log. The process, the files and the import are ``PASTASlicerLib`` (tested there).
"""

from __future__ import annotations

from typing import Callable, Optional

import qt
import slicer
from slicer.i18n import tr as _

from PASTASlicerLib.process_runner import status_text

#: How often the running analysis is polled for progress (ms).
POLL_INTERVAL_MS = 200


class RunPanel:
    """Owns the running analysis: its process, its progress display and the import of its results."""

    def __init__(self, ui, logic, parameterNode: Callable[[], object], modelPanel,
                 onStateChanged: Callable[[], None]) -> None:
        self.ui = ui
        self._logic = logic
        self._parameterNode = parameterNode
        self._models = modelPanel
        self._onStateChanged = onStateChanged
        self._runner = None
        self._job = None
        self._timer = None

    def setup(self) -> None:
        self.ui.logTextEdit.setFont(qt.QFontDatabase.systemFont(qt.QFontDatabase.FixedFont))
        self.ui.logTextEdit.visible = False
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._poll)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.showLogButton.connect("clicked(bool)", self.onShowLog)

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.state == "running"

    def cleanup(self) -> None:
        """The module is closing: stop a run and the timer."""
        if self.running:
            self._runner.cancel()
        if self._timer is not None:
            self._timer.stop()

    def onApply(self) -> None:
        if self.running:
            self.cancel()
            return
        with slicer.util.tryWithErrorDisplay(_("The analysis could not start."), waitCursor=True):
            if not self._logic.ensureDependencies():
                return
            lowMemory = self._deviceChoice()
            if lowMemory is None:
                return
            p = self._parameterNode()
            model = self._models.verifiedModel()  # raises with a plain message when a file changed
            options = self._logic.analysisOptions(p, model.path, lowMemory, model.pasta_defaults)
            self._job = self._logic.prepareAnalysis(p.inputVolume, options, organNode=p.organSegmentation)
            if self._job.warnings and not slicer.util.confirmOkCancelDisplay(
                    "\n\n".join(self._job.warnings) + "\n\n" + _("Run the analysis anyway?"),
                    windowTitle=_("PASTA: check the input")):
                self._logic.cleanupAnalysis(self._job)
                self._job = None
                return
            self.ui.logTextEdit.setPlainText(" ".join(self._job.command) + "\n" + "\n".join(self._job.notes))
            self._runner = self._logic.startAnalysis(self._job)
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = _("Starting…")
            self._timer.start()
            self._onStateChanged()

    def _deviceChoice(self) -> Optional[dict]:
        """AnalysisOptions values to apply after at most one question about the device; None: abort."""
        p = self._parameterNode()
        estimate, advice = self._logic.deviceAdvice(p.device, self._models.selectedModel(), p.inputVolume)
        self.ui.statusLabel.text = estimate
        if advice is None:
            return {}
        if advice.suggest_cpu:
            if not slicer.util.confirmYesNoDisplay(advice.message + "\n\n" + _("Run on the CPU instead?")):
                return None
            p.device = "cpu"
            return {}
        useLowMemory = slicer.util.confirmYesNoDisplay(advice.message + "\n\n" + _("Use the low-memory settings?"))
        return dict(advice.low_memory) if useLowMemory else {}

    def _poll(self) -> None:
        runner = self._runner
        if runner is None:
            self._timer.stop()
            return
        update = runner.poll()
        if update.log:
            self.ui.logTextEdit.appendPlainText("\n".join(update.log))
        if update.progress:
            last = update.progress[-1]
            if last.shown is not None:
                self.ui.progressBar.value = max(self.ui.progressBar.value, int(round(100 * last.shown)))
            self.ui.statusLabel.text = status_text(last)
        if update.finished:
            self._timer.stop()
            self._finish()

    def _finish(self) -> None:
        runner, job = self._runner, self._job
        try:
            if runner.state == "succeeded":
                with slicer.util.tryWithErrorDisplay(_("Importing the results failed; the scene is unchanged."),
                                                     waitCursor=True):
                    p = self._parameterNode()
                    results = self._logic.importResults(job, replacePrevious=self._confirmReplace(job, p))
                    if p is not None:
                        p.resultSegmentation = results.segmentation
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
                self._logic.cleanupAnalysis(job)
            self._runner = None
            self._job = None
            self._onStateChanged()

    def _confirmReplace(self, job, parameterNode) -> bool:
        """Replace the previous result if asked; ask again when it holds a reader's edits or review."""
        if parameterNode is None or not parameterNode.replacePrevious:
            return False
        previous, work = self._logic.previousResultWork(job)
        if not work:
            return True
        return slicer.util.confirmYesNoDisplay(_(
            "'{name}' holds {n} reader edit(s) or review decision(s). Replace it anyway? "
            "With No, the new result is added next to it.").format(name=previous.GetName(), n=work))

    def cancel(self) -> None:
        self.ui.statusLabel.text = _("Cancelling…")
        slicer.app.processEvents()
        # SIGTERM to the whole process tree now; the poll timer escalates to SIGKILL if needed,
        # so the GUI never waits here.
        self._runner.cancel(wait=False)

    def onShowLog(self) -> None:
        self.ui.logTextEdit.visible = not self.ui.logTextEdit.visible
