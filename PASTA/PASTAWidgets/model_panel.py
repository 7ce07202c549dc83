"""The Model section: installed models (choose, import, open folder, delete) and the registry list
with its Download button. The model cache and registry logic are in ``PASTASlicerLib``.

The model that ships with PASTA is listed first and chosen when the parameter node records no
choice, so Apply works on a fresh install; it cannot be deleted (it belongs to the install)."""

from __future__ import annotations

import html
from typing import Callable, Optional

import qt
import slicer
from slicer.i18n import tr as _

#: Raw parameter (not a GUI-bound field: the model list changes at run time) holding the model id.
MODEL_ID_PARAMETER = "ModelId"


def models_help_html() -> str:
    """What to do without an installed model: the registry's models and where to get them, and why
    the bundled model (which needs no import) cannot be used."""
    from PASTASlicerLib.model_registry import ModelCache, load_registry

    problems = {status.entry.id: status.problem for status in ModelCache().bundled()}
    items = []
    for entry in load_registry():
        link = entry.page or entry.url
        title = html.escape(entry.title)
        if problems.get(entry.id):
            items.append(f"<li>{title}: " + html.escape(_("not available. {problem}").format(
                problem=problems[entry.id])) + "</li>")
        else:
            items.append(f'<li><a href="{html.escape(link)}">{title}</a>: {html.escape(entry.description)}</li>'
                         if link else f"<li>{title}</li>")
    return (_("No model installed yet. Get one of these, then import it (file, folder or zip):")
            + "<ul>" + "".join(items) + "</ul>")


def model_info_html(model) -> str:
    """The model list's caption: model card summary (name, classes, MODEL_CARD.md) and SHA256."""
    from PASTALib.model import card as model_card

    parts = []
    if model.bundled:
        parts.append(html.escape(_("Ships with PASTA")))
    card = model_card.summary(model.path) if model.format == "pasta-model" else None
    if card is not None:
        name = f"<b>{html.escape(card.name)}</b>" + (f" {html.escape(card.version)}" if card.version else "")
        parts.append(name)
        typed = (_("1 lesion type") if card.lesion_types == 1
                 else _("{count} lesion types").format(count=card.lesion_types))
        parts.append(html.escape(_("{classes} classes ({typed})").format(classes=card.classes, typed=typed)))
        if card.page is not None:
            link = f'<a href="{html.escape(card.page.as_uri())}">{html.escape(card.page.name)}</a>'
            parts.append(html.escape(_("see")) + " " + link)
    parts.append(html.escape(f"{model.format} · SHA256 {model.sha256[:16]}…"))
    return " · ".join(parts)


