"""A process that must not outlive its parent: Slicer's analysis child, synth-batch's workers.

``watch_parent(pid, on_death)`` starts a daemon thread that calls ``on_death`` once the parent is gone
(even after ``kill -9``: a POSIX child is re-parented; on Windows a handle opened now is waited on,
so a reused pid cannot fool it).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

#: How often the parent is looked at (s).
POLL_S = 0.25
#: The environment variable a parent sets (to its pid) for a ``pasta`` child that must end with it.
PARENT_PID_ENV = "PASTA_EXIT_WITH_PARENT"


def parent_alive_check(pid: int) -> Callable[[], bool]:
    """A function telling whether process ``pid`` (this process's parent) still runs."""
    if os.name == "posix":
        return lambda: os.getppid() == pid  # re-parented (to init or a subreaper) once the parent is gone
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x00100000, False, pid)  # SYNCHRONIZE
    if not handle:
        return lambda: True
    return lambda: kernel32.WaitForSingleObject(handle, 0) != 0  # 0 = WAIT_OBJECT_0: it has exited


def watch_parent(pid: int, on_death: Callable[[], None]) -> threading.Thread:
    alive = parent_alive_check(pid)

    def watch() -> None:
        while alive():
            time.sleep(POLL_S)
        on_death()

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread
