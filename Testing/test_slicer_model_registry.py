"""Model registry and cache: import from file/folder/zip with SHA256, zip slip refused, delete,
consent-gated download tested against local files through file:// URLs (no network), and the
bundled default model (listed, verified, never deleted, reported when missing or damaged).

The bundled folder is always a test's own: missing by default (``no_bundled_model``), or a copy of
the tiny test model (``bundled``), so these tests do not depend on the shipped weights."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from PASTALib.errors import PastaInputError

from conftest import DATA, REPO, file_sha256 as sha
from slicer_scene import flip_last_byte

TINY = DATA / "tiny_pasta_organs"
#: Every test here starts from an install without the bundled model (conftest.no_bundled_model).
pytestmark = pytest.mark.usefixtures("no_bundled_model")


def nnunet_folder(root: Path) -> Path:
    folder = root / "Dataset501__PASTATrainer_ft__nnUNetPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "plans.json").write_text("{}")
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 1, "lesion": 2}}))
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"not really weights")
    return folder


def test_shipped_registry_is_valid_and_promises_no_unverifiable_download():
    from PASTASlicerLib.model_registry import default_registry_path, load_registry

    assert default_registry_path() == REPO / "PASTA" / "Resources" / "Models.json"
    entries = load_registry()
    assert {e.id for e in entries} >= {"pasta-foundation", "pasta-default"}
    foundation = next(e for e in entries if e.id == "pasta-foundation")
    assert not foundation.finds_lesions and foundation.license == "MIT"
    assert all(e.download in ("manual", "bundled") or (e.url and len(e.sha256) == 64) for e in entries)


def test_the_registry_names_the_bundled_default_model_honestly():
    from PASTALib.model import bundled_models
    from PASTALib.lesions import lesion_types
    from PASTASlicerLib.model_registry import default_model_id, load_registry

    entry = next(e for e in load_registry() if e.id == "pasta-default")
    assert entry.download == "bundled" and entry.bundled in bundled_models.BUNDLED and entry.format == "pasta-model"
    assert default_model_id() == "pasta-default"
    assert len(entry.lesion_types) == 15 and all(lesion_types.lookup(key) for key in entry.lesion_types)
    assert "synthetic lesions" in entry.description and "Research use only" in entry.description


def test_the_bundled_model_is_listed_first_as_installed_and_verifies(cache, bundled):
    from PASTASlicerLib.model_registry import describe

    cache.import_model(TINY)
    models = cache.installed()
    assert [m.id for m in models] == ["pasta-default", "tiny_pasta_organs"]
    default = models[0]
    assert default.bundled and not models[1].bundled
    assert default.path == bundled and default.format == "pasta-model"  # what `pasta analyze --model` gets
    assert default.sha256 == sha(TINY / "model.safetensors")  # the card's digest of its only weights file
    assert cache.verify("pasta-default").path == bundled
    assert describe(default)["path"] == str(bundled)


def test_a_tampered_bundled_model_fails_verification_in_plain_words(cache, bundled):
    flip_last_byte(bundled / "model.safetensors")
    assert [m.id for m in cache.installed()] == ["pasta-default"]  # listing does not hash
    with pytest.raises(PastaInputError) as caught:
        cache.verify("pasta-default")
    assert caught.value.problem == ("The bundled model 'pasta-default' is damaged: model.safetensors does not "
                                    "match the SHA256 in its model card.")
    assert "Reinstall the PASTA extension" in caught.value.hint
    from PASTALib.model.checkpoints import load_model

    with pytest.raises(PastaInputError, match="corrupt or was modified"):
        load_model("default")


def test_the_bundled_model_cannot_be_deleted_or_replaced(cache, bundled):
    with pytest.raises(PastaInputError, match="ships with PASTA and cannot be deleted"):
        cache.delete("pasta-default")
    assert (bundled / "model.safetensors").is_file() and cache.verify("pasta-default")
    with pytest.raises(PastaInputError, match="ships with PASTA"):
        cache.import_model(TINY, "pasta-default")
    from PASTASlicerLib.model_registry import load_registry

    with pytest.raises(PastaInputError, match="nothing to download"):
        cache.download(next(e for e in load_registry() if e.id == "pasta-default"), consent=True)


def test_a_missing_or_damaged_bundled_model_is_unavailable_with_its_reason(cache, no_bundled_model):
    assert cache.installed() == []
    [status] = cache.bundled()
    assert status.model is None and status.problem == (
        f"The bundled model 'pasta-default' is missing: the folder {no_bundled_model} does not exist.")
    with pytest.raises(PastaInputError, match="is missing") as caught:
        cache.get("pasta-default")
    assert "Reinstall the PASTA extension" in str(caught.value)

    shutil.copytree(TINY, no_bundled_model)
    (no_bundled_model / "model.safetensors").unlink()
    assert cache.installed() == []
    assert cache.bundled()[0].problem == (f"The bundled model 'pasta-default' is incomplete: model.safetensors is "
                                          f"missing from {no_bundled_model}.")
    (no_bundled_model / "model.json").write_text("{not json")
    assert "its model card" in cache.bundled()[0].problem and "cannot be read" in cache.bundled()[0].problem


def test_registry_rejects_a_download_without_sha256(tmp_path):
    from PASTASlicerLib.model_registry import load_registry

    bad = {"schema": "pasta-models", "models": [{"id": "m", "title": "M", "version": "1", "format": "checkpoint",
                                                  "description": "", "license": "MIT", "download": "auto",
                                                  "url": "https://example.org/m.pth"}]}
    (tmp_path / "Models.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="lacks a url or SHA256"):
        load_registry(tmp_path / "Models.json")


def test_cache_defaults_to_pasta_home(cache, tmp_path, monkeypatch):
    from PASTASlicerLib.model_registry import pasta_home

    assert cache.root == tmp_path / "home" / "models"
    monkeypatch.delenv("PASTA_HOME")
    assert pasta_home() == Path.home() / ".pasta"


def test_import_a_pasta_model_folder_verify_and_delete(cache):
    model = cache.import_model(TINY)
    assert model.id == "tiny_pasta_organs" and model.format == "pasta-model"
    assert model.path == cache.root / "tiny_pasta_organs"
    assert model.files["model.safetensors"] == sha(TINY / "model.safetensors")
    assert [m.id for m in cache.installed()] == ["tiny_pasta_organs"]
    assert cache.verify("tiny_pasta_organs").sha256 == model.sha256
    with pytest.raises(PastaInputError, match="already installed"):
        cache.import_model(TINY)
    # A changed file is caught.
    weights = model.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(PastaInputError, match="corrupt"):
        cache.verify("tiny_pasta_organs")
    cache.delete("tiny_pasta_organs")
    assert cache.installed() == [] and not model.path.exists()
    with pytest.raises(PastaInputError, match="not installed"):
        cache.delete("../home")


def test_a_model_folder_whose_weights_do_not_match_its_card_is_refused(cache, tmp_path):
    folder = shutil.copytree(TINY, tmp_path / "broken")
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(PastaInputError, match="does not match the SHA256 in its model card"):
        cache.import_model(folder)
    assert cache.installed() == [] and not any(cache.root.iterdir())  # no partial left behind


def test_import_a_checkpoint_file_and_a_zipped_nnunet_folder(cache, tmp_path):
    checkpoint = tmp_path / "PASTA_final.pth"
    checkpoint.write_bytes(b"weights")
    with pytest.raises(PastaInputError, match="holds weights only.*answer Yes when asked"):
        cache.import_model(checkpoint)  # preprocessing is never guessed: the importer must choose
    assert not (cache.root / "PASTA_final").exists()
    model = cache.import_model(checkpoint, expected_sha256=sha(checkpoint), pasta_defaults=True)
    assert model.format == "checkpoint" and model.path == cache.root / "PASTA_final" / "PASTA_final.pth"
    assert model.sha256 == sha(checkpoint) and model.pasta_defaults
    assert cache.get("PASTA_final").pasta_defaults  # kept with the model

    folder = nnunet_folder(tmp_path / "src")
    archive = tmp_path / "liver.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.rglob("*"):
            zf.write(file, file.relative_to(folder.parent).as_posix())
    model = cache.import_model(archive)
    assert model.id == "liver" and model.format == "nnunet" and not model.pasta_defaults
    assert model.path == cache.root / "liver" / folder.name
    assert (model.path / "fold_0" / "checkpoint_final.pth").is_file()
    with pytest.raises(PastaInputError, match="expected SHA256"):
        cache.import_model(archive, "liver2", expected_sha256="0" * 64)


def test_a_lone_fold_checkpoint_points_to_its_results_folder(cache, tmp_path):
    folder = nnunet_folder(tmp_path / "src")
    with pytest.raises(PastaInputError, match="fold 0 of the nnU-Net results folder.*Import the results folder"):
        cache.import_model(folder / "fold_0" / "checkpoint_final.pth", pasta_defaults=True)
    assert cache.import_model(folder).format == "nnunet"


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "model/../../evil.txt", "C:/evil.txt"])
def test_zip_members_escaping_their_folder_are_refused(cache, tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model/model.pth", b"weights")
        zf.writestr(member, b"owned")
    with pytest.raises(PastaInputError, match="unsafe entry|escapes"):
        cache.import_model(archive)
    assert not (tmp_path / "evil.txt").exists() and not (cache.root.parent / "evil.txt").exists()
    assert cache.installed() == []


def test_zip_symlinks_are_refused(cache, tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("model/link.pth")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(PastaInputError, match="unsafe entry"):
        cache.import_model(archive)


def registry_entry(url: str, digest: str, **kwargs):
    from PASTASlicerLib.model_registry import RegistryEntry

    return RegistryEntry(id="tiny", title="Tiny test model", version="1", format="pasta-model", description="",
                         license="MIT", download="auto", url=url, sha256=digest, **kwargs)


def test_download_needs_consent_and_checks_sha256(cache, tmp_path):
    from PASTASlicerLib.model_registry import ConsentRequired

    archive = Path(shutil.make_archive(str(tmp_path / "tiny"), "zip", TINY.parent, TINY.name))
    entry = registry_entry(archive.as_uri(), sha(archive))
    with pytest.raises(ConsentRequired):
        cache.download(entry, consent=False)
    assert not cache.root.exists() or not any(cache.root.iterdir())

    seen = []
    model = cache.download(entry, consent=True, progress=lambda done, total: seen.append((done, total)))
    assert model.id == "tiny" and model.registry_id == "tiny" and model.format == "pasta-model"
    assert seen and seen[-1][0] == archive.stat().st_size
    assert sorted(p.name for p in cache.root.iterdir()) == ["tiny"]  # no .partial left

    wrong = registry_entry(archive.as_uri(), "0" * 64)
    with pytest.raises(PastaInputError, match="corrupt"):
        cache.download(wrong, consent=True, overwrite=True)
    assert sorted(p.name for p in cache.root.iterdir()) == ["tiny"]


def test_manual_entries_point_to_their_page(cache):
    from PASTASlicerLib.model_registry import load_registry

    foundation = next(e for e in load_registry() if e.id == "pasta-foundation")
    with pytest.raises(PastaInputError, match="drive.google.com"):
        cache.download(foundation, consent=True)


def test_download_button_says_why_it_is_disabled_and_what_consent_covers(cache, tmp_path):
    """The GUI's offer per registry entry: only verifiable downloads, and a reason otherwise."""
    from PASTASlicerLib.model_download import consent_text, download_offer
    from PASTASlicerLib.model_registry import RegistryEntry, load_registry

    for entry in [e for e in load_registry() if e.download == "manual"]:  # disabled, pointing to their page
        offer = download_offer(entry, cache)
        assert not offer.allowed and entry.page in offer.reason and "import" in offer.reason
    no_sha = RegistryEntry(id="x", title="X model", version="1", format="checkpoint", description="",
                           license="MIT", download="manual", url="https://example.org/x.pth")
    assert not download_offer(no_sha, cache).allowed
    archive = Path(shutil.make_archive(str(tmp_path / "tiny"), "zip", TINY.parent, TINY.name))
    entry = registry_entry(archive.as_uri(), sha(archive), size_bytes=archive.stat().st_size)
    offer = download_offer(entry, cache)
    assert offer.allowed and "SHA256" in offer.reason
    text = consent_text(entry, cache)
    assert entry.sha256 in text and "MIT" in text and str(cache.root / "tiny") in text
    cache.download(entry, consent=True)
    offer = download_offer(entry, cache)
    assert not offer.allowed and "already installed" in offer.reason


def test_a_cancelled_download_leaves_nothing_behind(cache, tmp_path):
    from PASTASlicerLib.model_download import DownloadCancelled, progress_reporter

    archive = Path(shutil.make_archive(str(tmp_path / "tiny"), "zip", TINY.parent, TINY.name))
    entry = registry_entry(archive.as_uri(), sha(archive))
    with pytest.raises(DownloadCancelled):
        cache.download(entry, consent=True, progress=progress_reporter(lambda done, total: False))
    assert cache.installed() == [] and not any(cache.root.iterdir())
