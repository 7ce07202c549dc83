"""Models that ship inside the package, addressable by name (``--model default``).

A name is used only when no file or folder of that name exists, so a user's own ``./default``
folder still wins; the bundled weights are verified against their model card's SHA256 on load.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
BUNDLED = {"default": MODELS_DIR / "pasta-default"}


def resolve(name_or_path: str | Path) -> Path:
    """The bundled folder for a known name, else the path itself (expanded)."""
    path = Path(name_or_path).expanduser()
    if not path.exists() and str(name_or_path) in BUNDLED:
        return BUNDLED[str(name_or_path)]
    return path
