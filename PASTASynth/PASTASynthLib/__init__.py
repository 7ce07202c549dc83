"""PASTASynthLib: Slicer-free lesion synthesis (PASTA-Gen style) for the PASTASynth module.

It builds on :mod:`PASTALib`'s volume type and I/O. Its host-checking helpers live in
:mod:`PASTASynthLib.hosts`.
"""

from __future__ import annotations
