"""The one volume type used everywhere: a 3D scalar voxel array plus its place in the patient.

Conventions (the same as ITK, SimpleITK and ``slicer.util.arrayFromVolume``):

* ``array`` is indexed ``[k, j, i]`` (slice, row, column), i.e. ``(z, y, x)``;
* ``spacing`` is ``(x, y, z)`` in mm, i.e. along the index axes ``i, j, k``;
* ``origin`` is the LPS world position (mm) of the *centre* of voxel ``(0, 0, 0)``;
* ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the ``i, j, k`` axes.

World coordinates are kept in LPS (DICOM/ITK) and converted to RAS (Slicer, NIfTI/nibabel) only by
flipping the signs of x and y, which is exact in floating point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from PASTALib.errors import PastaInputError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

Triple = tuple[float, float, float]


def _as_triple(values: Sequence[float], what: str) -> Triple:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (3,):
        raise PastaInputError(f"{what} must have 3 values, got {arr.size}.")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D scalar volume with exact geometry. Immutable: use :meth:`with_array` for new voxels."""

    array: np.ndarray
    spacing: Triple = (1.0, 1.0, 1.0)
    origin: Triple = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.ndim != 3:
            raise PastaInputError(
                f"A volume needs a 3D voxel array, got {array.ndim}D with shape {array.shape}."
            )
        direction = np.array(self.direction, dtype=np.float64).reshape(3, 3)
        direction.setflags(write=False)
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "spacing", _as_triple(self.spacing, "spacing"))
        object.__setattr__(self, "origin", _as_triple(self.origin, "origin"))
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "metadata", dict(self.metadata))

    # ----------------------------------------------------------------------------- basic facts
    @property
    def size(self) -> tuple[int, int, int]:
        """Number of voxels along ``i, j, k`` (x, y, z), as ITK and Slicer report it."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def extent_mm(self) -> Triple:
        """Physical length covered along each index axis (voxel count x spacing)."""
        return tuple(float(n * s) for n, s in zip(self.size, self.spacing))  # type: ignore[return-value]

    def with_array(self, array: np.ndarray) -> "Volume":
        """A new volume on the same grid; the array must have the same shape."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise PastaInputError(
                f"New voxel array has shape {array.shape}, but the grid has {self.array.shape}."
            )
        return Volume(array, self.spacing, self.origin, self.direction, self.metadata)

    # ----------------------------------------------------------------------------- matrices
    @property
    def index_to_lps(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping ``(i, j, k, 1)`` to LPS mm."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction * np.asarray(self.spacing)[np.newaxis, :]
        matrix[:3, 3] = self.origin
        return matrix

    @property
    def index_to_ras(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping ``(i, j, k, 1)`` to RAS mm (Slicer's IJKToRAS)."""
        matrix = self.index_to_lps
        matrix[:2, :] *= -1.0
        return matrix

    @classmethod
    def from_index_to_ras(
        cls, array: np.ndarray, index_to_ras: np.ndarray, metadata: Mapping[str, str] | None = None
    ) -> "Volume":
        """Build a volume from a ``[k, j, i]`` array and a 4x4 IJK-to-RAS matrix (Slicer's form)."""
        matrix = np.asarray(index_to_ras, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise PastaInputError(f"IJK-to-RAS must be a 4x4 matrix, got shape {matrix.shape}.")
        lps = matrix[:3, :].copy()
        lps[:2, :] *= -1.0
        spacing = np.linalg.norm(lps[:, :3], axis=0)
        if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
            raise PastaInputError(f"IJK-to-RAS matrix has a zero or invalid axis: {matrix.tolist()}.")
        direction = lps[:, :3] / spacing[np.newaxis, :]
        return cls(array, tuple(spacing), tuple(lps[:, 3]), direction, metadata or {})

    # ----------------------------------------------------------------------------- points
    def index_to_lps_points(self, indices: np.ndarray) -> np.ndarray:
        """Continuous ``(i, j, k)`` indices, shape ``(N, 3)`` or ``(3,)``, to LPS mm."""
        pts = np.asarray(indices, dtype=np.float64)
        return pts @ (self.direction * np.asarray(self.spacing)).T + np.asarray(self.origin)

    def lps_to_index_points(self, points: np.ndarray) -> np.ndarray:
        """LPS mm, shape ``(N, 3)`` or ``(3,)``, to continuous ``(i, j, k)`` indices."""
        pts = np.asarray(points, dtype=np.float64) - np.asarray(self.origin)
        scaled = self.direction * np.asarray(self.spacing)
        return np.linalg.solve(scaled, pts.T).T

    def index_to_ras_points(self, indices: np.ndarray) -> np.ndarray:
        """Continuous ``(i, j, k)`` indices to RAS mm."""
        return lps_to_ras(self.index_to_lps_points(indices))

    def ras_to_index_points(self, points: np.ndarray) -> np.ndarray:
        """RAS mm to continuous ``(i, j, k)`` indices."""
        return self.lps_to_index_points(ras_to_lps(points))

    # ----------------------------------------------------------------------------- comparison
    def geometry_differences(self, other: "Volume", tolerance_mm: float = 1e-3) -> list[str]:
        """Human-readable list of how ``other``'s grid differs from this one (empty if equal).

        Origins are compared in mm; spacings in mm; directions as the worst displacement of the
        far corner of the grid that a direction difference would cause, so the tolerance is
        always a physical distance.
        """
        diffs = []
        if self.size != other.size:
            diffs.append(f"size {other.size} vs {self.size} voxels")
        if np.max(np.abs(np.subtract(self.spacing, other.spacing))) > tolerance_mm:
            diffs.append(f"spacing {_fmt(other.spacing)} vs {_fmt(self.spacing)} mm")
        if np.max(np.abs(np.subtract(self.origin, other.origin))) > tolerance_mm:
            diffs.append(f"origin {_fmt(other.origin)} vs {_fmt(self.origin)} mm (LPS)")
        far = max(self.extent_mm)
        if np.max(np.abs(self.direction - other.direction)) * far > tolerance_mm:
            diffs.append(
                f"direction {np.round(other.direction, 4).tolist()} vs "
                f"{np.round(self.direction, 4).tolist()}"
            )
        return diffs

    @property
    def grid_tolerance_mm(self) -> float:
        """How far another grid may lie from this one and still be the same grid: a thousandth of the
        finest voxel, plus 0.1 um for the rounding of float32 headers."""
        return 1e-3 * min(self.spacing) + 1e-4

    def has_same_geometry(self, other: "Volume", tolerance_mm: float = 1e-3) -> bool:
        """True when both volumes sample the same physical grid (within ``tolerance_mm``)."""
        return not self.geometry_differences(other, tolerance_mm)


def lps_to_ras(points: np.ndarray) -> np.ndarray:
    """Flip x and y: LPS <-> RAS is its own inverse."""
    pts = np.array(points, dtype=np.float64)
    pts[..., :2] *= -1.0
    return pts


ras_to_lps = lps_to_ras


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
