"""Atomic output files: written to a temporary name in the target folder, then renamed, so an
interrupted run never leaves a half-written file; an existing file is replaced only when asked.

Every writer in PASTA (volumes, probability maps, reports, DICOM) goes through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union

from .errors import PastaInputError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write(path: Path, content: Union[str, bytes, Callable[[str], None]], overwrite: bool = False,
                 suffix: str = "") -> Path:
    """Write ``content`` (text, bytes, or a function writing to the path it is given) to ``path``.

    ``suffix`` ends the temporary name, for writers that pick the format from it (SimpleITK).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PastaInputError(f"{path} already exists; PASTA never overwrites a file unless asked.",
                              "Choose another output name or pass --overwrite.")
    if not path.parent.is_dir():
        raise PastaInputError(f"Output folder {path.parent} does not exist.", "Create it first.")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    os.close(handle)
    try:
        if callable(content):
            content(temporary)
        else:
            Path(temporary).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
