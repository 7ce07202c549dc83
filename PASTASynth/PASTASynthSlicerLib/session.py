"""One interactive synthesis session in the scene: place, regenerate, undo/redo, export.

The host volume node is never modified. The session creates its own output volume
("<host> + synthetic lesions") and segmentation (host organ + one segment per lesion), and runs
the engine in-process on the current synthetic volume for each click, so later lesions blend over
earlier ones exactly as in ``pasta synth --count``. Each step stores the voxels of the changed box
before and after, so undo and redo restore exact values. Each lesion's report (``report.json``
schema) lives in a text node, like an analysis report (:mod:`PASTASlicerLib.report_store`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from vtk.util import numpy_support

from PASTALib.errors import PastaInputError
from PASTALib.lesions.organ_terms import class_for
from PASTALib.report.model import Report
from PASTASlicerLib import report_store
from PASTASlicerLib.results_import import place_in_study, unique_node_name
from PASTASlicerLib.volume_nodes import node_to_volume, segment_terms, segmentation_to_volume, volume_to_node
from PASTASynthLib.case_io import build_report, label_map, write_case
from PASTASynthLib.catalog import spec_for
from PASTASynthLib.engine import Lesion, LesionRequest, SynthesisResult, synthesize
from PASTASynthLib.host import Host, make_host

from .segments import ORGAN_COLOR, add_mask_segment, style_lesion

#: Node reference roles from the output volume to the session's other nodes.
HOST_ROLE = "PASTASynthHost"
SEGMENTATION_ROLE = "PASTASynthSegmentation"
#: Attribute on every node the session creates; on report nodes, the lesion key ("L1").
SESSION_ATTRIBUTE = "PASTASynth.Session"
LESION_ATTRIBUTE = "PASTASynth.LesionId"
#: Default of :meth:`SynthSession.regenerate`'s ``size_mm``: keep the lesion's requested size.
KEEP: Any = object()
#: Attribute on a lesion's report node: "yes" once the user accepted the lesion.
ACCEPTED_ATTRIBUTE = "PASTASynth.Accepted"


@dataclass
class PlacedLesion:
    """One step of the session: what was asked, what changed, and the nodes it owns."""

    key: str  #: "L1", "L2"... stable across regenerate
    request: LesionRequest
    result: SynthesisResult  #: the engine's result (one lesion) on the then-current volume
    box: tuple[slice, slice, slice]  #: the changed region of the output volume
    before: np.ndarray  #: voxels of ``box`` before this lesion
    after: np.ndarray  #: voxels of ``box`` with it
    report: dict  #: report.json of this lesion
    segment_id: str = ""
    name: str = ""  #: its segment's name, "Liver tumor 2"
    number: int = 0  #: the running number in that name
    organ_segment: Optional[tuple[int, str]] = None  #: (organ label, segment id) created by this step
    report_node: Any = None
    accepted: bool = False  #: the user kept it (the GUI stops re-generating it on attribute changes)
    _segments: dict = field(default_factory=dict, repr=False)  #: segment id -> vtkSegment while undone

    @property
    def lesion(self) -> Lesion:
        return self.result.lesions[0]


def _voxels(node) -> np.ndarray:
    """A writable [k, j, i] view of a scalar volume node's voxels."""
    image = node.GetImageData()
    i, j, k = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k, j, i)


def _changed(node) -> None:
    node.GetImageData().GetPointData().GetScalars().Modified()
    node.GetImageData().Modified()
    node.Modified()


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    points = np.argwhere(mask)
    lo, hi = points.min(axis=0), points.max(axis=0) + 1
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _overlap(a: tuple[slice, ...], b: tuple[slice, ...]) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


def organ_class_names(segmentation_node) -> dict[int, str]:
    """Segment label (i+1 for segment i) -> TotalSegmentator class name, by terminology codes, then by
    name (:func:`PASTALib.lesions.organ_terms.class_for`); a segment that is no class keeps its own name."""
    return {index + 1: class_for(name, terminology) or name
            for index, (name, terminology) in enumerate(segment_terms(segmentation_node))}


