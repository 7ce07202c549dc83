"""Progress reporting and cancellation shared by every long-running command.

Long loops call ``progress.report(stage, fraction, message)``. Each call is also a cancellation
point: once :class:`CancelToken` is set (Ctrl-C, SIGTERM from the Slicer module's Cancel button),
the next report raises :class:`PastaCancelled`, so work stops promptly and nothing half-done is
written.

Three renderings: a progress bar on a terminal, one JSON object per line for programs (the Slicer
module parses ``{"stage": ..., "fraction": ..., "message": ...}``), or nothing.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import TextIO

from .errors import PastaCancelled


class CancelToken:
    """A thread-safe flag that asks running work to stop at its next progress report."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise PastaCancelled()

    def install_signal_handlers(self) -> None:
        """Turn SIGINT and SIGTERM into a cancellation request (main thread only)."""

        def _handler(signum, frame):  # noqa: ARG001 - signal API
            if self._event.is_set():  # second signal: stop now
                raise KeyboardInterrupt
            self._event.set()

        for name in ("SIGINT", "SIGTERM"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _handler)


class ProgressReporter:
    """Base reporter: checks for cancellation and remembers the current stage; renders nothing.

    A job that knows its stages gives them with :meth:`plan` (stage -> share of the whole run); the
    reporter then also keeps ``overall``, the whole run's fraction, which never goes back (a stage
    that starts again does not rewind it), and ``eta_s``, the seconds left at the rate so far.
    """

    def __init__(self, cancel: CancelToken | None = None) -> None:
        self.cancel = cancel or CancelToken()
        self.stage = ""
        self.overall: float | None = None
        self.eta_s: float | None = None
        self._spans: dict[str, tuple[float, float]] = {}
        self._started = time.monotonic()

    def plan(self, shares: dict[str, float]) -> None:
        """The run's stages in order with their relative cost; stages not listed keep ``overall``."""
        total = float(sum(shares.values())) or 1.0
        start = 0.0
        self._spans = {}
        for stage, share in shares.items():
            self._spans[stage] = (start / total, (start + share) / total)
            start += share
        self.overall = 0.0
        self._started = time.monotonic()

    def report(self, stage: str, fraction: float | None = None, message: str = "") -> None:
        """Record progress of ``stage`` (``fraction`` in 0..1, or None if unknown)."""
        self.cancel.raise_if_cancelled()
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        if stage in self._spans:
            low, high = self._spans[stage]
            self.overall = max(self.overall or 0.0, low + (high - low) * (fraction or 0.0))
            elapsed = time.monotonic() - self._started
            self.eta_s = elapsed * (1.0 - self.overall) / self.overall if self.overall >= 0.05 else None
        self._render(stage, fraction, message)
        self.stage = stage

    def finish(self, message: str = "done") -> None:
        """Mark the whole job as complete."""
        if self.overall is not None:
            self.overall, self.eta_s = 1.0, 0.0
        self._render("done", 1.0, message)
        self._close()

    def _render(self, stage: str, fraction: float | None, message: str) -> None:
        pass

    def _close(self) -> None:
        pass


class JsonProgress(ProgressReporter):
    """One JSON object per line, flushed at once, for a parent process to parse."""

    def __init__(self, stream: TextIO | None = None, cancel: CancelToken | None = None) -> None:
        super().__init__(cancel)
        self.stream = stream or sys.stderr

    def _render(self, stage: str, fraction: float | None, message: str) -> None:
        line = {"stage": stage, "fraction": None if fraction is None else round(fraction, 4),
                "message": message}
        if self.overall is not None:
            line["overall"] = round(self.overall, 4)
            line["eta_s"] = None if self.eta_s is None else round(self.eta_s, 1)
        self.stream.write(json.dumps(line) + "\n")
        self.stream.flush()


class BarProgress(ProgressReporter):
    """A one-line progress bar on a terminal; plain stage lines when not a terminal."""

    WIDTH = 30
    MIN_INTERVAL_S = 0.1

    def __init__(self, stream: TextIO | None = None, cancel: CancelToken | None = None) -> None:
        super().__init__(cancel)
        self.stream = stream or sys.stderr
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._drawn = False

    def _render(self, stage: str, fraction: float | None, message: str) -> None:
        if not self.is_tty:
            if stage != self.stage and stage != "done":
                self.stream.write(f"{stage}: {message}\n" if message else f"{stage}\n")
                self.stream.flush()
            return
        now = time.monotonic()
        if stage == self.stage and fraction not in (None, 1.0) and now - self._last_draw < self.MIN_INTERVAL_S:
            return
        self._last_draw = now
        shown = self.overall if self.overall is not None else fraction
        filled = int(round((shown or 0.0) * self.WIDTH))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        percent = "   ?" if shown is None else f"{100 * shown:3.0f}%"
        eta = f" ~{self.eta_s:.0f} s left" if self.eta_s is not None and self.overall is not None else ""
        text = f"\r[{bar}] {percent}{eta} {stage}" + (f": {message}" if message else "")
        self.stream.write(text[:200].ljust(80))
        self.stream.flush()
        self._drawn = True

    def _close(self) -> None:
        if self.is_tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def make_reporter(mode: str, cancel: CancelToken | None = None, stream: TextIO | None = None) -> ProgressReporter:
    """``"bar"``, ``"json"`` or ``"none"``, as chosen with ``--progress``."""
    if mode == "json":
        return JsonProgress(stream, cancel)
    if mode == "bar":
        return BarProgress(stream, cancel)
    if mode == "none":
        return ProgressReporter(cancel)
    raise ValueError(f"unknown progress mode {mode!r}")
