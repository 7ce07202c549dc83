"""Which device to run on, when to warn, and how long it will take: decided before the run, without
importing torch.

GPU memory is read with ``nvidia-smi`` (present wherever an NVIDIA driver is), so Slicer does not
have to import torch (seconds, and hundreds of MB) just to decide what to ask the user. Below
:data:`LOW_GPU_MEMORY_GB` (the TotalSegmentator threshold) we propose the low-memory settings:
no test-time mirroring and one tile per batch, or the CPU.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from dataclasses import dataclass, field
from typing import Optional

LOW_GPU_MEMORY_GB = 7.0
#: :class:`~PASTALib.analysis.options.AnalysisOptions` values that cut GPU memory and time (mirroring
#: multiplies the work by 8).
LOW_MEMORY_OPTIONS = {"tta": False, "batch_size": 1}


@dataclass
class DeviceAdvice:
    message: str
    suggest_cpu: bool = False  #: the chosen device cannot work: propose the CPU
    low_memory: dict = field(default_factory=dict)  #: the faster options to offer (AnalysisOptions fields)


def gpu_memory_gb(timeout_s: float = 5.0) -> Optional[float]:
    """Total memory of the largest NVIDIA GPU in GB, or None when there is none (or no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        result = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    values = [float(v) for v in result.stdout.split() if v.replace(".", "", 1).isdigit()]
    return max(values) / 1024.0 if result.returncode == 0 and values else None


def device_advice(device: str, gpu_gb: Optional[float]) -> Optional[DeviceAdvice]:
    """What to tell the user before a run on ``device`` ("auto", "cuda", "cpu"); None: nothing."""
    if device == "cpu":
        return None  # chosen on purpose; the status line gives the time estimate
    if gpu_gb is None:
        if device == "cuda":
            return DeviceAdvice("No NVIDIA GPU was found, so the GPU cannot be used.", suggest_cpu=True)
        return None  # auto falls back to the CPU by itself
    if gpu_gb < LOW_GPU_MEMORY_GB:
        return DeviceAdvice(
            f"Your GPU has {gpu_gb:.1f} GB of memory; PASTA works best with at least {LOW_GPU_MEMORY_GB:.0f} GB. "
            "The low-memory settings (no test-time mirroring, one tile at a time) are faster and use less "
            "memory; if the GPU still runs out, the analysis falls back to the CPU by itself.",
            low_memory=dict(LOW_MEMORY_OPTIONS))
    return None


def time_estimate(device: str, gpu_gb: Optional[float], model_path=None, model_format: str = "",
                  shape_kji=None, spacing_xyz=None) -> str:
    """The status line before a run: this model's work on this volume, and its time at the speed
    earlier runs measured on this computer (PASTALib.inference.work); never a fixed range."""
    device_type = "cuda" if device != "cpu" and gpu_gb is not None else "cpu"
    where = "the GPU" if device_type == "cuda" else "the CPU"
    if model_path is None or shape_kji is None:
        return f"Runs on {where}; choose a model and a volume for a time estimate."
    try:
        work = model_work(Path(model_path), model_format, shape_kji, spacing_xyz, device_type)
    except Exception:  # noqa: BLE001 - an estimate must never stop a run; the run reports real problems
        work = None
    if work is None:
        return f"Runs on {where}."
    return f"On {where}: {work.text()}"


def model_work(path: Path, fmt: str, shape_kji, spacing_xyz, device_type: str):
    """The run's :class:`~PASTALib.inference.work.Work` from the model's files, without torch."""
    import json

    from PASTALib.inference.work import detector_work, network_key, network_work
    from PASTALib.model.preprocessing import Preprocessing, from_nnunet_plans, pasta_defaults

    mirrorings_default = 8 if device_type == "cuda" else 1  # test-time mirroring: on for the GPU only
    if fmt == "pasta-model" or (path.is_dir() and (path / "model.json").is_file()):
        card = json.loads((path / "model.json").read_text(encoding="utf-8"))
        if "detector" in card:
            return detector_work(shape_kji)
        prep = Preprocessing.from_dict(card["preprocessing"])
        widths = card.get("architecture", {}).get("stage_widths", [])
        mirrorings = 2 ** len(card.get("mirror_axes", [0, 1, 2])) if device_type == "cuda" else 1
        return network_work(shape_kji, spacing_xyz, prep, 0.5, mirrorings, max(1, len(card.get("weights", [1]))),
                            network_key(device_type, widths, prep.patch_size))
    if fmt == "nnunet" or (path.is_dir() and (path / "plans.json").is_file()):
        prep = from_nnunet_plans(json.loads((path / "plans.json").read_text(encoding="utf-8")))
        folds = max(1, len(list(path.glob("fold_*"))))
        return network_work(shape_kji, spacing_xyz, prep, 0.5, mirrorings_default, folds, "")
    return network_work(shape_kji, spacing_xyz, pasta_defaults(), 0.5, mirrorings_default, 1, "")
