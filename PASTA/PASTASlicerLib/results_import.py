"""Put the output folder of ``pasta analyze`` into the MRML scene.

One run gives: a *new* segmentation node (one segment per finding, named "Kidney tumor 1", with
the lesion type's colour and SNOMED CT terminology, geometry of the input volume, placed in the
input's study), a findings table node, one markups ROI and one RECIST long-axis line per finding,
and the structured report in a text node (:mod:`.report_store`). Each segment holds exactly its
finding's voxels from ``findings.nii.gz`` (checked against the report's voxel counts), so nothing
is reconstructed, not even the parts of a region split between organs. Nothing existing is modified:
if anything fails, every node created so far is removed again, so the scene is left unchanged.

MRML/VTK/numpy only (no Qt), so it runs in Slicer and on slicer-core in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np

from PASTALib.errors import PastaInputError
from PASTALib.lesions import codes, lesion_types
from PASTALib.report.model import Finding, Report
from PASTALib.report.writer import FINDING_LABELS

from . import report_store
from .volume_nodes import world_ijk_to_ras

#: Written by ``pasta analyze``: label n on finding Fn's voxels, and the report.
FINDING_LABELS_FILE = FINDING_LABELS
REPORT_FILE = "report.json"

#: Node reference roles from the segmentation node to the other result nodes.
TABLE_ROLE = "PASTAFindingsTable"
MARKUPS_ROLE = "PASTAFindingMarkups"
INPUT_ROLE = "PASTAInputVolume"
#: Attribute on every node a run creates, holding the report id (to find a run's nodes again).
RUN_ATTRIBUTE = "PASTA.ReportId"
#: Attribute on a segment / markups node: the finding id ("F1") it shows.
FINDING_TAG = "PASTA.FindingId"

#: Slicer's terminology contexts (the DICOM master list that ships with Slicer >= 5.6).
TYPE_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"

TABLE_COLUMNS = ("Finding", "Segment", "Type", "Organ", "Long axis (mm)", "Short axis (mm)",
                 "Volume (mL)", "T", "Confidence", "Review", "Notes")
#: Columns stored as numbers (vtkDoubleArray), so a click on the header sorts them by value, not as text.
NUMERIC_COLUMNS = frozenset({"Long axis (mm)", "Short axis (mm)", "Volume (mL)", "Confidence"})


@dataclass
class ImportedResults:
    """The nodes one run added to the scene."""

    segmentation: Any
    table: Any
    report: Any
    markups: list = field(default_factory=list)
    #: finding id -> segment id in :attr:`segmentation`
    segment_ids: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------- class map
def model_class_map(model_path: str | Path, lesion_type: Optional[str] = None) -> dict[int, int]:
    """Model class index -> PASTA lesion-type id, read from the model's card without torch.

    Same rule as ``pasta analyze`` (:func:`PASTALib.analysis.pipeline.lesion_class_map`): a PASTA model
    card's ``lesion_type`` entries, else the class named "lesion" with ``lesion_type``.
    """
    from PASTALib.analysis.pipeline import lesion_class_map
    from PASTALib.model import card as model_card

    path = Path(model_path)
    classes: list[SimpleNamespace] = []
    if (path / model_card.CARD).is_file():
        classes = model_card.card_classes(model_card.read_card(path))
    elif (path / "dataset.json").is_file():
        labels = json.loads((path / "dataset.json").read_text(encoding="utf-8")).get("labels", {})
        classes = [SimpleNamespace(id=int(v), name=str(k), lesion_type=None) for k, v in labels.items()
                   if isinstance(v, (int, float))]
    else:  # a bare checkpoint: PASTA's fine-tuned layout background, organ, lesion
        classes = [SimpleNamespace(id=i, name=n, lesion_type=None)
                   for i, n in enumerate(("background", "organ", "lesion"))]
    return lesion_class_map(classes, lesion_type)


# ----------------------------------------------------------------------------------- terminology
def segment_name(finding: Finding, number: int) -> str:
    """'Kidney tumor 1': the lesion type's name and its running number among that type."""
    return f"{finding.lesion_type.name} {number}"


def terminology_entry(finding: Finding) -> str:
    """Slicer's serialised terminology: category/type from the lesion type, region from the organ."""
    category = codes.MORPHOLOGICALLY_ABNORMAL_STRUCTURE
    kind = finding.lesion_type.code
    region = finding.location.code
    modifier = codes.LATERALITY.get(finding.location.side or "")
    region_text = f"{region.scheme}^{region.value}^{region.meaning}" if region else "^^"
    modifier_text = f"{modifier.scheme}^{modifier.value}^{modifier.meaning}" if (region and modifier) else "^^"
    return (f"{TYPE_CONTEXT}~{category.scheme}^{category.value}^{category.meaning}"
            f"~{kind.scheme}^{kind.value}^{kind.meaning}~^^~{ANATOMY_CONTEXT}~{region_text}~{modifier_text}")


