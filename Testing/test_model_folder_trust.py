"""A model folder is trusted only as far as its card's checksums reach, and only inside itself.

Each case was accepted before (issue 20): a card without SHA256 digests loaded tampered weights;
weight and head paths could leave the folder (``..``, absolute paths, links); importing a folder
followed links; a real ``torch.save`` checkpoint could not be imported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from PASTALib.errors import PastaInputError
from PASTALib.heads.attribute_heads import load_attribute_heads
from PASTALib.model import card as model_card
from PASTALib.model.checkpoints import load_model

from conftest import DATA, file_sha256 as sha

TINY = DATA / "tiny_pasta_organs"
pytestmark = pytest.mark.usefixtures("no_bundled_model")


def folder_with(tmp_path, edit) -> Path:
    folder = shutil.copytree(TINY, tmp_path / "models" / "tiny")
    card = json.loads((folder / "model.json").read_text())
    edit(folder, card)
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def no_digests(folder, card):
    card.pop("sha256")
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-1] + b" ")


def weights_named(name_of):
    def edit(folder, card):
        outside = folder.parent / "outside.safetensors"
        shutil.move(folder / "model.safetensors", outside)
        name = name_of(outside)
        card["weights"] = [name]
        card["sha256"] = {name: sha(outside)}
    return edit


ESCAPES = {
    "parent": weights_named(lambda outside: "../outside.safetensors"),
    "absolute": weights_named(lambda outside: str(outside)),
    "etc_passwd": weights_named(lambda outside: "../../../../etc/passwd"),
}


def test_a_card_without_digests_is_not_trusted(tmp_path, cache):
    folder = folder_with(tmp_path, no_digests)  # and its weights tampered with
    with pytest.raises(PastaInputError, match="cannot be verified"):
        load_model(folder)
    with pytest.raises(PastaInputError, match="cannot be verified"):
        model_card.verify(folder, "The model", "hint")
    with pytest.raises(PastaInputError, match="cannot be verified"):
        cache.import_model(folder)
    assert cache.installed() == []


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_weights_paths_stay_inside_the_folder(case, tmp_path, cache, monkeypatch):
    folder = folder_with(tmp_path, ESCAPES[case])
    hashed = []
    monkeypatch.setattr("PASTALib.model.checkpoints.sha256_file", lambda path: hashed.append(path) or "0")
    with pytest.raises(PastaInputError, match="not a plain name inside the model folder"):
        load_model(folder)
    assert hashed == []  # refused before anything outside was opened
    with pytest.raises(PastaInputError, match="not a plain name"):
        model_card.verify(folder, "The model", "hint")
    with pytest.raises(PastaInputError, match="not a plain name"):
        cache.import_model(folder)


def test_a_weights_link_out_of_the_folder_is_refused(tmp_path):
    def link_out(folder, card):
        outside = folder.parent / "outside.safetensors"
        shutil.move(folder / "model.safetensors", outside)
        (folder / "model.safetensors").symlink_to(outside)
    folder = folder_with(tmp_path, link_out)
    with pytest.raises(PastaInputError, match="leads out of the model folder"):
        load_model(folder)


@pytest.mark.parametrize("entry, words", [
    ({"file": "../../etc/passwd", "sha256": "0" * 64}, "not a plain name"),
    ({"file": "attribute_heads.safetensors"}, "cannot be verified"),
])
def test_attribute_heads_are_hashed_and_inside_the_folder(entry, words, tmp_path):
    def add_heads(folder, card):
        (folder / "attribute_heads.safetensors").write_bytes(b"heads")
        card["attribute_heads"] = entry
    folder = folder_with(tmp_path, add_heads)
    card = json.loads((folder / "model.json").read_text())
    with pytest.raises(PastaInputError, match=words):
        load_attribute_heads(folder, card, [32, 64])
    with pytest.raises(PastaInputError, match=words):
        model_card.verify(folder, "The model", "hint")


def test_importing_a_folder_never_follows_a_link(tmp_path, cache):
    folder = shutil.copytree(TINY, tmp_path / "linked")
    secret = tmp_path / "hostname"
    secret.write_text("a file of this computer")
    (folder / "notes.txt").symlink_to(secret)
    with pytest.raises(PastaInputError, match="symbolic link"):
        cache.import_model(folder)
    assert cache.installed() == []
    assert not any(p.name == "notes.txt" for p in cache.root.rglob("*"))


def test_a_real_torch_save_checkpoint_imports(tmp_path, cache):
    """torch.save writes a zip archive: the checkpoint suffix must be looked at before the zip test."""
    checkpoint = tmp_path / "tiny.pth"
    torch.save(load_file(str(TINY / "model.safetensors")), checkpoint)
    model = cache.import_model(checkpoint, expected_sha256=sha(checkpoint), pasta_defaults=True)
    assert model.format == "checkpoint"
    assert (cache.root / model.id / "tiny.pth").read_bytes() == checkpoint.read_bytes()
