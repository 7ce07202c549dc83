"""The training loop: patches -> network (+ attribute heads) -> Dice+CE with deep supervision.

SGD with Nesterov momentum and poly learning-rate decay (nnU-Net's recipe), gradient clipping at
12, mixed precision on a GPU. A checkpoint (``checkpoint.pt``: plain tensors and numbers, loadable
with ``torch.load(weights_only=True)``) is written atomically every ``checkpoint_every`` steps and
when the run stops (time budget or cancellation), so ``pasta train`` with the same work folder
continues where it stopped. The result is a model folder in the project's distribution format.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from PASTALib.atomic import atomic_write
from PASTALib.errors import PastaCancelled, PastaInputError
from PASTALib.hashing import sha256_file
from PASTALib.heads.attribute_heads import HEADS_FILE, AttributeHeads, encoder_maps, heads_metadata
from PASTALib.model.card import ClassInfo, Postprocessing
from PASTALib.model.checkpoints import read_torch_file, save_model_folder, unwrap_state_dict
from PASTALib.model.network import PastaUNet, UNetConfig, infer_config, parameter_count
from PASTALib.model.preprocessing import Normalization, Preprocessing
from PASTALib.progress import ProgressReporter

from . import card_page
from .cases import CaseSource, TrainingCase
from .config import TrainConfig, TrainState
from .evaluate import evaluate, summarise
from .loss import DeepSupervisionLoss, attribute_loss
from .patches import _crop, make_augmentation, sample_patch, to_batch

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
#: Settings that may change when a run is resumed (a longer schedule, another time budget).
RESUMABLE_CHANGES = {"steps", "max_minutes", "validate_every", "checkpoint_every"}


@dataclass
class TrainingJob:
    config: TrainConfig
    source: CaseSource
    validation: list[TrainingCase]
    output: Path
    work_dir: Path
    name: str
    device: torch.device
    init: Optional[Path] = None
    overwrite: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)


def ct_normalization(foreground_hu: np.ndarray) -> Normalization:
    """nnU-Net's CTNormalization from the training foreground (clip 0.5/99.5 percentiles, z-score)."""
    if foreground_hu.size < 100:
        raise PastaInputError("The training data have fewer than 100 foreground voxels.",
                              "Check the labels / organ masks.")
    lower, upper = np.percentile(foreground_hu, [0.5, 99.5])
    clipped = np.clip(foreground_hu, lower, upper)
    return Normalization("ct", float(clipped.mean()), float(clipped.std()), float(lower), float(upper))


def _initial_state(init: Path) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """Weights to start from: a PASTA checkpoint file, or a model folder of this project (safetensors).

    A model folder also gives its class names, so its output heads can be kept when the classes
    match: that is how a run continues training a model (e.g. the bundled default) with new lesions.
    """
    if init.is_dir():
        from PASTALib.model.checkpoints import load_model

        model = load_model(init)
        return dict(model.states[0]), [c.name for c in model.classes]
    return unwrap_state_dict(read_torch_file(init), str(init)), None


def build_network(config: TrainConfig, classes: list[ClassInfo], init: Optional[Path]) -> tuple[PastaUNet, str]:
    """A new network, or one initialised from a PASTA checkpoint or model folder (encoder + decoder).

    The output heads are new unless ``init`` is a model folder with the same classes.
    """
    num_classes = len(classes)
    if init is None:
        n = len(config.stage_widths)
        net_config = UNetConfig(1, tuple(config.stage_widths), 2, ((3, 3, 3),) * n, ((2, 2, 2),) * (n - 1),
                                num_classes)
        return PastaUNet(net_config), "from scratch"
    state, init_classes = _initial_state(init)
    keep_heads = init_classes == [c.name for c in classes]
    net_config = replace(infer_config(state), num_classes=num_classes, head_sizes=())
    network = PastaUNet(net_config)
    own = network.state_dict()

    def wanted(key: str) -> bool:  # new output heads are trained from scratch
        return keep_heads or not key.startswith("seg_outputs.")

    loaded = {k: v for k, v in state.items() if k in own and wanted(k) and tuple(v.shape) == tuple(own[k].shape)}
    skipped = [k for k in own if k not in loaded and wanted(k)]
    if skipped:
        raise PastaInputError(f"{init}: {len(skipped)} tensors do not fit the network (first: {skipped[0]}).",
                              "Use a PASTA checkpoint (PASTA_final.pth) or a PASTA model folder.")
    network.load_state_dict(loaded, strict=False)
    heads = "its output heads (same classes)" if keep_heads else "new output heads"
    return network, f"initialised from {init.name} ({len(loaded)} tensors; {heads})"


