"""Build dataset and Cancel: ``pasta synth-batch`` in a separate process, without freezing the GUI.

The process runner is the PASTA module's (:mod:`PASTASlicerLib.process_runner`): a timer polls the
process for its JSON progress lines; Cancel ends the whole process tree. What is written and which
command runs is :mod:`PASTASynthSlicerLib.batch_job` (tested there with a real run).
"""

from __future__ import annotations

from typing import Callable, Optional

import qt
import slicer
from slicer.i18n import tr as _

#: How often the running batch is polled for progress (ms).
POLL_INTERVAL_MS = 200


class BatchPanel:
    """Owns the running batch: its process, its progress display and its temporary files."""

    def __init__(self, ui, logic, parameterNode: Callable[[], object], lesionType: Callable[[], Optional[str]],
                 onStateChanged: Callable[[], None]) -> None:
        self.ui = ui
        self._logic = logic
        self._parameterNode = parameterNode
        self._lesionType = lesionType
        self._onStateChanged = onStateChanged
        self._runner = None
        self._job = None
        self._timer = None

    def setup(self) -> None:
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._poll)
        self.ui.batchHostsBrowseButton.connect("clicked(bool)", lambda c=False: self._browse("batchHostsFolder"))
        self.ui.batchOutputBrowseButton.connect("clicked(bool)", lambda c=False: self._browse("batchOutputFolder"))
        self.ui.batchRunButton.connect("clicked(bool)", self.onRun)

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.state == "running"

    def cleanup(self, wait: bool = True) -> None:
        """The module or the scene is closing: stop a run and the timer."""
        if self.running:
            self._runner.cancel(wait=wait)
        if self._timer is not None and wait:
            self._timer.stop()

    def updateButtons(self, hasHost: bool) -> None:
        p = self._parameterNode()
        ready = bool(p and p.batchOutputFolder and (p.batchHostsFolder if p.batchUseFolder
                                                     else hasHost and p.organSegmentation))
        self.ui.batchRunButton.text = _("Cancel") if self.running else _("Build dataset")
        self.ui.batchRunButton.enabled = self.running or ready
        self.ui.batchRunButton.toolTip = (_("Stop the batch; finished cases stay and a new run completes the rest")
                                          if self.running else _("Run pasta synth-batch in a separate process")
                                          if ready else _("Choose the dataset folder, and a hosts folder or the "
                                                          "host's organ segmentation"))
        self.ui.batchHostsLineEdit.enabled = bool(p and p.batchUseFolder)
        self.ui.batchHostsBrowseButton.enabled = bool(p and p.batchUseFolder)

    def _browse(self, field: str) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Choose a folder"))
        if folder and self._parameterNode() is not None:
            setattr(self._parameterNode(), field, folder)

    def onRun(self) -> None:
        if self.running:
            self.ui.batchStatusLabel.text = _("Cancelling…")
            self._runner.cancel(wait=False)  # the poll timer escalates to SIGKILL if needed
            return
        p = self._parameterNode()
        with slicer.util.tryWithErrorDisplay(_("The batch could not start."), waitCursor=True):
            from PASTALib.errors import PastaInputError
            from PASTASlicerLib.process_runner import ProcessRunner

            try:
                self._job = self._logic.prepareBatch(
                    p.batchOutputFolder, p.batchPerType, hostsFolder=p.batchHostsFolder if p.batchUseFolder else None,
                    hostVolume=p.hostVolume, organSegmentation=p.organSegmentation,
                    types=() if p.batchAllTypes else [self._lesionType()], seed=p.seed, workers=p.batchWorkers)
            except PastaInputError as error:
                self.ui.batchStatusLabel.text = str(error)
                return
            self._runner = ProcessRunner(self._job.command, env=self._job.env, log_path=self._job.log_path)
            self._runner.start()
            self.ui.batchProgressBar.value = 0
            self.ui.batchStatusLabel.text = _("Starting…")
            self._timer.start()
            self._onStateChanged()

    def _poll(self) -> None:
        runner = self._runner
        if runner is None:
            self._timer.stop()
            return
        update = runner.poll()
        if update.progress:
            last = update.progress[-1]
            if last.fraction is not None:
                self.ui.batchProgressBar.value = int(round(100 * last.fraction))
            self.ui.batchStatusLabel.text = last.message
        if update.finished:
            self._timer.stop()
            self._finish()

    def _finish(self) -> None:
        from PASTASynthSlicerLib.batch_job import cleanup

        runner, job = self._runner, self._job
        if runner.state == "succeeded":
            self.ui.batchProgressBar.value = 100
            self.ui.batchStatusLabel.text = _("Done: {path} (see its dataset.json)").format(path=job.out_dir)
        elif runner.state == "cancelled":
            self.ui.batchStatusLabel.text = _("Cancelled. Finished cases stay in {path}; run again to complete "
                                              "the dataset.").format(path=job.out_dir)
        else:
            self.ui.batchStatusLabel.text = (runner.error or _("The batch stopped (exit code {code}).").format(
                code=runner.returncode)) + " " + _("Log: {path}").format(path=job.log_path)
        if runner.state != "failed":
            cleanup(job)  # a failed run keeps its log (and the host copy) for inspection
        self._runner = self._job = None
        self._onStateChanged()
