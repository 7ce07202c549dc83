"""From a CT volume to a label map in the input's geometry, the way nnU-Net v2 does it, but faster.

Pipeline (mirrors ``nnUNetPredictor`` so results agree): transpose -> crop to the non-zero box ->
normalise -> resize to the model spacing (spline order 3) -> sliding window -> resize logits back
(order 1) -> softmax -> argmax (or the model card's postprocessing) -> uncrop -> transpose back. Resizing is separable matrix products
(:mod:`grid_resize`), and all large buffers stay on the compute device.

Out of GPU memory, the predictor halves the tile batch, then keeps the accumulators in host memory,
then falls back to the CPU, and reports each step in ``notes``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume
from PASTALib.model.checkpoints import LoadedModel
from PASTALib.model.network import PastaUNet
from PASTALib.progress import ProgressReporter

from .grid_resize import resize
from .postprocessing import postprocess
from .sliding_window import WindowSettings, predict_logits
from .work import TimingLog, network_key, network_work, new_shape, tile_count

log = logging.getLogger(__name__)


@dataclass
class SegmentationResult:
    labels: Volume
    probabilities: np.ndarray | None  # (C, k, j, i) float32 in the input geometry, if requested
    class_names: list[str]
    device: str
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def choose_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise PastaInputError("--device cuda was requested but no CUDA GPU is available to PyTorch.",
                              "Use --device cpu, or install a CUDA build of torch (in Slicer: PyTorch Utils).")
    return torch.device(requested)


def default_batch_size(device: torch.device, patch: tuple[int, ...]) -> int:
    """Tiles per forward pass. On the CPU, torch's conv3d runs one tile 5-6x slower per tile than
    two or more (Testing/benchmarks/RESULTS.md), so the CPU batches too: 4 small tiles, or 2 large
    ones (PASTA's 128^3 tiles) to bound memory."""
    if device.type == "cuda":
        return 4
    return 4 if int(np.prod(patch)) <= 64 ** 3 else 2


def nonzero_box(array: np.ndarray) -> tuple[slice, ...]:
    """nnU-Net crops to the bounding box of non-zero voxels (everything, for CT with air at -1000)."""
    nonzero = np.nonzero(array != 0)
    if not nonzero[0].size:
        return tuple(slice(0, s) for s in array.shape)
    return tuple(slice(int(a.min()), int(a.max()) + 1) for a in nonzero)


def cpu_bf16_is_fast() -> bool:
    """Whether oneDNN runs bf16 convolutions on this CPU natively (AVX-512 BF16, AMX): 2.2x faster per tile
    there; elsewhere (e.g. AVX2 only) bf16 is emulated and slower than fp32. PyTorch's own check."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: A CPU run of at least this many forward passes is told that ``--precision bf16`` exists where the CPU
#: runs it natively: at 14-28 s per full-network tile, fewer passes save too little to mention.
BF16_HINT_MIN_FORWARDS = 8


class Predictor:
    """Runs a :class:`LoadedModel` on volumes; create once, call :meth:`predict` per image."""

    def __init__(self, model: LoadedModel, device: str = "auto", tta: bool | None = None, overlap: float = 0.5,
                 batch_size: int | None = None, precision: str = "auto", threads: int | None = None,
                 progress: ProgressReporter | None = None) -> None:
        if not 0.0 <= overlap < 1.0:
            raise PastaInputError(f"--overlap must be in [0, 1), got {overlap}.")
        if threads:
            torch.set_num_threads(int(threads))
        self.model = model
        self.device = choose_device(device)
        self.tta = (self.device.type == "cuda") if tta is None else tta
        self.overlap = overlap
        self.batch_size = batch_size or default_batch_size(self.device, model.preprocessing.patch_size)
        self.precision = precision
        self.progress = progress or ProgressReporter()
        self.notes: list[str] = []
        if precision == "bf16" and self.device.type == "cpu" and not cpu_bf16_is_fast():
            self.precision = "fp32"
            message = ("--precision bf16: this CPU has no bf16 arithmetic oneDNN can use (AVX-512 BF16 or AMX), so "
                       "bf16 would be emulated and slower than fp32; running fp32.")
            log.warning("%s", message)
            self.notes.append(message)
        self.networks = self._build_networks(self.device)

    def precision_hint(self, forwards: int) -> str | None:
        """A line for a long CPU run at the default precision on a CPU with native bf16: ``--precision bf16``
        halves it there (RESULTS.md, 2026-12-03 evening), but it stays opt-in until it is checked on
        fine-tuned PASTA weights, so the reader is told rather than switched."""
        if self.device.type != "cpu" or self.precision != "auto" or forwards < BF16_HINT_MIN_FORWARDS \
                or not cpu_bf16_is_fast():
            return None
        return ("This CPU has native bf16: --precision bf16 runs the network about 1.9x faster (full PASTA network: "
                "14.6 s instead of 27.9 s per 128^3 tile; argmax agreement with fp32 99.4 % on random weights). "
                "fp32 stays the default until bf16 is checked on your model.")

    def _build_networks(self, device: torch.device) -> list[PastaUNet]:
        return [self.model.network(fold).to(device) for fold in range(len(self.model.states))]

    def _amp_dtype(self) -> torch.dtype | None:
        """Autocast dtype: fp16 on a GPU by default; on the CPU fp32 unless bf16 is asked for (2.2x faster
        per 128^3 tile of the full network on an AVX-512 BF16 CPU; Testing/benchmarks/bench_cpu_tile.py)."""
        if self.precision == "fp32":
            return None
        if self.device.type != "cuda":
            return torch.bfloat16 if self.precision == "bf16" else None
        if self.precision == "bf16":
            return torch.bfloat16
        return torch.float16

    # ---------------------------------------------------------------------------------- public
    def predict(self, volume: Volume, return_probabilities: bool = False,
                region: np.ndarray | None = None) -> SegmentationResult:
        """Labels (and class probabilities) on ``volume``'s grid. A model whose card asks for PASTA's
        standardisation sees the volume in LPS voxel order at 1 mm, and its answer comes back to the
        input grid (exactly when no resampling was needed).

        ``region`` (bool, on ``volume``'s grid): run only the tiles that touch it; inside it the answer
        equals the whole-volume run, outside it is background.
        """
        if self.model.preprocessing.standardise != "pasta":
            return self._predict_as_stored(volume, return_probabilities, region)
        from .standardise import standardise

        standard = standardise(volume)
        standard_region = standard.labels_forward(region.astype(np.uint8)) > 0 if region is not None else None
        result = self._predict_as_stored(standard.volume, return_probabilities, standard_region)
        labels = volume.with_array(standard.labels_back(result.labels.array))
        probabilities = (standard.probabilities_back(result.probabilities)
                         if result.probabilities is not None else None)
        how = "an index permutation, exact" if standard.exact else "resampled in world space"
        notes = result.notes + [f"PASTA standardisation (the model card's rule): the network saw the scan in LPS "
                                f"voxel order at 1 mm; results mapped back to the input grid ({how})."]
        return SegmentationResult(labels, probabilities, result.class_names, result.device, notes, result.seconds)

    def _predict_as_stored(self, volume: Volume, return_probabilities: bool = False,
                           region: np.ndarray | None = None) -> SegmentationResult:
        prep = self.model.preprocessing
        timings: dict[str, float] = {}
        start = time.perf_counter()
        self.progress.report("preprocessing", 0.0, "normalising and resampling")
        array = np.transpose(volume.array, prep.transpose_forward)
        spacing = tuple(volume.spacing[::-1][i] for i in prep.transpose_forward)
        box = nonzero_box(array) if prep.crop_to_nonzero else tuple(slice(0, s) for s in array.shape)
        cropped = array[box]
        data = torch.from_numpy(prep.normalization.apply(cropped))[None]
        target_spacing = prep.spacing_zyx or spacing
        target_shape = new_shape(cropped.shape, spacing, target_spacing)
        inside = on_grid = None
        counts: dict = {}
        if region is not None:
            inside = np.transpose(np.asarray(region, bool), prep.transpose_forward)[box]
            on_grid = resize(torch.from_numpy(inside[None].astype(np.float32)), target_shape, 1, spacing,
                             target_spacing, prep.resampling, clip=False)[0] > 0.01  # every voxel it reaches
        logits = self._run_with_fallbacks(data, cropped.shape, spacing, target_spacing, target_shape, timings,
                                          on_grid, counts)
        self.progress.report("postprocessing", 0.95, "resampling to the input grid")
        t = time.perf_counter()
        probabilities = torch.softmax(logits, dim=0)
        if inside is not None:  # outside the region of interest the answer is background
            outside = torch.from_numpy(~inside).to(probabilities.device)
            probabilities[:, outside] = 0.0
            probabilities[0, outside] = 1.0
            region_note = (f"Region of interest: {counts.get('tiles')} of {counts.get('tiles_total')} tiles run; "
                           "outside the region the answer is background.")
        rules = self.model.postprocessing
        labels = np.zeros(array.shape, np.uint8)
        labels[box], dropped = postprocess(rules, probabilities, spacing)
        notes = list(self.notes)  # the fallbacks so far, then this image's own
        if inside is not None:
            notes.append(region_note)
        if dropped:
            notes.append(f"{dropped} lesion component(s) under {rules.min_component_ml:g} mL were set to "
                          "background (the model card's postprocessing).")
        labels_volume = volume.with_array(np.transpose(labels, prep.transpose_backward))
        probs_out = None
        if return_probabilities:
            full = np.zeros((probabilities.shape[0], *array.shape), np.float32)
            full[0] = 1.0
            full[(slice(None), *box)] = probabilities.cpu().numpy()
            probs_out = np.transpose(full, (0, *[a + 1 for a in prep.transpose_backward]))
        timings["postprocess"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        return SegmentationResult(labels_volume, probs_out, [c.name for c in self.model.classes],
                                  self.device.type, notes, timings)

    # ---------------------------------------------------------------------------------- internals
    def _forward(self, data, shape, spacing, target_spacing, target_shape, results_device, timings,
                 region=None, counts=None):
        prep = self.model.preprocessing
        t = time.perf_counter()
        on_device = resize(data.to(results_device), target_shape, prep.resampling.order_data, spacing,
                           target_spacing, prep.resampling)
        timings["resample_in"] = time.perf_counter() - t
        t = time.perf_counter()
        settings = WindowSettings(prep.patch_size, self.overlap, self.model.mirror_axes if self.tta else (),
                                  self.batch_size, self._amp_dtype())
        logits = predict_logits(self.networks, on_device, settings, self.device, results_device, self.progress,
                                region.to(results_device) if region is not None else None, counts)
        timings["network"] = time.perf_counter() - t
        self._record_speed(tuple(on_device.shape[-3:]), timings["network"])
        t = time.perf_counter()
        logits = resize(logits, shape, prep.resampling.order_probabilities, target_spacing, spacing,
                        prep.resampling)
        timings["resample_out"] = time.perf_counter() - t
        return logits

    def _run_with_fallbacks(self, data, shape, spacing, target_spacing, target_shape, timings,
                            region=None, counts=None) -> torch.Tensor:
        results_device = self.device
        while True:
            try:
                return self._forward(data, shape, spacing, target_spacing, target_shape, results_device, timings,
                                     region, counts)
            except torch.cuda.OutOfMemoryError:
                if self.device.type != "cuda":
                    raise
                torch.cuda.empty_cache()
                if self.batch_size > 1:
                    self.batch_size //= 2
                    self._note(f"GPU out of memory: retrying with {self.batch_size} tile(s) per batch.")
                elif results_device.type == "cuda":
                    results_device = torch.device("cpu")
                    self._note("GPU out of memory: keeping the full-volume buffers in host memory.")
                else:
                    self._note("GPU out of memory even with one tile: falling back to the CPU (much slower).")
                    self.device = torch.device("cpu")
                    results_device = self.device
                    self.networks = [n.to(self.device) for n in self.networks]

    @property
    def mirrorings(self) -> int:
        """Forward passes per tile and fold: the tile itself and each test-time mirroring."""
        return 2 ** len(self.model.mirror_axes) if self.tta else 1

    def work(self, volume: Volume):
        """The run's forward passes over ``volume`` and their time at this device's measured speed."""
        return network_work(volume.array.shape, volume.spacing, self.model.preprocessing, self.overlap,
                            self.mirrorings, len(self.networks), self.speed_key())

    def passes(self, grid_shape: tuple[int, ...]) -> int:
        """Forward passes of one patch over ``grid_shape``: tiles x mirrorings x folds."""
        return tile_count(grid_shape, self.model.preprocessing.patch_size, self.overlap) * self.mirrorings \
            * len(self.networks)

    def speed_key(self) -> str:
        return network_key(self.device.type, self.model.config.stage_widths, self.model.preprocessing.patch_size)

    def _record_speed(self, grid_shape: tuple[int, ...], seconds: float) -> None:
        """Seconds per forward pass on this device, for the next run's time estimate."""
        TimingLog().record(self.speed_key(), seconds / max(1, self.passes(grid_shape)))

    def _note(self, message: str) -> None:
        log.warning("%s", message)
        self.notes.append(message)
        self.progress.report(self.progress.stage or "segmenting", None, message)
