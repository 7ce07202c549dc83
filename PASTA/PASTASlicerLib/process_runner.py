"""Run ``pasta analyze`` in a separate process without blocking Slicer, and cancel it completely.

Why a process: a torch crash or out-of-memory error cannot take Slicer down, and GPU memory is
freed when the process ends. Why this shape: a reader thread puts each output line on a queue,
and the GUI drains it with a ``qt.QTimer`` (:meth:`ProcessRunner.poll`), so nothing here touches
Qt and the GUI never waits in a read loop. The CLI writes JSON progress lines
``{"stage", "fraction", "message"}`` on stderr; everything else is kept as the log.

Cancel ends the whole process tree: the child runs in its own process group (POSIX) and every
descendant is found with ``psutil`` when it is installed; it first gets SIGTERM (the CLI then stops
at its next progress report and exits with 130), then SIGKILL after a grace period.

Standard library only (``psutil`` optional).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from PASTALib.analysis.options import AnalysisOptions

#: Exit codes of the ``pasta`` command.
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130

IDLE, RUNNING, SUCCEEDED, FAILED, CANCELLED = "idle", "running", "succeeded", "failed", "cancelled"
#: Process groups and signals (Linux, macOS); otherwise Windows, where taskkill ends the tree.
PLATFORM_POSIX = os.name == "posix"


@dataclass
class Progress:
    stage: str
    fraction: Optional[float]  #: of the stage
    message: str
    overall: Optional[float] = None  #: of the whole run; never goes back (``pasta --progress json``)
    eta_s: Optional[float] = None  #: seconds left at the rate so far

    @property
    def shown(self) -> Optional[float]:
        """What a progress bar shows: the whole run's fraction when the run gives it."""
        return self.overall if self.overall is not None else self.fraction


@dataclass
class Update:
    """What :meth:`ProcessRunner.poll` found since the last call."""

    progress: list = field(default_factory=list)  #: :class:`Progress`, oldest first
    log: list = field(default_factory=list)  #: other output lines
    finished: bool = False  #: the process has ended and all its output was read


def status_text(progress: Progress) -> str:
    """The status line under the progress bar: stage, message and the time left when known."""
    text = f"{progress.stage.capitalize()}: {progress.message}" if progress.message else progress.stage.capitalize()
    if progress.eta_s is not None and progress.eta_s > 0:
        minutes, seconds = divmod(int(round(progress.eta_s)), 60)
        text += f" (about {minutes} min {seconds:02d} s left)" if minutes else f" (about {seconds} s left)"
    return text


