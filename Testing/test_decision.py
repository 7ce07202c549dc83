"""The decision rule of a model card: what turns probabilities into the label map users see."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from PASTALib.checkpoints import load_model
from PASTALib.decision import labels_from_probabilities
from PASTALib.errors import PastaInputError
from PASTALib.predictor import Predictor
from PASTALib.volume_io import read_volume

from conftest import DATA

TINY = DATA / "tiny_pasta_organs"


def test_lesion_first_keeps_a_voxel_that_is_more_likely_lesion_than_not():
    # background 0.4 beats each of three lesion types, but the voxel is 60 % lesion
    shared = torch.tensor([0.4, 0.25, 0.2, 0.15])[:, None]
    background = torch.tensor([0.7, 0.1, 0.1, 0.1])[:, None]
    probabilities = torch.cat([shared, background], dim=1)
    assert labels_from_probabilities(probabilities, "argmax").tolist() == [0, 0]
    assert labels_from_probabilities(probabilities, "lesion_first").tolist() == [1, 0]


def _tiny_with(tmp_path: Path, decision: str) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    card = json.loads((folder / "model.json").read_text())
    card["postprocessing"] = {"decision": decision}
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def test_a_model_card_decision_rule_is_what_segmentation_uses(tmp_path):
    assert load_model(TINY).decision == "argmax"  # no key: nnU-Net's rule
    model = load_model(_tiny_with(tmp_path, "lesion_first"))
    assert model.decision == "lesion_first" and model.summary()["decision"] == "lesion_first"
    ct = read_volume(DATA / "upper_abdomen_native_3mm_ct.nii.gz")
    result = Predictor(model, device="cpu").predict(ct, return_probabilities=True)
    expected = labels_from_probabilities(torch.from_numpy(result.probabilities), "lesion_first").numpy()
    assert np.mean(result.labels.array == expected) > 0.999


def test_an_unknown_decision_rule_is_refused_clearly(tmp_path):
    with pytest.raises(PastaInputError, match="decision rule 'vote'"):
        load_model(_tiny_with(tmp_path, "vote"))
