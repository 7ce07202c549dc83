"""The bundled default model: what its card promises is what it does.

The held-out table of the model card is recomputed here from scratch: the same two held-out
hosts (Testing/Data), the same seeds, whole-scan prediction. A retrained model with a stale card,
or a change in synthesis or inference that shifts results, fails here.
"""

from __future__ import annotations

import json

import pytest
import synth_hosts
import torch

from PASTALib.model.bundled_models import BUNDLED
from PASTALib.model.checkpoints import load_model
from PASTATrainLib.cases import find_hosts, validation_cases
from PASTATrainLib.evaluate import evaluate, summarise

FOLDER = BUNDLED["default"]
CARD = json.loads((FOLDER / "model.json").read_text(encoding="utf-8"))


def test_default_model_is_small_verified_and_covers_all_15_types():
    model = load_model("default")  # resolves the name and checks every weight's SHA256
    weights = sum(p.stat().st_size for p in FOLDER.glob("*.safetensors"))
    assert weights <= 25 * 1024 * 1024
    assert [c.lesion_type for c in model.classes[1:]] == [
        "lung_tumor", "liver_tumor", "gallbladder_cancer", "pancreas_tumor", "kidney_tumor", "bladder_cancer",
        "esophageal_cancer", "gastric_cancer", "colorectal_cancer", "bone_metastasis", "liver_cyst", "gallstone",
        "pancreas_cyst", "kidney_cyst", "kidney_stone"]
    assert CARD["attribute_heads"]["sha256"] and CARD["limits"]
    page = (FOLDER / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Known limits" in page and "held-out" in page


@pytest.mark.slow
def test_held_out_dice_is_what_the_model_card_says(tmp_path):
    model = load_model("default")
    config = CARD["provenance"]["config"]
    hosts = find_hosts([str(synth_hosts.write_validation_hosts(tmp_path / "val"))])
    keys = [c.lesion_type for c in model.classes[1:]]
    per_type = max(row["cases"] for row in CARD["validation"]["segmentation"]["per_class"].values())
    cases, _ = validation_cases(hosts, config["spacing_xyz"], keys, config["seed"], per_type)
    assert [c.name for c in cases] == CARD["validation"]["cases"]  # the very same lesions
    summary = summarise(evaluate(model.network(), cases, model.preprocessing.normalization.apply,
                                 model.preprocessing.patch_size, torch.device("cpu"), model.postprocessing,
                                 model.preprocessing.spacing_zyx),
                        {c.id: c.lesion_type for c in model.classes})
    recorded = CARD["validation"]["segmentation"]
    for name, row in recorded["per_class"].items():
        assert summary["per_class"][name]["dice"] == pytest.approx(row["dice"], abs=0.02), name
    assert summary["mean"]["dice"] == pytest.approx(recorded["mean"]["dice"], abs=0.01)
    # the false findings the card warns of are the ones the model makes
    assert summary["mean"]["false_components"] == pytest.approx(recorded["mean"]["false_components"], abs=0.5)
