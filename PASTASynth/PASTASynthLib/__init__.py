"""PASTASynthLib: Slicer-free lesion synthesis (PASTA-Gen style) for the PASTASynth module.

It builds on :mod:`PASTALib`'s volume type, I/O and report. One job per module:
:mod:`.catalog` (per-type parameters over :mod:`PASTALib.lesions.lesion_types`), :mod:`.host`
(organ mask, phase, organ HU), :mod:`.geometry` (seed and shape), :mod:`.appearance` (HU,
texture, blending), :mod:`.mass_effect`, :mod:`.engine` (requests, quality gate, retries),
:mod:`.case_io` (PASTA-Gen-30K case folders), :mod:`.batch` (datasets) and :mod:`.cli_synth`
(``pasta synth`` / ``pasta synth-batch``).
"""

from __future__ import annotations
