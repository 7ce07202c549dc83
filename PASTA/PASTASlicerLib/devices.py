"""Which device to run on, and when to warn: decided before the run, without importing torch.

GPU memory is read with ``nvidia-smi`` (present wherever an NVIDIA driver is), so Slicer does not
have to import torch (seconds, and hundreds of MB) just to decide what to ask the user. Below
:data:`LOW_GPU_MEMORY_GB` (the TotalSegmentator threshold) we propose the low-memory settings:
no test-time mirroring and one tile per batch, or the CPU.
"""

from __future__ import annotations

import shutil
import subprocess
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


def time_estimate(device: str, gpu_gb: Optional[float]) -> str:
    """A rough duration for the status line (published nnU-Net-class timings, see the docs)."""
    if device == "cpu" or gpu_gb is None:
        return "On the CPU this takes about 5 to 50 minutes, depending on the image size."
    return "On the GPU this takes about 1 to 5 minutes."
