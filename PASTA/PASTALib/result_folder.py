"""A run's output folder: owned by one run at a time, its results staged out of sight and put in
place whole.

``pasta analyze`` and ``pasta report`` write files that belong together (segmentation, the findings'
label map, report.json/md/html, key images, DICOM SEG + SR). A report beside another run's key images
or label map is a wrong answer that looks right, so:

- a lock file (:data:`LOCK`, an OS lock that dies with its process, even on ``kill -9``) makes a
  second run into the same folder fail at start, before any work;
- every output is written into a hidden staging folder; only when the run has finished are the staged
  entries moved in, after the previous result (the names it listed in :data:`MANIFEST`, or any of
  the run's planned names) has been moved aside, so ``--overwrite`` replaces the whole previous
  result and never mixes two;
- a failed or cancelled run removes its staging folder: nothing it wrote remains, and the previous
  result is untouched. Leftovers of a killed run are removed by the next run that takes the lock.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterable, Optional

from .atomic import atomic_write, output_error
from .errors import PastaInputError

log = logging.getLogger(__name__)

LOCK = ".pasta.lock"
MANIFEST = ".pasta-result.json"
STAGING_PREFIX = ".pasta-staging-"
RETIRED_PREFIX = ".pasta-retired-"


def _try_lock(handle: int) -> bool:
    """Take an exclusive, non-blocking OS lock on an open file; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class FolderLock:
    """An exclusive claim on a folder for one run, released when the run ends or its process dies."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._handle: Optional[int] = None

    def acquire(self) -> "FolderLock":
        while True:
            try:
                handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise output_error(self.path, exc) from exc
            if not _try_lock(handle):
                holder = os.read(handle, 200).decode("utf-8", "replace").strip()
                os.close(handle)
                raise PastaInputError(
                    f"Another PASTA run ({holder or 'unknown process'}) is writing into {self.folder}.",
                    "Wait for it to finish, or choose another output folder.")
            try:  # the previous holder may have removed the file between our open and our lock
                same = os.path.samestat(os.fstat(handle), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(handle)
        os.ftruncate(handle, 0)
        os.write(handle, f"process {os.getpid()}".encode())
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            os.unlink(self.path)
        except OSError:  # Windows cannot remove an open file; the next run reuses it
            pass
        os.close(self._handle)  # closing releases the OS lock
        self._handle = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def remove_leftovers(folder: Path, prefixes: Iterable[str]) -> list[str]:
    """Remove hidden entries a killed run left in ``folder`` (call only while holding its lock)."""
    removed = []
    for entry in sorted(Path(folder).iterdir()):
        if any(entry.name.startswith(prefix) for prefix in prefixes):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    if removed:
        log.info("Removed %d leftover(s) of an interrupted run in %s.", len(removed), folder)
    return removed


class ResultFolder:
    """``with ResultFolder(out, planned, overwrite) as result:`` write into ``result.staging``, then
    ``result.commit()``; leaving the block without committing removes everything staged."""

    def __init__(self, path: Path, planned: Iterable[str], overwrite: bool) -> None:
        self.path = Path(path).expanduser()
        self.planned = tuple(planned)
        self.overwrite = overwrite
        self.staging: Path = self.path  # set on entry
        self._lock = FolderLock(self.path)
        self._created = False
        self.committed = False

    # ------------------------------------------------------------------ entry: refuse before work
    def __enter__(self) -> "ResultFolder":
        if self.path.exists() and not self.path.is_dir():
            raise PastaInputError(f"{self.path} is a file; the output must be a folder.",
                                  "Pass a folder name with -o (it is created if missing).")
        try:
            if not self.path.exists():
                self.path.mkdir(parents=True)
                self._created = True
        except OSError as exc:
            raise output_error(self.path, exc) from exc
        self._lock.acquire()
        try:
            remove_leftovers(self.path, (STAGING_PREFIX, RETIRED_PREFIX))
            previous = self.previous_result()
            if previous and not self.overwrite:
                raise PastaInputError(f"{self.path} already holds {', '.join(previous)}; PASTA never "
                                      "overwrites a file unless asked.",
                                      "Choose another output folder or pass --overwrite (it replaces that "
                                      "whole result).")
            try:
                self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.path))
            except OSError as exc:
                raise output_error(self.path, exc) from exc
        except BaseException:
            self._cleanup()
            raise
        return self

    def previous_result(self) -> list[str]:
        """Names of the result already in the folder: those its manifest lists, and any planned name."""
        names = set(name for name in self.planned if (self.path / name).exists())
        manifest = self.path / MANIFEST
        if manifest.exists():
            try:
                listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
            except (OSError, ValueError, AttributeError):
                listed = []
            names.update(name for name in listed if isinstance(name, str) and _plain_name(name)
                         and (self.path / name).exists())
        return sorted(names)

    # ------------------------------------------------------------------ commit: all at once
    def commit(self) -> list[str]:
        """Move the staged entries in, replacing the previous result; returns the names written."""
        names = sorted(entry.name for entry in self.staging.iterdir())
        retired = self.path / f"{RETIRED_PREFIX}{uuid.uuid4().hex[:8]}"
        moved_aside: list[str] = []
        moved_in: list[str] = []
        try:
            retired.mkdir()
            for name in sorted(set(self.previous_result()) | {n for n in names if (self.path / n).exists()}):
                os.replace(self.path / name, retired / name)
                moved_aside.append(name)
            for name in names:
                os.replace(self.staging / name, self.path / name)
                moved_in.append(name)
            # the manifest's own rename fsyncs this folder: every rename above is durable with it
            atomic_write(self.path / MANIFEST, json.dumps({"files": names}, indent=1) + "\n", overwrite=True)
        except BaseException as exc:  # put the previous result back as it was
            for name in moved_in:
                os.replace(self.path / name, self.staging / name)
            for name in moved_aside:
                os.replace(retired / name, self.path / name)
            if isinstance(exc, OSError):
                raise output_error(self.path, exc) from exc
            raise
        finally:
            shutil.rmtree(retired, ignore_errors=True)
        self.committed = True
        return names

    # ------------------------------------------------------------------ exit: nothing half-written
    def __exit__(self, exc_type, exc, traceback) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.staging != self.path:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.release()
        if self._created and not self.committed:
            try:
                self.path.rmdir()  # only if empty: a folder this run created and left unused
            except OSError:
                pass


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name
