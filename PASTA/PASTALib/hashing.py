"""SHA256 of files, streamed: how every bundled, downloaded or imported file is verified."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA256 of a file, read in 4 MiB blocks so a 1 GB checkpoint needs no 1 GB buffer."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
