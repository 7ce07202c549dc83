"""Render the README figure "Synthesising lesions in 3D Slicer" from a real slicer-core scene.

Runs the PASTASynth module's scene logic on the bundled sample: the host CT and its organ mask
are loaded as nodes, the "Place lesion" click is made through the module's point placement (a
markups point defined where a click would define it), a liver tumour and a kidney cyst are
placed, and the liver tumour's density is then changed (re-generated in place). It then draws what
is *in the scene*: the host volume node (unchanged), the "<host> + synthetic lesions" volume node
and the segmentation node's segments as outlines in their colours, and the lesion's report as
stored in its text node. Usage:

    python render_synth_scene.py OUTPUT.png
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "PASTA"), str(REPO / "PASTASynth")]
#: TotalSegmentator v2 ids of the organs the lesions go into.
LIVER, KIDNEY_RIGHT = 5, 2


def load(scene, path: Path, node_class: str, name: str):
    from slicer import vtkMRMLVolumeArchetypeStorageNode

    node = scene.AddNewNodeByClass(node_class, name)
    storage = vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node), path
    return node


def organ_core_ras(organs, label: int, shift_mm=(0.0, 0.0, 0.0), margin_slices: int = 0) -> list[float]:
    """RAS of the voxel deepest inside the organ (plus a shift), where a user would click; at least
    ``margin_slices`` away from the first and last slice, so the lesion is not cut by the scan's end."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(organs.array == label, sampling=organs.spacing[::-1])
    if margin_slices:
        depth[:margin_slices] = depth[-margin_slices:] = 0
    kji = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return [float(v) + s for v, s in zip(organs.index_to_ras_points(np.array(kji[::-1], float)), shift_mm)]


def build_scene():
    import slicer
    from slicer import vtkMRMLScene, vtkSlicerSegmentationsModuleLogic

    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume
    from PASTASynthSlicerLib.placement import PointPlacement
    from PASTASynthSlicerLib.session import SynthSession

    scene = vtkMRMLScene()
    seg_logic = vtkSlicerSegmentationsModuleLogic()
    seg_logic.SetMRMLScene(scene)
    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(segmentations=types.SimpleNamespace(logic=lambda: seg_logic))
    interaction = scene.AddNewNodeByClass("vtkMRMLInteractionNode")
    selection = scene.AddNewNodeByClass("vtkMRMLSelectionNode")

    ct = load(scene, sample_data.SAMPLES["sample"].path, "vtkMRMLScalarVolumeNode", "Abdomen CT")
    organs_path = sample_data.SAMPLES["sample-organs"].path
    organs = load(scene, organs_path, "vtkMRMLLabelMapVolumeNode", "Abdomen organs")
    session = SynthSession(scene, ct, organs)
    organ_volume = read_volume(organs_path)

    requests = [("liver_tumor", organ_core_ras(organ_volume, LIVER, margin_slices=25), 32.0,
                 {"density": "hypodense", "heterogeneity": "homogeneous", "margin": "ill-defined"}, 11),
                ("kidney_cyst", organ_core_ras(organ_volume, KIDNEY_RIGHT), 16.0, {}, 4)]
    for lesion_type, point, size, attributes, seed in requests:
        placement = PointPlacement(scene, interaction, selection,
                                   lambda ras, t=lesion_type, s=size, a=attributes, sd=seed:
                                   session.place(t, ras, s, a, sd))
        placement.start()
        placement.node.AddControlPoint(*point)  # the click
        placement.cleanup()
    # the user changes the tumour's margin in the drop-down: it is re-generated in place, same seed
    session.regenerate("L1", attributes={**requests[0][3], "margin": "well-defined"}, seed=11)
    return scene, ct, session


