"""The model panel (PASTAWidgets/model_panel.py, download_dialog.py): the Download button, and the
bundled default model chosen on a fresh install.

As in test_report_panel_flow.py, the panel drives stand-in widgets built from PASTA.ui because
Slicer's PythonQt cannot be installed here. The parameter node is a real MRML scripted-module
node, the cache is a real folder, and the download is a real file:// transfer checked by SHA256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from PASTALib.errors import PastaInputError

from conftest import DATA, REPO
from slicer_scene import flip_last_byte, load_ct
from ui_stand_ins import ui_from_the_ui_file

#: Every test here starts from an install without the bundled model (conftest.no_bundled_model).
pytestmark = pytest.mark.usefixtures("no_bundled_model")


class ProgressDialog:
    """What download_dialog.py uses of Slicer's progress dialog; records what the user saw."""

    def __init__(self, **kwargs) -> None:
        self.value, self.maximum, self.labelText, self.wasCanceled = 0, 100, "", False
        self.values: list = []
        self.closed = False

    def __setattr__(self, name, value) -> None:
        if name == "value" and "values" in self.__dict__:
            self.values.append(value)
        object.__setattr__(self, name, value)

    def setCancelButtonText(self, text: str) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def make_panel(tmp_path, monkeypatch, mrml_scene):
    """Builds a model panel on an empty cache with a registry of one verifiable (file://) model,
    once the test has put the bundled model in place (or not: ``no_bundled_model``)."""
    import slicer

    from PASTASlicerLib import model_registry

    archive = Path(shutil.make_archive(str(tmp_path / "tiny"), "zip", DATA / "tiny_pasta_organs" / "..",
                                       "tiny_pasta_organs"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    registry = json.loads((REPO / "PASTA" / "Resources" / "Models.json").read_text())
    registry["models"].append({"id": "tiny", "title": "Tiny test model", "version": "1", "format": "pasta-model",
                               "description": "For tests.", "license": "MIT", "download": "auto",
                               "url": archive.as_uri(), "sha256": digest, "size_bytes": archive.stat().st_size})
    (tmp_path / "Models.json").write_text(json.dumps(registry))
    monkeypatch.setattr(model_registry, "default_registry_path", lambda: tmp_path / "Models.json")
    monkeypatch.setenv("PASTA_HOME", str(tmp_path / "home"))

    seen = {"questions": [], "answer": False, "dialogs": []}
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    monkeypatch.setitem(sys.modules, "slicer.i18n", i18n)
    monkeypatch.setitem(sys.modules, "qt", types.ModuleType("qt"))  # only the file dialogs use it
    monkeypatch.setattr(slicer, "i18n", i18n, raising=False)
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(testingEnabled=lambda: True, processEvents=lambda: None),
                        raising=False)
    monkeypatch.setattr(slicer.util, "showStatusMessage", lambda *args: None)
    monkeypatch.setattr(slicer.util, "mainWindow", lambda: None)

    def confirm(text, **kwargs):
        seen["questions"].append(text)
        return seen["answer"]

    def progress_dialog(**kwargs):
        seen["dialogs"].append(ProgressDialog(**kwargs))
        return seen["dialogs"][-1]

    monkeypatch.setattr(slicer.util, "confirmYesNoDisplay", confirm)
    monkeypatch.setattr(slicer.util, "createProgressDialog", progress_dialog)
    monkeypatch.syspath_prepend(str(REPO / "PASTA"))
    for name in [n for n in sys.modules if n.startswith("PASTAWidgets")]:
        monkeypatch.delitem(sys.modules, name)
    from PASTAWidgets.model_panel import MODEL_ID_PARAMETER, ModelPanel

    def build():
        node = mrml_scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "PASTA")
        parameters = types.SimpleNamespace(parameterNode=node)
        ui = ui_from_the_ui_file()
        changes = []
        model_panel = ModelPanel(ui, lambda: parameters, onChanged=lambda: changes.append(1))
        model_panel.setup()
        return model_panel, ui, node, seen, MODEL_ID_PARAMETER

    return build


@pytest.fixture
def panel(make_panel):
    """The model panel of an install whose bundled model is missing."""
    return make_panel()


def choose(ui, entry_id: str) -> None:
    ui.registryComboBox.currentIndex = ui.registryComboBox.findData(entry_id)


def test_manual_entries_disable_download_and_say_why(panel):
    _, ui, _, _, _ = panel
    assert ui.modelComboBox.items == [] and "No model installed" in ui.modelInfoLabel.text
    choose(ui, "pasta-foundation")
    assert not ui.downloadModelButton.enabled
    assert "drive.google.com" in ui.registryInfoLabel.text and "import" in ui.registryInfoLabel.text
    choose(ui, "tiny")
    assert ui.downloadModelButton.enabled and "SHA256" in ui.downloadModelButton.toolTip


def test_download_asks_first_shows_progress_and_selects_the_model(panel):
    model_panel, ui, node, seen, model_id_parameter = panel
    choose(ui, "tiny")
    ui.downloadModelButton.emit("clicked(bool)")  # the user says No
    assert len(seen["questions"]) == 1 and "SHA256" in seen["questions"][0]
    assert not seen["dialogs"] and ui.modelComboBox.items == []

    seen["answer"] = True
    ui.downloadModelButton.emit("clicked(bool)")
    dialog = seen["dialogs"][-1]
    assert dialog.values and dialog.values[-1] == 100 and dialog.closed
    assert [data for _, data in ui.modelComboBox.items] == ["tiny"] and ui.modelComboBox.currentData == "tiny"
    assert node.GetParameter(model_id_parameter) == "tiny"
    assert ui.deleteModelButton.enabled
    assert not ui.downloadModelButton.enabled and "already installed" in ui.registryInfoLabel.text
    assert model_panel.verifiedModel().id == "tiny"  # its files match their SHA256


def test_cancelling_the_download_installs_nothing(panel):
    _, ui, _, seen, _ = panel
    seen["answer"] = True
    choose(ui, "tiny")
    original = ProgressDialog.__init__

    def cancelled(self, **kwargs):
        original(self, **kwargs)
        self.wasCanceled = True

    ProgressDialog.__init__ = cancelled
    try:
        ui.downloadModelButton.emit("clicked(bool)")
    finally:
        ProgressDialog.__init__ = original
    assert seen["dialogs"][-1].closed and ui.modelComboBox.items == []
    assert ui.downloadModelButton.enabled


def test_a_fresh_install_selects_the_bundled_model_and_apply_prepares_a_run_with_it(
        bundled, make_panel, mrml_scene, tmp_path):
    """No model imported, no choice recorded: the bundled model is chosen and described, and the run that
    Apply prepares uses it."""
    from PASTALib.analysis.options import AnalysisOptions
    from PASTASlicerLib.analysis import prepare_analysis

    model_panel, ui, node, _, model_id_parameter = make_panel()
    assert ui.modelComboBox.items == [("pasta-default (bundled)", "pasta-default")]
    assert ui.modelComboBox.currentData == "pasta-default" and node.GetParameter(model_id_parameter) == "pasta-default"
    info = ui.modelInfoLabel.text
    assert "Ships with PASTA" in info and "tiny-pasta-organs (test fixture)" in info
    assert "2 classes (1 lesion type)" in info and (bundled / "MODEL_CARD.md").as_uri() in info
    assert not ui.deleteModelButton.enabled and "cannot be deleted" in ui.deleteModelButton.toolTip
    choose(ui, "pasta-default")
    assert not ui.downloadModelButton.enabled and "Ships with PASTA" in ui.registryInfoLabel.text

    model = model_panel.verifiedModel()  # what Apply does before it starts the process
    job = prepare_analysis(load_ct(mrml_scene), AnalysisOptions(model=str(model.path), device="cpu"),
                           tmp_path / "work", REPO / "PASTA", python=sys.executable)
    assert job.command[job.command.index("--model") + 1] == str(bundled)
    assert job.class_map == {2: 5}  # kidney class -> kidney tumour, from the bundled card
    by_name = prepare_analysis(load_ct(mrml_scene), AnalysisOptions(model="default", device="cpu"),
                               tmp_path / "work2", REPO / "PASTA", python=sys.executable)  # PASTALogic().analyze(node, "default") from the console
    assert by_name.command[by_name.command.index("--model") + 1] == str(bundled)