def segment_color(finding: Finding) -> tuple[float, float, float]:
    return lesion_types.lookup(finding.lesion_type.key).color


# ----------------------------------------------------------------------------------- table
def table_row(finding: Finding, segment: str) -> list:
    """One findings-table row: text, or numbers rounded as shown (None where there is no value)."""
    m = finding.measurements
    organ = finding.location.site or finding.location.organ_name or ""
    confidence = round(finding.confidence.mean, 2) if finding.confidence else None
    return [finding.id, segment, finding.lesion_type.name, organ,
            round(m.recist.long_axis.length_mm, 1), round(m.recist.short_axis.length_mm, 1),
            round(m.volume_ml, 2), finding.staging.value or "", confidence, finding.review.status,
            " ".join(finding.notes)]


def fill_table(table_node, report: Report, segment_names: dict[str, str]) -> None:
    """(Re)write every row of the findings table from the report, in the report's order (confidence x
    size, largest first); measurements are numeric columns."""
    import vtk

    table = table_node.GetTable()
    rows = [table_row(finding, segment_names.get(finding.id, "")) for finding in report.findings]
    # a column with a missing value (no confidence without probabilities) stays text: blank, not "nan"
    numeric = [title in NUMERIC_COLUMNS and all(row[col] is not None for row in rows)
               for col, title in enumerate(TABLE_COLUMNS)]
    wasModifying = table_node.StartModify()
    try:
        table_node.RemoveAllColumns()
        table_node.SetUseColumnNameAsColumnHeader(True)
        for col, title in enumerate(TABLE_COLUMNS):
            column = table_node.AddColumn(vtk.vtkDoubleArray() if numeric[col] else vtk.vtkStringArray())
            column.SetName(title)
            table_node.SetColumnProperty(title, "type", "double" if numeric[col] else "string")
        for values in rows:
            row = table_node.AddEmptyRow()
            for col, value in enumerate(values):
                if numeric[col]:
                    table.SetValue(row, col, vtk.vtkVariant(float(value)))
                else:
                    table_node.SetCellText(row, col, "" if value is None else str(value))
    finally:
        table_node.EndModify(wasModifying)
    table.Modified()


def finding_center_ras(report: Report, finding_id: str) -> list[float]:
    """Where to centre the slice views for a finding: the middle of its RECIST slice."""
    return list(report.finding(finding_id).measurements.recist.slice_center_ras)


def finding_segments(segmentation_node) -> dict[str, str]:
    """Finding id -> segment id, from the finding tag every imported segment carries."""
    import vtk

    segmentation = segmentation_node.GetSegmentation()
    found = {}
    for index in range(segmentation.GetNumberOfSegments()):
        tag = vtk.mutable("")
        if segmentation.GetNthSegment(index).GetTag(FINDING_TAG, tag):
            found[str(tag)] = segmentation.GetNthSegmentID(index)
    return found


# ----------------------------------------------------------------------------------- import
def labelmap_node(scene, input_volume, array: np.ndarray, name: str):
    """A label map node on exactly the input volume's grid (its world IJK-to-RAS matrix)."""
    import vtk
    from vtk.util import numpy_support

    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).reshape(-1), deep=True))
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name)
    matrix = vtk.vtkMatrix4x4()
    ijk_to_ras = world_ijk_to_ras(input_volume)
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(ijk_to_ras[r, c]))
    node.SetIJKToRASMatrix(matrix)
    node.SetAndObserveImageData(image)
    return node


