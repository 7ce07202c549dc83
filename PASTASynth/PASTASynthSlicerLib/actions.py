"""The module's actions on sessions, from what the drop-downs show ("random", "20", "hypodense").

One :class:`.session.SynthSession` per (host volume, organ segmentation): going back to a host
continues its session; deleting a session's output volume starts a new one. Kept here, not in the
module file, so the GUI's exact path (drop-down text -> request -> scene) is tested on slicer-core.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Optional, Sequence

from PASTALib.errors import PastaInputError

from .choices import parse_size, requested_attributes
from .session import KEEP, PlacedLesion, SynthSession


def _key(host_node, organs_node) -> tuple:
    return (host_node.GetID(), organs_node.GetID() if organs_node is not None else None)


class Sessions:
    """The synthesis sessions of one scene, by host and organ segmentation."""

    def __init__(self) -> None:
        self._sessions: dict[tuple, SynthSession] = {}

    def clear(self) -> None:
        self._sessions.clear()

    def existing(self, host_node, organs_node=None) -> Optional[SynthSession]:
        """The session of this host and segmentation whose output is still in the scene, or None."""
        if host_node is None:
            return None
        session = self._sessions.get(_key(host_node, organs_node))
        if session is not None and session.output_node.GetScene() is None:
            del self._sessions[_key(host_node, organs_node)]  # the user deleted its output: start afresh
            return None
        return session

    def get(self, host_node, organs_node=None) -> SynthSession:
        """The session of this host and segmentation, created (with its output nodes) if needed."""
        if host_node is None:
            raise PastaInputError("No host volume is selected.", "Choose a CT volume as host.")
        session = self.existing(host_node, organs_node)
        if session is None:
            session = SynthSession(host_node.GetScene(), host_node, organs_node)
            self._sessions[_key(host_node, organs_node)] = session
        return session

    def place(self, host_node, organs_node, lesion_type: Optional[str], ras: Sequence[float],
              size_text: str = "random", attributes: Optional[Mapping[str, str]] = None,
              seed: int = 0) -> PlacedLesion:
        """Place one lesion at ``ras``; the drop-down values are checked before any node is made."""
        if not lesion_type:
            raise PastaInputError("No lesion type is chosen.", "Choose a lesion type whose organ is segmented.")
        size = parse_size(size_text, lesion_type)
        chosen = requested_attributes(lesion_type, attributes or {})
        return self.get(host_node, organs_node).place(lesion_type, ras, size, chosen, seed)


def regenerate(session: Optional[SynthSession], key: Optional[str] = None, size_text: Optional[str] = None,
               attributes: Optional[Mapping[str, str]] = None, keep_seed: bool = False) -> PlacedLesion:
    """Draw lesion ``key`` again in place: with new drop-down values (same seed with ``keep_seed``,
    so only what changed differs), or with no values and the next seed (a new draw).

    Values equal to the lesion's request change nothing (a drop-down re-chosen, or a size field
    left): the lesion, its report and the reader's edits stay as they are.
    """
    if session is None:
        raise PastaInputError("There is no lesion to re-generate.", "Place a lesion first.")
    step = session.lesion(key)
    lesion_type = step.request.lesion_type
    size = KEEP if size_text is None else parse_size(size_text, lesion_type)
    chosen = None if attributes is None else requested_attributes(lesion_type, attributes)
    sizes = None if size is None or size is KEEP else [float(size)]
    if keep_seed and (size is KEEP or sizes == step.request.size_mm) \
            and (chosen is None or chosen == dict(step.request.attributes)):
        return step
    return session.regenerate(step.key, chosen, size, seed=step.request.seed if keep_seed else None)


def case_folder(folder: str | Path, host_name: str) -> Path:
    """``folder`` when it is empty or new, else a new sub-folder "<host>_synthetic[_n]" in it."""
    target = Path(folder)
    if not target.exists() or not any(target.iterdir()):
        return target
    base = (re.sub(r"[^A-Za-z0-9_-]+", "_", host_name).strip("_") or "host") + "_synthetic"
    candidate, number = target / base, 1
    while candidate.exists():
        number += 1
        candidate = target / f"{base}_{number}"
    return candidate


def export_case(session: Optional[SynthSession], folder: str | Path) -> Path:
    """Write the session's lesions as one case in (or under) the chosen folder."""
    if session is None:
        raise PastaInputError("There are no lesions to export.", "Place a lesion first.")
    return session.export_case(case_folder(folder, session.host_node.GetName()))


def describe(step: PlacedLesion) -> str:
    """One status line for a placed lesion: organ, size, attributes, target HU."""
    lesion, record = step.lesion, step.lesion.record
    return (f"{step.name}: {record['organ']}, {' x '.join(f'{v:g}' for v in lesion.size_mm)} mm, "
            + ", ".join(f"{k} {v}" for k, v in lesion.attributes.items())
            + f", {record['appearance']['target_hu']:g} HU")