class ModelPanel:
    """Keeps the model list, the registry list and their buttons in step with the model cache."""

    def __init__(self, ui, parameterNode: Callable[[], object], onChanged: Callable[[], None]) -> None:
        self.ui = ui
        self._parameterNode = parameterNode
        self._onChanged = onChanged
        self._verified: set[str] = set()  # model ids whose SHA256 was checked in this session

    def setup(self) -> None:
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.importModelFileButton.connect("clicked(bool)", self.onImportModelFile)
        self.ui.importModelFolderButton.connect("clicked(bool)", self.onImportModelFolder)
        self.ui.openModelsFolderButton.connect("clicked(bool)", self.onOpenModelsFolder)
        self.ui.deleteModelButton.connect("clicked(bool)", self.onDeleteModel)
        self.ui.registryComboBox.connect("currentIndexChanged(int)", self.onRegistryEntryChanged)
        self.ui.downloadModelButton.connect("clicked(bool)", self.onDownload)
        self.refreshRegistry()
        self.refresh()

    # ------------------------------------------------------------------ installed models
    def refresh(self, selectId: Optional[str] = None) -> None:
        """Fill the model list from the cache; keep the remembered model, else choose the default."""
        from PASTASlicerLib.model_registry import ModelCache

        remembered = self._rememberedId()  # read first: filling the list may change the selection
        self.ui.modelComboBox.blockSignals(True)
        self.ui.modelComboBox.clear()
        for model in ModelCache().installed():
            kind = _("bundled") if model.bundled else model.format
            self.ui.modelComboBox.addItem(f"{model.id} ({kind})", model.id)
        self.ui.modelComboBox.blockSignals(False)
        for modelId in (selectId, remembered, self._defaultId()):
            if modelId and self.ui.modelComboBox.findData(modelId) >= 0:
                self.select(modelId)
                break
        self.onModelChanged()
        self.onRegistryEntryChanged()

    def select(self, modelId: Optional[str]) -> None:
        index = self.ui.modelComboBox.findData(modelId) if modelId else -1
        if index >= 0:
            self.ui.modelComboBox.currentIndex = index

    def restoreSelection(self) -> None:
        """Select the model the parameter node remembers (after a scene load); with no choice
        recorded yet, select and record the bundled default model."""
        node = self._parameterNode()
        if node is None:
            return
        remembered = self._rememberedId()
        if remembered:
            self.select(remembered)
            return
        self.select(self._defaultId())
        self.onModelChanged()

    def _rememberedId(self) -> Optional[str]:
        node = self._parameterNode()
        return (node.parameterNode.GetParameter(MODEL_ID_PARAMETER) or None) if node is not None else None

    @staticmethod
    def _defaultId() -> Optional[str]:
        from PASTASlicerLib.model_registry import default_model_id

        return default_model_id()

    def selectedModel(self):
        from PASTASlicerLib.model_registry import ModelCache

        modelId = self.ui.modelComboBox.currentData
        if not modelId:
            return None
        try:
            return ModelCache().get(modelId)
        except Exception:
            return None

    def verifiedModel(self):
        """The selected model, its files re-hashed once per session (raises when one changed)."""
        from PASTASlicerLib.model_registry import ModelCache

        model = self.selectedModel()
        if model is not None and model.id not in self._verified:
            slicer.util.showStatusMessage(_("Checking the model's SHA256…"))
            slicer.app.processEvents()
            ModelCache().verify(model.id)
            self._verified.add(model.id)
        return model

    def onModelChanged(self, index=None) -> None:
        model = self.selectedModel()
        if model is None:
            self.ui.modelInfoLabel.text = models_help_html()
            self.ui.modelInfoLabel.toolTip = ""
        else:
            self.ui.modelInfoLabel.text = model_info_html(model)
            self.ui.modelInfoLabel.toolTip = f"{model.path}\nSHA256 {model.sha256}\nfrom {model.source}"
            node = self._parameterNode()
            if node is not None:
                node.parameterNode.SetParameter(MODEL_ID_PARAMETER, model.id)
        self.ui.deleteModelButton.enabled = model is not None and not model.bundled
        self.ui.deleteModelButton.toolTip = (
            _("This model ships with PASTA and cannot be deleted.") if model is not None and model.bundled
            else _("Delete the selected model from the cache."))
        self._onChanged()

    def _importModel(self, path: str) -> None:
        if not path:
            return
        from pathlib import Path

        from PASTALib.model.bare_weights import is_bare_weights

        defaults = False
        if is_bare_weights(Path(path)) and Path(path).suffix.lower() in (".pth", ".pt", ".safetensors"):
            defaults = slicer.util.confirmYesNoDisplay(_(
                "{name} holds weights only: the spacing and intensity normalisation it was trained with do not "
                "come with it, and a guess gives wrong answers without warning.\n\nRun it with PASTA's "
                "pretraining preprocessing (1 mm spacing, SLF intensity map)? Answer Yes only for "
                "PASTA_final.pth or a model trained with that preprocessing; otherwise import its nnU-Net "
                "results folder or PASTA model folder.").format(name=Path(path).name))
        with slicer.util.tryWithErrorDisplay(_("Importing the model failed."), waitCursor=True):
            from PASTASlicerLib.model_registry import ModelCache

            model = ModelCache().import_model(path, pasta_defaults=defaults)
            self.refresh(selectId=model.id)
            slicer.util.showStatusMessage(_("Imported model {id} (SHA256 {sha})").format(
                id=model.id, sha=model.sha256[:16]), 5000)

    def onImportModelFile(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(), _("Import a PASTA model"), "",
            _("Models (*.zip *.pth *.pt *.safetensors);;All files (*)"))
        self._importModel(path)

    def onImportModelFolder(self) -> None:
        self._importModel(qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Import a model folder")))

    def onOpenModelsFolder(self) -> None:
        from PASTASlicerLib.model_registry import ModelCache

        root = ModelCache().root
        root.mkdir(parents=True, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(root)))

    def onDeleteModel(self) -> None:
        model = self.selectedModel()
        if model is None or not slicer.util.confirmYesNoDisplay(
                _("Delete model {id} from {path}?").format(id=model.id, path=model.path)):
            return
        with slicer.util.tryWithErrorDisplay(_("Deleting the model failed.")):
            from PASTASlicerLib.model_registry import ModelCache

            ModelCache().delete(model.id)
            self._verified.discard(model.id)
            self.refresh()

    # ------------------------------------------------------------------ registry
    def refreshRegistry(self) -> None:
        from PASTASlicerLib.model_registry import load_registry

        self.ui.registryComboBox.blockSignals(True)
        self.ui.registryComboBox.clear()
        for entry in load_registry():
            if not entry.deprecated:
                self.ui.registryComboBox.addItem(entry.title, entry.id)
        self.ui.registryComboBox.blockSignals(False)
        self.onRegistryEntryChanged()

    def _registryEntry(self):
        from PASTASlicerLib.model_registry import load_registry

        entryId = self.ui.registryComboBox.currentData
        return next((e for e in load_registry() if e.id == entryId), None) if entryId else None

    def onRegistryEntryChanged(self, index=None) -> None:
        """Enable Download only for verifiable entries, and always say why it is disabled."""
        from PASTASlicerLib.model_download import download_offer
        from PASTASlicerLib.model_registry import ModelCache, bundled_status

        entry = self._registryEntry()
        if entry is not None and entry.download == "bundled":
            status = bundled_status(entry)
            allowed, reason = False, (
                _("Ships with PASTA (in {folder}); choose it in the model list.").format(folder=status.folder)
                if status.model is not None else _("Not available: {problem}").format(problem=status.problem))
        else:
            offer = download_offer(entry, ModelCache())
            allowed, reason = offer.allowed, offer.reason
        self.ui.downloadModelButton.enabled = allowed
        self.ui.downloadModelButton.toolTip = reason
        description = html.escape(entry.description) + "<br>" if entry is not None else ""
        self.ui.registryInfoLabel.text = description + html.escape(reason)

    def onDownload(self) -> None:
        from .download_dialog import downloadWithConsent

        entry = self._registryEntry()
        if entry is None:
            return
        model = downloadWithConsent(entry)
        if model is not None:
            self.refresh(selectId=model.id)