def _read_outputs(out_dir: Path, input_volume) -> tuple[Report, np.ndarray]:
    """report.json and findings.nii.gz, checked against each other and against the input's grid."""
    from PASTALib.io.volume_io import read_volume

    from .volume_nodes import node_to_volume

    report_path, labels_path = out_dir / REPORT_FILE, out_dir / FINDING_LABELS_FILE
    for path in (report_path, labels_path):
        if not path.is_file():
            raise PastaInputError(f"The analysis wrote no {path.name} in {out_dir}.",
                                  "See the log of the run for the reason; an output folder of an older "
                                  "PASTA has no findings.nii.gz, so run the analysis again.")
    report = Report.from_json(report_path.read_text(encoding="utf-8"))
    labels = read_volume(labels_path)
    reference = node_to_volume(input_volume)
    if not labels.has_same_geometry(reference, 1e-3):
        raise PastaInputError(f"{labels_path.name} does not lie on the grid of volume '{input_volume.GetName()}'.",
                              "; ".join(labels.geometry_differences(reference, 1e-3)))
    array = np.asarray(labels.array)
    if array.size and (array.min() < 0 or array.max() > len(report.findings)
                       or not np.array_equal(array, np.round(array))):
        raise PastaInputError(f"{labels_path.name} holds values other than 0..{len(report.findings)} "
                              f"(one per finding of {REPORT_FILE}).",
                              "The two files come from different runs; run the analysis again.")
    counts = np.bincount(array.astype(np.int64).ravel(), minlength=len(report.findings) + 1)
    wrong = [f"{f.id} ({int(counts[n])} voxels, the report says {f.component.voxel_count})"
             for n, f in enumerate(report.findings, start=1) if int(counts[n]) != f.component.voxel_count]
    if wrong:
        raise PastaInputError(f"{labels_path.name} does not match {REPORT_FILE}: " + ", ".join(wrong) + ".",
                              "The two files come from different runs; run the analysis again.")
    return report, array.astype(np.uint16)


def place_in_study(scene, node, input_volume) -> None:
    """Put ``node`` next to the input volume in the subject hierarchy (its study or patient)."""
    from slicer import vtkMRMLSubjectHierarchyNode

    sh = vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None:
        return
    volume_item = sh.GetItemByDataNode(input_volume)
    if not volume_item:
        return
    parent = sh.GetItemParent(volume_item)
    item = sh.GetItemByDataNode(node)
    if item:  # Slicer's subject hierarchy plugins create an item for every new data node
        sh.SetItemParent(item, parent)
    else:
        sh.CreateItem(parent, node)


def unique_node_name(scene, base: str) -> str:
    """``base``, or ``base (2)``, ``base (3)``… so each run's nodes are told apart."""
    names = {scene.GetNthNode(i).GetName() for i in range(scene.GetNumberOfNodes())}
    if base not in names:
        return base
    number = 2
    while f"{base} ({number})" in names:
        number += 1
    return f"{base} ({number})"


def import_results(scene, input_volume, out_dir: str | Path, name: Optional[str] = None,
                   markups: bool = True) -> ImportedResults:
    """Add one analysis run's results to ``scene`` as new nodes; on failure, add nothing.

    Each finding's segment holds exactly its voxels in ``findings.nii.gz`` (also each part of a
    component split between organs). The segmentation never replaces an existing node.
    """
    from slicer import vtkSlicerSegmentationsModuleLogic

    out_dir = Path(out_dir)
    report, index_map = _read_outputs(out_dir, input_volume)

    base = name or f"{input_volume.GetName()} PASTA"
    created: list = []
    try:
        labelmap = labelmap_node(scene, input_volume, index_map, "PASTA temporary findings labelmap")
        created.append(labelmap)

        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", unique_node_name(scene, base + " findings"))
        created.append(segmentation)
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(input_volume)
        if report.findings and not vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
                labelmap, segmentation):
            raise RuntimeError("Slicer could not import the findings label map into a segmentation.")
        scene.RemoveNode(labelmap)
        created.remove(labelmap)

        seg = segmentation.GetSegmentation()
        segment_ids: dict[str, str] = {}
        segment_names: dict[str, str] = {}
        per_type: dict[str, int] = {}
        for number, finding in enumerate(report.findings, start=1):
            segment_id = seg.GetSegmentIdBySegmentName(f"Label_{number}") or seg.GetNthSegmentID(number - 1)
            segment = seg.GetSegment(segment_id)
            per_type[finding.lesion_type.key] = per_type.get(finding.lesion_type.key, 0) + 1
            segment.SetName(segment_name(finding, per_type[finding.lesion_type.key]))
            segment.SetColor(*segment_color(finding))
            segment.SetTag(segment.GetTerminologyEntryTagName(), terminology_entry(finding))
            segment.SetTag(FINDING_TAG, finding.id)
            segment_ids[finding.id] = segment_id
            segment_names[finding.id] = segment.GetName()

        table = scene.AddNewNodeByClass("vtkMRMLTableNode", unique_node_name(scene, base + " findings table"))
        created.append(table)
        fill_table(table, report, segment_names)

        report_node = report_store.create_report_node(scene, report, unique_node_name(scene, base + " report"))
        created.append(report_node)

        markup_nodes = []
        if markups:
            for finding in report.findings:
                for node in _finding_markups(scene, finding, segment_names[finding.id]):
                    created.append(node)
                    markup_nodes.append(node)

        for node in [segmentation, table, report_node, *markup_nodes]:
            node.SetAttribute(RUN_ATTRIBUTE, report.report_id)
            place_in_study(scene, node, input_volume)
        segmentation.SetNodeReferenceID(report_store.REPORT_ROLE, report_node.GetID())
        segmentation.SetNodeReferenceID(TABLE_ROLE, table.GetID())
        for node in markup_nodes:
            segmentation.AddNodeReferenceID(MARKUPS_ROLE, node.GetID())
        segmentation.SetNodeReferenceID(INPUT_ROLE, input_volume.GetID())
        if report.findings:
            show_markups_of(segmentation, report.findings[0].id)
    except Exception:
        for node in reversed(created):
            if node.GetScene() is scene:
                _remove_with_display(scene, node)
        raise
    return ImportedResults(segmentation, table, report_node, markup_nodes, segment_ids)


