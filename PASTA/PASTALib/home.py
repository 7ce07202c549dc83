"""Where PASTA keeps what outlives a run: ``$PASTA_HOME`` or ``~/.pasta`` (models, measured timings)."""

from __future__ import annotations

import os
from pathlib import Path


def pasta_home() -> Path:
    """``$PASTA_HOME`` or ``~/.pasta``."""
    return Path(os.environ.get("PASTA_HOME") or Path.home() / ".pasta").expanduser()