def test_a_recorded_choice_wins_and_deleting_it_falls_back_to_the_default(bundled, make_panel):
    from PASTASlicerLib.model_registry import ModelCache

    ModelCache().import_model(DATA / "tiny_pasta_organs")
    model_panel, ui, node, seen, model_id_parameter = make_panel()
    assert ui.modelComboBox.currentData == "pasta-default"
    model_panel.select("tiny_pasta_organs")  # the user's choice is recorded in the scene
    assert node.GetParameter(model_id_parameter) == "tiny_pasta_organs" and ui.deleteModelButton.enabled
    model_panel.select("pasta-default")
    node.SetParameter(model_id_parameter, "tiny_pasta_organs")  # a scene saved with the imported model
    model_panel.restoreSelection()
    assert ui.modelComboBox.currentData == "tiny_pasta_organs"
    node.SetParameter(model_id_parameter, "")  # a new scene: no choice yet
    model_panel.restoreSelection()
    assert ui.modelComboBox.currentData == "pasta-default" and node.GetParameter(model_id_parameter) == "pasta-default"

    model_panel.select("tiny_pasta_organs")
    seen["answer"] = True
    ui.deleteModelButton.emit("clicked(bool)")
    assert [data for _, data in ui.modelComboBox.items] == ["pasta-default"]
    assert ui.modelComboBox.currentData == "pasta-default" and node.GetParameter(model_id_parameter) == "pasta-default"


def test_a_tampered_bundled_model_stops_apply_in_plain_words(bundled, make_panel):
    model_panel, _, _, _, _ = make_panel()
    flip_last_byte(bundled / "model.safetensors")
    with pytest.raises(PastaInputError, match="'pasta-default' is damaged: model.safetensors does not match"):
        model_panel.verifiedModel()


def test_without_its_bundled_model_the_panel_says_why(panel, no_bundled_model):
    _, ui, _, _, _ = panel
    assert ui.modelComboBox.items == [] and not ui.deleteModelButton.enabled
    assert "not available" in ui.modelInfoLabel.text and str(no_bundled_model) in ui.modelInfoLabel.text
    choose(ui, "pasta-default")
    assert not ui.downloadModelButton.enabled
    assert "Not available" in ui.registryInfoLabel.text and "does not exist" in ui.downloadModelButton.toolTip


@pytest.mark.parametrize("answer", [False, True])
def test_importing_bare_weights_asks_about_preprocessing_and_keeps_the_answer(make_panel, tmp_path, monkeypatch,
                                                                              answer):
    """A bare weights file is never run with guessed preprocessing: the import asks, and only a Yes
    installs it, marked to run with PASTA's pretraining preprocessing (--pasta-defaults)."""
    import slicer
    import torch
    from safetensors.torch import load_file

    from PASTASlicerLib.model_registry import ModelCache

    import contextlib

    errors = []

    @contextlib.contextmanager
    def error_display(message, **kwargs):  # Slicer's: the message and the exception's text in a dialog
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - what the real one catches
            errors.append(f"{message} {exc}")

    monkeypatch.setattr(slicer.util, "tryWithErrorDisplay", error_display)
    weights = tmp_path / "PASTA_final.pth"
    torch.save(load_file(str(DATA / "tiny_pasta_organs" / "model.safetensors")), weights)
    model_panel, ui, node, seen, _ = make_panel()
    seen["answer"] = answer
    model_panel._importModel(str(weights))
    assert len(seen["questions"]) == 1 and "holds weights only" in seen["questions"][0]
    installed = {m.id: m for m in ModelCache().installed()}
    if not answer:
        assert "PASTA_final" not in installed and errors and "holds weights only" in errors[-1]
        return
    assert installed["PASTA_final"].pasta_defaults  # the run panel passes it on as --pasta-defaults
