"""``pasta train`` end to end on tiny configurations: online synthesis, labelled data, resume,
initialisation from a PASTA checkpoint, and the bad inputs a user can make."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from PASTALib.cli.main import main
from PASTALib.model.checkpoints import load_model
from PASTALib.model.network import PastaUNet, UNetConfig
from PASTALib.io.volume_io import read_volume, write_volume

DATA = Path(__file__).resolve().parent / "Data"
TINY = ["--preset", "smoke", "--progress", "none", "--threads", "2"]


@pytest.fixture(scope="module")
def upper_host(tmp_path_factory) -> Path:
    """The 30-slice upper abdomen (liver, kidneys, ...) as a host folder: small enough for CI."""
    folder = tmp_path_factory.mktemp("hosts") / "upper"
    folder.mkdir()
    shutil.copy(DATA / "upper_abdomen_native_3mm_ct.nii.gz", folder / "ct.nii.gz")
    shutil.copy(DATA / "upper_abdomen_native_3mm_organs.nii.gz", folder / "total.nii.gz")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, upper_host) -> Path:
    out = tmp_path_factory.mktemp("train") / "model"
    code = main(["train", "--hosts", str(upper_host), "--lesion-types", "liver_tumor,liver_cyst",
                 "--val-hosts", str(upper_host), "--val-cases-per-type", "1", "--decision", "lesion_first",
                 "--foreground-fraction", "0.5", "--foreground-weight", "2", "-o", str(out), *TINY])
    assert code == 0
    return out


@pytest.mark.slow
def test_online_synthesis_training_writes_a_model_that_segment_loads(trained, tmp_path):
    card = json.loads((trained / "model.json").read_text())
    assert [(c["id"], c["lesion_type"]) for c in card["classes"]] == [(0, None), (1, "liver_tumor"),
                                                                      (2, "liver_cyst")]
    assert card["provenance"]["steps_done"] == 4 and card["provenance"]["trained_by"] == "pasta train"
    config = card["provenance"]["config"]
    assert (config["foreground_fraction"], config["foreground_weight"]) == (0.5, 2.0)
    assert set(card["validation"]["segmentation"]["per_class"]) == {"liver_tumor", "liver_cyst"}
    assert card["attribute_heads"]["file"] in {p.name for p in trained.iterdir()}
    model = load_model(trained)
    assert model.config.stage_widths == (8, 16, 32) and model.mirror_axes == (0, 1, 2)
    assert model.postprocessing.decision == "lesion_first" and card["postprocessing"] == {"decision": "lesion_first"}
    labels = tmp_path / "labels.nii.gz"
    assert main(["segment", str(DATA / "upper_abdomen_native_3mm_ct.nii.gz"), "--model", str(trained),
                 "-o", str(labels), "--progress", "none"]) == 0
    values = set(np.unique(read_volume(labels).array).tolist())
    assert values <= {0, 1, 2}


def test_an_interrupted_run_resumes_from_its_checkpoint(upper_host, tmp_path):
    work = tmp_path / "work"
    common = ["train", "--hosts", str(upper_host), "--lesion-types", "kidney_cyst", "--work-dir", str(work),
              "--no-attribute-heads", *TINY]
    assert main([*common, "-o", str(tmp_path / "first"), "--steps", "2"]) == 0
    first = json.loads((tmp_path / "first" / "model.json").read_text())["provenance"]
    assert first["steps_done"] == 2 and not first["resumed"]
    assert main([*common, "-o", str(tmp_path / "second"), "--steps", "3"]) == 0
    second = json.loads((tmp_path / "second" / "model.json").read_text())["provenance"]
    assert second["steps_done"] == 3 and second["resumed"]
    # other settings than the checkpoint's: refused, the checkpoint kept
    before = (work / "checkpoint.pt").read_bytes()
    assert main([*common, "-o", str(tmp_path / "third"), "--steps", "4", "--patch", "16"]) == 2
    assert (work / "checkpoint.pt").read_bytes() == before and not (tmp_path / "third").exists()


def test_few_shot_on_labelled_pairs(tmp_path):
    data = tmp_path / "data"
    (data / "imagesTr").mkdir(parents=True)
    (data / "labelsTr").mkdir()
    ct = read_volume(DATA / "upper_abdomen_native_3mm_ct.nii.gz")
    organs = read_volume(DATA / "upper_abdomen_native_3mm_organs.nii.gz")
    for index, organ in enumerate((5, 2)):  # liver, right kidney as "class 1"
        write_volume(ct, data / "imagesTr" / f"case{index}_0000.nii.gz")
        write_volume(organs.with_array((organs.array == organ).astype(np.uint8)),
                     data / "labelsTr" / f"case{index}.nii.gz")
    out = tmp_path / "model"
    assert main(["train", "--data", str(data), "--few-shot", "--steps", "2", "--patch", "32",
                 "--widths", "8,16,32", "-o", str(out), "--progress", "none", "--no-attribute-heads"]) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["provenance"]["config"]["preset"] == "few-shot"
    assert card["provenance"]["config"]["learning_rate"] == pytest.approx(3e-4)
    assert [c["name"] for c in card["classes"]] == ["background", "class 1"]


@pytest.mark.parametrize("recipe, lr, steps", [("pasta-ft", 1e-4, 125000), ("pasta-fewshot", 1e-3, 2000)])
def test_the_authors_fine_tuning_recipes_are_presets(recipe, lr, steps):
    """PASTATrainer_ft / PASTATrainer_fewshot (LWHYC/PASTA): nnU-Net's SGD with their learning rate and
    epochs x iterations; `--recipe` is the preset's other name; the user's explicit options still win."""
    from PASTALib.cli.main import build_parser
    from PASTATrainLib.config import TrainConfig, with_preset

    args = build_parser().parse_args(["train", "--data", "d", "-o", "m", "--recipe", recipe])
    config = with_preset(TrainConfig(), args.preset)
    assert (config.optimizer, config.learning_rate, config.steps) == ("sgd", lr, steps)
    assert with_preset(TrainConfig(), recipe, {"steps": 10}).steps == 10


def test_init_from_a_pasta_checkpoint_keeps_its_architecture(upper_host, tmp_path):
    config = UNetConfig(1, (8, 16, 32), 2, ((3, 3, 3),) * 3, ((2, 2, 2),) * 2, 3)
    pretrained = PastaUNet(config).state_dict()
    torch.save({"network_weights": pretrained}, tmp_path / "PASTA_tiny.pth")
    out = tmp_path / "model"
    assert main(["train", "--hosts", str(upper_host), "--lesion-types", "liver_cyst", "--init",
                 str(tmp_path / "PASTA_tiny.pth"), "-o", str(out), "--steps", "1", "--learning-rate", "0",
                 "--no-attribute-heads", *TINY]) == 0
    model = load_model(out)
    assert model.config.stage_widths == (8, 16, 32) and model.config.num_classes == 2
    # with a zero learning rate the encoder is exactly the checkpoint's
    key = "conv_blocks_context.1.blocks.0.conv.weight"
    assert torch.equal(model.states[0][key], pretrained[key])
    assert "initialised from PASTA_tiny.pth" in json.loads((out / "model.json").read_text())["provenance"]["init"]


def test_init_from_a_model_folder_continues_it_keeping_heads_only_for_the_same_classes(trained, upper_host,
                                                                                         tmp_path):
    """--init on a model folder continues that model: same classes keep their output heads."""
    before = load_model(trained).states[0]
    same = tmp_path / "same"
    assert main(["train", "--hosts", str(upper_host), "--lesion-types", "liver_tumor,liver_cyst", "--init",
                 str(trained), "-o", str(same), "--steps", "1", "--learning-rate", "0",
                 "--no-attribute-heads", *TINY]) == 0
    after = load_model(same).states[0]
    head = "seg_outputs.0.weight"
    assert torch.equal(after[head], before[head])
    assert "its output heads (same classes)" in json.loads((same / "model.json").read_text())["provenance"]["init"]
    other = tmp_path / "other"
    assert main(["train", "--hosts", str(upper_host), "--lesion-types", "liver_cyst", "--init", str(trained),
                 "-o", str(other), "--steps", "1", "--no-attribute-heads", *TINY]) == 0
    assert load_model(other).config.num_classes == 2
    assert "new output heads" in json.loads((other / "model.json").read_text())["provenance"]["init"]


def test_bad_training_inputs_fail_clearly(upper_host, tmp_path, capsys):
    out = str(tmp_path / "m")
    assert main(["train", "-o", out, "--progress", "none"]) == 2
    assert "No training data" in capsys.readouterr().err
    assert main(["train", "--hosts", str(upper_host), "-o", out, "--patch", "30", *TINY]) == 2
    assert "not divisible" in capsys.readouterr().err
    assert main(["train", "--hosts", str(upper_host), "-o", out, "--foreground-weight", "0", *TINY]) == 2
    assert "--foreground-weight must be in (0, 100]" in capsys.readouterr().err
    assert main(["train", "--hosts", str(upper_host), "--lesion-types", "esophageal_cancer", "-o", out, *TINY]) == 2
    assert "esophageal_cancer" in capsys.readouterr().err
    torch.save({"conv1.weight": torch.zeros(4, 1, 3, 3)}, tmp_path / "resnet.pth")
    assert main(["train", "--hosts", str(upper_host), "--lesion-types", "liver_cyst", "--init",
                 str(tmp_path / "resnet.pth"), "-o", out, *TINY]) == 2
    assert "not a PASTA" in capsys.readouterr().err
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    ct = read_volume(DATA / "upper_abdomen_native_3mm_ct.nii.gz")
    write_volume(ct, data / "images" / "a.nii.gz")
    shifted = type(ct)(np.zeros(ct.array.shape, np.uint8), ct.spacing, tuple(np.add(ct.origin, 10.0)), ct.direction)
    write_volume(shifted, data / "labels" / "a.nii.gz")
    assert main(["train", "--data", str(data), "-o", out, *TINY]) == 2
    assert "does not share the grid" in capsys.readouterr().err
    assert not Path(out).exists()


def test_train_without_the_training_extra_says_how_to_install_it(tmp_path):
    """With MONAI absent (blocked here), `pasta train` stops at once with the install command, exit 2."""
    import subprocess
    import sys

    code = ("import importlib.abc, sys\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'monai':\n"
            "            raise ModuleNotFoundError(name, name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import importlib.util\n"
            "importlib.util.find_spec = lambda name, *a: None if name == 'monai' else _find(name, *a)\n")
    code = ("import importlib.util\n_find = importlib.util.find_spec\n" + code
            + "from PASTALib.cli.main import main\n"
            + f"raise SystemExit(main(['train', '--hosts', 'sample', '-o', {str(tmp_path / 'model')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert 'pip install "pasta-slicer[train]"' in result.stderr and not (tmp_path / "model").exists()