def _attribute_targets(heads: AttributeHeads, patches, lesion: torch.Tensor) -> dict[str, torch.Tensor]:
    targets = {}
    present = lesion.flatten(1).sum(dim=1) > 0  # augmentation can move a small lesion out of the patch
    for name, options in heads.options.items():
        values = [options.index(p.attributes[name]) if p.attributes and name in p.attributes and bool(ok) else -1
                  for p, ok in zip(patches, present)]
        targets[name] = torch.tensor(values, dtype=torch.long)
    return targets


class Trainer:
    def __init__(self, job: TrainingJob, progress: Optional[ProgressReporter] = None) -> None:
        self.job = job
        self.config = job.config
        self.progress = progress or ProgressReporter()
        self.device = job.device
        self.classes: list[ClassInfo] = job.source.classes
        self.normalization = ct_normalization(job.source.foreground_hu())
        self.network, self.init_note = build_network(self.config, self.classes, job.init)
        self.heads = (AttributeHeads(self.network.config.stage_widths[:self.network.config.num_pool]) if self.config.attribute_heads else None)
        self.network.to(self.device)
        if self.heads is not None:
            self.heads.to(self.device)
        params = list(self.network.parameters()) + (list(self.heads.parameters()) if self.heads else [])
        if self.config.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=self.config.learning_rate,
                                               weight_decay=self.config.weight_decay)
        elif self.config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=self.config.learning_rate, momentum=0.99, nesterov=True,
                                             weight_decay=self.config.weight_decay)
        else:
            raise PastaInputError(f"Unknown optimizer {self.config.optimizer!r}.", "Use sgd or adamw.")
        self.loss = DeepSupervisionLoss(self.network.config.num_pool, self.config.deep_supervision,
                                       self.config.foreground_weight)
        self.amp = self.config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.state = TrainState()
        self.rng = np.random.default_rng(self.config.seed)

    # ------------------------------------------------------------------------------ checkpoints
    def _checkpoint_path(self) -> Path:
        return self.job.work_dir / CHECKPOINT

    def save_checkpoint(self) -> None:
        self.job.work_dir.mkdir(parents=True, exist_ok=True)
        payload = {"format": "pasta-train-checkpoint", "step": self.state.step, "elapsed_s": self.state.elapsed_s,
                   "config": self.config.as_dict(), "network": self.network.state_dict(),
                   "heads": self.heads.state_dict() if self.heads else {},
                   "optimizer": self.optimizer.state_dict(), "history": self.state.history,
                   "normalization": vars(self.normalization),
                   "classes": [[c.id, c.name, c.lesion_type] for c in self.classes],
                   "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(self._checkpoint_path(), buffer.getvalue(), overwrite=True)

    def try_resume(self) -> bool:
        path = self._checkpoint_path()
        if not path.is_file():
            return False
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != "pasta-train-checkpoint":
            raise PastaInputError(f"{path} is not a pasta train checkpoint.", "Use another --work-dir.")
        saved = {k: v for k, v in TrainConfig.from_dict(payload["config"]).as_dict().items()
                 if k not in RESUMABLE_CHANGES}
        now = {k: v for k, v in self.config.as_dict().items() if k not in RESUMABLE_CHANGES}
        changed = sorted(k for k in now if now[k] != saved.get(k))
        if changed:
            raise PastaInputError(f"The checkpoint in {path.parent} was made with other settings ({', '.join(changed)}).",
                                  "Use the same options to resume, or another --work-dir to start over.")
        if [[c.id, c.name, c.lesion_type] for c in self.classes] != [list(c) for c in payload["classes"]]:
            raise PastaInputError(f"The checkpoint in {path.parent} has other classes than this data.",
                                  "Use another --work-dir to start over.")
        self.network.load_state_dict(payload["network"])
        if self.heads is not None and payload["heads"]:
            self.heads.load_state_dict(payload["heads"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.normalization = Normalization(**payload["normalization"])
        self.state = TrainState(int(payload["step"]), float(payload["elapsed_s"]), list(payload["history"]))
        self.rng.bit_generator.state = payload["rng"]
        torch.set_rng_state(payload["torch_rng"])
        log.info("resuming from step %d", self.state.step)
        return True

    # ------------------------------------------------------------------------------ the loop
    def _normalize(self, array: np.ndarray) -> np.ndarray:
        return self.normalization.apply(array)

    def _step(self, augment) -> dict[str, float]:
        cases = [self.job.source.draw(self.rng) for _ in range(self.config.batch_size)]
        patches = [sample_patch(c, self._normalize(c.image), self.config.patch_kji, self.rng,
                                self.config.foreground_fraction) for c in cases]
        x, y, lesion = to_batch(patches, augment)
        x, y, lesion = x.to(self.device), y.to(self.device), lesion.to(self.device)
        lr = self.config.learning_rate * (1 - min(self.schedule_fraction(), 0.999)) ** 0.9
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            outputs, skips = self.network.forward_deep(x)
            seg = self.loss(outputs, y)
            total = seg
            attr = torch.zeros(())
            if self.heads is not None:
                predictions = self.heads([s.detach().float() for s in skips], lesion)  # a head on frozen features
                targets = {k: v.to(self.device) for k, v in _attribute_targets(self.heads, patches, lesion).items()}
                attr = attribute_loss(predictions, targets)
                total = seg + self.config.attribute_weight * attr
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": float(seg.detach()), "attribute_loss": float(attr.detach()), "lr": lr}

    def schedule_fraction(self) -> float:
        """How far through the schedule: steps, or wall time when a budget is set (whichever is
        further), so the learning rate anneals to zero within the budget instead of stopping mid-way."""
        fraction = self.state.step / self.config.steps
        if self.config.max_minutes:
            fraction = max(fraction, self.state.elapsed_s / (60.0 * self.config.max_minutes))
        return fraction

    def validate(self) -> dict[str, Any]:
        if not self.job.validation:
            return {}
        names = {c.id: c.lesion_type or c.name for c in self.classes}
        return summarise(evaluate(self.network, self.job.validation, self._normalize, self.config.patch_kji,
                                  self.device, Postprocessing(self.config.decision),
                                  self.config.spacing_xyz[::-1]), names)

    def run(self) -> Path:
        config = self.config
        resumed = self.try_resume()
        augment = make_augmentation(config.seed + self.state.step)
        self.network.train()
        started = time.perf_counter() - self.state.elapsed_s
        running: list[float] = []
        stopped_early = None
        try:
            while self.state.step < config.steps:
                metrics = self._step(augment)
                self.state.step += 1
                self.state.elapsed_s = time.perf_counter() - started
                running = (running + [metrics["loss"]])[-20:]
                self.progress.report("training", self.schedule_fraction(),
                                     f"step {self.state.step}/{config.steps} loss {np.mean(running):.3f} "
                                     f"attr {metrics['attribute_loss']:.3f} lr {metrics['lr']:.2e}")
                if config.validate_every and self.state.step % config.validate_every == 0:
                    summary = self.validate()
                    self.state.history.append({"step": self.state.step, "loss": float(np.mean(running)),
                                               "elapsed_s": round(self.state.elapsed_s, 1),
                                               "validation_mean": summary.get("mean")})
                    log.info("step %d validation %s", self.state.step, summary.get("mean"))
                if config.checkpoint_every and self.state.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if config.max_minutes and self.state.elapsed_s >= 60.0 * config.max_minutes:
                    stopped_early = (f"time budget of {config.max_minutes:g} min reached at step "
                                     f"{self.state.step} of {config.steps} (learning rate annealed by time)")
                    break
        except PastaCancelled:
            self.save_checkpoint()
            raise
        except torch.cuda.OutOfMemoryError as exc:
            raise PastaInputError("The GPU ran out of memory during training.",
                                  "Use --batch-size 1, a smaller --patch, or --device cpu.") from exc
        self.save_checkpoint()
        self.progress.report("validating", 0.0, "final validation")
        summary = self.validate()
        attributes = self.attribute_accuracy()
        return self.export(summary, attributes, resumed, stopped_early)

    # ------------------------------------------------------------------------------ results
    @torch.no_grad()
    def attribute_accuracy(self) -> dict[str, Any]:
        """Head accuracy per attribute on the validation lesions (crop centred on each lesion)."""
        if self.heads is None or not self.job.validation:
            return {}
        self.network.eval()
        hits: dict[str, list[bool]] = {name: [] for name in self.heads.options}
        for case in self.job.validation:
            normalized = self._normalize(case.image)
            for lesion in case.lesions:
                if not lesion.attributes:
                    continue
                full = np.zeros(case.labels.shape, np.uint8)
                full[lesion.box][lesion.mask] = 1
                centre = np.argwhere(full).mean(axis=0).round().astype(int)
                start = [int(c) - p // 2 for c, p in zip(centre, self.config.patch_kji)]
                x = torch.from_numpy(_crop(normalized, start, self.config.patch_kji, 0.0))[None, None].to(self.device)
                m = torch.from_numpy(_crop(full, start, self.config.patch_kji, 0).astype(np.float32))[None, None]
                predictions = self.heads(encoder_maps(self.network, x), m.to(self.device))
                for name, logits in predictions.items():
                    if name in lesion.attributes:
                        hits[name].append(self.heads.options[name][int(logits.argmax())] == lesion.attributes[name])
        self.network.train()
        return {name: {"accuracy": round(float(np.mean(v)), 4), "lesions": len(v)} for name, v in hits.items() if v}

    def export(self, summary: dict[str, Any], attributes: dict[str, Any], resumed: bool,
               stopped_early: Optional[str]) -> Path:
        """Write the model folder (atomically: staged next to the target, then renamed)."""
        output = self.job.output
        if output.exists() and not self.job.overwrite:
            raise PastaInputError(f"{output} already exists.", "Choose another -o or pass --overwrite.")
        staging = output.parent / f".{output.name}.partial-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            extra: dict[str, Any] = {
                "license": "Apache-2.0",
                "intended_use": "Research only; not a medical device.",
                "provenance": {
                    **self.job.provenance, "trained_by": "pasta train", "init": self.init_note,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "device": self.device.type, "steps_done": self.state.step, "resumed": resumed,
                    "stopped_early": stopped_early, "training_time_s": round(self.state.elapsed_s, 1),
                    "parameters": parameter_count(self.network.config), "config": self.config.as_dict()},
                "validation": {"segmentation": summary, "attributes": attributes,
                               "cases": [c.name for c in self.job.validation]},
                "history": self.state.history,
                "postprocessing": Postprocessing(self.config.decision).as_dict(),
            }
            if self.heads is not None:
                from safetensors.torch import save_file

                save_file({k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()},
                          str(staging / HEADS_FILE))
                extra["attribute_heads"] = heads_metadata(self.heads, sha256_file(staging / HEADS_FILE),
                                                          {"trained_on": "synthetic report attributes",
                                                           "validation": attributes})
            prep = Preprocessing(tuple(self.config.spacing_xyz[::-1]), tuple(self.config.patch_kji),
                                 self.normalization, source="pasta train")
            state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
            save_model_folder(staging, [state], self.classes, prep, self.job.name, extra=extra, overwrite=True,
                              mirror_axes=(0, 1, 2))
            card_page.write(staging)
            for file in staging.iterdir():  # safetensors writes 0600; give them a normal file's mode
                file.chmod(0o644)
            if output.exists():
                shutil.rmtree(output)
            os.replace(staging, output)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return output
