"""PASTALib: the Slicer-free core of the PASTA extension.

Everything that computes lives here and imports nothing from Slicer, Qt or VTK, so it runs from the
``pasta`` command line, from tests, and from Slicer's Python alike.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import PastaCancelled, PastaError, PastaInputError


def __getattr__(name: str):
    """``PASTALib.Volume`` on first use, so importing a light module (the lesion table, which the Slicer
    module files read at file scope) does not pull numpy in."""
    if name == "Volume":
        from .io.volume import Volume

        return Volume
    raise AttributeError(f"module 'PASTALib' has no attribute {name!r}")


__all__ = ["PastaCancelled", "PastaError", "PastaInputError", "Volume", "__version__"]