def _remove_with_display(scene, node) -> None:
    for i in range(node.GetNumberOfDisplayNodes() if hasattr(node, "GetNumberOfDisplayNodes") else 0):
        display = node.GetNthDisplayNode(i)
        if display is not None:
            scene.RemoveNode(display)
    scene.RemoveNode(node)


def _finding_markups(scene, finding: Finding, label: str) -> list:
    """An ROI around the finding and a line along its RECIST long axis."""
    m = finding.measurements
    lo, hi = np.array(m.bbox.ras_min, float), np.array(m.bbox.ras_max, float)
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", f"{label} ROI")
    roi.CreateDefaultDisplayNodes()
    roi.SetCenter(*((lo + hi) / 2).tolist())
    roi.SetSize(*np.abs(hi - lo).tolist())
    line = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", f"{label} long axis")
    line.CreateDefaultDisplayNodes()
    line.AddControlPoint(*m.recist.long_axis.start_ras)
    line.AddControlPoint(*m.recist.long_axis.end_ras)
    for node in (roi, line):
        node.SetAttribute(FINDING_TAG, finding.id)
        node.SetLocked(True)
    return [roi, line]


def show_markups_of(segmentation_node, finding_id: Optional[str]) -> None:
    """Show the ROI and long axis of one finding and hide the others': a scan with many findings stays
    readable (they used to be all shown, two per finding)."""
    for i in range(segmentation_node.GetNumberOfNodeReferences(MARKUPS_ROLE)):
        node = segmentation_node.GetNthNodeReference(MARKUPS_ROLE, i)
        display = node.GetDisplayNode() if node is not None else None
        if display is not None:
            display.SetVisibility(node.GetAttribute(FINDING_TAG) == finding_id)


def results_of(segmentation_node) -> Optional[dict]:
    """The nodes of the run a PASTA segmentation came from, or None for other segmentations."""
    report = segmentation_node.GetNodeReference(report_store.REPORT_ROLE) if segmentation_node else None
    if report is None:
        return None
    markups = [segmentation_node.GetNthNodeReference(MARKUPS_ROLE, i)
               for i in range(segmentation_node.GetNumberOfNodeReferences(MARKUPS_ROLE))]
    return {"report": report, "table": segmentation_node.GetNodeReference(TABLE_ROLE), "markups": markups}


def relabel_segment(segmentation_node, finding: Finding) -> None:
    """After the reader changed a finding's type: its segment's name, colour and terminology follow
    ("Kidney cyst 2", numbered after the other segments of that type); the voxels stay."""
    segment_of = finding_segments(segmentation_node)
    if finding.id not in segment_of:
        return
    seg = segmentation_node.GetSegmentation()
    prefix = f"{finding.lesion_type.name} "
    taken = {seg.GetSegment(sid).GetName() for fid, sid in segment_of.items() if fid != finding.id}
    number = next(n for n in range(1, len(segment_of) + 2) if f"{prefix}{n}" not in taken)
    segment = seg.GetSegment(segment_of[finding.id])
    segment.SetName(segment_name(finding, number))
    segment.SetColor(*segment_color(finding))
    segment.SetTag(segment.GetTerminologyEntryTagName(), terminology_entry(finding))


def refresh_table(segmentation_node) -> None:
    """Rewrite the findings table after a report edit (review status, T category...)."""
    nodes = results_of(segmentation_node)
    if not nodes or nodes["table"] is None:
        return
    report = report_store.load_report(nodes["report"])
    seg = segmentation_node.GetSegmentation()
    names = {finding: seg.GetSegment(segment_id).GetName()
             for finding, segment_id in finding_segments(segmentation_node).items()}
    fill_table(nodes["table"], report, names)
