"""The lesion drop-downs: type (greyed out without its organ), size and attributes with "random".

Their items depend on the chosen type, so they are filled here rather than bound by
``connectGui``; the choices are kept as raw parameters of the parameter node (saved with the
scene). The rules (which types, sizes and values) are :mod:`PASTASynthSlicerLib.choices`.
"""

from __future__ import annotations

from typing import Callable, Optional

from slicer.i18n import tr as _

#: Raw parameters (not GUI-bound fields: the drop-downs' items depend on the lesion type).
TYPE_PARAMETER, SIZE_PARAMETER, ATTRIBUTE_PARAMETER = "LesionType", "LesionSize", "LesionAttribute."


class LesionOptions:
    """Fills, reads and stores the lesion type, size and attribute drop-downs."""

    def __init__(self, ui, parameterNode: Callable[[], object]) -> None:
        self.ui = ui
        self._parameterNode = parameterNode
        self.updating = False  #: True while the drop-downs are filled from code (not user changes)

    def attributeComboBoxes(self) -> dict:
        return {"shape": self.ui.shapeComboBox, "density": self.ui.densityComboBox,
                "heterogeneity": self.ui.heterogeneityComboBox, "margin": self.ui.marginComboBox,
                "relation": self.ui.relationComboBox}

    def setup(self) -> None:
        from PASTASynthSlicerLib.choices import lesion_types

        self.ui.lesionTypeComboBox.clear()
        for key, name in lesion_types():
            self.ui.lesionTypeComboBox.addItem(name, key)

    def lesionType(self) -> Optional[str]:
        return self.ui.lesionTypeComboBox.currentData or None

    def typeAvailable(self) -> bool:
        index = self.ui.lesionTypeComboBox.currentIndex
        return index >= 0 and self.ui.lesionTypeComboBox.model().item(index).isEnabled()

    def sizeText(self) -> str:
        return self.ui.sizeComboBox.currentText

    def chosenAttributes(self) -> dict:
        return {name: comboBox.currentText for name, comboBox in self.attributeComboBoxes().items()}

    def organsChanged(self, organSegmentation) -> None:
        """Grey out the types whose organ the segmentation lacks; keep a valid type selected."""
        from PASTASynthSlicerLib.choices import available_types, organ_names

        p = self._parameterNode()
        if p is None:
            return
        available = available_types(organ_names(organSegmentation))
        model = self.ui.lesionTypeComboBox.model()
        for index in range(self.ui.lesionTypeComboBox.count):
            ok = available[self.ui.lesionTypeComboBox.itemData(index)]
            model.item(index).setEnabled(ok)
            model.item(index).setToolTip("" if ok else _("The organ segmentation has no host organ of this type"))
        stored = p.parameterNode.GetParameter(TYPE_PARAMETER)
        wanted = stored if available.get(stored) else next((k for k, ok in available.items() if ok), None)
        self.updating = True
        try:
            self.ui.lesionTypeComboBox.currentIndex = self.ui.lesionTypeComboBox.findData(wanted) if wanted else -1
        finally:
            self.updating = False
        self.fillOptions()

    def fillOptions(self) -> None:
        """Sizes and attribute values the chosen type allows, each with "random"; restore stored choices."""
        from PASTALib.errors import PastaInputError
        from PASTASynthSlicerLib.choices import attribute_options, parse_size, size_options

        key, p = self.lesionType(), self._parameterNode()
        combos = {"size": self.ui.sizeComboBox, **self.attributeComboBoxes()}
        self.updating = True
        try:
            for name, comboBox in combos.items():
                comboBox.clear()
                if not key:
                    continue
                comboBox.addItems(size_options(key) if name == "size" else attribute_options(key, name))
                stored = p.parameterNode.GetParameter(SIZE_PARAMETER if name == "size" else ATTRIBUTE_PARAMETER + name) \
                    if p is not None else ""
                index = comboBox.findText(stored) if stored else 0
                comboBox.currentIndex = max(0, index)  # a value the type does not allow: "random"
                if index < 0 and name == "size":
                    try:
                        parse_size(stored, key)
                        comboBox.setEditText(stored)  # a typed size that fits this type too
                    except PastaInputError:
                        pass
        finally:
            self.updating = False

    def store(self) -> None:
        """Keep the current choices in the parameter node (saved with the scene)."""
        p = self._parameterNode()
        if p is None or self.updating:
            return
        p.parameterNode.SetParameter(TYPE_PARAMETER, self.lesionType() or "")
        p.parameterNode.SetParameter(SIZE_PARAMETER, self.sizeText())
        for name, value in self.chosenAttributes().items():
            p.parameterNode.SetParameter(ATTRIBUTE_PARAMETER + name, value)

    def showRequest(self, request) -> None:
        """Show what a placed lesion was asked for: its type, size and attributes."""
        self.updating = True
        try:
            self.ui.lesionTypeComboBox.currentIndex = self.ui.lesionTypeComboBox.findData(request.lesion_type)
        finally:
            self.updating = False
        self.fillOptions()
        self.updating = True
        try:
            size = request.size_mm
            self.ui.sizeComboBox.setEditText("random" if size is None else f"{size[0]:g}")
            for name, comboBox in self.attributeComboBoxes().items():
                comboBox.currentIndex = max(0, comboBox.findText(request.attributes.get(name, "random")))
        finally:
            self.updating = False
