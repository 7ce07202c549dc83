"""Load every PASTA checkpoint format safely (``weights_only=True`` or safetensors, never pickle code).

Formats:

* a raw state dict (``PASTA_final.pth``), or one wrapped under ``network_weights`` / ``state_dict``,
  optionally with a ``module.`` prefix;
* an nnU-Net v2 results folder (``plans.json``, ``dataset.json``, ``fold_*/checkpoint_final.pth``);
  several folds form an ensemble; ``trainer_name`` is recorded, never trusted for the architecture;
* the project's model folder: ``model.json`` (model card) + safetensors weights with SHA256.
"""

from __future__ import annotations

import json
import logging
import pickle
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from PASTALib.atomic import atomic_write
from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file
from PASTALib.model.card import CARD, CARD_FORMAT, ClassInfo, Postprocessing, card_classes, card_files, read_card

from .network import PastaUNet, UNetConfig, check_state_dict, infer_config, parameter_count
from .bare_weights import bare_weights_error, fold_of_results_folder
from .preprocessing import Preprocessing, from_nnunet_plans, pasta_defaults

log = logging.getLogger(__name__)

KNOWN_TRAINERS = {"PASTATrainer", "PASTATrainer_ft", "PASTATrainer_fewshot", "TotalLesionTrainer_ft"}
DEFAULT_CLASSES = ("background", "organ", "lesion")


@dataclass
class LoadedModel:
    """A checkpoint read into memory with everything inference needs."""

    format: str
    source: Path
    config: UNetConfig
    states: list[dict[str, torch.Tensor]]
    preprocessing: Preprocessing
    classes: list[ClassInfo]
    sha256: dict[str, str]
    mirror_axes: tuple[int, ...] = (0, 1, 2)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: how probabilities become the label map (:mod:`postprocessing`)
    postprocessing: Postprocessing = field(default_factory=Postprocessing)
    #: the model card (``model.json``) of a PASTA model folder, as :func:`.card.read_card` read it; empty otherwise
    card: dict[str, Any] = field(default_factory=dict)

    def network(self, fold: int = 0) -> PastaUNet:
        """Fold ``fold``'s network with its weights, in eval mode on the CPU (extra tensors such as
        nnU-Net's deep-supervision outputs are ignored; missing ones were refused on loading)."""
        network = PastaUNet(self.config)
        own = network.state_dict()
        network.load_state_dict({k: v for k, v in self.states[fold].items() if k in own}, strict=False)
        return network.eval()

    def summary(self) -> dict[str, Any]:
        """What ``pasta models verify`` prints."""
        return {
            "format": self.format,
            "source": str(self.source),
            "architecture": self.config.as_dict(),
            "parameters": parameter_count(self.config),
            "folds": len(self.states),
            "classes": [vars(c) for c in self.classes],
            "preprocessing": self.preprocessing.as_dict(),
            "mirror_axes": list(self.mirror_axes),
            "postprocessing": self.postprocessing.as_dict(),
            "sha256": self.sha256,
            "provenance": self.provenance,
        }


# ------------------------------------------------------------------------------------ files
def _numpy_safe_globals() -> list:
    """numpy scalars and dtypes that nnU-Net's training logs put in checkpoints (data, not code)."""
    core = getattr(np, "_core", None) or np.core
    dtypes = [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_)]
    return [core.multiarray.scalar, np.dtype, *dtypes]


def read_torch_file(path: Path) -> Any:
    """``torch.load(weights_only=True)``; unreadable or code-carrying files get a clear error."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc) and "Unsupported class" not in str(exc):
            raise PastaInputError(f"{path} is not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:120]}).",
                                  "The file may be truncated or corrupt; download it again and check its SHA256."
                                  ) from None
        raise PastaInputError(
            f"{path} cannot be loaded safely: it contains Python objects other than tensors "
            f"({str(exc).splitlines()[0][:200]}).",
            "PASTA only loads weights (torch.load weights_only=True). Re-save the state dict alone, "
            "or convert it to safetensors.") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise PastaInputError(f"{path} is not a readable PyTorch checkpoint: {str(exc).splitlines()[0][:200]}.",
                              "The file may be truncated or corrupt; download it again and check its SHA256.") from None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PastaInputError(f"{path} is not a readable safetensors file: {exc}.",
                              "The file may be truncated or corrupt; download it again.") from None


def unwrap_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Accept a raw state dict or one under ``network_weights``/``state_dict``; strip ``module.``."""
    if isinstance(obj, Mapping):
        for key in ("network_weights", "state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise PastaInputError(f"{source} holds no state dict (found {type(obj).__name__}).",
                              "Expected tensors by name, or a dict with 'network_weights' or 'state_dict'.")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise PastaInputError(f"{source} holds no tensors (keys: {', '.join(list(map(str, obj))[:5])}).")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _config_of(states: list[dict[str, torch.Tensor]], names: list[str]) -> UNetConfig:
    config = infer_config(states[0])
    for state, name in zip(states, names):
        check_state_dict(state, config, name)
    return config


