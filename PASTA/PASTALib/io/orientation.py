"""Orientation codes and obliquity, computed from the direction matrix (never from array order)."""

from __future__ import annotations

import numpy as np

from .volume import LPS_TO_RAS

# Letters for the +x, +y, +z RAS directions and their opposites.
_POSITIVE = "RAS"
_NEGATIVE = "LPI"


def axis_codes(direction_lps: np.ndarray) -> str:
    """Three letters telling which way the i, j, k index axes point (nibabel's ``aff2axcodes``).

    ``"RAS"`` means i increases toward the patient's Right, j toward Anterior, k toward Superior;
    an ITK image with identity direction is ``"LPS"``.
    """
    ras = LPS_TO_RAS @ np.asarray(direction_lps, dtype=np.float64)
    codes = []
    used: set[int] = set()
    # Assign axes greedily by largest component so two index axes never get the same world axis.
    order = np.argsort(-np.max(np.abs(ras), axis=0))
    letters: dict[int, str] = {}
    for column in order:
        ranked = np.argsort(-np.abs(ras[:, column]))
        world = next(int(w) for w in ranked if int(w) not in used)
        used.add(world)
        letters[int(column)] = _POSITIVE[world] if ras[world, column] > 0 else _NEGATIVE[world]
    for column in range(3):
        codes.append(letters[column])
    return "".join(codes)


def obliquity_degrees(direction_lps: np.ndarray) -> float:
    """Largest angle (degrees) between an index axis and its nearest world axis; 0 = not oblique."""
    direction = np.asarray(direction_lps, dtype=np.float64)
    norms = np.linalg.norm(direction, axis=0)
    cosines = np.max(np.abs(direction), axis=0) / norms
    return float(np.degrees(np.arccos(np.clip(np.min(cosines), -1.0, 1.0))))