def parse_progress(line: str) -> Optional[Progress]:
    """A progress record from one output line, or None when the line is ordinary log text."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "stage" not in data:
        return None
    def number(key: str) -> Optional[float]:
        value = data.get(key)
        return None if value is None else float(value)

    return Progress(str(data["stage"]), number("fraction"), str(data.get("message", "")), number("overall"),
                    number("eta_s"))


def analyze_command(python: str, options: "AnalysisOptions") -> list[str]:
    """The ``python -m PASTALib analyze`` command line the module runs (JSON progress), from the run's
    :class:`~PASTALib.analysis.options.AnalysisOptions` (the parser reads it back into the same object)."""
    return [python, "-m", "PASTALib", *options.to_argv(), "--progress", "json"]


def child_environment(module_dir: str | Path, device: str = "auto", base: Optional[dict] = None) -> dict:
    """The child's environment: ``PASTALib`` importable, and no GPU visible when the CPU is chosen."""
    env = dict(os.environ if base is None else base)
    paths = [str(module_dir)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env["PASTA_EXIT_WITH_PARENT"] = str(os.getpid())  # the analysis ends if Slicer dies (PASTALib.lifetime)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    return env


class ProcessRunner:
    """One non-blocking run of a command; poll it from a timer, cancel it at any time."""

    def __init__(self, command: Sequence[str], env: Optional[dict] = None, cwd: Optional[str] = None,
                 log_path: Optional[str | Path] = None) -> None:
        self.command = list(command)
        self.env = env
        self.cwd = cwd
        self.log_path = Path(log_path) if log_path else None
        self.state = IDLE
        self.returncode: Optional[int] = None
        self.log: list[str] = []
        self.last_progress: Optional[Progress] = None
        self.error: Optional[str] = None  #: the message of the CLI's "error" progress line
        self._process: Optional[subprocess.Popen] = None
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader: Optional[threading.Thread] = None
        self._cancel_requested = False
        self._kill_after: Optional[tuple] = None  #: (deadline, pids) of a pending cancel
        self._log_file = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> Optional[int]:
        return self._process.pid if self._process else None

    def start(self) -> None:
        if self.state == RUNNING:
            raise RuntimeError("the process is already running")
        kwargs: dict = {}
        if PLATFORM_POSIX:
            kwargs["start_new_session"] = True  # its own process group: cancel reaches every child
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "w", encoding="utf-8")
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=self.env, cwd=self.cwd, text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        self.state = RUNNING
        self._reader = threading.Thread(target=self._read, name="PASTA process reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._queue.put(line.rstrip("\r\n"))
        self._process.stdout.close()
        self._queue.put(None)  # end of output

    def poll(self) -> Update:
        """Everything new since the last call; call it from a GUI timer (never blocks)."""
        update = Update()
        if self.state == IDLE:
            return update
        self._escalate()
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._finish()
                update.finished = True
                break
            self._record(line, update)
        return update

    def _record(self, line: str, update: Update) -> None:
        if self._log_file:
            self._log_file.write(line + "\n")
            self._log_file.flush()
        progress = parse_progress(line)
        if progress is None:
            self.log.append(line)
            update.log.append(line)
            return
        self.last_progress = progress
        if progress.stage == "error":
            self.error = progress.message
        update.progress.append(progress)

    def _finish(self) -> None:
        assert self._process is not None
        self.returncode = self._process.wait()
        if self._cancel_requested:
            self._escalate(force=True)  # the child is gone: whatever it left behind goes now
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        if self.returncode == EXIT_OK and not self._cancel_requested:
            self.state = SUCCEEDED
        elif self._cancel_requested or self.returncode == EXIT_CANCELLED:
            self.state = CANCELLED
        else:
            self.state = FAILED

    def wait(self, timeout: Optional[float] = None, interval: float = 0.05) -> Update:
        """Poll until the run ends (scripts and tests; the GUI uses :meth:`poll` from a timer)."""
        total = Update()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state == RUNNING:
            update = self.poll()
            total.progress += update.progress
            total.log += update.log
            if update.finished:
                total.finished = True
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.command[:4]} still running after {timeout} s")
            time.sleep(interval)
        return total

    # ------------------------------------------------------------------ cancel
    def cancel(self, grace_s: float = 5.0, wait: bool = True) -> None:
        """End the process and all its descendants: SIGTERM first, SIGKILL after ``grace_s``.

        With ``wait=False`` (the GUI) this returns at once; :meth:`poll` sends the SIGKILL when the
        grace period is over and the tree is still alive.
        """
        if self._process is None:
            return
        pids = self._tree_pids()
        if self._process.poll() is not None and not _alive_any(pids - {self._process.pid}):
            return  # already over: its exit code decides the outcome
        self._cancel_requested = True
        self._signal_tree(pids, terminate=True)
        self._kill_after = (time.monotonic() + grace_s, pids)
        if not wait:
            return
        while time.monotonic() < self._kill_after[0] and _alive_any(pids):
            time.sleep(0.05)
        self._escalate(force=True)
        try:
            self._process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

    def _escalate(self, force: bool = False) -> None:
        """SIGKILL what is left of a cancelled tree once its grace period is over."""
        if self._kill_after is None:
            return
        deadline, pids = self._kill_after
        if not force and time.monotonic() < deadline:
            return
        pids = pids | self._tree_pids()
        if _alive_any(pids):
            self._signal_tree(pids, terminate=False)
        self._kill_after = None

    def _tree_pids(self) -> set:
        """The child and every descendant (``psutil`` if present, else the process group alone)."""
        if self._process is None:
            return set()
        pids = {self._process.pid}
        try:
            import psutil

            parent = psutil.Process(self._process.pid)
            pids |= {child.pid for child in parent.children(recursive=True)}
        except ImportError:
            pids |= _descendants_from_proc(self._process.pid)
        except Exception:  # the process ended between the calls
            pass
        return pids

    def _signal_tree(self, pids: set, terminate: bool) -> None:
        if PLATFORM_POSIX:
            sig = signal.SIGTERM if terminate else signal.SIGKILL
            try:
                os.killpg(self._process.pid, sig)  # the whole group, started with the child
            except (ProcessLookupError, PermissionError):
                pass
            for pid in pids:  # descendants that left the group (setsid) too
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        else:  # Windows: taskkill walks the tree (/T); /F forces it
            subprocess.run(taskkill_command(self._process.pid, force=not terminate), capture_output=True,
                           check=False)

    # ------------------------------------------------------------------ messages
    def failure_message(self) -> str:
        """Why the run failed, in plain words, for the status line (the log has the details)."""
        if self.state == CANCELLED:
            return "Cancelled. Nothing was added to the scene."
        text = "\n".join(self.log[-200:])
        if "CUDA out of memory" in text or "OutOfMemoryError" in text:
            return ("The GPU ran out of memory. Choose the CPU as device (slower) or close other programs "
                    "that use the GPU, then try again.")
        if "_ArrayMemoryError" in text or "MemoryError" in text:
            return "The computer ran out of memory for this image. Try a smaller image or a machine with more RAM."
        if self.error:
            return self.error
        if self.returncode == EXIT_BAD_INPUT:
            return "The input was refused; see the log for what to change."
        if self.returncode is not None and self.returncode < 0:
            return f"The analysis process was killed (signal {-self.returncode}), possibly for lack of memory."
        return (f"The analysis stopped with an internal error (exit code {self.returncode}). "
                "Please report it with the log.")


def _alive(pid: int) -> bool:
    """True for a running process (a zombie awaiting its parent counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    return True


def taskkill_command(pid: int, force: bool) -> list[str]:
    """Windows: end ``pid`` and its descendants (/T); /F forces it, as SIGKILL does on POSIX."""
    return ["taskkill", "/PID", str(pid), "/T"] + (["/F"] if force else [])


def _alive_any(pids) -> bool:
    if PLATFORM_POSIX:
        return any(_alive(pid) for pid in pids)
    try:  # Windows: psutil knows; without it, assume alive so the forced tree kill always follows
        import psutil
    except ImportError:
        return True
    return any(psutil.pid_exists(pid) for pid in pids)


def _descendants_from_proc(root: int) -> set:
    """Descendants from ``/proc`` (Linux without psutil); empty elsewhere."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def python_executable() -> str:
    """``PythonSlicer`` next to Slicer when there is one, else this interpreter."""
    import shutil

    return shutil.which("PythonSlicer") or sys.executable
