"""Training settings, and the presets users pick instead of a dozen numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Optional

from PASTALib.errors import PastaInputError
from PASTALib.model.card import check_rule


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (recorded in the model card and the checkpoint)."""

    spacing_xyz: tuple[float, float, float] = (3.0, 3.0, 3.0)
    patch_kji: tuple[int, int, int] = (48, 48, 48)
    stage_widths: tuple[int, ...] = (16, 32, 64, 128)  #: encoder stages then the bottleneck
    steps: int = 2000
    batch_size: int = 2
    learning_rate: float = 2e-3
    weight_decay: float = 3e-5
    #: AdamW with poly decay. nnU-Net's SGD (Nesterov, momentum 0.99, lr 1e-2) is available as
    #: "sgd"; on CPU-length schedules (a few thousand steps) AdamW learned the rare lesion classes
    #: sooner in our runs.
    optimizer: str = "adamw"
    foreground_fraction: float = 0.8  #: share of patches centred on a lesion
    deep_supervision: bool = True
    foreground_weight: float = 3.0  #: cross-entropy weight of lesion classes (background 1)
    attribute_heads: bool = True
    attribute_weight: float = 0.3
    validate_every: int = 250
    checkpoint_every: int = 100
    max_minutes: Optional[float] = None  #: stop (and save) after this wall time
    seed: int = 0
    amp: bool = True  #: mixed precision on a GPU (ignored on the CPU)
    preset: str = "default"
    #: how the trained model turns probabilities into labels (validation and inference), see
    #: :mod:`PASTALib.inference.postprocessing`; argmax is nnU-Net's rule
    decision: str = "argmax"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("spacing_xyz", "patch_kji", "stage_widths"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def check(self) -> None:
        divisor = 2 ** (len(self.stage_widths) - 1)
        if any(p % divisor for p in self.patch_kji):
            raise PastaInputError(f"Patch {list(self.patch_kji)} is not divisible by {divisor} "
                                  f"({len(self.stage_widths) - 1} poolings).",
                                  f"Use a patch whose sides are multiples of {divisor}.")
        if any(s <= 0 or s > 10 for s in self.spacing_xyz):
            raise PastaInputError(f"Training spacing {list(self.spacing_xyz)} mm is implausible.",
                                  "Use 0.5-10 mm (PASTA itself uses 1 mm).")
        if self.steps < 1 or self.batch_size < 1:
            raise PastaInputError("--steps and --batch-size must be at least 1.")
        if not 0.0 <= self.foreground_fraction <= 1.0:
            raise PastaInputError("--foreground-fraction must be in [0, 1].")
        if not 0.0 < self.foreground_weight <= 100.0:
            raise PastaInputError(f"--foreground-weight must be in (0, 100], got {self.foreground_weight}.")
        check_rule(self.decision, "--decision")


#: A short schedule with a lower learning rate for 1-16 labelled cases (PASTA's few-shot use):
#: from a pretrained encoder, large steps would erase what pretraining learned.
FEW_SHOT = {"steps": 500, "learning_rate": 3e-4, "validate_every": 100}

#: The PASTA authors' fine-tuning recipes (LWHYC/PASTA segmentation/nnunetv2/training/nnUNetTrainer/
#: PASTATrainer.py, read for its numbers; MIT licence): nnU-Net's SGD (Nesterov, momentum 0.99, weight
#: decay 3e-5, poly decay), PASTATrainer_ft with initial lr 1e-4 for 500 epochs of nnU-Net's 250
#: iterations, PASTATrainer_fewshot with lr 1e-3 for 10 epochs of 200 iterations. One step here is one
#: iteration; validation once per epoch. Patch, spacing and batch size come from the run (nnU-Net takes
#: them from its plans), so compare with the paper at its 1 mm spacing.
PASTA_FT = {"optimizer": "sgd", "learning_rate": 1e-4, "steps": 500 * 250, "validate_every": 250}
PASTA_FEWSHOT = {"optimizer": "sgd", "learning_rate": 1e-3, "steps": 10 * 200, "validate_every": 200}

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "few-shot": FEW_SHOT,
    "pasta-ft": PASTA_FT,
    "pasta-fewshot": PASTA_FEWSHOT,
    # the tiny end-to-end check CI runs: a few steps, no validation pass in between
    "smoke": {"steps": 4, "validate_every": 0, "checkpoint_every": 2, "patch_kji": (32, 32, 32),
              "stage_widths": (8, 16, 32)},
}


def with_preset(config: TrainConfig, preset: str, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The preset's values, then the user's explicit options on top."""
    if preset not in PRESETS:
        raise PastaInputError(f"Unknown preset {preset!r}.", f"Use one of: {', '.join(PRESETS)}.")
    values = {**PRESETS[preset], **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return replace(config, preset=preset, **values)


@dataclass
class TrainState:
    """What a resumed run continues from."""

    step: int = 0
    elapsed_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