def main(output: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from PASTASlicerLib import report_store
    from PASTASlicerLib.remeasure import segment_mask
    from PASTASlicerLib.volume_nodes import node_to_volume

    scene, ct, session = build_scene()
    host, out = node_to_volume(ct), node_to_volume(session.output_node)
    tumour = session.lesion("L1")
    segmentation = session.segmentation_node.GetSegmentation()
    segments = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        segments.append((segment.GetName(), segment.GetColor(),
                         segment_mask(session.segmentation_node, segment_id, session.output_node)))
    lesion_mask = next(mask for name, _c, mask in segments if name == tumour.name)
    kji = np.argwhere(lesion_mask)
    k, j = [int(v) for v in np.round(kji.mean(axis=0)[:2])]

    m = host.index_to_ras
    spacing, origin = np.diag(m)[:3], m[:3, 3]
    n_k, n_j, n_i = host.array.shape
    x = origin[0] + spacing[0] * np.array([-0.5, n_i - 0.5])
    y = origin[1] + spacing[1] * np.array([-0.5, n_j - 0.5])
    z = origin[2] + spacing[2] * np.array([-0.5, n_k - 0.5])
    axial_extent, coronal_extent = (x[0], x[1], y[0], y[1]), (x[0], x[1], z[0], z[1])
    window = dict(cmap="gray", vmin=50 - 125, vmax=50 + 125, origin="lower", interpolation="nearest")
    centre = host.index_to_ras_points(kji.mean(axis=0)[::-1])
    half = 85.0  # mm shown around the lesion

    fig = plt.figure(figsize=(13, 4.6), dpi=110)
    grid = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1, 1.05], wspace=0.06)
    panels = [(fig.add_subplot(grid[0, 0]), host.array[k], axial_extent, False,
               f"Host '{ct.GetName()}' (never modified)\naxial slice {k}"),
              (fig.add_subplot(grid[0, 1]), out.array[k], axial_extent, True,
               f"'{session.output_node.GetName()}'\nwith the segments' outlines"),
              (fig.add_subplot(grid[0, 2]), out.array[:, j, :], coronal_extent, True, f"Coronal slice {j}")]
    shown = {}
    for ax, image, extent, outlined, title in panels:
        ax.imshow(image, extent=extent, **window)
        if outlined:
            for name, color, mask in segments:
                plane = mask[k] if extent is axial_extent else mask[:, j, :]
                if plane.any():
                    shown[name] = color
                    ax.contour(plane.astype(float), levels=[0.5], colors=[color], extent=extent, origin="lower",
                               linewidths=1.0 if name in ("liver", "kidney_right") else 1.6)
        # radiological convention: the patient's right on the left; the crop stays inside the image
        ax.set_xlim(min(centre[0] + half, max(extent[:2])), max(centre[0] - half, min(extent[:2])))
        up = centre[1] if extent is axial_extent else centre[2]
        ax.set_ylim(max(up - half, min(extent[2:])), min(up + half, max(extent[2:])))
        ax.set_title(title, fontsize=9.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("patient right ←", fontsize=8)
    panels[0][0].set_ylabel("anterior ↑", fontsize=8)
    panels[2][0].set_ylabel("superior ↑", fontsize=8)
    panels[2][0].legend(handles=[Patch(fill=False, ec=color, lw=1.5, label=name) for name, color in shown.items()],
                        loc="upper right", fontsize=7.5, framealpha=0.85)

    report = report_store.load_report(tumour.report_node)
    finding = report.findings[0]
    m_ = finding.measurements
    lines = [f"Report node '{tumour.report_node.GetName()}'", "",
             f"{finding.id}: {finding.lesion_type.name}",
             f"organ: {finding.location.organ_name or finding.location.organ}",
             f"long x short axis: {m_.recist.long_axis.length_mm:.1f} x {m_.recist.short_axis.length_mm:.1f} mm",
             f"volume: {m_.volume_ml:.2f} mL, mean {m_.hu.mean:.0f} HU", ""]
    lines += [f"{name}: {attribute.value}" for name, attribute in finding.attributes.items()]
    record = tumour.lesion.record
    lines += ["", "requested (synthesis):"]
    lines += [f"  {key}: {value}" for key, value in tumour.lesion.attributes.items()]
    lines += [f"  seed {tumour.request.seed}, target {record['appearance']['target_hu']:g} HU"]
    text_ax = fig.add_subplot(grid[0, 3])
    text_ax.axis("off")
    text_ax.text(0.02, 0.5, "\n".join(lines), va="center", ha="left", family="monospace", fontsize=7.8,
                 transform=text_ax.transAxes,
                 bbox=dict(boxstyle="round,pad=0.5", fc="#f4f6f8", ec="#b0bec5"))
    fig.suptitle("PASTA Synth in the scene: a liver tumour placed by a click, then its margin changed "
                 "(re-generated in place)\n(research use only; synthetic lesions are artificial)", fontsize=10.5)
    fig.savefig(output, bbox_inches="tight")
    print("wrote", output)


if __name__ == "__main__":
    main(sys.argv[1])
