"""A model card's postprocessing: what turns probabilities into the label map users see."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA

from PASTALib.errors import PastaInputError
from PASTALib.inference.postprocessing import (
    drop_small_components,
    labels_from_probabilities,
    one_type_per_component,
    postprocess,
)
from PASTALib.inference.predictor import Predictor
from PASTALib.io.volume_io import read_volume
from PASTALib.model.card import Postprocessing
from PASTALib.model.checkpoints import load_model

TINY = DATA / "tiny_pasta_organs"


def test_lesion_first_keeps_a_voxel_that_is_more_likely_lesion_than_not():
    # background 0.4 beats each of three lesion types, but the voxel is 60 % lesion
    shared = torch.tensor([0.4, 0.25, 0.2, 0.15])[:, None]
    background = torch.tensor([0.7, 0.1, 0.1, 0.1])[:, None]
    probabilities = torch.cat([shared, background], dim=1)
    assert labels_from_probabilities(probabilities, "argmax").tolist() == [0, 0]
    assert labels_from_probabilities(probabilities, "lesion_first").tolist() == [1, 0]


def test_the_component_floor_drops_specks_but_judges_a_lesion_by_its_whole_size():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:6, 2:6, 2:6] = 1          # 64 voxels: 1.73 mL at 3 mm
    labels[2:6, 2:6, 6:8] = 5          # the same lesion, partly called another type: 32 voxels
    labels[15, 15, 15] = 2             # a 1-voxel speck, 0.027 mL
    labels[10, 10, 10] = 3             # another, diagonal to a second voxel: one component of 2
    labels[11, 11, 11] = 3
    kept, dropped = drop_small_components(labels.copy(), (3.0, 3.0, 3.0), 0.1)
    assert dropped == 2
    assert (kept == 5).sum() == 32 and (kept == 1).sum() == 64  # the type fragment stays with its lesion
    assert not kept[15, 15, 15] and not kept[10, 10, 10]
    unchanged, none = drop_small_components(labels.copy(), (3.0, 3.0, 3.0), 0.0)
    assert none == 0 and np.array_equal(unchanged, labels)
    # the floor is a volume: on a 1 mm grid, 0.0015 mL drops the 1-voxel speck (0.001 mL), not the pair (0.002)
    assert drop_small_components(labels.copy(), (1.0, 1.0, 1.0), 0.0015)[1] == 1


def test_one_type_per_component_gives_a_lesion_painted_in_two_types_its_most_probable_one():
    probabilities = torch.zeros(4, 1, 1, 8)
    probabilities[0] = 1.0
    # voxels 0-4: one lesion; 0-2 lean to type 1 weakly, 3-4 to type 2 strongly; voxel 7: a lone type 3
    probabilities[:, 0, 0, 0:3] = torch.tensor([0.2, 0.45, 0.35, 0.0])[:, None]
    probabilities[:, 0, 0, 3:5] = torch.tensor([0.1, 0.0, 0.9, 0.0])[:, None]
    probabilities[:, 0, 0, 7] = torch.tensor([0.1, 0.2, 0.0, 0.7])
    voxelwise = postprocess(Postprocessing("argmax"), probabilities, (3.0, 3.0, 3.0))[0]
    assert voxelwise[0, 0].tolist() == [1, 1, 1, 2, 2, 0, 0, 3]
    # type 2: 3 x 0.35 + 2 x 0.9 = 2.85 beats type 1: 3 x 0.45 = 1.35
    voted = postprocess(Postprocessing("argmax", type_per_component=True), probabilities, (3.0, 3.0, 3.0))[0]
    assert voted[0, 0].tolist() == [2, 2, 2, 2, 2, 0, 0, 3]
    assert one_type_per_component(np.zeros((1, 1, 8), np.uint8), probabilities).sum() == 0


def _tiny_with(tmp_path: Path, postprocessing: dict) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    card = json.loads((folder / "model.json").read_text())
    card["postprocessing"] = postprocessing
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def test_a_model_card_postprocessing_is_what_segmentation_uses(tmp_path):
    assert load_model(TINY).postprocessing == Postprocessing("argmax", 0.0)  # no key: nnU-Net's rule
    block = {"decision": "lesion_first", "type_per_component": True, "min_component_ml": 2.0}
    model = load_model(_tiny_with(tmp_path, block))
    assert model.summary()["postprocessing"] == block
    ct = read_volume(DATA / "upper_abdomen_native_3mm_ct.nii.gz")
    result = Predictor(model, device="cpu").predict(ct, return_probabilities=True)
    probabilities = torch.from_numpy(result.probabilities)
    expected = labels_from_probabilities(probabilities, "lesion_first").numpy()
    expected = one_type_per_component(expected, probabilities)
    expected, dropped = drop_small_components(expected, ct.spacing[::-1], 2.0)
    assert np.mean(result.labels.array == expected) > 0.999
    assert dropped and any(f"{dropped} lesion component(s) under 2 mL" in note for note in result.notes)


@pytest.mark.parametrize("block, message", [
    ({"decision": "vote"}, "decision rule 'vote'"),
    ({"min_component_ml": -1}, "min_component_ml"),
    ({"min_component_ml": "big"}, "min_component_ml"),
    ({"min_component_ml": float("nan")}, "min_component_ml"),
    ({"type_per_component": "yes"}, "type_per_component"),
])
def test_a_bad_postprocessing_block_is_refused_clearly(tmp_path, block, message):
    with pytest.raises(PastaInputError, match=message):
        load_model(_tiny_with(tmp_path, block))


def test_validation_counts_the_false_findings_a_report_would_show():
    from PASTATrainLib.evaluate import false_components

    truth = np.zeros((12, 12, 12), np.uint8)
    truth[2:5, 2:5, 2:5] = 1
    predicted = np.zeros_like(truth)
    predicted[3:6, 3:6, 3:6] = 4   # overlaps the lesion, wrong type: not a false finding
    predicted[9, 9, 9] = 1         # away from it: a false finding
    predicted[0, 10, 0] = 2        # another
    assert false_components(predicted, truth) == 2
    assert false_components(np.zeros_like(truth), truth) == 0
