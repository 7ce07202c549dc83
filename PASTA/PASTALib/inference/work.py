"""How much work a run is, and how long it takes on this computer: counted before, measured after.

A network run is tiles x mirrorings x folds forward passes of one patch; its time is that count
times the seconds one forward pass took on this device, measured by earlier runs and kept in
``$PASTA_HOME/timings.json`` (no measurement yet: the count is given, not a guess). A detector run
is a fixed part plus a part per voxel, measured on the development VM; this computer's runs give the
factor by which it is faster or slower, kept in the same file. Torch-free, so the
Slicer panel can estimate before it starts anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from PASTALib.atomic import atomic_write
from PASTALib.home import pasta_home

TIMINGS_FILE = "timings.json"
#: Kept per key: the median of the last few runs, so one disturbed run does not rule.
RECENT_RUNS = 5


def tile_starts(size: int, tile: int, step_fraction: float) -> list[int]:
    """Evenly spread tile origins so consecutive tiles overlap by at least ``1 - step_fraction``."""
    if size <= tile:
        return [0]
    steps = int(math.ceil((size - tile) / (tile * step_fraction))) + 1
    actual = (size - tile) / (steps - 1)
    return [int(round(actual * i)) for i in range(steps)]


def tile_count(shape: Sequence[int], patch: Sequence[int], overlap: float) -> int:
    """Sliding-window tiles over ``shape`` (the network grid), as :mod:`.sliding_window` places them."""
    return math.prod(len(tile_starts(int(s), int(p), 1.0 - overlap)) for s, p in zip(shape, patch))


def new_shape(shape, spacing_from, spacing_to) -> tuple[int, int, int]:
    """nnU-Net's ``compute_new_shape``: round(old * old_spacing / new_spacing)."""
    return tuple(int(round(s * a / b)) for s, a, b in zip(shape, spacing_from, spacing_to))  # type: ignore[return-value]


def network_grid(shape_kji: Sequence[int], spacing_xyz: Sequence[float], preprocessing) -> tuple[int, ...]:
    """The volume's size on the network's grid (after the model's transpose and resampling; the
    non-zero crop can only make it smaller)."""
    order = preprocessing.transpose_forward
    shape = [shape_kji[i] for i in order]
    spacing = [tuple(spacing_xyz)[::-1][i] for i in order]
    return tuple(max(1, n) for n in new_shape(shape, spacing, preprocessing.spacing_zyx or spacing))


@dataclass
class Work:
    """A run's work, and its time on this device when one was measured."""

    forwards: int  #: network forward passes of one patch (0 for the detector)
    megavoxels: float
    seconds: Optional[float]  #: None: this device has no measurement yet
    what: str  #: the count, in words

    def text(self) -> str:
        if self.seconds is None:
            return f"{self.what}; its speed on this computer is measured by the first run."
        minutes, seconds = divmod(int(round(self.seconds)), 60)
        when = f"about {minutes} min {seconds:02d} s" if minutes else f"about {max(1, seconds)} s"
        return f"{when} ({self.what}, at the speed measured on this computer)"


class TimingLog:
    """Measured seconds per unit of work, per device and model shape, in ``$PASTA_HOME/timings.json``."""

    def __init__(self, home: Optional[Path] = None) -> None:
        self.path = Path(home or pasta_home()) / TIMINGS_FILE

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def rate(self, key: str) -> Optional[float]:
        values = [v for v in self._read().get(key, []) if isinstance(v, (int, float)) and v > 0]
        return sorted(values)[len(values) // 2] if values else None

    def record(self, key: str, seconds_per_unit: float) -> None:
        """Add one measurement; a read-only or full home is not worth failing a finished run for."""
        if not seconds_per_unit > 0:
            return
        data = self._read()
        data[key] = (list(data.get(key, [])) + [round(float(seconds_per_unit), 6)])[-RECENT_RUNS:]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(data, indent=1) + "\n", overwrite=True)
        except Exception:  # noqa: BLE001 - timings are a convenience, never a reason to fail
            pass


def network_key(device: str, stage_widths: Sequence[int], patch: Sequence[int]) -> str:
    return f"network|{device}|{'-'.join(map(str, stage_widths))}|{'x'.join(map(str, patch))}"


def detector_key(device: str = "cpu") -> str:
    return f"detector|{device}"


def network_work(shape_kji, spacing_xyz, preprocessing, overlap: float, mirrorings: int, folds: int,
                 key: str, log: Optional[TimingLog] = None) -> Work:
    grid = network_grid(shape_kji, spacing_xyz, preprocessing)
    tiles = tile_count(grid, preprocessing.patch_size, overlap)
    forwards = tiles * mirrorings * folds
    rate = (log or TimingLog()).rate(key)
    what = (f"{tiles} tiles x {mirrorings} mirroring(s) x {folds} fold(s) = {forwards} passes of "
            f"{'x'.join(map(str, preprocessing.patch_size))} voxels")
    return Work(forwards, math.prod(shape_kji) / 1e6, None if rate is None else forwards * rate, what)


#: The whole analysis with the detector (``run_analysis``, in process) on the 2-core development VM: a
#: fixed part (model, organ context, report) plus a part per input megavoxel (reading, resampling to and
#: from the working grid, findings): 1.9 s for the 1.4 M-voxel sample, 7.5 s (11 s with an organ mask)
#: for a 105 M-voxel CT.
DETECTOR_REFERENCE_S = (1.8, 0.075)


def detector_reference_seconds(megavoxels: float) -> float:
    fixed, per_megavoxel = DETECTOR_REFERENCE_S
    return fixed + per_megavoxel * megavoxels


def detector_work(shape_kji, key: str = detector_key(), log: Optional[TimingLog] = None) -> Work:
    """A detector run over ``shape_kji`` input voxels: the reference cost scaled by this computer's
    measured speed (its runs' time over the reference time)."""
    megavoxels = math.prod(shape_kji) / 1e6
    factor = (log or TimingLog()).rate(key)
    seconds = None if factor is None else factor * detector_reference_seconds(megavoxels)
    return Work(0, megavoxels, seconds, f"the whole analysis of {megavoxels:.0f} M voxels with the detector"
                if megavoxels >= 1 else f"the whole analysis of {megavoxels:.2f} M voxels with the detector")
