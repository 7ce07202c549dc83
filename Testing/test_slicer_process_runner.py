"""The non-blocking runner with real subprocesses: `python -m PASTALib analyze` and a process tree.

* JSON progress lines arrive through :meth:`poll` while the process runs, and a successful run is
  reported as such with its outputs written.
* Cancel during segmentation ends the run promptly (SIGTERM -> the CLI's cancel, exit 130) and
  writes no report.
* Cancel ends grandchildren too, including one that left the process group.
* A refused input is reported in the CLI's plain words.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from conftest import REPO

from slicer_scene import SAMPLE_CT, kidney_tumor_model

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process-group checks are POSIX")
MODULE_DIR = REPO / "PASTA"


def runner_for(tmp_path, model, out, **kwargs):
    from PASTALib.analysis.options import AnalysisOptions
    from PASTASlicerLib.process_runner import ProcessRunner, analyze_command, child_environment

    options = AnalysisOptions(image=str(SAMPLE_CT), output=str(out), model=str(model), device="cpu",
                              organs="sample-organs", **kwargs)
    command = analyze_command(sys.executable, options)
    return ProcessRunner(command, env=child_environment(MODULE_DIR, "cpu"), cwd=str(tmp_path),
                         log_path=tmp_path / "run.log")


def test_progress_shows_the_whole_run_and_the_time_left():
    from PASTASlicerLib.process_runner import parse_progress, status_text

    line = '{"stage": "rendering", "fraction": 0.5, "message": "key image F2", "overall": 0.82, "eta_s": 75.4}'
    progress = parse_progress(line)
    assert progress.shown == 0.82 and progress.eta_s == 75.4
    assert status_text(progress) == "Rendering: key image F2 (about 1 min 15 s left)"
    older = parse_progress('{"stage": "segmenting", "fraction": 0.25, "message": "tile 3"}')
    assert older.shown == 0.25 and status_text(older) == "Segmenting: tile 3"


def test_parse_progress_separates_progress_from_log_lines():
    from PASTASlicerLib.process_runner import parse_progress

    progress = parse_progress('{"stage": "segmenting", "fraction": 0.25, "message": "tile batch 4/12"}')
    assert (progress.stage, progress.fraction, progress.message) == ("segmenting", 0.25, "tile batch 4/12")
    assert parse_progress('{"stage": "error", "fraction": null, "message": "bad"}').fraction is None
    for line in ("2 finding(s); wrote /tmp/x", "{not json}", '{"no_stage": 1}', ""):
        assert parse_progress(line) is None


def test_command_and_environment():
    """The command line is the run's AnalysisOptions, and `pasta analyze`'s parser reads it back unchanged."""
    from PASTALib.analysis.options import AnalysisOptions
    from PASTALib.cli.main import build_parser
    from PASTASlicerLib.process_runner import analyze_command, child_environment

    options = AnalysisOptions(image="ct.nrrd", model="m", output="out", device="cuda", tta=False,
                              lesion_type="liver_tumor", organs="organs.nrrd", batch_size=1)
    command = analyze_command("PythonSlicer", options)
    assert command[:4] == ["PythonSlicer", "-m", "PASTALib", "analyze"]
    assert AnalysisOptions.from_args(build_parser().parse_args(command[3:])) == options
    assert command[command.index("--progress") + 1] == "json" and "--no-tta" in command
    assert command[command.index("--lesion-type") + 1] == "liver_tumor"
    env = child_environment("/ext/PASTA", "cpu", base={"PYTHONPATH": "/a"})
    assert env["PYTHONPATH"].split(os.pathsep) == ["/ext/PASTA", "/a"] and env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert "CUDA_VISIBLE_DEVICES" not in child_environment("/ext/PASTA", "auto", base={})
    assert env["PASTA_EXIT_WITH_PARENT"] == str(os.getpid())  # the analysis ends if Slicer dies


@pytest.mark.slow
def test_a_run_reports_json_progress_without_blocking(tmp_path):
    from PASTASlicerLib.process_runner import RUNNING, SUCCEEDED

    model = kidney_tumor_model(tmp_path / "model")
    runner = runner_for(tmp_path, model, tmp_path / "out")
    started = time.monotonic()
    runner.start()
    first = runner.poll()  # returns at once, whatever the child is doing
    assert time.monotonic() - started < 1.0 and runner.state == RUNNING
    stages, polls = [p.stage for p in first.progress], 1
    while runner.state == RUNNING:
        update = runner.poll()
        stages += [p.stage for p in update.progress]
        polls += 1
        time.sleep(0.05)
    assert runner.state == SUCCEEDED and runner.returncode == 0
    assert polls > 10, "progress should arrive over many polls, not at the end"
    assert stages[0] == "reading" and stages[-1] == "done"
    assert {"segmenting", "findings"} <= set(stages)
    assert (tmp_path / "out" / "report.json").is_file()
    assert '"stage": "done"' in (tmp_path / "run.log").read_text()


def test_cancel_during_segmentation_stops_the_run_and_writes_nothing(tmp_path):
    from PASTASlicerLib.process_runner import CANCELLED, RUNNING, _alive

    model = kidney_tumor_model(tmp_path / "model")
    out = tmp_path / "out"
    runner = runner_for(tmp_path, model, out)
    runner.start()
    deadline = time.monotonic() + 60
    while runner.last_progress is None or runner.last_progress.stage != "segmenting":
        runner.poll()
        assert runner.state == RUNNING and time.monotonic() < deadline
        time.sleep(0.02)
    pid = runner.pid
    started = time.monotonic()
    runner.cancel(grace_s=10)
    runner.wait(timeout=10)
    assert time.monotonic() - started < 10
    assert runner.state == CANCELLED and runner.returncode in (130, -9)
    assert not _alive(pid)
    assert not (out / "report.json").exists() and not (out / "segmentation.nii.gz").exists()
    assert runner.failure_message().startswith("Cancelled")


TREE_SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    child = subprocess.Popen(sleeper)                          # same process group
    escaped = subprocess.Popen(sleeper, start_new_session=True)  # left the group
    print(child.pid, escaped.pid, flush=True)
    time.sleep(600)
""")


