"""The inference engine reproduces nnU-Net v2's pipeline, piece by piece and end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from PASTALib.model.checkpoints import load_model
from PASTALib.errors import PastaCancelled
from PASTALib.inference.grid_resize import resize
from PASTALib.inference.predictor import Predictor
from PASTALib.model.preprocessing import Resampling
from PASTALib.progress import ProgressReporter
from PASTALib.inference.sliding_window import gaussian_weights, tile_starts
from PASTALib.io.volume_io import read_volume

from conftest import DATA
from nnunet_peer import nnunet_predict, write_results_folder

TINY = DATA / "tiny_pasta_organs"
PASTA = str(Path(sys.executable).parent / "pasta")


@pytest.mark.parametrize("shape_in, spacing_in, spacing_out", [
    ((20, 31, 27), (3.0, 3.0, 3.0), (1.3, 1.3, 1.3)),      # upsampling, isotropic
    ((12, 20, 22), (1.0, 1.0, 1.0), (2.5, 1.5, 1.5)),      # downsampling
    ((10, 40, 44), (5.0, 0.8, 0.8), (2.0, 1.0, 1.0)),      # anisotropic: nnU-Net's separate-z path
])
@pytest.mark.parametrize("order", [3, 1])
def test_resize_equals_nnunet_resampling(shape_in, spacing_in, spacing_out, order):
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape, resample_data_or_seg_to_shape

    data = np.random.default_rng(0).normal(size=(2, *shape_in)).astype(np.float32)
    shape_out = tuple(compute_new_shape(shape_in, spacing_in, spacing_out))
    reference = resample_data_or_seg_to_shape(data, shape_out, spacing_in, spacing_out, is_seg=False, order=order,
                                              order_z=0, force_separate_z=None)
    ours = resize(torch.from_numpy(data), shape_out, order, spacing_in, spacing_out, Resampling()).numpy()
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("size, tile", [(64, 64), (96, 64), (105, 64), (300, 128), (129, 128)])
def test_tiles_equal_nnunet(size, tile):
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window

    assert tile_starts(size, tile, 0.5) == compute_steps_for_sliding_window((size,), (tile,), 0.5)[0]


def test_gaussian_equals_nnunet():
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian

    reference = compute_gaussian((32, 48, 40), 1.0 / 8, 10, dtype=torch.float32, device=torch.device("cpu"))
    np.testing.assert_allclose(gaussian_weights((32, 48, 40)), reference.numpy(), rtol=1e-5)


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory):
    """The tiny trained model as an nnU-Net v2 results folder (left-right mirroring only), from a plain
    nnU-Net trainer: arrays as stored, as nnUNetPredictor runs them (PASTA-recipe folders first apply
    PASTA's standardisation, tested in test_standardise.py)."""
    model = load_model(TINY)
    folder = tmp_path_factory.mktemp("nnunet") / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    return write_results_folder(folder, model.states, model.preprocessing, model.config,
                                [c.name for c in model.classes], trainer_name="nnUNetTrainer",
                                mirror_axes=model.mirror_axes)


@pytest.mark.parametrize("mirroring", [False, True])
@pytest.mark.slow
def test_pasta_segment_agrees_with_nnunet_predictor(results_folder, sample_paths, tmp_path, mirroring):
    ct = read_volume(sample_paths["sample"])
    model = load_model(results_folder)
    reference = nnunet_predict(results_folder, model.states, model.config, ct.array, ct.spacing[::-1],
                               mirroring, model.mirror_axes)
    output = tmp_path / "seg.nii.gz"
    result = subprocess.run([PASTA, "segment", "sample", "--model", str(results_folder), "-o", str(output),
                             "--device", "cpu", "--tta" if mirroring else "--no-tta", "--quiet"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ours = read_volume(output)
    assert ours.has_same_geometry(ct, tolerance_mm=1e-4)
    agreement = float(np.mean(ours.array == reference))
    assert agreement >= 0.995, agreement
    # The fixture is a real segmenter, so agreement is not two empty masks agreeing.
    organs = read_volume(sample_paths["sample-organs"]).array
    liver_dice = 2 * np.sum((ours.array == 1) & (organs == 5)) / (np.sum(ours.array == 1) + np.sum(organs == 5))
    assert liver_dice > 0.85


@pytest.mark.slow
def test_probabilities_are_written_and_consistent(sample_paths, tmp_path):
    from PASTALib.inference.probabilities import read_probabilities

    seg, probs = tmp_path / "seg.nrrd", tmp_path / "probs.nii.gz"
    result = subprocess.run([PASTA, "segment", "sample", "--model", str(TINY), "-o", str(seg), "--probabilities",
                             str(probs), "--device", "cpu", "--progress", "json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stages = [json.loads(line)["stage"] for line in result.stderr.splitlines() if line.startswith("{")]
    assert "segmenting" in stages and stages[-1] == "done"
    labels = read_volume(seg)
    probabilities, grid = read_probabilities(probs)
    assert probabilities.shape == (3, *labels.array.shape)
    assert grid.has_same_geometry(labels, tolerance_mm=1e-4)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=3 * 1 / 255)
    # argmax of the stored probabilities reproduces the label map (up to 8-bit ties)
    assert np.mean(np.argmax(probabilities, axis=0) == labels.array) > 0.999


class CancelAfter(ProgressReporter):
    """Asks to cancel once the first tile batch has been reported."""

    def report(self, stage, fraction=None, message=""):
        if stage == "segmenting" and message.startswith("tile batch 2/"):
            self.cancel.cancel()
        super().report(stage, fraction, message)


def test_cancellation_stops_during_the_sliding_window(sample_paths):
    progress = CancelAfter()
    predictor = Predictor(load_model(TINY), device="cpu", tta=False, progress=progress)
    with pytest.raises(PastaCancelled):
        predictor.predict(read_volume(sample_paths["sample"]))


@pytest.mark.slow
def test_out_of_memory_falls_back_step_by_step(sample_paths, monkeypatch):
    """Simulated CUDA OOM: smaller batches, then host-memory buffers, then the CPU; the result is right."""
    predictor = Predictor(load_model(TINY), device="cpu", tta=False, batch_size=2)
    expected = predictor.predict(read_volume(sample_paths["sample"])).labels.array
    predictor.device = torch.device("cuda")  # pretend, so the fallbacks engage
    real_forward = predictor._forward
    calls = []

    def flaky_forward(data, shape, spacing, target_spacing, target_shape, results_device, timings, *region):
        calls.append((predictor.batch_size, results_device.type, predictor.device.type))
        if predictor.device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_forward(data, shape, spacing, target_spacing, target_shape, results_device, timings, *region)

    monkeypatch.setattr(predictor, "_forward", flaky_forward)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    result = predictor.predict(read_volume(sample_paths["sample"]))
    assert calls == [(2, "cuda", "cuda"), (1, "cuda", "cuda"), (1, "cpu", "cuda"), (1, "cpu", "cpu")]
    assert len(result.notes) == 3
    for note, said in zip(result.notes, ("1 tile(s) per batch", "host memory", "falling back to the CPU")):
        assert said in note
    np.testing.assert_array_equal(result.labels.array, expected)


def test_segment_refuses_to_overwrite(tmp_path):
    existing = tmp_path / "seg.nii.gz"
    existing.write_bytes(b"keep me")
    result = subprocess.run([PASTA, "segment", "sample", "--model", str(TINY), "-o", str(existing)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert existing.read_bytes() == b"keep me"


def test_segment_on_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    """Run with no GPU visible (also on a machine that has one), so the check always runs."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([PASTA, "segment", "sample", "--model", str(TINY), "-o", str(tmp_path / "x.nii.gz"),
                             "--device", "cuda"], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "no CUDA GPU" in result.stderr
    assert not (tmp_path / "x.nii.gz").exists()


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.slow
def test_segment_runs_a_bare_checkpoint_with_pasta_defaults(tmp_path, fmt, ct_volume):
    """A bare state dict (like PASTA_final.pth) runs with PASTA's defaults: 1 mm grid, SLF intensities."""
    from safetensors.torch import save_file

    from PASTALib.io.volume_io import write_volume

    state = load_model(TINY).states[0]
    weights = tmp_path / f"weights.{fmt}"
    if fmt == "pth":
        torch.save({"network_weights": state}, weights)
    else:
        save_file(state, str(weights))
    image = write_volume(ct_volume, tmp_path / "ct.nrrd")
    output = tmp_path / "seg.nii.gz"
    result = subprocess.run([PASTA, "segment", str(image), "--model", str(weights), "-o", str(output),
                             "--device", "cpu", "--pasta-defaults"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "PASTA's defaults" in result.stderr
    segmentation = read_volume(output)
    assert segmentation.has_same_geometry(ct_volume, tolerance_mm=1e-4)  # oblique and anisotropic inputs too
    assert set(np.unique(segmentation.array)) <= {0, 1, 2}


def test_a_run_counts_its_passes_and_records_their_speed(tmp_path, monkeypatch, ct_volume):
    """The next estimate is tiles x mirrorings x folds at the seconds per pass this run measured."""
    from PASTALib.inference.predictor import Predictor
    from PASTALib.inference.work import TimingLog

    monkeypatch.setenv("PASTA_HOME", str(tmp_path))
    predictor = Predictor(load_model(TINY), device="cpu", tta=False)
    before = predictor.work(ct_volume)
    assert before.seconds is None and before.forwards >= 1 and "1 mirroring(s) x 1 fold(s)" in before.what
    predictor.predict(ct_volume)
    rate = TimingLog().rate(predictor.speed_key())
    assert rate is not None and rate > 0
    after = predictor.work(ct_volume)
    assert after.seconds == pytest.approx(after.forwards * rate) and "about" in after.text()


def test_region_of_interest_runs_fewer_tiles_and_equals_the_whole_volume_inside(sample_paths):
    """Only the tiles touching the region run (kidneys here); inside it every probability equals the
    whole-volume run's, outside the answer is background."""
    import dataclasses

    from PASTALib.inference.predictor import Predictor

    model = load_model(TINY)
    model = dataclasses.replace(model, preprocessing=dataclasses.replace(model.preprocessing, patch_size=(32, 32, 32)))
    ct = read_volume(sample_paths["sample"])
    kidneys = np.isin(read_volume(sample_paths["sample-organs"]).array, [2, 3])
    predictor = Predictor(model, device="cpu", tta=False)
    whole = predictor.predict(ct, return_probabilities=True)
    roi = predictor.predict(ct, return_probabilities=True, region=kidneys)
    (note,) = [n for n in roi.notes if n.startswith("Region of interest")]
    run, total = (int(v) for v in note.split(":")[1].split("tiles")[0].split(" of "))
    assert run < 0.6 * total
    assert np.array_equal(roi.probabilities[:, kidneys], whole.probabilities[:, kidneys])
    assert np.array_equal(roi.labels.array[kidneys], whole.labels.array[kidneys])
    assert not roi.labels.array[~kidneys].any() and np.all(roi.probabilities[0, ~kidneys] == 1.0)
    assert (whole.labels.array[kidneys] > 0).mean() > 0.2  # a real segmentation there, not all background


def test_bf16_on_the_cpu_is_asked_for_and_agrees_with_fp32(sample_paths):
    """--precision bf16 now runs bf16 autocast on the CPU too (2.2x faster per full-network tile on an
    AVX-512 BF16 CPU, RESULTS.md); the default stays fp32 there. The trained tiny network agrees."""
    import torch

    from PASTALib.inference.predictor import Predictor

    from PASTALib.inference.predictor import cpu_bf16_is_fast

    if not cpu_bf16_is_fast():
        pytest.skip("this CPU has no native bf16 (the fp32 fallback is tested below)")
    model = load_model(TINY)
    fp32, bf16 = Predictor(model, device="cpu", tta=False), Predictor(model, device="cpu", tta=False, precision="bf16")
    assert fp32._amp_dtype() is None and bf16._amp_dtype() == torch.bfloat16
    ct = read_volume(sample_paths["sample"])
    a, b = fp32.predict(ct).labels.array, bf16.predict(ct).labels.array
    assert float(np.mean(a == b)) >= 0.999 and (a > 0).mean() > 0.01


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_bf16_runs_fp32_and_says_so(native, monkeypatch):
    """An AVX2-only CPU emulates bf16 (the tiny network's sample took minutes, against seconds in fp32):
    asked for bf16 there, the predictor runs fp32 and its notes say why."""
    import torch

    import PASTALib.inference.predictor as predictor

    monkeypatch.setattr(predictor, "cpu_bf16_is_fast", lambda: native)
    chosen = predictor.Predictor(load_model(TINY), device="cpu", tta=False, precision="bf16")
    if native:
        assert chosen._amp_dtype() == torch.bfloat16 and not chosen.notes
    else:
        assert chosen._amp_dtype() is None and "running fp32" in chosen.notes[0]


@pytest.mark.parametrize("native,precision,forwards,told", [
    (True, "auto", 46, True), (False, "auto", 46, False), (True, "fp32", 46, False), (True, "auto", 2, False)])
def test_a_long_cpu_run_is_told_about_bf16_only_where_the_cpu_has_it(native, precision, forwards, told, monkeypatch):
    """bf16 halves a full-network CPU run on an AVX-512 BF16 CPU but stays opt-in: the reader is told, only
    where it would help (native bf16, default precision, a run long enough to matter)."""
    import PASTALib.inference.predictor as predictor

    monkeypatch.setattr(predictor, "cpu_bf16_is_fast", lambda: native)
    chosen = predictor.Predictor(load_model(TINY), device="cpu", tta=False, precision=precision)
    hint = chosen.precision_hint(forwards)
    assert (hint is not None) == told
    if told:
        assert "--precision bf16" in hint and chosen._amp_dtype() is None
