"""Atomic, verified output files: written to a temporary name in the target folder, flushed to disk,
checked, then renamed, so an interrupted run or a full disk never leaves a half-written file under
the real name; an existing file is replaced only when asked.

Every writer in PASTA (volumes, probability maps, reports, DICOM) goes through :func:`atomic_write`.
A file-system refusal (disk full, no permission, read-only) is the user's to fix, so it becomes a
:class:`PastaInputError` naming the path (exit 2), never an internal error.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

from .errors import PastaInputError

#: OS errors that mean "this place cannot take the output", not "PASTA has a bug".
_NO_SPACE = (errno.ENOSPC, errno.EFBIG) + ((errno.EDQUOT,) if hasattr(errno, "EDQUOT") else ())
_NO_PERMISSION = (errno.EACCES, errno.EPERM)
ENVIRONMENT_ERRNOS = frozenset(_NO_SPACE + _NO_PERMISSION + (errno.EROFS,))


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


#: Below this, a write that failed without saying why (ITK's writers report no errno) failed for space.
NEARLY_FULL_BYTES = 2**20


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _free_space(folder: Path) -> str:
    free = _free_bytes(folder)
    if free is None:
        return "unknown"
    return f"{free / 2**20:.1f} MiB" if free < 2**30 else f"{free / 2**30:.1f} GiB"


def output_error(path: Path, exc: OSError) -> PastaInputError:
    """The user-facing error for an OS refusal while writing ``path``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    free = _free_bytes(folder)
    if exc.errno in _NO_SPACE or (exc.errno == errno.EIO and free is not None and free < NEARLY_FULL_BYTES):
        reason = (exc.strerror or str(exc)).rstrip(".")
        return PastaInputError(f"No space left to write {path} ({_free_space(folder)} free there): {reason}.",
                               "Free some disk space or choose another output folder; nothing was left "
                               "half-written.")
    if exc.errno in _NO_PERMISSION:
        return PastaInputError(f"No permission to write {path}: {exc.strerror}.",
                               "Choose an output folder you can write to.")
    if exc.errno == errno.EROFS:
        return PastaInputError(f"{folder} is on a read-only file system; cannot write {path}.",
                               "Choose an output folder on a writable disk.")
    return PastaInputError(f"Cannot write {path} ({_free_space(folder)} free there): {exc.strerror or exc}.",
                           "Check the output path and the disk it is on.")


def _fsync(path: str | Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows has no directory handles to sync)."""
    if os.name == "posix":
        _fsync(folder)


def _check_bytes(temporary: str, expected: bytes) -> None:
    if Path(temporary).read_bytes() != expected:
        raise OSError(errno.EIO, "the file read back differs from what was written")


def atomic_write(path: Path, content: Union[str, bytes, Callable[[str], None]], overwrite: bool = False,
                 suffix: str = "", verify: Optional[Callable[[str], None]] = None) -> Path:
    """Write ``content`` (text, bytes, or a function writing to the path it is given) to ``path``.

    ``suffix`` ends the temporary name, for writers that pick the format from it (SimpleITK).
    ``verify`` re-reads the flushed temporary file (e.g. its header against its size) and raises if
    it is not what was meant; text and bytes are compared byte for byte.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PastaInputError(f"{path} already exists; PASTA never overwrites a file unless asked.",
                              "Choose another output name or pass --overwrite.")
    if path.is_dir():
        raise PastaInputError(f"{path} is a folder, not a file.", "Choose a file name for the output.")
    if not path.parent.is_dir():
        raise PastaInputError(f"Output folder {path.parent} does not exist.", "Create it first.")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from exc
    os.close(handle)
    try:
        if callable(content):
            content(temporary)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with open(temporary, "wb") as stream:
                stream.write(data)
            verify = verify or (lambda written: _check_bytes(written, data))
        _fsync(temporary)
        if os.path.getsize(temporary) == 0 and (callable(content) or len(content) > 0):
            raise OSError(errno.EIO, "the written file is empty")
        if verify is not None:
            verify(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except OSError as exc:
        raise output_error(path, exc) from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