class SynthSession:
    """Lesions placed by hand into a copy of one host volume, with undo/redo and export."""

    def __init__(self, scene, host_node, organs_node, names: Optional[dict[int, str]] = None) -> None:
        """``organs_node``: a label map volume (TotalSegmentator v2 ids unless ``names``) or a
        segmentation whose segment names are TotalSegmentator class names ("liver")."""
        self.scene, self.host_node = scene, host_node
        image = node_to_volume(host_node)
        if organs_node is None:
            organs = None
        elif organs_node.IsA("vtkMRMLSegmentationNode"):
            organs, _ = segmentation_to_volume(organs_node, host_node)
            names = names or organ_class_names(organs_node)
        else:
            organs = node_to_volume(organs_node)
        self.host: Host = make_host(image, organs, names)
        base = host_node.GetName()
        self.output_node = volume_to_node(image, scene, unique_node_name(scene, f"{base} + synthetic lesions"))
        self.output_node.CreateDefaultDisplayNodes()
        shown, host_display = self.output_node.GetDisplayNode(), host_node.GetDisplayNode()
        if shown is not None and host_display is not None:  # same window/level as the host
            shown.SetAutoWindowLevel(host_display.GetAutoWindowLevel())
            shown.SetWindowLevel(host_display.GetWindow(), host_display.GetLevel())
        self.segmentation_node = scene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", unique_node_name(scene, f"{base} + synthetic lesions segmentation"))
        self.segmentation_node.CreateDefaultDisplayNodes()
        self.segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(self.output_node)
        for node in (self.output_node, self.segmentation_node):
            node.SetAttribute(SESSION_ATTRIBUTE, base)
            place_in_study(scene, node, host_node)  # next to the host in the Data module's tree
        self.output_node.SetNodeReferenceID(HOST_ROLE, host_node.GetID())
        self.output_node.SetNodeReferenceID(SEGMENTATION_ROLE, self.segmentation_node.GetID())
        self.done: list[PlacedLesion] = []
        self.undone: list[PlacedLesion] = []
        self._count = 0
        self._organ_segments: dict[int, str] = {}

    # ------------------------------------------------------------------------------ placing
    def place(self, lesion_type: str, ras_point: Sequence[float], size_mm: Optional[float | Sequence[float]] = None,
              attributes: Optional[Mapping[str, str]] = None, seed: int = 0,
              mass_effect_mm: float = 0.0) -> PlacedLesion:
        """Place one lesion centred at ``ras_point``; clears the redo stack."""
        request = LesionRequest(lesion_type, _sizes(size_mm),
                                dict(attributes or {}), center_ras=[float(v) for v in ras_point], seed=seed,
                                mass_effect_mm=mass_effect_mm)
        step = self._apply(request, f"L{self._count + 1}")
        self._count += 1
        self._discard(self.undone)
        self.undone = []
        return step

    def lesion(self, key: Optional[str] = None) -> PlacedLesion:
        """The active lesion ``key`` ("L2"), or the last placed one (PastaInputError if none)."""
        if not self.done:
            raise PastaInputError("There is no lesion yet.", "Place a lesion first.")
        if key is None:
            return self.done[-1]
        for step in self.done:
            if step.key == key:
                return step
        raise PastaInputError(f"Lesion {key} is not in the scene (undone or never placed).",
                              "Choose one of the lesions listed.")

    def accept(self, key: Optional[str] = None) -> PlacedLesion:
        """Mark a lesion as kept; stored on its report node, so it survives saving the scene."""
        step = self.lesion(key)
        step.accepted = True
        if step.report_node is not None:
            step.report_node.SetAttribute(ACCEPTED_ATTRIBUTE, "yes")
        return step

    def regenerate(self, key: Optional[str] = None, attributes: Optional[Mapping[str, str]] = None,
                   size_mm: Any = KEEP, seed: Optional[int] = None) -> PlacedLesion:
        """Replace lesion ``key`` (default: the last) in place: same point, name and segment id.

        Arguments left out keep the previous request's (``size_mm=None`` asks for a sampled
        size; ``attributes={}`` samples them all); ``seed`` defaults to the previous + 1, so a
        bare call draws a new lesion. Later lesions whose region touches the changed voxels
        are drawn again with their own request over the new lesion (as if placed after it), with
        fresh reports; the others keep their exact voxels and reports. The result is pending
        again (not accepted). On any error the scene is left as it was.
        """
        old = self.lesion(key)
        request = dataclasses.replace(
            old.request, attributes=dict(old.request.attributes if attributes is None else attributes),
            size_mm=old.request.size_mm if size_mm is KEEP else _sizes(size_mm),
            seed=old.request.seed + 1 if seed is None else seed)
        index = self.done.index(old)
        steps = self.done[index:]
        voxels = _voxels(self.output_node)
        saved = voxels.copy()
        for step in reversed(steps):  # back to the volume just before ``old``
            voxels[step.box] = step.before
        replaced: dict[int, PlacedLesion] = {}
        try:
            dirty: list[tuple[slice, ...]] = []
            for position, step in enumerate(steps):
                if step is not old and not any(_overlap(step.box, box) for box in dirty):
                    voxels[step.box] = step.after  # untouched by the change: exact voxels again
                    continue
                fresh = self._compute(request if step is old else step.request, step.key)
                fresh.accepted = step.accepted and step is not old  # a redrawn later lesion stays kept
                voxels[fresh.box] = fresh.after
                replaced[position] = fresh
                dirty += [step.box, fresh.box]
        except Exception:
            voxels[...] = saved
            raise
        finally:
            _changed(self.output_node)
        for position, fresh in replaced.items():
            self._replace_in_scene(steps[position], fresh)
            self.done[index + position] = fresh
        return replaced[0]

    def _compute(self, request: LesionRequest, key: str) -> PlacedLesion:
        """Synthesize one lesion on the output volume as it is now; changes nothing in the scene."""
        # organ HU statistics come from the pristine host (as for lesion 2+ in the engine): warm
        # the cache the copy below shares, so earlier synthetic lesions never bias them
        for label in self.host.labels_for(spec_for(request.lesion_type)):
            self.host.stats(label)
        voxels = _voxels(self.output_node)
        current = self.host.image.with_array(voxels.copy())
        host = dataclasses.replace(self.host, image=current)  # shares the statistics and depth maps
        result = synthesize(host, request)
        box = _bounding_box(result.influence | result.lesion_mask)
        report = self._report(result, host, request)
        if not report["findings"]:  # checked before anything in the scene changes
            raise PastaInputError("The placed lesion gave no finding in its report.",
                                  "Try another point or a larger size.")
        return PlacedLesion(key, request, result, box, voxels[box].copy(), result.image.array[box].copy(), report)

    def _apply(self, request: LesionRequest, key: str) -> PlacedLesion:
        step = self._compute(request, key)
        self._restore(step, new=True)
        self.done.append(step)
        return step

    def _report(self, result: SynthesisResult, host: Host, request: LesionRequest) -> dict:
        label = result.image.with_array(label_map(result, host))
        total = result.image.with_array(host.organs)
        return build_report(result, result.image, label, total, host.names, _summary(request),
                            self.host_node.GetName())

    # ------------------------------------------------------------------------------ undo/redo
    @property
    def lesions(self) -> list[PlacedLesion]:
        return list(self.done)

    def can_undo(self) -> bool:
        return bool(self.done)

    def can_redo(self) -> bool:
        return bool(self.undone)

    def undo(self) -> Optional[PlacedLesion]:
        """Take the last lesion out: voxels, segments and report node (kept for redo)."""
        if not self.done:
            return None
        step = self.done.pop()
        self._remove(step)
        self.undone.append(step)
        return step

    def redo(self) -> Optional[PlacedLesion]:
        if not self.undone:
            return None
        step = self.undone.pop()
        self._restore(step)
        self.done.append(step)
        return step

    def _remove(self, step: PlacedLesion) -> None:
        voxels = _voxels(self.output_node)
        voxels[step.box] = step.before
        _changed(self.output_node)
        segmentation = self.segmentation_node.GetSegmentation()
        ids = [step.segment_id] + ([step.organ_segment[1]] if step.organ_segment else [])
        for segment_id in ids:
            step._segments[segment_id] = segmentation.GetSegment(segment_id)
            segmentation.RemoveSegment(segment_id)
        if step.organ_segment:
            self._organ_segments.pop(step.organ_segment[0], None)
        self._drop_report_node(step)

    def _drop_report_node(self, step: PlacedLesion) -> None:
        """Remove the step's report node, keeping the reader's edits for a redo."""
        node = step.report_node
        if node is not None and node.GetScene() is self.scene:
            if report_store.is_report_node(node):
                step.report = json.loads(node.GetText())
            self.scene.RemoveNode(node)
        step.report_node = None

    def _restore(self, step: PlacedLesion, new: bool = False) -> None:
        """Write the step's voxels, segments and report node into the scene."""
        voxels = _voxels(self.output_node)
        voxels[step.box] = step.after
        _changed(self.output_node)
        segmentation = self.segmentation_node.GetSegmentation()
        if new:
            self._add_organ_segment(step)
            self._add_lesion_segment(step, None, "", self._number(step))
        else:
            if step.organ_segment:
                segmentation.AddSegment(step._segments.pop(step.organ_segment[1]), step.organ_segment[1])
            segmentation.AddSegment(step._segments.pop(step.segment_id), step.segment_id)
        if step.organ_segment:
            self._organ_segments[step.organ_segment[0]] = step.organ_segment[1]
        self._add_report_node(step)

    def _replace_in_scene(self, old: PlacedLesion, new: PlacedLesion) -> None:
        """Swap a lesion's segment (same id, name and place in the list) and report node."""
        segmentation = self.segmentation_node.GetSegmentation()
        ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        position = ids.index(old.segment_id)
        following = ids[position + 1] if position + 1 < len(ids) else ""
        segmentation.RemoveSegment(old.segment_id)
        if old.organ_segment and old.organ_segment[0] == new.lesion.label:
            new.organ_segment = old.organ_segment  # same organ: its segment stays where it is
        else:
            self._add_organ_segment(new)
        self._add_lesion_segment(new, old.segment_id, following, old.number)
        self._drop_report_node(old)
        self._add_report_node(new)
        old._segments.clear()

    def _add_organ_segment(self, step: PlacedLesion) -> None:
        label = step.lesion.label
        if label in self._organ_segments:
            return
        organ = np.isin(self.host.organs, [label])
        organ_id = add_mask_segment(self.segmentation_node, self.output_node, organ,
                                    self.host.names.get(label, str(label)), ORGAN_COLOR)
        step.organ_segment = (label, organ_id)
        self._organ_segments[label] = organ_id

    def _add_lesion_segment(self, step: PlacedLesion, segment_id: Optional[str], before: str, number: int) -> None:
        mask = np.zeros(self.host.organs.shape, bool)
        mask[step.lesion.box.slices] = step.lesion.mask
        step.segment_id = add_mask_segment(self.segmentation_node, self.output_node, mask, "lesion",
                                           (1.0, 0.0, 0.0), segment_id=segment_id, before=before)
        segment = self.segmentation_node.GetSegmentation().GetSegment(step.segment_id)
        style_lesion(segment, Report.from_dict(step.report).findings[0], number, step.key)
        step.name, step.number = segment.GetName(), number

    def _add_report_node(self, step: PlacedLesion) -> None:
        node = report_store.create_report_node(self.scene, Report.from_dict(step.report),
                                               unique_node_name(self.scene, f"{step.name} report"))
        node.SetAttribute(SESSION_ATTRIBUTE, self.host_node.GetName())
        node.SetAttribute(LESION_ATTRIBUTE, step.key)
        if step.accepted:
            node.SetAttribute(ACCEPTED_ATTRIBUTE, "yes")
        place_in_study(self.scene, node, self.host_node)
        step.report_node = node

    def _number(self, step: PlacedLesion) -> int:
        """Running number among the active lesions of the same type ("Liver tumor 2")."""
        return 1 + sum(1 for other in self.done if other.request.lesion_type == step.request.lesion_type
                       and other is not step)

    @staticmethod
    def _discard(steps: list[PlacedLesion]) -> None:
        """Forget steps that can no longer come back (their removed segments)."""
        for step in steps:
            step._segments.clear()

    # ------------------------------------------------------------------------------ export
    def export_case(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the active lesions as one PASTA-Gen-30K case (one lesion type per case)."""
        if not self.done:
            raise PastaInputError("There are no lesions to export.", "Place a lesion first.")
        types = {step.request.lesion_type for step in self.done}
        if len(types) > 1:
            raise PastaInputError(f"A case holds one lesion type; this session has {', '.join(sorted(types))}.",
                                  "Undo the lesions of the other types, or export them in another session.")
        image = self.host.image.with_array(_voxels(self.output_node).copy())
        mask = np.zeros(image.array.shape, bool)
        influence = np.zeros(image.array.shape, bool)
        lesions = []
        for number, step in enumerate(self.done, start=1):
            mask |= step.result.lesion_mask
            influence |= step.result.influence
            lesions.append(dataclasses.replace(step.lesion, number=number,
                                               record=dict(step.lesion.record, number=number)))
        first = self.done[0].result
        result = SynthesisResult(image, mask, influence, first.spec, lesions, first.host_notes,
                                 first.enhanced, first.phase_evidence)
        summary = {"source": "PASTASynth Slicer session", "lesions": [_summary(s.request) for s in self.done]}
        case = write_case(result, self.host, folder, summary, self.host_node.GetName(), overwrite=overwrite)
        self._carry_impression_edits(case / "report.json")
        return case

    def _carry_impression_edits(self, path: Path) -> None:
        """The readers' impressions of the lesions' reports go into the case report, as a reader
        edit (the case's machine impression is kept beside it). Other edits stay in the scene."""
        from PASTALib.atomic import atomic_write
        from PASTALib.report import review

        texts, editors = [], []
        for step in self.done:
            if not report_store.is_report_node(step.report_node):
                continue
            report = report_store.load_report(step.report_node)
            edits = [e for e in report.edits if e.target == "report" and e.field == "impression"]
            if edits:
                texts.append(report.impression)
                editors += [e.editor for e in edits if e.editor not in editors]
        if not texts:
            return
        case_report = Report.from_json(path.read_text(encoding="utf-8"))
        review.edit(case_report, "report", "impression", "\n".join(texts), ", ".join(editors))
        atomic_write(path, json.dumps(case_report.to_dict(), indent=1) + "\n", overwrite=True)


def _sizes(size_mm: Optional[float | Sequence[float]]) -> Optional[list[float]]:
    """One or three diameters in mm as plain floats (they go into JSON reports)."""
    return None if size_mm is None else [float(v) for v in np.atleast_1d(size_mm)]


def _summary(request: LesionRequest) -> dict:
    return {"lesion_type": request.lesion_type, "size_mm": request.size_mm,
            "attributes": dict(request.attributes), "center_ras": request.center_ras,
            "count": request.count, "seed": request.seed, "mass_effect_mm": request.mass_effect_mm}