def test_cancel_ends_the_whole_process_tree(tmp_path):
    from PASTASlicerLib.process_runner import CANCELLED, ProcessRunner, _alive

    script = tmp_path / "tree.py"
    script.write_text(TREE_SCRIPT)
    runner = ProcessRunner([sys.executable, str(script)])
    runner.start()
    deadline = time.monotonic() + 30
    while not runner.log:
        runner.poll()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child, escaped = map(int, runner.log[0].split())
    assert _alive(child) and _alive(escaped)
    runner.cancel(grace_s=2)
    runner.wait(timeout=10)
    assert runner.state == CANCELLED
    deadline = time.monotonic() + 5
    while (_alive(child) or _alive(escaped)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(runner.pid) and not _alive(child) and not _alive(escaped)


def test_a_refused_input_is_explained_in_plain_words(tmp_path):
    from PASTASlicerLib.process_runner import FAILED

    runner = runner_for(tmp_path, tmp_path / "no_such_model", tmp_path / "out")
    runner.start()
    runner.wait(timeout=60)
    assert runner.state == FAILED and runner.returncode == 2
    assert runner.failure_message().startswith("Model not found")
    assert any(line.startswith("hint:") for line in runner.log)


STUBBORN_SCRIPT = textwrap.dedent("""
    import signal, subprocess, sys, time
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"]
    child = subprocess.Popen(stubborn, start_new_session=True, stdout=subprocess.PIPE, text=True)
    child.stdout.readline()  # SIGTERM is ignored from here on
    print(child.pid, flush=True)
    time.sleep(600)
""")


def test_non_blocking_cancel_escalates_to_sigkill_from_poll(tmp_path):
    """The GUI's cancel returns at once; polling kills what ignored SIGTERM after the grace period."""
    from PASTASlicerLib.process_runner import CANCELLED, ProcessRunner, _alive

    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN_SCRIPT)
    runner = ProcessRunner([sys.executable, str(script)])
    runner.start()
    deadline = time.monotonic() + 30
    while not runner.log:
        runner.poll()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stubborn = int(runner.log[0])
    started = time.monotonic()
    runner.cancel(grace_s=1.0, wait=False)
    assert time.monotonic() - started < 0.5
    time.sleep(0.3)
    assert _alive(stubborn)  # SIGTERM alone did not end it
    runner.wait(timeout=10)  # the GUI stops polling once the run has finished
    deadline = time.monotonic() + 5
    while _alive(stubborn) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL was sent; give the kernel a moment
    assert runner.state == CANCELLED and not _alive(stubborn)


def test_taskkill_command_ends_the_tree_and_forces_when_asked():
    from PASTASlicerLib.process_runner import taskkill_command

    assert taskkill_command(4321, force=False) == ["taskkill", "/PID", "4321", "/T"]
    assert taskkill_command(4321, force=True) == ["taskkill", "/PID", "4321", "/T", "/F"]


def test_cancel_on_windows_escalates_to_a_forced_tree_kill(monkeypatch):
    """The Windows branch, with the platform and taskkill stubbed: a polite tree kill, then /F after the
    grace period (before, liveness was always 'dead' off POSIX, so /F never came)."""
    import types

    from PASTASlicerLib import process_runner

    calls = []
    monkeypatch.setattr(process_runner, "PLATFORM_POSIX", False)
    monkeypatch.setattr(process_runner.subprocess, "run", lambda args, **kwargs: calls.append(args))
    monkeypatch.setitem(sys.modules, "psutil", None)  # no psutil: liveness unknown, so assumed alive
    runner = process_runner.ProcessRunner(["never-started"])
    runner._process = types.SimpleNamespace(pid=4321, poll=lambda: None, wait=lambda timeout=None: 0)
    runner.cancel(grace_s=0.05)
    assert calls == [["taskkill", "/PID", "4321", "/T"], ["taskkill", "/PID", "4321", "/T", "/F"]]
