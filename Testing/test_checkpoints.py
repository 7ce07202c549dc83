"""Every checkpoint format loads safely; broken or foreign files fail with a message naming why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from PASTALib.model.checkpoints import load_model
from PASTALib.errors import PastaInputError
from PASTALib.model.network import UNetConfig, infer_config

from conftest import DATA
from nnunet_peer import v1_generic_unet, write_results_folder

CONFIG = UNetConfig(1, (4, 8, 16, 16), 2, ((3, 3, 3),) * 4, ((2, 2, 2),) * 3, 3)
TINY = DATA / "tiny_pasta_organs"
PASTA = str(Path(sys.executable).parent / "pasta")


@pytest.fixture(scope="module")
def state() -> dict:
    torch.manual_seed(1)
    return v1_generic_unet(CONFIG).state_dict()


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("wrap", ["raw", "network_weights", "state_dict_module_prefix"])
def test_torch_state_dict_variants(tmp_path, state, wrap):
    if wrap == "raw":
        payload = state
    elif wrap == "network_weights":
        payload = {"network_weights": state, "current_epoch": 1000}
    else:
        payload = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    path = tmp_path / "PASTA_final.pth"
    torch.save(payload, path)
    model = load_model(path, pasta_defaults=True)
    assert model.format == "state_dict"
    assert model.config == CONFIG
    assert same_tensors(model.states[0], state)
    assert model.preprocessing.source == "PASTA defaults"


def test_safetensors_file(tmp_path, state):
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    model = load_model(path, pasta_defaults=True)
    assert model.format == "safetensors" and same_tensors(model.states[0], state)


@pytest.mark.parametrize("trainer", ["PASTATrainer_ft", "TotalLesionTrainer_ft"])
def test_nnunet_results_folder_with_two_folds(tmp_path, state, trainer):
    other = {k: v + 1 for k, v in state.items()}
    folder = write_results_folder(tmp_path / "results", [state, other], load_model(TINY).preprocessing, CONFIG,
                                  ["background", "lung", "lung tumor"], trainer_name=trainer)
    model = load_model(folder)
    assert model.format == "nnunet_v2_folder"
    assert len(model.states) == 2 and same_tensors(model.states[1], other)
    assert [c.name for c in model.classes] == ["background", "lung", "lung tumor"]
    assert model.provenance["trainer_name"] == trainer
    assert model.preprocessing.source == "nnU-Net plans.json"
    assert set(model.sha256) == {"fold_0/checkpoint_final.pth", "fold_1/checkpoint_final.pth",
                                 "plans.json", "dataset.json"}
    assert len(load_model(folder, folds=[1]).states) == 1


def test_nnunet_folder_falls_back_to_best_checkpoint(tmp_path, state):
    folder = write_results_folder(tmp_path / "r", [state], load_model(TINY).preprocessing, CONFIG,
                                  ["background", "organ", "lesion"])
    (folder / "fold_0" / "checkpoint_final.pth").rename(folder / "fold_0" / "checkpoint_best.pth")
    assert load_model(folder).config == CONFIG


def test_model_folder_checks_its_sha256(tmp_path):
    folder = shutil.copytree(TINY, tmp_path / "model")
    assert load_model(folder).format == "pasta-model"
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PastaInputError, match="corrupt or was modified"):
        load_model(folder)


def test_dataset_json_with_wrong_class_count_is_named(tmp_path, state):
    folder = write_results_folder(tmp_path / "r", [state], load_model(TINY).preprocessing, CONFIG,
                                  ["background", "organ", "lesion"])
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "lesion": 1}}))
    with pytest.raises(PastaInputError, match="lists 2 labels, but the network has 3 outputs"):
        load_model(folder)


def test_truncated_checkpoint(tmp_path, state):
    path = tmp_path / "cut.pth"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(PastaInputError, match="not a readable PyTorch checkpoint"):
        load_model(path, pasta_defaults=True)


class Payload:
    """Stands in for arbitrary objects a malicious or careless pickle may carry."""


def test_checkpoint_with_code_objects_is_refused(tmp_path, state):
    path = tmp_path / "pickled.pth"
    torch.save({"network_weights": state, "extra": Payload()}, path)
    with pytest.raises(PastaInputError, match="cannot be loaded safely"):
        load_model(path, pasta_defaults=True)


def test_foreign_architecture_is_named(tmp_path):
    path = tmp_path / "resenc.pth"
    torch.save({"encoder.stages.0.0.convs.0.conv.weight": torch.zeros(32, 1, 3, 3, 3)}, path)
    with pytest.raises(PastaInputError, match="not a PASTA / nnU-Net v1 Generic_UNet network"):
        load_model(path, pasta_defaults=True)


def test_first_mismatching_tensor_is_named(tmp_path, state):
    broken = dict(state)
    broken["conv_blocks_localization.1.0.blocks.0.conv.weight"] = torch.zeros(8, 15, 3, 3, 3)
    path = tmp_path / "mixed.pth"
    torch.save(broken, path)
    with pytest.raises(PastaInputError, match=r"'conv_blocks_localization\.1\.0\.blocks\.0\.conv\.weight' has shape "
                                              r"\[8, 15, 3, 3, 3\], expected \[8, 16, 3, 3, 3\]"):
        load_model(path, pasta_defaults=True)


def test_missing_tensor_is_named(tmp_path, state):
    broken = {k: v for k, v in state.items() if k != "tu.2.weight"}
    path = tmp_path / "missing.pth"
    torch.save(broken, path)
    with pytest.raises(PastaInputError, match="'tu.2.weight'"):
        load_model(path, pasta_defaults=True)


def test_models_verify_cli_prints_the_summary(tmp_path, state):
    path = tmp_path / "PASTA_final.pth"
    torch.save(state, path)
    refused = subprocess.run([PASTA, "models", "verify", str(path), "--quiet"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--pasta-defaults" in refused.stderr
    result = subprocess.run([PASTA, "models", "verify", str(path), "--quiet", "--pasta-defaults"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["format"] == "state_dict"
    assert summary["architecture"]["stage_widths"] == [4, 8, 16, 16]
    assert summary["parameters"] == sum(v.numel() for k, v in state.items())
    assert len(summary["sha256"]["PASTA_final.pth"]) == 64
    assert [c["name"] for c in summary["classes"]] == ["background", "organ", "lesion"]
    assert infer_config(state) == CONFIG


def test_models_verify_cli_exit_2_on_a_broken_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint at all")
    result = subprocess.run([PASTA, "models", "verify", str(path), "--pasta-defaults"], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert "not a readable PyTorch checkpoint" in result.stderr


# ------------------------------------------------------------------ preprocessing is never guessed
def test_a_lone_fold_checkpoint_loads_with_its_results_folders_plans(tmp_path, state):
    """Was: PASTA's bare-weights defaults and a warning only the log showed (SlicerNNUnet issue #2)."""
    plans_source = load_model(TINY).preprocessing
    other = {k: v + 1 for k, v in state.items()}
    folder = write_results_folder(tmp_path / "results", [state, other], plans_source, CONFIG,
                                  ["background", "organ", "lesion"])
    model = load_model(folder / "fold_1" / "checkpoint_final.pth")
    assert model.format == "nnunet_v2_folder" and model.provenance["folds"] == [1] and len(model.states) == 1
    assert same_tensors(model.states[0], other)
    assert model.preprocessing == load_model(folder).preprocessing
    assert model.preprocessing.source != "PASTA defaults"


def test_a_fold_checkpoint_without_its_plans_is_refused_unless_asked(tmp_path, state):
    fold = tmp_path / "copied" / "fold_0"
    fold.mkdir(parents=True)
    torch.save({"network_weights": state, "trainer_name": "nnUNetTrainer"}, fold / "checkpoint_final.pth")
    with pytest.raises(PastaInputError, match=r"fold checkpoint.*no plans\.json.*--pasta-defaults"):
        load_model(fold / "checkpoint_final.pth")
    assert load_model(fold / "checkpoint_final.pth", pasta_defaults=True).preprocessing.source == "PASTA defaults"


def test_bare_weights_are_refused_with_the_reason_and_the_way_on(tmp_path, state):
    path = tmp_path / "PASTA_final.pth"
    torch.save(state, path)
    with pytest.raises(PastaInputError, match="holds weights only.*--pasta-defaults"):
        load_model(path)
