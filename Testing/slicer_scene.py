"""Helpers for tests on a real slicer-core scene: the sample CT as a node, the logics Slicer attaches,
the tiny model standing in for a kidney-tumour model. Fixtures built on them live in conftest.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import DATA, REPO

SAMPLE_CT = REPO / "PASTA" / "PASTALib" / "sample_data" / "abdomen_native_3mm_ct.nii.gz"


def kidney_tumor_model(folder: Path) -> Path:
    """The tiny organ network whose kidney class plays a kidney-tumour class."""
    model = shutil.copytree(DATA / "tiny_pasta_organs", folder)
    card = json.loads((model / "model.json").read_text())
    card["classes"][2]["lesion_type"] = "kidney_tumor"
    (model / "model.json").write_text(json.dumps(card))
    return model


def attach_logics(scene) -> list:
    """The logics Slicer attaches to its scene that these nodes need (kept alive by the caller)."""
    from slicer import vtkMRMLSelectionNode, vtkSlicerMarkupsLogic, vtkSlicerSegmentationsModuleLogic

    selection = vtkMRMLSelectionNode()  # Slicer's application logic adds this singleton
    selection.SetSingletonTag("Singleton")
    scene.AddNode(selection)
    logics = [vtkSlicerSegmentationsModuleLogic(), vtkSlicerMarkupsLogic()]
    for logic in logics:
        logic.SetMRMLScene(scene)
    return logics


def load_node(scene, path: Path, node_class: str, name: str):
    """A volume file read into a new node of ``node_class`` through Slicer's archetype storage node."""
    from slicer import vtkMRMLVolumeArchetypeStorageNode

    node = scene.AddNewNodeByClass(node_class, name)
    storage = vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def load_ct(scene):
    return load_node(scene, SAMPLE_CT, "vtkMRMLScalarVolumeNode", "Abdomen CT")


def put_in_study(scene, volume):
    from slicer import vtkMRMLSubjectHierarchyNode

    sh = vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient 1")
    study = sh.CreateStudyItem(patient, "CT study")
    # Slicer's (Qt) subject hierarchy plugins would have created the volume's item; do it here.
    sh.CreateItem(study, volume)
    return sh, study


def node_names(scene) -> list[str]:
    return sorted(scene.GetNthNode(i).GetName() or "" for i in range(scene.GetNumberOfNodes()))


def flip_last_byte(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))


def terminology_entry(term) -> str:
    """A Slicer terminology entry for an organ term, as the TotalSegmentator extension writes it:
    context~category~type~modifier~anatomic context~region~region modifier."""
    def coded(value: str, meaning: str) -> str:
        return f"SCT^{value}^{meaning}" if value else "^^"

    return "~".join(["Segmentation category and type - DICOM master list", "SCT^123037004^Anatomical Structure",
                     coded(term.type_code, term.type_meaning), coded(term.modifier_code, term.modifier_meaning),
                     "Anatomic codes - DICOM master list", coded(term.region_code, term.region_meaning),
                     coded(term.region_modifier_code, term.region_modifier_meaning)])


def load_organs_segmentation(scene, extension_style: bool = False):
    """The sample's TotalSegmentator mask as a segmentation. Segment names are TotalSegmentator-style
    ("Kidney left"), or with ``extension_style`` named and tagged as the TotalSegmentator extension does
    it: the display name from the codes' meanings ("Left Kidney") and a SNOMED CT terminology entry."""
    from slicer import vtkMRMLVolumeArchetypeStorageNode, vtkSlicerSegmentationsModuleLogic

    from PASTALib.io.sample_data import load_label_names
    from PASTALib.lesions.organ_terms import organ_terms

    names = load_label_names(REPO / "PASTA" / "PASTALib" / "sample_data" / "totalsegmentator_v2_classes.json")
    labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "organs labelmap")
    storage = vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(REPO / "PASTA" / "PASTALib" / "sample_data" / "abdomen_native_3mm_organs.nii.gz"))
    assert storage.ReadData(labelmap_node)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "TotalSegmentator")
    assert vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap_node, segmentation)
    seg = segmentation.GetSegmentation()
    for i in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(i)
        value = int(segment.GetName().split("_")[-1])  # slicer-core names them Label_<value>
        if not extension_style:
            segment.SetName(names[value].replace("_", " ").capitalize())  # e.g. "Kidney left"
            continue
        term = organ_terms()[names[value]]
        segment.SetName(f"{term.modifier_meaning} {term.type_meaning}".strip())
        segment.SetTag("TerminologyEntry", terminology_entry(term))
    scene.RemoveNode(labelmap_node)
    return segmentation