# ------------------------------------------------------------------------------------ formats
def load_model(path: str | Path, folds: list[int] | None = None, checkpoint: str = "final",
               pasta_defaults: bool = False) -> LoadedModel:
    """Load a checkpoint file, an nnU-Net results folder, a PASTA model folder, or a bundled
    model by name (``default``).

    Preprocessing is never guessed: a fold checkpoint (``fold_N/checkpoint_X.pth``) is loaded with the
    ``plans.json`` and ``dataset.json`` of the results folder above it; a weights file with no such
    folder is refused unless ``pasta_defaults`` says to use PASTA's pretraining preprocessing.
    """
    from .bundled_models import resolve

    path = resolve(path)
    if not path.exists():
        raise PastaInputError(f"Model not found: {path}.",
                              "Give a .pth/.safetensors file, an nnU-Net results folder or a PASTA model folder.")
    if path.is_dir():
        if (path / CARD).is_file():
            return _load_model_folder(path)
        if (path / "plans.json").is_file():
            return _load_nnunet_folder(path, folds, checkpoint)
        raise PastaInputError(f"{path} is neither a PASTA model folder (no {CARD}) nor an nnU-Net "
                              "results folder (no plans.json).", "Point --model at the folder that holds them.")
    fold = fold_of_results_folder(path)
    if fold is not None:
        folder, number, name = fold
        log.info("%s is fold %d of the nnU-Net results folder %s; using its plans.json and dataset.json.",
                 path.name, number, folder)
        return _load_nnunet_folder(folder, [number], name)
    if not pasta_defaults:
        raise bare_weights_error(path)
    if path.suffix == ".safetensors":
        return _from_state(read_safetensors(path), path, "safetensors")
    return _from_state(unwrap_state_dict(read_torch_file(path), str(path)), path, "state_dict")


def _from_state(state: dict[str, torch.Tensor], path: Path, fmt: str) -> LoadedModel:
    config = _config_of([state], [str(path)])
    classes = [ClassInfo(i, DEFAULT_CLASSES[i] if i < 3 and config.num_classes == 3 else f"class {i}")
               for i in range(config.num_classes)]
    log.warning("%s carries no preprocessing information; using PASTA's defaults (1 mm, SLF intensity map) "
                "as asked (--pasta-defaults).", path.name)
    return LoadedModel(fmt, path, config, [state], pasta_defaults(), classes, {path.name: sha256_file(path)})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PastaInputError(f"Cannot read {path}: {exc}.", "The file is missing or not valid JSON.") from None


def _load_nnunet_folder(folder: Path, folds: list[int] | None, checkpoint: str) -> LoadedModel:
    plans = _read_json(folder / "plans.json")
    dataset = _read_json(folder / "dataset.json") if (folder / "dataset.json").is_file() else {}
    available = sorted(int(p.name.split("_")[1]) for p in folder.glob("fold_*") if p.name.split("_")[1].isdigit())
    chosen = folds if folds is not None else available
    if not chosen:
        raise PastaInputError(f"{folder} has no fold_* folders with checkpoints.",
                              "An nnU-Net results folder holds fold_0 ... fold_4/checkpoint_final.pth.")
    states, names, hashes, trainer, mirror = [], [], {}, None, (0, 1, 2)
    for fold in chosen:
        fold_dir = folder / f"fold_{fold}"
        file = fold_dir / f"checkpoint_{checkpoint}.pth"
        if not file.is_file() and checkpoint == "final" and (fold_dir / "checkpoint_best.pth").is_file():
            log.warning("fold_%d has no checkpoint_final.pth; using checkpoint_best.pth.", fold)
            file = fold_dir / "checkpoint_best.pth"
        if not file.is_file():
            raise PastaInputError(f"{file} does not exist.", f"Folds available: {available or 'none'}.")
        raw = read_torch_file(file)
        states.append(unwrap_state_dict(raw, str(file)))
        names.append(str(file))
        hashes[str(file.relative_to(folder))] = sha256_file(file)
        if isinstance(raw, Mapping):
            trainer = raw.get("trainer_name", trainer)
            mirror = tuple(raw.get("inference_allowed_mirroring_axes") or mirror)
    config = _config_of(states, names)
    if trainer and trainer not in KNOWN_TRAINERS:
        log.warning("Trainer '%s' is not a known PASTA trainer; loading its weights as a PASTA network.", trainer)
    classes = _classes_from_dataset(dataset, config.num_classes, folder)
    for name in ("plans.json", "dataset.json"):
        if (folder / name).is_file():
            hashes[name] = sha256_file(folder / name)
    preprocessing = from_nnunet_plans(plans)
    if trainer in KNOWN_TRAINERS:  # fine-tuned by the PASTA authors' recipe: their standardisation first
        preprocessing = replace(preprocessing, standardise="pasta")
    return LoadedModel("nnunet_v2_folder", folder, config, states, preprocessing, classes, hashes,
                       mirror, {"trainer_name": trainer, "folds": chosen,
                                "dataset_name": plans.get("dataset_name")})


