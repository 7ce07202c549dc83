"""PASTALib: the Slicer-free core of the PASTA extension.

Everything that computes lives here and imports nothing from Slicer, Qt or VTK, so it runs from the
``pasta`` command line, from tests, and from Slicer's Python alike.
"""

from __future__ import annotations

__version__ = "0.1.0"

from PASTALib.io.volume import Volume

from .errors import PastaCancelled, PastaError, PastaInputError

__all__ = ["PastaCancelled", "PastaError", "PastaInputError", "Volume", "__version__"]
