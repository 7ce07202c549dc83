"""Render the README figure "Using PASTA in 3D Slicer" from a real slicer-core scene.

Runs the module's logic end to end on the bundled sample (a real `pasta analyze` subprocess with the
tiny test model presented as a kidney-tumour model), then draws what is *in the scene*: the CT
volume node, the segmentation node's segments in their colours, the markups ROIs and long-axis
lines, and the findings table node. Usage:

    python render_slicer_results.py OUTPUT.png
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "PASTA"))


def build_scene(work: Path):
    import slicer
    from slicer import (vtkMRMLScene, vtkMRMLSelectionNode, vtkMRMLVolumeArchetypeStorageNode,
                        vtkSlicerMarkupsLogic, vtkSlicerSegmentationsModuleLogic)

    from PASTALib.analysis.options import AnalysisOptions
    from PASTASlicerLib.analysis import cleanup, finish_analysis, prepare_analysis
    from PASTASlicerLib.process_runner import ProcessRunner

    scene = vtkMRMLScene()
    seg_logic, markups_logic = vtkSlicerSegmentationsModuleLogic(), vtkSlicerMarkupsLogic()
    selection = vtkMRMLSelectionNode()
    selection.SetSingletonTag("Singleton")
    scene.AddNode(selection)
    seg_logic.SetMRMLScene(scene)
    markups_logic.SetMRMLScene(scene)
    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(segmentations=types.SimpleNamespace(logic=lambda: seg_logic))

    ct = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Abdomen CT")
    storage = vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(REPO / "PASTA/PASTALib/sample_data/abdomen_native_3mm_ct.nii.gz"))
    assert storage.ReadData(ct)

    model = shutil.copytree(REPO / "Testing/Data/tiny_pasta_organs", work / "model")
    card = json.loads((model / "model.json").read_text())
    card["classes"][2]["lesion_type"] = "kidney_tumor"
    (model / "model.json").write_text(json.dumps(card))

    job = prepare_analysis(ct, AnalysisOptions(model=str(model), device="cpu", organs="sample-organs"), work / "run",
                           REPO / "PASTA", python=sys.executable)
    runner = ProcessRunner(job.command, env=job.env)
    runner.start()
    runner.wait(timeout=600)
    assert runner.state == "succeeded", "\n".join(runner.log)
    results = finish_analysis(scene, job)
    cleanup(job)
    return scene, ct, results, (seg_logic, markups_logic)


def segment_arrays(scene, ct, results) -> dict:
    import vtk
    from slicer import vtkSlicerSegmentationsModuleLogic

    from PASTASlicerLib.volume_nodes import node_to_volume

    arrays = {}
    segmentation = results.segmentation.GetSegmentation()
    for i in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(i)
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export")
        vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(results.segmentation, ids, labelmap, ct)
        segment = segmentation.GetSegment(segment_id)
        arrays[segment.GetName()] = (node_to_volume(labelmap).array > 0, segment.GetColor())
        scene.RemoveNode(labelmap)
    return arrays


def main(output: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    from PASTASlicerLib.volume_nodes import node_to_volume

    work = Path(tempfile.mkdtemp())
    scene, ct, results, _logics = build_scene(work)
    volume = node_to_volume(ct)
    ct_array = volume.array.astype(float)
    m = volume.index_to_ras  # axis-aligned, positive spacing for the sample
    spacing, origin = np.diag(m)[:3], m[:3, 3]
    segments = segment_arrays(scene, ct, results)
    rois = [n for n in results.markups if n.IsA("vtkMRMLMarkupsROINode")]
    lines = [n for n in results.markups if n.IsA("vtkMRMLMarkupsLineNode")]

    # The axial slice through the first finding's long axis, the coronal slice through its centre.
    p0 = [0.0, 0.0, 0.0]
    lines[0].GetNthControlPointPositionWorld(0, p0)
    k = int(round((p0[2] - origin[2]) / spacing[2]))
    roi_center = [0.0, 0.0, 0.0]
    rois[0].GetCenter(roi_center)
    j = int(round((roi_center[1] - origin[1]) / spacing[1]))

    n_k, n_j, n_i = ct_array.shape
    x = origin[0] + spacing[0] * np.array([-0.5, n_i - 0.5])
    y = origin[1] + spacing[1] * np.array([-0.5, n_j - 0.5])
    z = origin[2] + spacing[2] * np.array([-0.5, n_k - 0.5])
    window = dict(cmap="gray", vmin=40 - 200, vmax=40 + 200, origin="lower", interpolation="nearest")

    fig = plt.figure(figsize=(11, 7.6), dpi=110)
    grid = fig.add_gridspec(2, 2, height_ratios=[3.2, 0.9], hspace=0.12, wspace=0.08)
    axial, coronal = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    axial.imshow(ct_array[k], extent=(x[0], x[1], y[0], y[1]), **window)
    coronal.imshow(ct_array[:, j, :], extent=(x[0], x[1], z[0], z[1]), **window)
    for name, (mask, color) in segments.items():
        for ax, plane in ((axial, mask[k]), (coronal, mask[:, j, :])):
            if plane.any():
                extent = (x[0], x[1], y[0], y[1]) if ax is axial else (x[0], x[1], z[0], z[1])
                rgba = np.zeros(plane.shape + (4,))
                rgba[plane] = (*color, 0.45)
                ax.imshow(rgba, extent=extent, origin="lower", interpolation="nearest")
                ax.contour(plane.astype(float), levels=[0.5], colors=[color], linewidths=1.2, extent=extent, origin="lower")
    for roi, line in zip(rois, lines):
        center, size = [0.0] * 3, [0.0] * 3
        roi.GetCenter(center)
        size = list(roi.GetSize())
        axial.add_patch(Rectangle((center[0] - size[0] / 2, center[1] - size[1] / 2), size[0], size[1],
                                  fill=False, ec="#4fc3f7", lw=1.2, ls="--"))
        coronal.add_patch(Rectangle((center[0] - size[0] / 2, center[2] - size[2] / 2), size[0], size[2],
                                    fill=False, ec="#4fc3f7", lw=1.2, ls="--"))
        a, b = [0.0] * 3, [0.0] * 3
        line.GetNthControlPointPositionWorld(0, a)
        line.GetNthControlPointPositionWorld(1, b)
        if abs(a[2] - p0[2]) < spacing[2] / 2:
            axial.plot([a[0], b[0]], [a[1], b[1]], color="#ffeb3b", lw=2, marker="o", ms=3)
        axial.text(center[0] + size[0] / 2, center[1] + size[1] / 2 + 3, roi.GetAttribute("PASTA.FindingId"),
                   color="#4fc3f7", fontsize=9, ha="right", va="bottom")
    for ax, title, ylabel in ((axial, f"Axial slice {k} (the long axis of F1)", "anterior ↑"),
                              (coronal, f"Coronal slice {j}", "superior ↑")):
        ax.invert_xaxis()  # radiological convention: the patient's right on the left
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("patient right ←", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
    handles = [Patch(color=color, label=name) for name, (mask, color) in segments.items()]
    handles += [Patch(fill=False, ec="#4fc3f7", ls="--", label="markups ROI"),
                Patch(color="#ffeb3b", label="RECIST long axis (markups line)")]
    coronal.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)

    table = results.table
    columns = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    rows = [[table.GetCellText(r, c) for c in range(len(columns))] for r in range(table.GetNumberOfRows())]
    table_ax = fig.add_subplot(grid[1, :])
    table_ax.axis("off")
    labels = [c.replace(" (", "\n(") for c in columns]
    shown = table_ax.table(cellText=rows, colLabels=labels, loc="upper center", cellLoc="center")
    shown.auto_set_font_size(False)
    shown.set_fontsize(8.5)
    shown.auto_set_column_width(list(range(len(columns))))
    shown.scale(1, 1.6)
    for (row, _col), cell in shown.get_celld().items():
        if row == 0:
            cell.set_height(cell.get_height() * 1.6)
            cell.set_facecolor("#e8eef5")
    table_ax.set_title(f"Findings table node '{table.GetName()}'", fontsize=10)
    fig.suptitle(f"PASTA results in the scene: segmentation '{results.segmentation.GetName()}', "
                 "markups and findings table\n(research use only; tiny test model standing in for a kidney-tumour model)",
                 fontsize=10.5)
    fig.savefig(output, bbox_inches="tight")
    print("wrote", output)


if __name__ == "__main__":
    main(sys.argv[1])
