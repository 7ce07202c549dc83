"""Model-driven preprocessing: target spacing, axis order and intensity normalisation.

Read from an nnU-Net v2 ``plans.json`` (``configurations["3d_fullres"]``) or from a PASTA model
card, or PASTA's defaults. Intensities: nnU-Net's ``CTNormalization`` (clip to the foreground
0.5/99.5 percentiles, then z-score with the foreground mean/std), or PASTA's piecewise-linear HU
map ("SLF") used by its classification crops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from PASTALib.errors import PastaInputError

#: PASTA's piecewise-linear HU map (commit b507704 of the reference code: 0.9 at 200 HU).
SLF_HU = (-1000.0, -200.0, 200.0, 1000.0)
SLF_VALUES = (0.0, 0.2, 0.9, 1.0)


@dataclass(frozen=True)
class Normalization:
    """How raw HU become network input; ``scheme`` is ``ct``, ``slf`` or ``none``."""

    scheme: str = "ct"
    mean: float = 0.0
    std: float = 1.0
    lower: float = -1024.0
    upper: float = 3071.0

    def apply(self, array: np.ndarray) -> np.ndarray:
        data = np.asarray(array, dtype=np.float32)
        if self.scheme == "ct":
            data = np.clip(data, self.lower, self.upper)
            return (data - np.float32(self.mean)) / np.float32(max(self.std, 1e-8))
        if self.scheme == "slf":
            return np.interp(data, SLF_HU, SLF_VALUES).astype(np.float32)
        if self.scheme == "none":
            return data.copy()
        raise PastaInputError(f"Unknown normalisation scheme '{self.scheme}'.",
                              "Use 'ct' (nnU-Net CTNormalization), 'slf' or 'none'.")


@dataclass(frozen=True)
class Resampling:
    """nnU-Net's resampling settings: spline orders, and the separate-z rule for anisotropic data."""

    order_data: int = 3
    order_probabilities: int = 1
    order_z: int = 0
    force_separate_z: bool | None = None
    anisotropy_threshold: float = 3.0


#: ``preprocessing.standardise`` values: "none" (nnU-Net's behaviour: arrays as stored) or "pasta".
STANDARDISE_RULES = ("none", "pasta")


@dataclass(frozen=True)
class Preprocessing:
    """Everything between a CT in HU and the network's input grid."""

    spacing_zyx: tuple[float, float, float] | None  # None: keep the input spacing
    patch_size: tuple[int, int, int]
    normalization: Normalization = field(default_factory=Normalization)
    transpose_forward: tuple[int, int, int] = (0, 1, 2)
    resampling: Resampling = field(default_factory=Resampling)
    crop_to_nonzero: bool = True
    source: str = "defaults"
    #: "pasta": the PASTA authors' standardisation first (LPS voxel order, 1 mm; inference/standardise.py);
    #: "none": arrays as stored, as nnU-Net does (cards written before this field, nnU-Net folders of other origin)
    standardise: str = "none"

    @property
    def transpose_backward(self) -> tuple[int, int, int]:
        return tuple(int(i) for i in np.argsort(self.transpose_forward))  # type: ignore[return-value]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Preprocessing":
        spacing = data.get("spacing_zyx")
        rule = str(data.get("standardise", "none"))
        if rule not in STANDARDISE_RULES:
            from PASTALib.errors import PastaInputError

            raise PastaInputError(f"The model card's preprocessing.standardise is {rule!r}.",
                                  f"Use one of {', '.join(STANDARDISE_RULES)}.")
        return cls(
            spacing_zyx=tuple(float(v) for v in spacing) if spacing is not None else None,  # type: ignore[arg-type]
            patch_size=tuple(int(v) for v in data["patch_size"]),  # type: ignore[arg-type]
            normalization=Normalization(**data.get("normalization", {})),
            transpose_forward=tuple(int(v) for v in data.get("transpose_forward", (0, 1, 2))),  # type: ignore[arg-type]
            resampling=Resampling(**data.get("resampling", {})),
            crop_to_nonzero=bool(data.get("crop_to_nonzero", True)),
            source=str(data.get("source", "model card")),
            standardise=rule,
        )


def pasta_defaults(patch_size: tuple[int, int, int] = (128, 128, 128)) -> Preprocessing:
    """PASTA's published defaults: 1 mm isotropic, SLF intensity map (no dataset statistics known)."""
    return Preprocessing(spacing_zyx=(1.0, 1.0, 1.0), patch_size=patch_size,
                         normalization=Normalization(scheme="slf"), source="PASTA defaults", standardise="pasta")


def from_nnunet_plans(plans: Mapping[str, Any], configuration: str = "3d_fullres") -> Preprocessing:
    """Translate an nnU-Net v2 ``plans.json`` into a :class:`Preprocessing`."""
    configurations = plans.get("configurations", {})
    if configuration not in configurations:
        raise PastaInputError(
            f"plans.json has no '{configuration}' configuration (it has: {', '.join(configurations) or 'none'}).",
            "PASTA models are 3d_fullres nnU-Net models.")
    config = dict(configurations[configuration])
    parent = config.get("inherits_from")
    if parent:
        config = {**configurations[parent], **config}
    schemes = config.get("normalization_schemes", ["CTNormalization"])
    if schemes[0] == "CTNormalization":
        props = plans.get("foreground_intensity_properties_per_channel", {}).get("0")
        if props is None:
            raise PastaInputError("plans.json uses CTNormalization but has no "
                                  "foreground_intensity_properties_per_channel['0'].",
                                  "The plans file is incomplete; use the one saved with the model.")
        normalization = Normalization("ct", float(props["mean"]), float(props["std"]),
                                      float(props["percentile_00_5"]), float(props["percentile_99_5"]))
    elif schemes[0] in ("NoNormalization",):
        normalization = Normalization("none")
    else:
        raise PastaInputError(f"Normalisation '{schemes[0]}' is not supported for CT models.",
                              "PASTA models use CTNormalization.")
    data_kwargs = config.get("resampling_fn_data_kwargs", {})
    prob_kwargs = config.get("resampling_fn_probabilities_kwargs", {})
    resampling = Resampling(order_data=int(data_kwargs.get("order", 3)),
                            order_probabilities=int(prob_kwargs.get("order", 1)),
                            order_z=int(data_kwargs.get("order_z", 0)),
                            force_separate_z=data_kwargs.get("force_separate_z"))
    return Preprocessing(
        spacing_zyx=tuple(float(v) for v in config["spacing"]),  # type: ignore[arg-type]
        patch_size=tuple(int(v) for v in config["patch_size"]),  # type: ignore[arg-type]
        normalization=normalization,
        transpose_forward=tuple(int(v) for v in plans.get("transpose_forward", (0, 1, 2))),  # type: ignore[arg-type]
        resampling=resampling,
        source="nnU-Net plans.json",
    )