def _classes_from_dataset(dataset: Mapping[str, Any], num_classes: int, folder: Path) -> list[ClassInfo]:
    labels = dataset.get("labels")
    if not labels:
        return [ClassInfo(i, DEFAULT_CLASSES[i] if num_classes == 3 else f"class {i}") for i in range(num_classes)]
    by_id = {int(v): str(k) for k, v in labels.items() if isinstance(v, (int, float))}
    if len(by_id) != num_classes:
        raise PastaInputError(
            f"{folder / 'dataset.json'} lists {len(by_id)} labels, but the network has {num_classes} outputs.",
            "Use the dataset.json saved with these weights (PASTA fine-tuned models have 3: background, organ, lesion).")
    return [ClassInfo(i, by_id.get(i, f"class {i}")) for i in range(num_classes)]


def _load_model_folder(folder: Path) -> LoadedModel:
    card = read_card(folder)
    if isinstance(card.get("detector"), dict):
        raise PastaInputError(f"{folder} is a detector model (candidates scored by a learned model), not a "
                              "network: there is no network to run or verify.",
                              "pasta analyze runs it; pasta segment, pasta features and attribute heads need a "
                              "PASTA network (a model folder with network weights, an nnU-Net folder or a checkpoint).")
    what, hint = f"The model in {folder}", "Re-import or re-download the model."
    expected_digests = card_files(card, what, hint, folder)  # every file hashed and inside the folder
    states, names, hashes = [], [], {}
    for name in card.get("weights", []):
        file = folder / name  # card_files has confined it to the folder
        if not file.is_file():
            raise PastaInputError(f"Model weights {file} are missing.", hint)
        digest = sha256_file(file)
        expected = expected_digests[str(name)]
        if digest != expected:
            raise PastaInputError(f"{file} is corrupt or was modified: SHA256 {digest[:12]}… but the model card "
                                  f"says {expected[:12]}….", "Re-import or re-download the model.")
        states.append(read_safetensors(file))
        names.append(str(file))
        hashes[name] = digest
    if not states:
        raise PastaInputError(f"{folder / CARD} lists no weights files.")
    config = _config_of(states, names)
    classes = card_classes(card)
    if len(classes) != config.num_classes:
        raise PastaInputError(f"The model card lists {len(classes)} classes but the network has "
                              f"{config.num_classes} outputs.", "The model folder is inconsistent.")
    return LoadedModel(CARD_FORMAT, folder, config, states, Preprocessing.from_dict(card["preprocessing"]),
                       classes, hashes, tuple(card.get("mirror_axes", (0, 1, 2))),
                       {k: card[k] for k in ("name", "version", "license", "provenance") if k in card},
                       Postprocessing.from_card(card.get("postprocessing"), str(folder / CARD)), card)


def save_model_folder(folder: str | Path, states: list[dict[str, torch.Tensor]], classes: list[ClassInfo],
                      preprocessing: Preprocessing, name: str, version: str = "0.1.0",
                      extra: Mapping[str, Any] | None = None, overwrite: bool = False,
                      mirror_axes: tuple[int, ...] = (0, 1, 2)) -> Path:
    """Write the distribution format (safetensors + model card with SHA256) into a new folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise PastaInputError(f"{folder} already exists.", "Choose another folder or pass --overwrite.")
    folder.mkdir(parents=True, exist_ok=True)
    weights, hashes = [], {}
    for index, state in enumerate(states):
        file = folder / ("model.safetensors" if len(states) == 1 else f"model_fold{index}.safetensors")
        save_file({k: v.contiguous() for k, v in state.items()}, str(file))
        weights.append(file.name)
        hashes[file.name] = sha256_file(file)
    config = infer_config(states[0])
    card = {"format": CARD_FORMAT, "format_version": 1, "name": name, "version": version,
            "weights": weights, "sha256": hashes, "architecture": config.as_dict(),
            "classes": [vars(c) for c in classes], "preprocessing": preprocessing.as_dict(),
            "mirror_axes": list(mirror_axes), **(extra or {})}
    atomic_write(folder / CARD, json.dumps(card, indent=2), overwrite=True)  # last: no card, no model
    return folder
